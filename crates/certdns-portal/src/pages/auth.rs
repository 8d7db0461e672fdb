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

use super::{NoticeQuery, Page, Shared, with_cookie};
use crate::config::Signup as SignupMode;
use crate::error::message;
use crate::limits::wait_words;
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
        .route("/signup/sent", get(signup_sent))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/logout/everywhere", post(logout_everywhere))
        .route("/verify-email", get(verify_email))
        .route("/verify-email/resend", post(resend_verification))
        .route("/forgot-password", get(forgot_page).post(forgot))
        .route("/forgot-password/sent", get(forgot_sent))
        .route("/reset-password", get(reset_page).post(reset))
        .route("/reset-password/done", get(reset_done))
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

async fn login_page(State(state): Shared, Context(ctx): Context, Query(q): Query<NoticeQuery>) -> Response {
    if ctx.user.is_some() {
        return Redirect::to("/keys").into_response();
    }
    let layout = Layout::of(&ctx).with_notice(q.text());
    let page = LoginPage { layout, email: String::new(), error: None, signup_open: signup_open(&state) };
    render(StatusCode::OK, &page)
}

async fn login(State(state): Shared, Context(ctx): Context, Form(f): Form<Credentials>) -> Page {
    let fail = |status: StatusCode, error: String| {
        let page = LoginPage {
            layout: Layout::anonymous(ctx.csrf.clone()),
            email: f.email.clone(),
            error: Some(error),
            signup_open: signup_open(&state),
        };
        Ok(render(status, &page))
    };
    let account = state.core.account_by_email(&f.email.trim().to_lowercase()).await?;
    let id = account.as_ref().map(|a| a.id);
    // Refused before any hashing: this address is out of failures, or must back
    // off from this account for a while.
    if let Err(wait) = state.limits.sign_in_allowed(ctx.peer, id) {
        let words = wait_words(wait);
        return fail(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed sign-ins. Try again in {words}, or reset your password."),
        );
    }
    let ok = state.passwords.verify(f.password.clone(), account.as_ref().and_then(|a| a.password_hash.clone())).await?;
    let Some(account) = account.filter(|_| ok) else {
        let over_budget = state.limits.sign_in_failed(ctx.peer, id);
        if let Some(id) = id {
            state.audit(Some(id), AuditKind::LoginFailed, ctx.peer, serde_json::json!({})).await;
        }
        if let Err(wait) = over_budget {
            let words = wait_words(wait);
            return fail(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many failed sign-ins. Try again in {words}, or reset your password."),
            );
        }
        return fail(StatusCode::UNAUTHORIZED, "That e-mail and password do not match an account.".into());
    };
    state.limits.sign_in_succeeded(ctx.peer, account.id);
    // Told only to whoever knows the password.
    if account.status != AccountStatus::Active {
        return fail(StatusCode::FORBIDDEN, crate::suspension::words(&state, account.id).await?.0);
    }
    let Some(version) = state.store.session_version(account.id).await? else {
        return fail(StatusCode::UNAUTHORIZED, "That e-mail and password do not match an account.".into());
    };
    state.audit(Some(account.id), AuditKind::Login, ctx.peer, serde_json::json!({ "via": "portal" })).await;
    Ok(with_cookie(Redirect::to("/keys").into_response(), session::login_cookie(&state, account.id, version)))
}

/// Signs out this browser: its session is revoked server-side (a copied cookie
/// stops working too); the account's other sessions stay.
async fn logout(State(state): Shared, Context(ctx): Context) -> Page {
    if let Some(user) = &ctx.user {
        match ctx.session.as_ref().filter(|s| !s.id.is_empty()) {
            Some(session) => state.store.revoke_session(&session.id, session.expires_at).await?,
            // A session from before per-session ids: only the version can end it.
            None => drop(state.store.bump_session_version(user.account.id).await?),
        }
        let detail = serde_json::json!({ "sessions": "this one" });
        state.audit(Some(user.account.id), AuditKind::Logout, ctx.peer, detail).await;
    }
    Ok(with_cookie(Redirect::to("/login").into_response(), session::logout_cookie(&state)))
}

