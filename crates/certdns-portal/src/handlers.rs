//! Route handlers. Every tenant-scoped lookup goes through the logged-in
//! account's id; ids from the URL are never trusted on their own.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use certdns_core::{
    Account, AccountId, AccountRole, AccountStatus, AuditKind, Email, KeyId, LicenseKey, NewAuditEvent, Secret,
    Subdomain, password,
};
use certdns_distribution::Change;
use certdns_store::{StoreError, TokenKind};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::AppState;
use crate::dns_check::{CnameStatus, check_cname};
use crate::session::{self, Context, Ctx, User};
use crate::templates::{self as t, Layout, render};

type Shared = State<Arc<AppState>>;

const CSS: &str = include_str!("../../../web/static/portal.css");
const JS: &str = include_str!("../../../web/static/portal.js");
const TOKEN_HOURS: i64 = 24;
const RESET_HOURS: i64 = 1;
const AUDIT_PAGE: u32 = 25;
const USAGE_DAYS: i64 = 30;

pub async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], CSS)
        .into_response()
}

pub async fn js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], JS)
        .into_response()
}

fn when(t: OffsetDateTime) -> String {
    t.format(format_description!("[year]-[month]-[day] [hour]:[minute] UTC")).unwrap_or_default()
}

fn when_opt(t: Option<OffsetDateTime>, none: &str) -> String {
    t.map(when).unwrap_or_else(|| none.to_owned())
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "portal request failed");
    let page = t::Message {
        layout: Layout::anonymous(String::new()),
        title: "Something went wrong".into(),
        message: "The portal could not complete this request. Please try again in a moment.".into(),
        link: Some(("/".into(), "Back to the portal".into())),
    };
    render(StatusCode::INTERNAL_SERVER_ERROR, &page)
}

fn message(ctx: &Ctx, status: StatusCode, title: &str, text: &str, link: Option<(&str, &str)>) -> Response {
    let page = t::Message {
        layout: Layout::of(ctx),
        title: title.into(),
        message: text.into(),
        link: link.map(|(a, b)| (a.to_owned(), b.to_owned())),
    };
    render(status, &page)
}

