//! The operator's pages: the account list with search (by e-mail, domain,
//! registration subdomain, key id or account id), each account's own page
//! ([`admin_account`]: keys, registrations, audit log, plan, suspension), and
//! suspending with a reason the customer is shown, or reactivating.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use certdns_core::{AccountId, AccountStatus, AuditKind};
use serde::Deserialize;

use super::activity::USAGE_DAYS;
use super::{NoticeQuery, Page, Shared, when};
use crate::error::{PageError, message};
use crate::session::{Ctx, CurrentUser, User};
use crate::state::AppState;
use crate::templates::{Layout, render};

/// Accounts a search shows at most.
const SEARCH_LIMIT: u32 = 50;
/// The longest suspension reason kept.
pub(super) const REASON_MAX: usize = 500;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/accounts", get(admin_accounts))
        .route("/admin/accounts/{id}", get(super::admin_account::account_page))
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
    /// What matched the search (`domain: www.example.com`), when searching.
    matched: String,
}

#[derive(Template)]
#[template(path = "admin_accounts.html")]
struct AdminAccountsPage {
    layout: Layout,
    accounts: Vec<AdminRow>,
    query: String,
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    notice: Option<String>,
}

pub(super) fn require_operator(user: &CurrentUser, ctx: &Ctx) -> Result<(), PageError> {
    if user.is_operator() {
        return Ok(());
    }
    let text = "This page is for the operators of this service.";
    Err(PageError::page(message(ctx, StatusCode::FORBIDDEN, "Operators only", text, Some(("/keys", "Back")))))
}

async fn admin_accounts(State(state): Shared, User(user, ctx): User, Query(q): Query<ListQuery>) -> Page {
    require_operator(&user, &ctx)?;
    let since = certdns_core::now().date() - time::Duration::days(USAGE_DAYS - 1);
    let query = q.q.trim().chars().take(200).collect::<String>();
    let matches = if query.is_empty() { None } else { Some(state.store.search_accounts(&query, SEARCH_LIMIT).await?) };
    let summaries = state.store.account_summaries(since).await?;
    let row = |s: &certdns_store::AccountSummary, matched: String| AdminRow {
        id: s.account.id.to_string(),
        email: s.account.email.to_string(),
        role: s.account.role.as_str().to_owned(),
        active: s.account.status == AccountStatus::Active,
        verified: s.email_verified_at.is_some(),
        created: when(s.account.created_at),
        keys: s.active_keys,
        registrations: s.registrations,
        updates: s.updates,
        matched,
    };
    let accounts = match &matches {
        None => summaries.iter().map(|s| row(s, String::new())).collect(),
        // In the search's order: exact ids first.
        Some(found) => found
            .iter()
            .filter_map(|m| {
                let s = summaries.iter().find(|s| s.account.id == m.account_id)?;
                Some(row(s, format!("{}: {}", m.matched_by.as_str(), m.value)))
            })
            .collect(),
    };
    let notice = NoticeQuery { notice: q.notice }.text();
    let page = AdminAccountsPage { layout: Layout::of(&ctx).with_notice(notice), accounts, query };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Deserialize)]
struct SuspendForm {
    #[serde(default)]
    reason: String,
}

async fn suspend(
    State(state): Shared,
    User(user, ctx): User,
    Path(id): Path<String>,
    Form(f): Form<SuspendForm>,
) -> Page {
    require_operator(&user, &ctx)?;
    let id = target(&user, &ctx, &id)?;
    let reason = f.reason.trim();
    if reason.is_empty() || reason.chars().count() > REASON_MAX {
        let text = format!(
            "Say why the account is suspended ({REASON_MAX} characters at most): its owner sees it when signing in."
        );
        let back = format!("/admin/accounts/{id}#suspend");
        return Ok(message(&ctx, StatusCode::UNPROCESSABLE_ENTITY, "A reason is needed", &text, Some((&back, "Back"))));
    }
    state.store.suspend_account(id, reason).await.map_err(PageError::or_not_found(&ctx))?;
    // Ends every session of the account at once.
    state.store.bump_session_version(id).await?;
    let detail = serde_json::json!({ "by": user.account.email.to_string(), "reason": reason });
    state.audit(Some(id), AuditKind::AccountSuspended, ctx.peer, detail).await;
    Ok(Redirect::to(&format!("/admin/accounts/{id}?notice=suspended")).into_response())
}

async fn unsuspend(State(state): Shared, User(user, ctx): User, Path(id): Path<String>) -> Page {
    require_operator(&user, &ctx)?;
    let id = target(&user, &ctx, &id)?;
    state.core.set_account_status(id, AccountStatus::Active).await.map_err(PageError::or_not_found(&ctx))?;
    let detail = serde_json::json!({ "by": user.account.email.to_string() });
    state.audit(Some(id), AuditKind::AccountReactivated, ctx.peer, detail).await;
    Ok(Redirect::to(&format!("/admin/accounts/{id}?notice=unsuspended")).into_response())
}

/// The account an operator acts on: never their own.
fn target(user: &CurrentUser, ctx: &Ctx, id: &str) -> Result<AccountId, PageError> {
    let id = id.parse::<AccountId>().map_err(|_| PageError::not_found(ctx))?;
    if id == user.account.id {
        let text = "Operators cannot suspend their own account.";
        let back = Some(("/admin/accounts", "Back"));
        return Err(PageError::page(message(ctx, StatusCode::UNPROCESSABLE_ENTITY, "Not on yourself", text, back)));
    }
    Ok(id)
}
