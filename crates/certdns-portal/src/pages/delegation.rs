//! The delegation monitor's findings as the registration pages show them: a
//! badge per registration and, on its own page, the last check and the recent
//! changes.

use std::collections::HashMap;

use certdns_core::{Registration, RegistrationId};
use certdns_store::{DelegationChange, DelegationStatus};

use super::{when, when_ago};

/// One registration's delegation, in words.
pub(super) struct Badge {
    /// `pending`, `correct`, `missing`, `elsewhere`, `shadowed`, `unknown`.
    pub code: String,
    pub label: &'static str,
    /// `ok`, `bad` or empty (a neutral tag).
    pub tone: &'static str,
    /// "checked 2026-12-01 10:00 UTC (5 min ago)"; empty before the first check.
    pub checked: String,
    pub detail: String,
    pub next_check: String,
    /// The renewal watchdog: "expected by …", "overdue since …", or empty
    /// until two renewals have been seen.
    pub renewal: String,
    pub renewal_overdue: bool,
}

pub(super) struct Change {
    pub when: String,
    pub label: &'static str,
    pub tone: &'static str,
    pub detail: String,
}

fn label(code: &str) -> (&'static str, &'static str) {
    match code {
        "correct" => ("CNAME correct", "ok"),
        "missing" => ("CNAME missing", "bad"),
        "elsewhere" => ("CNAME points elsewhere", "bad"),
        "shadowed" => ("CNAME shadowed by a TXT record", "bad"),
        "unknown" => ("CNAME check failed", ""),
        _ => ("CNAME not checked yet", ""),
    }
}

fn at(secs: i64) -> Option<time::OffsetDateTime> {
    (secs > 0).then(|| time::OffsetDateTime::from_unix_timestamp(secs).ok()).flatten()
}

/// The badge of `reg` given the account's statuses; `None` without a domain.
pub(super) fn badge(reg: &Registration, statuses: &HashMap<RegistrationId, DelegationStatus>) -> Option<Badge> {
    let domain = reg.domain.as_ref()?;
    let now = certdns_core::now();
    // A status about another domain (just changed) counts as not checked yet.
    let status = statuses.get(&reg.id).filter(|s| s.domain == domain.as_str());
    let code = status.map_or("pending", |s| s.status.as_str());
    let (label, tone) = label(code);
    Some(Badge {
        code: code.to_owned(),
        label,
        tone,
        checked: status.and_then(|s| at(s.checked_at)).map(|t| when_ago(t, now)).unwrap_or_default(),
        detail: status.map(|s| s.detail.clone()).unwrap_or_default(),
        next_check: status
            .and_then(|s| at(s.next_check_at))
            .map(|t| if t <= now { "now".to_owned() } else { when(t) })
            .unwrap_or_else(|| "within a minute".to_owned()),
        renewal: status
            .and_then(|s| certdns_monitor::watchdog::expected_by(&s.renewals))
            .and_then(at)
            .map(|t| if t < now { format!("overdue since {}", when(t)) } else { format!("expected by {}", when(t)) })
            .unwrap_or_default(),
        renewal_overdue: status
            .is_some_and(|s| certdns_monitor::watchdog::is_overdue(&s.renewals, now.unix_timestamp())),
    })
}

pub(super) fn changes(history: &[DelegationChange]) -> Vec<Change> {
    let now = certdns_core::now();
    history
        .iter()
        .map(|h| {
            let (label, tone) = label(&h.status);
            Change {
                when: at(h.at).map(|t| when_ago(t, now)).unwrap_or_default(),
                label,
                tone,
                detail: h.detail.clone(),
            }
        })
        .collect()
}