fn with_cookie(mut r: Response, cookie: HeaderValue) -> Response {
    r.headers_mut().append(header::SET_COOKIE, cookie);
    r
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

async fn audit(state: &AppState, account: Option<AccountId>, kind: AuditKind, ctx: &Ctx, detail: serde_json::Value) {
    let event = NewAuditEvent { account_id: account, kind, client_addr: ctx.peer, detail };
    if let Err(e) = state.core.append_audit(&event, certdns_core::now()).await {
        tracing::warn!(error = %e, kind = kind.as_str(), "cannot write audit event");
    }
}

async fn hash_password(pw: String) -> Result<String, String> {
    match tokio::task::spawn_blocking(move || password::hash(&pw)).await {
        Ok(Ok(h)) => Ok(h),
        Ok(Err(password::PasswordError::BadLength)) => Err(format!(
            "Choose a password of {} to {} characters. A few unrelated words make a good one.",
            password::MIN_LEN,
            password::MAX_LEN
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

async fn verify_password(pw: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        // Unknown accounts (and accounts without a password) cost the same as a
        // wrong password: verify against a real hash made once.
        static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let decoy = || DECOY.get_or_init(|| password::hash("certdns decoy password, never valid").unwrap_or_default());
        match stored {
            Some(hash) => password::verify(&pw, &hash),
            None => {
                let _ = password::verify(&pw, decoy());
                false
            }
        }
    })
    .await
    .unwrap_or(false)
}

fn password_rules(pw: &str, email: &str) -> Result<(), String> {
    let len = pw.chars().count();
    if !(password::MIN_LEN..=password::MAX_LEN).contains(&len) {
        return Err(format!(
            "Choose a password of {} to {} characters. A few unrelated words make a good one.",
            password::MIN_LEN,
            password::MAX_LEN
        ));
    }
    if pw.eq_ignore_ascii_case(email) || pw.chars().all(|c| pw.starts_with(c)) {
        return Err("That password is too easy to guess. Pick something you do not use elsewhere.".into());
    }
    Ok(())
}

async fn send_verification(state: &AppState, account: &Account) {
    let token = session::random_token(32);
    let now = certdns_core::now();
    let stored = state
        .store
        .create_token(
            TokenKind::VerifyEmail,
            &hash_token(&token),
            account.id,
            now,
            now + time::Duration::hours(TOKEN_HOURS),
        )
        .await;
    if let Err(e) = stored {
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

// --- public pages -----------------------------------------------------------------

pub async fn home(Context(ctx): Context) -> Response {
    if ctx.user.is_some() { Redirect::to("/keys") } else { Redirect::to("/login") }.into_response()
}

pub async fn not_found(Context(ctx): Context) -> Response {
    message(&ctx, StatusCode::NOT_FOUND, "Not found", "There is no such page in your account.", Some(("/", "Home")))
}

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

pub async fn login_page(State(state): Shared, Context(ctx): Context) -> Response {
    if ctx.user.is_some() {
        return Redirect::to("/keys").into_response();
    }
    let signup_open = state.config.signup == crate::Signup::Open;
    render(StatusCode::OK, &t::Login { layout: Layout::of(&ctx), email: String::new(), error: None, signup_open })
}

pub async fn login(State(state): Shared, Context(ctx): Context, Form(f): Form<Credentials>) -> Response {
    let signup_open = state.config.signup == crate::Signup::Open;
    let fail = |status: StatusCode, error: &str| {
        render(
            status,
            &t::Login {
                layout: Layout::anonymous(ctx.csrf.clone()),
                email: f.email.clone(),
                error: Some(error.to_owned()),
                signup_open,
            },
        )
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
    let account = match state.core.account_by_email(&email_key).await {
        Ok(a) => a,
        Err(e) => return internal(e),
    };
    let ok = verify_password(f.password.clone(), account.as_ref().and_then(|a| a.password_hash.clone())).await;
    let Some(account) = account.filter(|_| ok) else {
        if let Ok(Some(a)) = state.core.account_by_email(&email_key).await {
            audit(&state, Some(a.id), AuditKind::LoginFailed, &ctx, serde_json::json!({})).await;
        }
        return fail(StatusCode::UNAUTHORIZED, "That e-mail and password do not match an account.");
    };
    let version = match state.store.session_version(account.id).await {
        Ok(Some(v)) => v,
        Ok(None) => return fail(StatusCode::UNAUTHORIZED, "That e-mail and password do not match an account."),
        Err(e) => return internal(e),
    };
    audit(&state, Some(account.id), AuditKind::Login, &ctx, serde_json::json!({ "via": "portal" })).await;
    with_cookie(Redirect::to("/keys").into_response(), session::login_cookie(&state, account.id, version))
}

pub async fn logout(State(state): Shared, Context(ctx): Context) -> Response {
    if let Some(user) = &ctx.user {
        // Revokes every session of the account (this browser's and any other).
        if let Err(e) = state.store.bump_session_version(user.account.id).await {
            return internal(e);
        }
        audit(&state, Some(user.account.id), AuditKind::Logout, &ctx, serde_json::json!({})).await;
    }
    with_cookie(Redirect::to("/login").into_response(), session::logout_cookie(&state))
}

pub async fn signup_page(State(state): Shared, Context(ctx): Context) -> Response {
    if state.config.signup == crate::Signup::Closed {
        return message(
            &ctx,
            StatusCode::FORBIDDEN,
            "Sign-up is closed",
            "New accounts are created by the operator of this service. Ask them for an invitation.",
            Some(("/login", "Sign in")),
        );
    }
    render(
        StatusCode::OK,
        &t::Signup { layout: Layout::of(&ctx), email: String::new(), error: None, min_len: password::MIN_LEN },
    )
}

pub async fn signup(State(state): Shared, Context(ctx): Context, Form(f): Form<Credentials>) -> Response {
    if state.config.signup == crate::Signup::Closed {
        return signup_page(State(state), Context(ctx)).await;
    }
    let fail = |error: String| {
        render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &t::Signup {
                layout: Layout::anonymous(ctx.csrf.clone()),
                email: f.email.clone(),
                error: Some(error),
                min_len: password::MIN_LEN,
            },
        )
    };
    let email = match Email::parse(&f.email) {
        Ok(e) => e,
        Err(_) => return fail("Enter your e-mail address, like name@example.com.".into()),
    };
    if let Err(e) = password_rules(&f.password, email.as_str()) {
        return fail(e);
    }
    if f.password != f.password_confirm {
        return fail("The two passwords do not match.".into());
    }
    if ctx.peer.is_some_and(|ip| state.login_by_address.check_key(&ip).is_err()) {
        return fail("Too many attempts from your address. Wait a minute and try again.".into());
    }
    let hash = match hash_password(f.password.clone()).await {
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
        Err(e) => return internal(e),
    }
    audit(&state, Some(account.id), AuditKind::AccountCreated, &ctx, serde_json::json!({ "via": "portal" })).await;
    send_verification(&state, &account).await;
    with_cookie(Redirect::to("/keys?notice=welcome").into_response(), session::login_cookie(&state, account.id, 0))
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

pub async fn verify_email(State(state): Shared, Context(ctx): Context, Query(q): Query<TokenQuery>) -> Response {
    let now = certdns_core::now();
    match state.store.consume_token(TokenKind::VerifyEmail, &hash_token(&q.token), now).await {
        Ok(Some(account)) => {
            if let Err(e) = state.store.mark_email_verified(account, now).await {
                return internal(e);
            }
            audit(&state, Some(account), AuditKind::EmailVerified, &ctx, serde_json::json!({})).await;
            message(
                &ctx,
                StatusCode::OK,
                "E-mail confirmed",
                "Thank you: your e-mail address is confirmed.",
                Some(("/keys", "Continue")),
            )
        }
        Ok(None) => message(
            &ctx,
            StatusCode::BAD_REQUEST,
            "This link does not work any more",
            "Confirmation links work once and for 24 hours. Sign in and ask for a new one on the Account page.",
            Some(("/account", "Account")),
        ),
        Err(e) => internal(e),
    }
}

pub async fn resend_verification(State(state): Shared, User(user, _ctx): User) -> Response {
    if !user.email_verified {
        send_verification(&state, &user.account).await;
    }
    Redirect::to("/account?notice=verification_sent").into_response()
}

pub async fn forgot_page(Context(ctx): Context) -> Response {
    render(StatusCode::OK, &t::Forgot { layout: Layout::of(&ctx), sent: false })
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

pub async fn forgot(State(state): Shared, Context(ctx): Context, Form(f): Form<ForgotForm>) -> Response {
    let key = f.email.trim().to_lowercase();
    let limited = ctx.peer.is_some_and(|ip| state.login_by_address.check_key(&ip).is_err())
        || state.login_by_account.check_key(&key).is_err();
    // The same answer whether or not the account exists.
    if !limited && let Ok(Some(account)) = state.core.account_by_email(&key).await {
        let token = session::random_token(32);
        let now = certdns_core::now();
        let stored = state
            .store
            .create_token(
                TokenKind::ResetPassword,
                &hash_token(&token),
                account.id,
                now,
                now + time::Duration::hours(RESET_HOURS),
            )
            .await;
        if stored.is_ok() {
            let link = format!("{}/reset-password?token={token}", state.base_url);
            let body = format!(
                "Someone asked to reset the password of your certdns account.\n\n\
                 Choose a new password within {RESET_HOURS} hour here:\n\n{link}\n\n\
                 If it was not you, ignore this message; your password stays as it is.\n"
            );
            if let Err(e) = state.mailer.send(account.email.as_str(), "Reset your password", body).await {
                tracing::warn!(error = %e, "cannot send the reset mail");
            }
            audit(&state, Some(account.id), AuditKind::PasswordResetRequested, &ctx, serde_json::json!({})).await;
        }
    }
    render(StatusCode::OK, &t::Forgot { layout: Layout::of(&ctx), sent: true })
}

pub async fn reset_page(Context(ctx): Context, Query(q): Query<TokenQuery>) -> Response {
    render(
        StatusCode::OK,
        &t::Reset { layout: Layout::of(&ctx), token: q.token, error: None, min_len: password::MIN_LEN },
    )
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

pub async fn reset(State(state): Shared, Context(ctx): Context, Form(f): Form<ResetForm>) -> Response {
    let fail = |error: String| {
        render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &t::Reset {
                layout: Layout::of(&ctx),
                token: f.token.clone(),
                error: Some(error),
                min_len: password::MIN_LEN,
            },
        )
    };
    if let Err(e) = password_rules(&f.password, "") {
        return fail(e);
    }
    if f.password != f.password_confirm {
        return fail("The two passwords do not match.".into());
    }
    let hash = match hash_password(f.password.clone()).await {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    let account =
        match state.store.consume_token(TokenKind::ResetPassword, &hash_token(&f.token), certdns_core::now()).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                return message(
                    &ctx,
                    StatusCode::BAD_REQUEST,
                    "This link does not work any more",
                    "Reset links work once and for one hour. Ask for a new one.",
                    Some(("/forgot-password", "Reset password")),
                );
            }
            Err(e) => return internal(e),
        };
    if let Err(e) = state.store.set_password_hash(account, &hash).await {
        return internal(e);
    }
    // The link came by mail, so the address works.
    let _ = state.store.mark_email_verified(account, certdns_core::now()).await;
    audit(&state, Some(account), AuditKind::PasswordChanged, &ctx, serde_json::json!({ "via": "reset" })).await;
    with_cookie(
        message(
            &ctx,
            StatusCode::OK,
            "Password changed",
            "Your new password is set. Every other session was signed out.",
            Some(("/login", "Sign in")),
        ),
        session::logout_cookie(&state),
    )
}

// --- account ----------------------------------------------------------------------

#[derive(Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    notice: Option<String>,
}

fn notice_text(code: Option<&str>) -> Option<String> {
    Some(
        match code? {
            "welcome" => "Welcome! Create a license key to connect your ACME client. We sent you a link to confirm your e-mail address.",
            "verification_sent" => "We sent a new confirmation link. It works for 24 hours.",
            "password_changed" => "Password changed. Your other sessions were signed out.",
            "revoked" => "The key is revoked. Clients using it are refused from now on.",
            "renamed" => "Key renamed.",
            "deleted" => "Registration deleted. Our DNS stopped answering for it; remove the CNAME from your zone too.",
            "suspended" => "Account suspended: its keys and registrations are refused at the API.",
            "unsuspended" => "Account reactivated.",
            _ => return None,
        }
        .to_owned(),
    )
}

pub async fn account_page(State(state): Shared, User(user, ctx): User, Query(q): Query<NoticeQuery>) -> Response {
    let verified = match state.store.email_verified_at(user.account.id).await {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    render(
        StatusCode::OK,
        &t::AccountPage {
            layout: Layout::of(&ctx).with_notice(notice_text(q.notice.as_deref())),
            email: user.account.email.to_string(),
            created: when(user.account.created_at),
            verified: verified.map(when),
            password_error: None,
            delete_error: None,
            min_len: password::MIN_LEN,
        },
    )
}

async fn account_error(
    state: &AppState,
    user: &session::CurrentUser,
    ctx: &Ctx,
    pw: Option<String>,
    del: Option<String>,
) -> Response {
    let verified = state.store.email_verified_at(user.account.id).await.ok().flatten();
    render(
        StatusCode::UNPROCESSABLE_ENTITY,
        &t::AccountPage {
            layout: Layout::of(ctx),
            email: user.account.email.to_string(),
            created: when(user.account.created_at),
            verified: verified.map(when),
            password_error: pw,
            delete_error: del,
            min_len: password::MIN_LEN,
        },
    )
}

#[derive(Deserialize)]
pub struct ChangePassword {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

pub async fn change_password(State(state): Shared, User(user, ctx): User, Form(f): Form<ChangePassword>) -> Response {
    if state.login_by_account.check_key(&user.account.email.to_string()).is_err() {
        return account_error(&state, &user, &ctx, Some("Too many attempts. Wait a minute.".into()), None).await;
    }
    if !verify_password(f.current.clone(), user.account.password_hash.clone()).await {
        return account_error(&state, &user, &ctx, Some("Your current password is not right.".into()), None).await;
    }
    if let Err(e) = password_rules(&f.password, user.account.email.as_str()) {
        return account_error(&state, &user, &ctx, Some(e), None).await;
    }
    if f.password != f.password_confirm {
        return account_error(&state, &user, &ctx, Some("The two new passwords do not match.".into()), None).await;
    }
    let hash = match hash_password(f.password.clone()).await {
        Ok(h) => h,
        Err(e) => return account_error(&state, &user, &ctx, Some(e), None).await,
    };
    let version = match state.store.set_password_hash(user.account.id, &hash).await {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    audit(&state, Some(user.account.id), AuditKind::PasswordChanged, &ctx, serde_json::json!({ "via": "portal" }))
        .await;
    // Every other session is revoked by the version bump; this one gets a fresh cookie.
    with_cookie(
        Redirect::to("/account?notice=password_changed").into_response(),
        session::login_cookie(&state, user.account.id, version),
    )
}

#[derive(Deserialize)]
pub struct DeleteAccount {
    #[serde(default)]
    confirm_email: String,
    #[serde(default)]
    password: String,
}

pub async fn delete_account(State(state): Shared, User(user, ctx): User, Form(f): Form<DeleteAccount>) -> Response {
    if !f.confirm_email.trim().eq_ignore_ascii_case(user.account.email.as_str()) {
        return account_error(&state, &user, &ctx, None, Some("Type your e-mail address exactly to confirm.".into()))
            .await;
    }
    if !verify_password(f.password.clone(), user.account.password_hash.clone()).await {
        return account_error(&state, &user, &ctx, None, Some("Your password is not right.".into())).await;
    }
    let removed = match state.store.delete_account(user.account.id).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let changes: Vec<Change> =
        removed.iter().map(|r| Change::Remove { subdomain: r.subdomain, version: r.version + 1 }).collect();
    if !changes.is_empty()
        && let Err(e) = state.distribution.publish(&changes).await
    {
        // The store is the truth; the reconciler removes them later.
        tracing::warn!(error = %e, "cannot publish removals of a deleted account");
    }
    audit(
        &state,
        None,
        AuditKind::AccountDeleted,
        &ctx,
        serde_json::json!({ "account": user.account.id.to_string(), "registrations": removed.len() }),
    )
    .await;
    tracing::info!(account = %user.account.id, registrations = removed.len(), "account deleted");
    with_cookie(
        message(
            &Ctx { user: None, ..ctx },
            StatusCode::OK,
            "Account deleted",
            "Your account, its keys and its registrations are gone. Remove the _acme-challenge CNAME records from your zones.",
            Some(("/signup", "Create a new account")),
        ),
        session::logout_cookie(&state),
    )
}

// --- license keys -----------------------------------------------------------------

async fn keys_view(
    state: &AppState,
    user: &session::CurrentUser,
    ctx: &Ctx,
    error: Option<String>,
    name: String,
    notice: Option<String>,
) -> Response {
    let id = user.account.id;
    let (keys, counts) = match tokio::try_join!(state.core.list_license_keys(id), state.store.registration_counts(id)) {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    let counts: HashMap<KeyId, u64> = counts.into_iter().collect();
    let now = certdns_core::now();
    let mut rows: Vec<t::KeyRow> = keys
        .iter()
        .map(|k| t::KeyRow {
            id: k.id.to_string(),
            name: k.name.clone(),
            created: when(k.created_at),
            last_used: when_opt(k.last_used_at, "never"),
            registrations: counts.get(&k.id).copied().unwrap_or(0),
            active: k.is_active(),
            revoked: when_opt(k.revoked_at, ""),
            grace_until: k.secret_hash.previous().filter(|(_, until)| *until > now).map(|(_, until)| when(until)),
        })
        .collect();
    rows.sort_by(|a, b| b.active.cmp(&a.active).then(b.created.cmp(&a.created)));
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    render(status, &t::Keys { layout: Layout::of(ctx).with_notice(notice), keys: rows, error, name })
}

pub async fn keys_page(State(state): Shared, User(user, ctx): User, Query(q): Query<NoticeQuery>) -> Response {
    keys_view(&state, &user, &ctx, None, String::new(), notice_text(q.notice.as_deref())).await
}

fn base_url_with(state: &AppState, id: &KeyId, secret: &Secret) -> String {
    let mut url = state.api_url.clone();
    let _ = url.set_username(id.as_str());
    let _ = url.set_password(Some(secret.expose()));
    url.as_str().trim_end_matches('/').to_owned()
}

#[derive(Deserialize)]
pub struct KeyName {
    #[serde(default)]
    name: String,
}

fn clean_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("Give the key a name, like the server or team that will use it.".into());
    }
    if name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err("Key names are at most 80 characters, without control characters.".into());
    }
    Ok(name.to_owned())
}

pub async fn create_key(State(state): Shared, User(user, ctx): User, Form(f): Form<KeyName>) -> Response {
    if user.account.status != AccountStatus::Active {
        return keys_view(
            &state,
            &user,
            &ctx,
            Some("This account is suspended; it cannot create keys.".into()),
            f.name,
            None,
        )
        .await;
    }
    let name = match clean_name(&f.name) {
        Ok(n) => n,
        Err(e) => return keys_view(&state, &user, &ctx, Some(e), f.name, None).await,
    };
    let secret = Secret::generate();
    let key = LicenseKey {
        id: KeyId::generate(),
        account_id: user.account.id,
        name: name.clone(),
        secret_hash: secret.hash(),
        created_at: certdns_core::now(),
        last_used_at: None,
        revoked_at: None,
    };
    if let Err(e) = state.core.create_license_key(&key).await {
        return internal(e);
    }
    audit(
        &state,
        Some(user.account.id),
        AuditKind::LicenseKeyCreated,
        &ctx,
        serde_json::json!({ "key": key.id.to_string(), "name": name }),
    )
    .await;
    render(
        StatusCode::OK,
        &t::KeyCreated {
            layout: Layout::of(&ctx),
            name,
            id: key.id.to_string(),
            base_url: base_url_with(&state, &key.id, &secret),
            rotated: false,
            grace_until: String::new(),
        },
    )
}

fn parse_key(id: &str) -> Option<KeyId> {
    id.parse().ok()
}

pub async fn revoke_key(State(state): Shared, User(user, ctx): User, Path(id): Path<String>) -> Response {
    let Some(id) = parse_key(&id) else { return not_found(Context(ctx)).await };
    match state.core.revoke_license_key(user.account.id, &id, certdns_core::now()).await {
        Ok(()) => {
            audit(
                &state,
                Some(user.account.id),
                AuditKind::LicenseKeyRevoked,
                &ctx,
                serde_json::json!({ "key": id.to_string() }),
            )
            .await;
            Redirect::to("/keys?notice=revoked").into_response()
        }
        Err(StoreError::NotFound) => not_found(Context(ctx)).await,
        Err(e) => internal(e),
    }
}

pub async fn rotate_key(State(state): Shared, User(user, ctx): User, Path(id): Path<String>) -> Response {
    let Some(id) = parse_key(&id) else { return not_found(Context(ctx)).await };
    let key = match state.core.license_key(&id).await {
        Ok(Some(k)) if k.account_id == user.account.id && k.is_active() => k,
        Ok(_) => return not_found(Context(ctx)).await,
        Err(e) => return internal(e),
    };
    let secret = Secret::generate();
    let until = certdns_core::now() + time::Duration::hours(i64::from(state.config.rotation_grace_hours));
    match state.store.rotate_license_key(user.account.id, &id, &secret.hash(), until).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => return not_found(Context(ctx)).await,
        Err(e) => return internal(e),
    }
    audit(
        &state,
        Some(user.account.id),
        AuditKind::LicenseKeyRotated,
        &ctx,
        serde_json::json!({ "key": id.to_string(), "grace_until": until.unix_timestamp() }),
    )
    .await;
    render(
        StatusCode::OK,
        &t::KeyCreated {
            layout: Layout::of(&ctx),
            name: key.name,
            id: id.to_string(),
            base_url: base_url_with(&state, &id, &secret),
            rotated: true,
            grace_until: when(until),
        },
    )
}

pub async fn rename_key(
    State(state): Shared,
    User(user, ctx): User,
    Path(id): Path<String>,
    Form(f): Form<KeyName>,
) -> Response {
    let Some(id) = parse_key(&id) else { return not_found(Context(ctx)).await };
    let name = match clean_name(&f.name) {
        Ok(n) => n,
        Err(e) => return keys_view(&state, &user, &ctx, Some(e), String::new(), None).await,
    };
    match state.store.rename_license_key(user.account.id, &id, &name).await {
        Ok(()) => {
            audit(
                &state,
                Some(user.account.id),
                AuditKind::LicenseKeyRenamed,
                &ctx,
                serde_json::json!({ "key": id.to_string(), "name": name }),
            )
            .await;
            Redirect::to("/keys?notice=renamed").into_response()
        }
        Err(StoreError::NotFound) => not_found(Context(ctx)).await,
        Err(e) => internal(e),
    }
}

// --- registrations ----------------------------------------------------------------

fn reg_row(state: &AppState, r: &certdns_core::Registration) -> t::RegRow {
    let subject = r.subject.clone().unwrap_or_default();
    let base = subject.trim_start_matches("*.").trim_end_matches('.');
    t::RegRow {
        subdomain: r.subdomain.to_string(),
        cname_name: if base.is_empty() {
            "_acme-challenge.<your domain>".into()
        } else {
            format!("_acme-challenge.{base}")
        },
        subject,
        fulldomain: format!("{}.{}", r.subdomain, state.zone_domain),
        created: when(r.created_at),
        last_update: when_opt(r.last_update_at, "no update yet"),
    }
}

pub async fn registrations_page(State(state): Shared, User(user, ctx): User, Query(q): Query<NoticeQuery>) -> Response {
    let id = user.account.id;
    let (regs, keys) = match tokio::try_join!(state.core.list_registrations(id), state.core.list_license_keys(id)) {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    let mut groups: Vec<t::RegGroup> = Vec::new();
    for k in &keys {
        let rows: Vec<t::RegRow> =
            regs.iter().filter(|r| r.license_key_id.as_ref() == Some(&k.id)).map(|r| reg_row(&state, r)).collect();
        if !rows.is_empty() || k.is_active() {
            let title = if k.is_active() { k.name.clone() } else { format!("{} (revoked)", k.name) };
            groups.push(t::RegGroup { title, key_id: k.id.to_string(), rows });
        }
    }
    let orphans: Vec<t::RegRow> = regs
        .iter()
        .filter(|r| r.license_key_id.as_ref().is_none_or(|k| !keys.iter().any(|x| &x.id == k)))
        .map(|r| reg_row(&state, r))
        .collect();
    if !orphans.is_empty() {
        groups.push(t::RegGroup { title: "Without a license key".into(), key_id: String::new(), rows: orphans });
    }
    render(
        StatusCode::OK,
        &t::Registrations {
            layout: Layout::of(&ctx).with_notice(notice_text(q.notice.as_deref())),
            groups,
            total: regs.len(),
        },
    )
}

#[derive(Deserialize)]
pub struct RegistrationQuery {
    #[serde(default)]
    check: Option<String>,
    #[serde(default)]
    account_uri: Option<String>,
    #[serde(default)]
    ca: Option<String>,
}

/// The CA's CAA identifier for well-known ACME directories.
fn ca_for(uri: &url::Url) -> Option<&'static str> {
    let host = uri.host_str()?;
    [
        ("letsencrypt.org", "letsencrypt.org"),
        ("api.pki.goog", "pki.goog"),
        ("zerossl.com", "sectigo.com"),
        ("sectigo.com", "sectigo.com"),
        ("buypass.com", "buypass.com"),
        ("ssl.com", "ssl.com"),
        ("digicert.com", "digicert.com"),
    ]
    .iter()
    .find(|(suffix, _)| host == *suffix || host.ends_with(&format!(".{suffix}")))
    .map(|(_, ca)| *ca)
}

fn caa_records(domain: &str, account_uri: &str, ca: Option<&str>) -> Result<(Vec<String>, String), String> {
    let uri = url::Url::parse(account_uri.trim()).map_err(|_| {
        "Paste your ACME account URL, like https://acme-v02.api.letsencrypt.org/acme/acct/123456789.".to_owned()
    })?;
    if uri.scheme() != "https" || uri.as_str().contains(['"', ';', ' ']) {
        return Err("The account URL must be an https:// URL without quotes, spaces or semicolons.".into());
    }
    let ca = match ca.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) if c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '-') => c.to_ascii_lowercase(),
        Some(_) => return Err("The CA's domain name may only contain letters, digits, dots and dashes.".into()),
        None => ca_for(&uri)
            .map(str::to_owned)
            .ok_or("We do not know this CA. Enter its CAA domain (for example letsencrypt.org).")?,
    };
    let base = domain.trim_start_matches("*.").trim_end_matches('.');
    let base = if base.is_empty() { "example.com" } else { base };
    let value = format!("{ca}; accounturi={}; validationmethods=dns-01", uri.as_str());
    Ok((vec![format!("{base}. CAA 0 issue \"{value}\""), format!("{base}. CAA 0 issuewild \"{value}\"")], ca))
}

fn describe_check(status: &CnameStatus, row: &t::RegRow, resolver: std::net::SocketAddr) -> t::Check {
    let record = format!("{}. CNAME {}.", row.cname_name, row.fulldomain);
    let (headline, detail, fix) = match status {
        CnameStatus::Correct => (
            "CNAME present and correct".to_owned(),
            format!("{} points at {}.", row.cname_name, row.fulldomain),
            "Nothing to do: certificates can be issued.".to_owned(),
        ),
        CnameStatus::Missing => (
            "CNAME missing".to_owned(),
            format!("The resolver finds no record at {}.", row.cname_name),
            format!(
                "Create this record in your DNS zone: {record} Changes can take a while to reach resolvers (the record's TTL)."
            ),
        ),
        CnameStatus::PointsElsewhere { target } => (
            "CNAME points elsewhere".to_owned(),
            format!("{} points at {target}, not at {}.", row.cname_name, row.fulldomain),
            format!("Change the CNAME's target so the record reads: {record}"),
        ),
        CnameStatus::ShadowedByTxt { values } => (
            "Shadowed by a TXT record".to_owned(),
            format!(
                "{} has a TXT record ({}) instead of the CNAME; the CA reads that and never reaches us.",
                row.cname_name,
                values.join(", ")
            ),
            format!("Delete the TXT record(s) at {} and create: {record}", row.cname_name),
        ),
        CnameStatus::Unknown { reason } => (
            "Could not check".to_owned(),
            format!("Asking the resolver {resolver} failed: {reason}."),
            "Try again in a minute. If it keeps failing, check the record with dig.".to_owned(),
        ),
    };
    t::Check { code: status.code().to_owned(), headline, detail, fix }
}

pub async fn registration_page(
    State(state): Shared,
    User(user, ctx): User,
    Path(sub): Path<String>,
    Query(q): Query<RegistrationQuery>,
) -> Response {
    let Ok(subdomain) = sub.parse::<Subdomain>() else { return not_found(Context(ctx)).await };
    let reg = match state.core.registration_by_subdomain(user.account.id, subdomain).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(Context(ctx)).await,
        Err(e) => return internal(e),
    };
    let row = reg_row(&state, &reg);
    let check = match (&q.check, &reg.subject) {
        (Some(_), Some(subject)) => {
            let status = check_cname(state.config.resolver, subject, &row.fulldomain).await;
            Some(describe_check(&status, &row, state.config.resolver))
        }
        (Some(_), None) => Some(t::Check {
            code: "unknown".into(),
            headline: "No domain to check".into(),
            detail: "This registration was made without a subject, so we do not know which domain it serves.".into(),
            fix: "Create the CNAME _acme-challenge.<your domain> pointing at the fulldomain above.".into(),
        }),
        _ => None,
    };
    let (caa, caa_error, ca_domain) = match q.account_uri.as_deref().filter(|u| !u.trim().is_empty()) {
        Some(uri) => match caa_records(&row.subject, uri, q.ca.as_deref()) {
            Ok((records, ca)) => (records, None, ca),
            Err(e) => (Vec::new(), Some(e), q.ca.clone().unwrap_or_default()),
        },
        None => (Vec::new(), None, q.ca.clone().unwrap_or_default()),
    };
    let key = reg.license_key_id.as_ref().map(|k| k.to_string()).unwrap_or_else(|| "none".into());
    render(
        StatusCode::OK,
        &t::RegistrationPage {
            layout: Layout::of(&ctx),
            reg: row,
            key,
            allow_from: reg.allow_from.to_json(),
            check,
            account_uri: q.account_uri.unwrap_or_default(),
            ca_domain,
            caa,
            caa_error,
        },
    )
}

pub async fn delete_registration(State(state): Shared, User(user, ctx): User, Path(sub): Path<String>) -> Response {
    let Ok(subdomain) = sub.parse::<Subdomain>() else { return not_found(Context(ctx)).await };
    let reg = match state.core.registration_by_subdomain(user.account.id, subdomain).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(Context(ctx)).await,
        Err(e) => return internal(e),
    };
    let (subdomain, version) = match state.core.delete_registration_versioned(user.account.id, reg.id).await {
        Ok(v) => v,
        Err(StoreError::NotFound) => return not_found(Context(ctx)).await,
        Err(e) => return internal(e),
    };
    // Same as the API's /deregister: a removal newer than any upsert before it.
    if let Err(e) = state.distribution.publish(&[Change::Remove { subdomain, version: version + 1 }]).await {
        tracing::warn!(error = %e, %subdomain, "cannot publish a removal; the reconciler will");
    }
    audit(
        &state,
        Some(user.account.id),
        AuditKind::RegistrationDeleted,
        &ctx,
        serde_json::json!({ "subdomain": subdomain.to_string(), "via": "portal" }),
    )
    .await;
    Redirect::to("/registrations?notice=deleted").into_response()
}

