//! Signing up, in and out, confirming the e-mail address, and resetting a
//! forgotten password.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use certdns_core::{Account, AccountId, AccountRole, AccountStatus, AuditKind, Email, password};
use certdns_store::{StoreError, TokenKind};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Page, Shared, with_cookie};
use crate::config::Signup as SignupMode;
use crate::error::message;
use crate::passwords;
use crate::session::{self, Context, Ctx, User};
use crate::state::AppState;
use crate::templates::{Layout, render};

/// How long an e-mail confirmation link works.
const TOKEN_HOURS: i64 = 24;
/// How long a password reset link works.
const RESET_HOURS: i64 = 1;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/signup", get(signup_page).post(signup))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/verify-email", get(verify_email))
        .route("/verify-email/resend", post(resend_verification))
        .route("/forgot-password", get(forgot_page).post(forgot))
        .route("/reset-password", get(reset_page).post(reset))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    error: Option<String>,
    signup_open: bool,
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    layout: Layout,
    email: String,
    error: Option<String>,
    min_len: usize,
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    layout: Layout,
    sent: bool,
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    layout: Layout,
    token: String,
    error: Option<String>,
    min_len: usize,
}

#[derive(Deserialize)]
struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
struct ForgotForm {
    #[serde(default)]
    email: String,
}

#[derive(Deserialize)]
struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

/// E-mailed tokens are stored as their SHA-256 only.
fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn signup_open(state: &AppState) -> bool {
    state.config.signup == SignupMode::Open
}

async fn login_page(State(state): Shared, Context(ctx): Context) -> Response {
    if ctx.user.is_some() {
        return Redirect::to("/keys").into_response();
    }
    let page =
        LoginPage { layout: Layout::of(&ctx), email: String::new(), error: None, signup_open: signup_open(&state) };
    render(StatusCode::OK, &page)
}

async fn login(State(state): Shared, Context(ctx): Context, Form(f): Form<Credentials>) -> Page {
    let fail = |status: StatusCode, error: &str| {
        let page = LoginPage {
            layout: Layout::anonymous(ctx.csrf.clone()),
            email: f.email.clone(),
            error: Some(error.to_owned()),
            signup_open: signup_open(&state),
        };
        Ok(render(status, &page))
    };
    let email_key = f.email.trim().to_lowercase();
    let limited = ctx.peer.is_some_and(|ip| state.login_by_address.check_key(&ip).is_err())
        || state.login_by_account.check_key(&email_key).is_err();
    if limited {
        return fail(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts. Wait a minute, then try again (or reset your password).",
        );
    }
    let account = state.core.account_by_email(&email_key).await?;
    let ok = passwords::verify(f.password.clone(), account.as_ref().and_then(|a| a.password_hash.clone())).await;
    let Some(account) = account.filter(|_| ok) else {
        if let Ok(Some(a)) = state.core.account_by_email(&email_key).await {
            state.audit(Some(a.id), AuditKind::LoginFailed, ctx.peer, serde_json::json!({})).await;
        }
        return fail(StatusCode::UNAUTHORIZED, "That e-mail and password do not match an account.");
    };
    let Some(version) = state.store.session_version(account.id).await? else {
        return fail(StatusCode::UNAUTHORIZED, "That e-mail and password do not match an account.");
    };
    state.audit(Some(account.id), AuditKind::Login, ctx.peer, serde_json::json!({ "via": "portal" })).await;
    Ok(with_cookie(Redirect::to("/keys").into_response(), session::login_cookie(&state, account.id, version)))
}

async fn logout(State(state): Shared, Context(ctx): Context) -> Page {
    if let Some(user) = &ctx.user {
        // Revokes every session of the account (this browser's and any other).
        state.store.bump_session_version(user.account.id).await?;
        state.audit(Some(user.account.id), AuditKind::Logout, ctx.peer, serde_json::json!({})).await;
    }
    Ok(with_cookie(Redirect::to("/login").into_response(), session::logout_cookie(&state)))
}

