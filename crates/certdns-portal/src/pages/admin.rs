//! The operator's account list, with suspend and reactivate.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use certdns_core::{AccountId, AccountStatus, AuditKind};

use super::activity::USAGE_DAYS;
use super::{NoticeQuery, Page, Shared, when};
use crate::error::{PageError, message};
use crate::session::{Ctx, CurrentUser, User};
use crate::state::AppState;
use crate::templates::{Layout, render};

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/accounts", get(admin_accounts))
        .route("/admin/accounts/{id}/suspend", post(suspend))
        .route("/admin/accounts/{id}/unsuspend", post(unsuspend))
}

struct AdminRow {
    id: String,
    email: String,
    role: String,
    active: bool,
    verified: bool,
    created: String,
    keys: u64,
    registrations: u64,
    updates: u64,
    is_self: bool,
}

#[derive(Template)]
#[template(path = "admin_accounts.html")]
struct AdminAccountsPage {
    layout: Layout,
    accounts: Vec<AdminRow>,
}

pub(super) fn require_operator(user: &CurrentUser, ctx: &Ctx) -> Result<(), PageError> {
    if user.is_operator() {
        return Ok(());
    }
    let text = "This page is for the operators of this service.";
    Err(PageError::page(message(ctx, StatusCode::FORBIDDEN, "Operators only", text, Some(("/keys", "Back")))))
}

async fn admin_accounts(State(state): Shared, User(user, ctx): User, Query(q): Query<NoticeQuery>) -> Page {
    require_operator(&user, &ctx)?;
    let since = certdns_core::now().date() - time::Duration::days(USAGE_DAYS - 1);
    let accounts = state
        .store
        .account_summaries(since)
        .await?
        .into_iter()
        .map(|s| AdminRow {
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
    let page = AdminAccountsPage { layout: Layout::of(&ctx).with_notice(q.text()), accounts };
    Ok(render(StatusCode::OK, &page))
}

async fn suspend(State(state): Shared, User(user, ctx): User, Path(id): Path<String>) -> Page {
    set_status(&state, &user, &ctx, &id, AccountStatus::Suspended).await
}

async fn unsuspend(State(state): Shared, User(user, ctx): User, Path(id): Path<String>) -> Page {
    set_status(&state, &user, &ctx, &id, AccountStatus::Active).await
}

async fn set_status(state: &AppState, user: &CurrentUser, ctx: &Ctx, id: &str, status: AccountStatus) -> Page {
    require_operator(user, ctx)?;
    let id = id.parse::<AccountId>().map_err(|_| PageError::not_found(ctx))?;
    if id == user.account.id {
        let text = "Operators cannot suspend their own account.";
        let back = Some(("/admin/accounts", "Back"));
        return Ok(message(ctx, StatusCode::UNPROCESSABLE_ENTITY, "Not on yourself", text, back));
    }
    state.core.set_account_status(id, status).await.map_err(PageError::or_not_found(ctx))?;
    if status != AccountStatus::Active {
        // Ends every session of the account at once, an operator's included.
        state.store.bump_session_version(id).await?;
    }
    let (kind, notice) = match status {
        AccountStatus::Active => (AuditKind::AccountReactivated, "unsuspended"),
        _ => (AuditKind::AccountSuspended, "suspended"),
    };
    state.audit(Some(id), kind, ctx.peer, serde_json::json!({ "by": user.account.email.to_string() })).await;
    Ok(Redirect::to(&format!("/admin/accounts?notice={notice}")).into_response())
}