// --- audit and usage --------------------------------------------------------------

fn describe(kind: AuditKind) -> &'static str {
    match kind {
        AuditKind::AccountCreated => "Account created",
        AuditKind::AccountSuspended => "Account suspended by the operator",
        AuditKind::AccountReactivated => "Account reactivated by the operator",
        AuditKind::LicenseKeyCreated => "License key created",
        AuditKind::LicenseKeyRevoked => "License key revoked",
        AuditKind::LicenseKeyNewAddress => "License key used from a new address",
        AuditKind::LicenseKeyRotated => "License key rotated",
        AuditKind::LicenseKeyRenamed => "License key renamed",
        AuditKind::RegistrationCreated => "Registration created",
        AuditKind::RegistrationDeleted => "Registration deleted",
        AuditKind::AuthFailureBurst => "Burst of failed API authentications",
        AuditKind::Login => "Signed in",
        AuditKind::LoginFailed => "Failed sign-in",
        AuditKind::Logout => "Signed out everywhere",
        AuditKind::PasswordChanged => "Password changed",
        AuditKind::PasswordResetRequested => "Password reset requested",
        AuditKind::EmailVerified => "E-mail confirmed",
        AuditKind::AccountDeleted => "Account deleted",
    }
}

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    before: Option<i64>,
}