fn signup_closed(ctx: &Ctx) -> Response {
    message(
        ctx,
        StatusCode::FORBIDDEN,
        "Sign-up is closed",
        "New accounts are created by the operator of this service. Ask them for an invitation.",
        Some(("/login", "Sign in")),
    )
}

async fn signup_page(State(state): Shared, Context(ctx): Context) -> Response {
    if !signup_open(&state) {
        return signup_closed(&ctx);
    }
    let page = SignupPage { layout: Layout::of(&ctx), email: String::new(), error: None, min_len: password::MIN_LEN };
    render(StatusCode::OK, &page)
}

async fn signup(State(state): Shared, Context(ctx): Context, Form(f): Form<Credentials>) -> Page {
    if !signup_open(&state) {
        return Ok(signup_closed(&ctx));
    }
    let fail = |error: String| {
        let page = SignupPage {
            layout: Layout::anonymous(ctx.csrf.clone()),
            email: f.email.clone(),
            error: Some(error),
            min_len: password::MIN_LEN,
        };
        Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
    };
    let Ok(email) = Email::parse(&f.email) else {
        return fail("Enter your e-mail address, like name@example.com.".into());
    };
    if let Err(e) = passwords::check_rules(&f.password, email.as_str()) {
        return fail(e);
    }
    if f.password != f.password_confirm {
        return fail("The two passwords do not match.".into());
    }
    if ctx.peer.is_some_and(|ip| state.login_by_address.check_key(&ip).is_err()) {
        return fail("Too many attempts from your address. Wait a minute and try again.".into());
    }
    let hash = match passwords::hash(f.password.clone()).await {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    let account = Account {
        id: AccountId::generate(),
        email,
        role: AccountRole::Customer,
        status: AccountStatus::Active,
        password_hash: Some(hash),
        created_at: certdns_core::now(),
    };
    match state.core.create_account(&account).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return fail("An account with this e-mail already exists. Sign in, or reset your password.".into());
        }
        Err(e) => return Err(e.into()),
    }
    state.audit(Some(account.id), AuditKind::AccountCreated, ctx.peer, serde_json::json!({ "via": "portal" })).await;
    send_verification(&state, &account).await;
    let welcome = Redirect::to("/keys?notice=welcome").into_response();
    Ok(with_cookie(welcome, session::login_cookie(&state, account.id, 0)))
}

/// Mails `account` a link that confirms its address.
async fn send_verification(state: &AppState, account: &Account) {
    let token = session::random_token(32);
    let now = certdns_core::now();
    let expires = now + time::Duration::hours(TOKEN_HOURS);
    if let Err(e) =
        state.store.create_token(TokenKind::VerifyEmail, &hash_token(&token), account.id, now, expires).await
    {
        tracing::warn!(error = %e, "cannot store a verification token");
        return;
    }
    let link = format!("{}/verify-email?token={token}", state.base_url);
    let body = format!(
        "Welcome to certdns.\n\nConfirm your e-mail address by opening this link within {TOKEN_HOURS} hours:\n\n{link}\n\n\
         If you did not sign up, ignore this message.\n"
    );
    if let Err(e) = state.mailer.send(account.email.as_str(), "Confirm your e-mail address", body).await {
        tracing::warn!(error = %e, "cannot send the verification mail");
    }
}

async fn verify_email(State(state): Shared, Context(ctx): Context, Query(q): Query<TokenQuery>) -> Page {
    let now = certdns_core::now();
    let Some(account) = state.store.consume_token(TokenKind::VerifyEmail, &hash_token(&q.token), now).await? else {
        return Ok(message(
            &ctx,
            StatusCode::BAD_REQUEST,
            "This link does not work any more",
            "Confirmation links work once and for 24 hours. Sign in and ask for a new one on the Account page.",
            Some(("/account", "Account")),
        ));
    };
    state.store.mark_email_verified(account, now).await?;
    state.audit(Some(account), AuditKind::EmailVerified, ctx.peer, serde_json::json!({})).await;
    Ok(message(
        &ctx,
        StatusCode::OK,
        "E-mail confirmed",
        "Thank you: your e-mail address is confirmed.",
        Some(("/keys", "Continue")),
    ))
}

