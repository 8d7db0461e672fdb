//! The account page: e-mail status, password change, account deletion.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use certdns_core::{AuditKind, password};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{NoticeQuery, Page, Shared, when, with_cookie};
use crate::error::{PageError, message};
use crate::limits::wait_words;
use crate::passwords;
use crate::session::{self, Ctx, CurrentUser, User};
use crate::state::AppState;
use crate::templates::{Layout, render};

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/account", get(account_page))
        .route("/account/password", post(change_password))
        .route("/account/delete", post(delete_account))
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    email: String,
    created: String,
    verified: Option<String>,
    password_error: Option<String>,
    delete_error: Option<String>,
    min_len: usize,
}

#[derive(Deserialize)]
struct ChangePassword {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

#[derive(Deserialize)]
struct DeleteAccount {
    #[serde(default)]
    confirm_email: String,
    #[serde(default)]
    password: String,
}

impl AccountPage {
    fn new(user: &CurrentUser, layout: Layout, verified: Option<OffsetDateTime>) -> Self {
        AccountPage {
            layout,
            email: user.account.email.to_string(),
            created: when(user.account.created_at),
            verified: verified.map(when),
            password_error: None,
            delete_error: None,
            min_len: password::MIN_LEN,
        }
    }

    /// The page again after a refused form; a failed read of the e-mail status
    /// shows "not confirmed" rather than hiding the form's error.
    async fn again(state: &AppState, user: &CurrentUser, ctx: &Ctx) -> Self {
        let verified = state.store.email_verified_at(user.account.id).await.ok().flatten();
        Self::new(user, Layout::of(ctx), verified)
    }
}

async fn account_page(State(state): Shared, User(user, ctx): User, Query(q): Query<NoticeQuery>) -> Page {
    let verified = state.store.email_verified_at(user.account.id).await?;
    let page = AccountPage::new(&user, Layout::of(&ctx).with_notice(q.text()), verified);
    Ok(render(StatusCode::OK, &page))
}

/// The account page again, with `error` at the password form.
async fn password_refused(state: &AppState, user: &CurrentUser, ctx: &Ctx, error: String) -> Response {
    let page = AccountPage { password_error: Some(error), ..AccountPage::again(state, user, ctx).await };
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

/// The account page again, with `error` at the deletion form.
async fn deletion_refused(state: &AppState, user: &CurrentUser, ctx: &Ctx, error: &str) -> Response {
    let page = AccountPage { delete_error: Some(error.to_owned()), ..AccountPage::again(state, user, ctx).await };
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

/// The signed-in user's current password, as typed into a form.
enum CurrentPassword {
    Right,
    Wrong,
    /// Too many wrong ones lately; try again after this.
    TooManyTries(std::time::Duration),
}

impl CurrentPassword {
    /// The sentence for the form, unless it was right.
    fn refusal(&self, wrong: &str) -> Option<String> {
        match self {
            CurrentPassword::Right => None,
            CurrentPassword::Wrong => Some(wrong.to_owned()),
            CurrentPassword::TooManyTries(wait) => {
                Some(format!("Too many wrong passwords. Try again in {}.", wait_words(*wait)))
            }
        }
    }
}

/// Checks the current password (for a password change or the account's
/// deletion) within a small budget of wrong tries per minute.
async fn check_current_password(
    state: &AppState,
    user: &CurrentUser,
    given: &str,
) -> Result<CurrentPassword, PageError> {
    if let Err(wait) = state.limits.current_password_allowed(user.account.id) {
        return Ok(CurrentPassword::TooManyTries(wait));
    }
    if state.passwords.verify(given.to_owned(), user.account.password_hash.clone()).await? {
        return Ok(CurrentPassword::Right);
    }
    state.limits.current_password_wrong(user.account.id);
    Ok(CurrentPassword::Wrong)
}

async fn change_password(State(state): Shared, User(user, ctx): User, Form(f): Form<ChangePassword>) -> Page {
    // The cheap checks first: nothing is hashed for a form that cannot succeed.
    if let Err(e) = passwords::check_rules(&f.password, user.account.email.as_str()) {
        return Ok(password_refused(&state, &user, &ctx, e).await);
    }
    if f.password != f.password_confirm {
        return Ok(password_refused(&state, &user, &ctx, "The two new passwords do not match.".into()).await);
    }
    let current = check_current_password(&state, &user, &f.current).await?;
    if let Some(e) = current.refusal("Your current password is not right.") {
        return Ok(password_refused(&state, &user, &ctx, e).await);
    }
    let hash = match state.passwords.hash(f.password.clone()).await? {
        Ok(h) => h,
        Err(e) => return Ok(password_refused(&state, &user, &ctx, e).await),
    };
    let version = state.store.set_password_hash(user.account.id, &hash).await?;
    let via = serde_json::json!({ "via": "portal" });
    state.audit(Some(user.account.id), AuditKind::PasswordChanged, ctx.peer, via).await;
    // Every other session is revoked by the version bump; this one gets a fresh cookie.
    let done = Redirect::to("/account?notice=password_changed").into_response();
    Ok(with_cookie(done, session::login_cookie(&state, user.account.id, version)))
}

async fn delete_account(State(state): Shared, User(user, ctx): User, Form(f): Form<DeleteAccount>) -> Page {
    if !f.confirm_email.trim().eq_ignore_ascii_case(user.account.email.as_str()) {
        return Ok(deletion_refused(&state, &user, &ctx, "Type your e-mail address exactly to confirm.").await);
    }
    let current = check_current_password(&state, &user, &f.password).await?;
    if let Some(e) = current.refusal("Your password is not right.") {
        return Ok(deletion_refused(&state, &user, &ctx, &e).await);
    }
    let removed = state.sync.delete_account(state.store.as_ref(), user.account.id).await?;
    let detail = serde_json::json!({ "account": user.account.id.to_string(), "registrations": removed });
    state.audit(None, AuditKind::AccountDeleted, ctx.peer, detail).await;
    tracing::info!(account = %user.account.id, registrations = removed, "account deleted");
    let gone = message(
        &Ctx { user: None, ..ctx },
        StatusCode::OK,
        "Account deleted",
        "Your account, its keys and its registrations are gone. Remove the _acme-challenge CNAME records from your zones.",
        Some(("/signup", "Create a new account")),
    );
    Ok(with_cookie(gone, session::logout_cookie(&state)))
}
