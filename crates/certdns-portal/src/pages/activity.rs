//! What happened in the account: the audit log and the per-key usage charts.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use certdns_core::AuditKind;
use serde::Deserialize;

use super::{Page, Shared, when, when_ago};
use crate::session::User;
use crate::state::AppState;
use crate::templates::{Layout, render};

/// Events per audit page.
const AUDIT_PAGE: u32 = 25;
/// Days of usage shown.
pub(super) const USAGE_DAYS: i64 = 30;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/audit", get(audit_page)).route("/usage", get(usage_page))
}

/// One audit event as the audit tables show it (the account's own log and the
/// operator's account page).
pub(super) struct AuditRow {
    pub at: String,
    pub kind: String,
    pub description: String,
    pub address: String,
    pub detail: String,
}

/// `events` as table rows, times relative to `now`.
pub(super) fn audit_rows(events: &[certdns_core::AuditEvent], now: time::OffsetDateTime) -> Vec<AuditRow> {
    events
        .iter()
        .map(|e| AuditRow {
            at: when_ago(e.at, now),
            kind: e.kind.as_str().to_owned(),
            description: describe(e.kind).to_owned(),
            address: e.client_addr.map(|a| a.to_string()).unwrap_or_default(),
            detail: detail_text(&e.detail),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    events: Vec<AuditRow>,
    next: Option<i64>,
    first_page: bool,
}

struct UsageChart {
    name: String,
    id: String,
    total: u64,
    svg: String,
}

#[derive(Template)]
#[template(path = "usage.html")]
struct UsagePage {
    layout: Layout,
    charts: Vec<UsageChart>,
    since: String,
}

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default)]
    before: Option<i64>,
}

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
        AuditKind::RegistrationDomainSet => "Registration's domain set",
        AuditKind::CredentialsFetched => "Registration credentials given to a client (storage)",
        AuditKind::LicenseKeyStorageAccess => "License key storage access changed",
        AuditKind::AccessTokenCreated => "Access token created",
        AuditKind::AccessTokenRevoked => "Access token revoked",
        AuditKind::DelegationBroken => "CNAME broken (found by the monitor)",
        AuditKind::DelegationRestored => "CNAME correct again (found by the monitor)",
        AuditKind::RenewalOverdue => "Renewal overdue (no update when one was expected)",
        AuditKind::AuthFailuresAlerted => "Burst of failed authentications on a registration or key (told)",
        AuditKind::LicenseKeyGraceEnding => "Rotated key's old secret still in use as its grace ends (told)",
        AuditKind::AlertSettingsChanged => "Alert e-mail settings changed",
        AuditKind::WebhookCreated => "Webhook endpoint added",
        AuditKind::WebhookDeleted => "Webhook endpoint removed",
        AuditKind::RegistrationsImported => "Registrations imported from acme-dns by the operator",
        AuditKind::BillingCheckoutCompleted => "Checkout completed (Stripe customer linked)",
        AuditKind::BillingPlanChanged => "Plan changed by the subscription",
        AuditKind::BillingPlanOverridden => "Plan set by an operator",
        AuditKind::BillingSubscriptionEnded => "Subscription ended (back to the free plan)",
        AuditKind::BillingPaymentSucceeded => "Payment received",
        AuditKind::BillingPaymentFailed => "Payment failed",
        AuditKind::BillingPaymentWarningSent => "Payment warning e-mailed",
        AuditKind::PersistRecordSet => "dns-persist-01 record set",
    }
}

/// An event's JSON detail as `key: value, …`; times (`…_at`, `…_until`, in
/// Unix seconds) as dates.
fn detail_text(detail: &serde_json::Value) -> String {
    let value = |k: &str, v: &serde_json::Value| {
        let time = (k.ends_with("_at") || k.ends_with("_until"))
            .then(|| v.as_i64().and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok()))
            .flatten();
        match (time, v.as_str()) {
            (Some(t), _) => when(t),
            (None, Some(s)) => s.to_owned(),
            (None, None) => v.to_string(),
        }
    };
    match detail {
        serde_json::Value::Object(m) if !m.is_empty() => {
            m.iter().map(|(k, v)| format!("{}: {}", k.replace('_', " "), value(k, v))).collect::<Vec<_>>().join(", ")
        }
        _ => String::new(),
    }
}

async fn audit_page(State(state): Shared, User(user, ctx): User, Query(q): Query<AuditQuery>) -> Page {
    let events = state.core.audit_events(user.account.id, q.before, AUDIT_PAGE + 1).await?;
    let more = events.len() > AUDIT_PAGE as usize;
    let events: Vec<_> = events.into_iter().take(AUDIT_PAGE as usize).collect();
    let next = if more { events.last().map(|e| e.id) } else { None };
    let now = certdns_core::now();
    let rows = audit_rows(&events, now);
    let page = AuditPage { layout: Layout::of(&ctx), events: rows, next, first_page: q.before.is_none() };
    Ok(render(StatusCode::OK, &page))
}

async fn usage_page(State(state): Shared, User(user, ctx): User) -> Page {
    let today = certdns_core::now().date();
    let first = today - time::Duration::days(USAGE_DAYS - 1);
    let (keys, usage) = tokio::try_join!(
        state.core.list_license_keys(user.account.id),
        state.store.usage_since(user.account.id, first)
    )?;
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
            UsageChart {
                name: k.name.clone(),
                id: k.id.to_string(),
                total: days.iter().sum(),
                svg: crate::chart::daily_bars(&k.name, first, &days),
            }
        })
        .collect();
    let page = UsagePage { layout: Layout::of(&ctx), charts, since: first.to_string() };
    Ok(render(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_read_as_text() {
        assert_eq!(detail_text(&serde_json::json!({ "key": "k1", "n": 3 })), "key: k1, n: 3");
        assert_eq!(detail_text(&serde_json::json!({})), "");
        assert_eq!(
            detail_text(&serde_json::json!({ "key": "k1", "grace_until": 1_800_000_000 })),
            "grace until: 2027-01-15 08:00 UTC, key: k1"
        );
        assert_eq!(detail_text(&serde_json::Value::Null), "");
    }
}