async fn resend_verification(State(state): Shared, User(user, _ctx): User) -> Response {
    if !user.email_verified {
        send_verification(&state, &user.account).await;
    }
    Redirect::to("/account?notice=verification_sent").into_response()
}

async fn forgot_page(Context(ctx): Context) -> Response {
    render(StatusCode::OK, &ForgotPage { layout: Layout::of(&ctx), sent: false })
}

async fn forgot(State(state): Shared, Context(ctx): Context, Form(f): Form<ForgotForm>) -> Response {
    let key = f.email.trim().to_lowercase();
    let limited = ctx.peer.is_some_and(|ip| state.login_by_address.check_key(&ip).is_err())
        || state.login_by_account.check_key(&key).is_err();
    // The same answer whether or not the account exists.
    if !limited && let Ok(Some(account)) = state.core.account_by_email(&key).await {
        send_reset_link(&state, &ctx, &account).await;
    }
    render(StatusCode::OK, &ForgotPage { layout: Layout::of(&ctx), sent: true })
}

/// Mails `account` a one-hour password reset link.
async fn send_reset_link(state: &AppState, ctx: &Ctx, account: &Account) {
    let token = session::random_token(32);
    let now = certdns_core::now();
    let expires = now + time::Duration::hours(RESET_HOURS);
    if state.store.create_token(TokenKind::ResetPassword, &hash_token(&token), account.id, now, expires).await.is_err()
    {
        return;
    }
    let link = format!("{}/reset-password?token={token}", state.base_url);
    let body = format!(
        "Someone asked to reset the password of your certdns account.\n\n\
         Choose a new password within {RESET_HOURS} hour here:\n\n{link}\n\n\
         If it was not you, ignore this message; your password stays as it is.\n"
    );
    if let Err(e) = state.mailer.send(account.email.as_str(), "Reset your password", body).await {
        tracing::warn!(error = %e, "cannot send the reset mail");
    }
    state.audit(Some(account.id), AuditKind::PasswordResetRequested, ctx.peer, serde_json::json!({})).await;
}

async fn reset_page(Context(ctx): Context, Query(q): Query<TokenQuery>) -> Response {
    let page = ResetPage { layout: Layout::of(&ctx), token: q.token, error: None, min_len: password::MIN_LEN };
    render(StatusCode::OK, &page)
}

async fn reset(State(state): Shared, Context(ctx): Context, Form(f): Form<ResetForm>) -> Page {
    let fail = |error: String| {
        let page = ResetPage {
            layout: Layout::of(&ctx),
            token: f.token.clone(),
            error: Some(error),
            min_len: password::MIN_LEN,
        };
        Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
    };
    if let Err(e) = passwords::check_rules(&f.password, "") {
        return fail(e);
    }
    if f.password != f.password_confirm {
        return fail("The two passwords do not match.".into());
    }
    let hash = match passwords::hash(f.password.clone()).await {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    let now = certdns_core::now();
    let Some(account) = state.store.consume_token(TokenKind::ResetPassword, &hash_token(&f.token), now).await? else {
        return Ok(message(
            &ctx,
            StatusCode::BAD_REQUEST,
            "This link does not work any more",
            "Reset links work once and for one hour. Ask for a new one.",
            Some(("/forgot-password", "Reset password")),
        ));
    };
    state.store.set_password_hash(account, &hash).await?;
    // The link came by mail, so the address works.
    let _ = state.store.mark_email_verified(account, now).await;
    state.audit(Some(account), AuditKind::PasswordChanged, ctx.peer, serde_json::json!({ "via": "reset" })).await;
    let done = message(
        &ctx,
        StatusCode::OK,
        "Password changed",
        "Your new password is set. Every other session was signed out.",
        Some(("/login", "Sign in")),
    );
    Ok(with_cookie(done, session::logout_cookie(&state)))
}