/// Signs out every session of the account, on every device.
async fn logout_everywhere(State(state): Shared, Context(ctx): Context) -> Page {
    if let Some(user) = &ctx.user {
        state.store.bump_session_version(user.account.id).await?;
        let detail = serde_json::json!({ "sessions": "all" });
        state.audit(Some(user.account.id), AuditKind::Logout, ctx.peer, detail).await;
    }
    Ok(with_cookie(Redirect::to("/login?notice=signed_out_everywhere").into_response(), session::logout_cookie(&state)))
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
    let fail = |status: StatusCode, error: String| {
        let page = SignupPage {
            layout: Layout::anonymous(ctx.csrf.clone()),
            email: f.email.clone(),
            error: Some(error),
            min_len: password::MIN_LEN,
        };
        Ok(render(status, &page))
    };
    let Ok(email) = Email::parse(&f.email) else {
        return fail(StatusCode::UNPROCESSABLE_ENTITY, "Enter your e-mail address, like name@example.com.".into());
    };
    if let Err(e) = passwords::check_rules(&f.password, email.as_str()) {
        return fail(StatusCode::UNPROCESSABLE_ENTITY, e);
    }
    if f.password != f.password_confirm {
        return fail(StatusCode::UNPROCESSABLE_ENTITY, "The two passwords do not match.".into());
    }
    if let Err(wait) = state.limits.sign_up(ctx.peer) {
        let words = wait_words(wait);
        return fail(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many sign-ups from your address. Try again in {words}."),
        );
    }
    // Hashed whether or not the address is taken, so both cost the same.
    let hash = match state.passwords.hash(f.password.clone()).await? {
        Ok(h) => h,
        Err(e) => return fail(StatusCode::UNPROCESSABLE_ENTITY, e),
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
        Ok(()) => {
            let via = serde_json::json!({ "via": "portal" });
            state.audit(Some(account.id), AuditKind::AccountCreated, ctx.peer, via).await;
            send_verification(&state, &account).await;
        }
        // The same answer as for a new account, so the form cannot tell who has
        // one; the owner hears of it by mail.
        Err(StoreError::Conflict(_)) => notify_existing_account(&state, account.email.as_str()).await,
        Err(e) => return Err(e.into()),
    }
    // Post/Redirect/Get: a reload of the next page repeats nothing.
    Ok(Redirect::to("/signup/sent").into_response())
}

/// The page after sign-up, whatever happened (the address is not in the URL:
/// it would land in logs and the history).
async fn signup_sent(Context(ctx): Context) -> Response {
    let text = format!(
        "We sent a message to the address you gave. Open the link in it within {TOKEN_HOURS} hours to confirm your \
         address and sign in. Nothing there? Check the spam folder, or sign in if you already have an account."
    );
    message(&ctx, StatusCode::OK, "Check your inbox", &text, Some(("/login", "Sign in")))
}

