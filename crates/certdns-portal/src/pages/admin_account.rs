//! The operator's page of one account: who it is, its plan, whether and why it
//! is suspended (with the forms to suspend, with a reason, or reactivate), its
//! license keys, its registrations with their delegation, and its audit log.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use certdns_core::{AccountId, AccountStatus};

use super::activity::{AuditRow, audit_rows};
use super::admin::{REASON_MAX, require_operator};
use super::{NoticeQuery, Page, Shared, when, when_opt};
use crate::error::PageError;
use crate::session::User;
use crate::templates::{Layout, render};

/// Audit events shown (the newest).
const AUDIT_SHOWN: u32 = 50;

struct KeyRow {
    id: String,
    name: String,
    created: String,
    last_used: String,
    revoked: bool,
    storage_access: bool,
}

struct RegistrationRow {
    subdomain: String,
    domain: String,
    key: String,
    created: String,
    last_update: String,
    delegation: String,
    delegation_tone: &'static str,
}

#[derive(Template)]
#[template(path = "admin_account.html")]
struct AccountPage {
    layout: Layout,
    id: String,
    email: String,
    role: String,
    created: String,
    verified: bool,
    suspended: bool,
    suspension_reason: String,
    is_self: bool,
    plan: Option<String>,
    reason_max: usize,
    keys: Vec<KeyRow>,
    registrations: Vec<RegistrationRow>,
    events: Vec<AuditRow>,
}

pub(super) async fn account_page(
    State(state): Shared,
    User(user, ctx): User,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Page {
    require_operator(&user, &ctx)?;
    let id = id.parse::<AccountId>().map_err(|_| PageError::not_found(&ctx))?;
    let account = state.core.account(id).await?.ok_or_else(|| PageError::not_found(&ctx))?;
    let (verified, reason, keys, registrations, statuses, events) = tokio::try_join!(
        state.store.email_verified_at(id),
        state.store.suspension_reason(id),
        state.core.list_license_keys(id),
        state.core.list_registrations(id),
        state.store.delegation_statuses(id),
        state.core.audit_events(id, None, AUDIT_SHOWN),
    )?;
    let plan = super::billing::plan_in_force(&state, id).await?;
    let statuses: HashMap<_, _> = statuses.into_iter().map(|s| (s.registration_id, s)).collect();
    let now = certdns_core::now();
    let keys = keys
        .into_iter()
        .map(|k| KeyRow {
            id: k.id.to_string(),
            name: k.name.clone(),
            created: when(k.created_at),
            last_used: when_opt(k.last_used_at, "never"),
            revoked: !k.is_active(),
            storage_access: k.storage_access,
        })
        .collect();
    let registrations = registrations
        .iter()
        .map(|r| {
            let badge = super::delegation::badge(r, &statuses);
            RegistrationRow {
                subdomain: r.subdomain.to_string(),
                domain: r.domain.as_ref().map(|d| d.as_str().to_owned()).unwrap_or_default(),
                key: r.license_key_id.as_ref().map(ToString::to_string).unwrap_or_default(),
                created: when(r.created_at),
                last_update: when_opt(r.last_update_at, "never"),
                delegation: badge.as_ref().map(|b| b.label.to_owned()).unwrap_or_else(|| "no domain".to_owned()),
                delegation_tone: badge.map_or("", |b| b.tone),
            }
        })
        .collect();
    let page = AccountPage {
        layout: Layout::of(&ctx).with_notice(q.text()),
        id: id.to_string(),
        email: account.email.to_string(),
        role: account.role.as_str().to_owned(),
        created: when(account.created_at),
        verified: verified.is_some(),
        suspended: account.status != AccountStatus::Active,
        suspension_reason: reason.unwrap_or_default(),
        is_self: id == user.account.id,
        plan,
        reason_max: REASON_MAX,
        keys,
        registrations,
        events: audit_rows(&events, now),
    };
    Ok(render(StatusCode::OK, &page))
}