pub async fn audit_page(State(state): Shared, User(user, ctx): User, Query(q): Query<AuditQuery>) -> Response {
    let events = match state.core.audit_events(user.account.id, q.before, AUDIT_PAGE + 1).await {
        Ok(e) => e,
        Err(e) => return internal(e),
    };
    let more = events.len() > AUDIT_PAGE as usize;
    let events: Vec<_> = events.into_iter().take(AUDIT_PAGE as usize).collect();
    let next = if more { events.last().map(|e| e.id) } else { None };
    let rows = events
        .iter()
        .map(|e| t::AuditRow {
            at: when(e.at),
            kind: e.kind.as_str().to_owned(),
            description: describe(e.kind).to_owned(),
            address: e.client_addr.map(|a| a.to_string()).unwrap_or_default(),
            detail: match &e.detail {
                serde_json::Value::Object(m) if !m.is_empty() => m
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())))
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => String::new(),
            },
        })
        .collect();
    render(StatusCode::OK, &t::Audit { layout: Layout::of(&ctx), events: rows, next, first_page: q.before.is_none() })
}

pub async fn usage_page(State(state): Shared, User(user, ctx): User) -> Response {
    let today = certdns_core::now().date();
    let first = today - time::Duration::days(USAGE_DAYS - 1);
    let (keys, usage) = match tokio::try_join!(
        state.core.list_license_keys(user.account.id),
        state.store.usage_since(user.account.id, first)
    ) {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    let charts = keys
        .iter()
        .filter(|k| k.is_active() || usage.iter().any(|u| u.key == k.id))
        .map(|k| {
            let mut days = vec![0u64; USAGE_DAYS as usize];
            for u in usage.iter().filter(|u| u.key == k.id) {
                let i = (u.day - first).whole_days();
                if let Some(slot) = usize::try_from(i).ok().and_then(|i| days.get_mut(i)) {
                    *slot += u.updates;
                }
            }
            t::UsageChart {
                name: k.name.clone(),
                id: k.id.to_string(),
                total: days.iter().sum(),
                svg: crate::chart::daily_bars(&k.name, first, &days),
            }
        })
        .collect();
    render(StatusCode::OK, &t::Usage { layout: Layout::of(&ctx), charts, since: first.to_string() })
}

// --- operator ---------------------------------------------------------------------

fn require_operator(user: &session::CurrentUser, ctx: &Ctx) -> Option<Response> {
    (!user.is_operator()).then(|| {
        message(
            ctx,
            StatusCode::FORBIDDEN,
            "Operators only",
            "This page is for the operators of this service.",
            Some(("/keys", "Back")),
        )
    })
}

pub async fn admin_accounts(State(state): Shared, User(user, ctx): User, Query(q): Query<NoticeQuery>) -> Response {
    if let Some(r) = require_operator(&user, &ctx) {
        return r;
    }
    let since = certdns_core::now().date() - time::Duration::days(USAGE_DAYS - 1);
    let summaries = match state.store.account_summaries(since).await {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let accounts = summaries
        .into_iter()
        .map(|s| t::AdminRow {
            id: s.account.id.to_string(),
            email: s.account.email.to_string(),
            role: s.account.role.as_str().to_owned(),
            active: s.account.status == AccountStatus::Active,
            verified: s.email_verified_at.is_some(),
            created: when(s.account.created_at),
            keys: s.active_keys,
            registrations: s.registrations,
            updates: s.updates,
            is_self: s.account.id == user.account.id,
        })
        .collect();
    render(
        StatusCode::OK,
        &t::AdminAccounts { layout: Layout::of(&ctx).with_notice(notice_text(q.notice.as_deref())), accounts },
    )
}

async fn set_status(
    state: &AppState,
    user: session::CurrentUser,
    ctx: Ctx,
    id: &str,
    status: AccountStatus,
) -> Response {
    if let Some(r) = require_operator(&user, &ctx) {
        return r;
    }
    let Ok(id) = id.parse::<AccountId>() else { return not_found(Context(ctx)).await };
    if id == user.account.id {
        return message(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not on yourself",
            "Operators cannot suspend their own account.",
            Some(("/admin/accounts", "Back")),
        );
    }
    match state.core.set_account_status(id, status).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => return not_found(Context(ctx)).await,
        Err(e) => return internal(e),
    }
    let kind =
        if status == AccountStatus::Active { AuditKind::AccountReactivated } else { AuditKind::AccountSuspended };
    audit(state, Some(id), kind, &ctx, serde_json::json!({ "by": user.account.email.to_string() })).await;
    let notice = if status == AccountStatus::Active { "unsuspended" } else { "suspended" };
    Redirect::to(&format!("/admin/accounts?notice={notice}")).into_response()
}

pub async fn admin_suspend(State(state): Shared, User(user, ctx): User, Path(id): Path<String>) -> Response {
    set_status(&state, user, ctx, &id, AccountStatus::Suspended).await
}

pub async fn admin_unsuspend(State(state): Shared, User(user, ctx): User, Path(id): Path<String>) -> Response {
    set_status(&state, user, ctx, &id, AccountStatus::Active).await
}