/// Someone tried to sign up with an address that has an account.
async fn notify_existing_account(state: &AppState, email: &str) {
    let body = format!(
        "Someone tried to create a certdns account with this e-mail address, which already has one.\n\n\
         If it was you, sign in at {base}/login, or choose a new password at {base}/forgot-password.\n\n\
         If it was not you, nothing changed; you can ignore this message.\n",
        base = state.base_url
    );
    if let Err(e) = state.mailer.send(email, "Sign-up attempt for your certdns account", body).await {
        tracing::warn!(error = %e, "cannot send the sign-up notice");
    }
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

/// Confirms the address; the link came by mail, so it also signs in (it is what
/// finishes a sign-up).
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
    let active = state.core.account(account).await?.is_some_and(|a| a.status == AccountStatus::Active);
    match (&ctx.user, active, state.store.session_version(account).await?) {
        (None, true, Some(version)) => {
            let welcome = Redirect::to("/keys?notice=welcome").into_response();
            Ok(with_cookie(welcome, session::login_cookie(&state, account, version)))
        }
        _ => Ok(message(
            &ctx,
            StatusCode::OK,
            "E-mail confirmed",
            "Thank you: your e-mail address is confirmed.",
            Some(("/keys", "Continue")),
        )),
    }
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

async fn forgot(State(state): Shared, Context(ctx): Context, Form(f): Form<ForgotForm>) -> Page {
    if let Err(wait) = state.limits.forgot_password(ctx.peer) {
        let text = format!("Too many requests from your address. Try again in {}.", wait_words(wait));
        return Ok(message(
            &ctx,
            StatusCode::TOO_MANY_REQUESTS,
            "Please wait",
            &text,
            Some(("/forgot-password", "Back")),
        ));
    }
    // The same answer whether or not the account exists, and whether or not this
    // account's hourly cap of reset mails is reached.
    if let Some(account) = state.core.account_by_email(&f.email.trim().to_lowercase()).await?
        && state.limits.reset_mail(account.id)
    {
        send_reset_link(&state, &ctx, &account).await;
    }
    Ok(Redirect::to("/forgot-password/sent").into_response())
}

async fn forgot_sent(Context(ctx): Context) -> Response {
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

fn dead_link(ctx: &Ctx) -> Response {
    message(
        ctx,
        StatusCode::BAD_REQUEST,
        "This link does not work any more",
        "Reset links work once and for one hour. Ask for a new one.",
        Some(("/forgot-password", "Reset password")),
    )
}

/// Every cheap check first — the form, this address's budget, the link itself —
/// and only then the argon2id hash of the new password.
async fn reset(State(state): Shared, Context(ctx): Context, Form(f): Form<ResetForm>) -> Page {
    let fail = |status: StatusCode, error: String| {
        let page = ResetPage {
            layout: Layout::of(&ctx),
            token: f.token.clone(),
            error: Some(error),
            min_len: password::MIN_LEN,
        };
        Ok(render(status, &page))
    };
    if let Err(e) = passwords::check_rules(&f.password, "") {
        return fail(StatusCode::UNPROCESSABLE_ENTITY, e);
    }
    if f.password != f.password_confirm {
        return fail(StatusCode::UNPROCESSABLE_ENTITY, "The two passwords do not match.".into());
    }
    if let Err(wait) = state.limits.reset_password(ctx.peer) {
        let words = wait_words(wait);
        return fail(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many attempts from your address. Try again in {words}."),
        );
    }
    let token = hash_token(&f.token);
    let now = certdns_core::now();
    if state.store.token_account(TokenKind::ResetPassword, &token, now).await?.is_none() {
        return Ok(dead_link(&ctx));
    }
    let hash = match state.passwords.hash(f.password.clone()).await? {
        Ok(h) => h,
        Err(e) => return fail(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    // Spent only now; a second tab that got here first wins.
    let Some(account) = state.store.consume_token(TokenKind::ResetPassword, &token, now).await? else {
        return Ok(dead_link(&ctx));
    };
    state.store.set_password_hash(account, &hash).await?;
    // The link came by mail, so the address works.
    let _ = state.store.mark_email_verified(account, now).await;
    state.audit(Some(account), AuditKind::PasswordChanged, ctx.peer, serde_json::json!({ "via": "reset" })).await;
    let done = Redirect::to("/reset-password/done").into_response();
    Ok(with_cookie(done, session::logout_cookie(&state)))
}

async fn reset_done(Context(ctx): Context) -> Response {
    message(
        &ctx,
        StatusCode::OK,
        "Password changed",
        "Your new password is set. Every other session was signed out.",
        Some(("/login", "Sign in")),
    )
}
