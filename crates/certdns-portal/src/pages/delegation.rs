//! The delegation monitor's findings as the registration pages show them: a
//! badge per registration and, on its own page, the last check and the recent
//! changes.

use std::collections::HashMap;

use certdns_core::{Registration, RegistrationId};
use certdns_store::{DelegationChange, DelegationStatus};

use crate::dates::{at_unix as at, when, when_ago};

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
    /// Something to look at beside the status ([`flag`]); empty when nothing.
    pub flag: String,
}

/// A registration unused this long is worth a look (deleting it if nothing
/// renews through it shrinks what a leaked credential can do).
pub(super) const UNUSED_DAYS: i64 = 120;

/// The renewal watchdog's two extra flags. A CNAME that broke but whose
/// registration is still updated means a client renews a name that no longer
/// delegates here (the CA asks elsewhere; those renewals fail). A registration
/// with no update for [`UNUSED_DAYS`] is probably forgotten.
pub(super) fn flag(reg: &Registration, status: Option<&DelegationStatus>, now: time::OffsetDateTime) -> String {
    // A dns-persist-01 record is set once and never updated: neither applies.
    if reg.kind == certdns_core::RegistrationKind::Persist {
        return String::new();
    }
    let broken = status.filter(|s| matches!(s.status.as_str(), "missing" | "elsewhere" | "shadowed"));
    if let (Some(s), Some(last)) = (broken, reg.last_update_at)
        && last.unix_timestamp() > s.changed_at
    {
        return "still updated after its CNAME broke: a client renews a name that no longer delegates here".into();
    }
    let last_use = reg.last_update_at.unwrap_or(reg.created_at);
    let idle = (now - last_use).whole_days();
    if idle >= UNUSED_DAYS {
        return format!("unused for {idle} days: delete it if nothing renews through it any more");
    }
    String::new()
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
        flag: flag(reg, status, now),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(created_days_ago: i64, updated_days_ago: Option<i64>, now: time::OffsetDateTime) -> Registration {
        Registration {
            id: RegistrationId::generate(),
            account_id: certdns_core::AccountId::generate(),
            license_key_id: None,
            username: certdns_core::Username::generate(),
            password_hash: certdns_core::SecretHash::of("x"),
            subdomain: certdns_core::Subdomain::generate(),
            allow_from: certdns_core::AllowFrom::default(),
            subject: None,
            domain: None,
            acme_account_url: None,
            password_sealed: None,
            kind: certdns_core::RegistrationKind::Challenge,
            created_at: now - time::Duration::days(created_days_ago),
            last_update_at: updated_days_ago.map(|d| now - time::Duration::days(d)),
        }
    }

    fn status(code: &str, changed_days_ago: i64, now: time::OffsetDateTime) -> DelegationStatus {
        DelegationStatus {
            registration_id: RegistrationId::generate(),
            account_id: certdns_core::AccountId::generate(),
            domain: "www.example.com".into(),
            status: code.into(),
            detail: String::new(),
            checked_at: 0,
            changed_at: (now - time::Duration::days(changed_days_ago)).unix_timestamp(),
            next_check_at: 0,
            failures: 0,
            notified: "none".into(),
            renewals: Vec::new(),
            overdue_notified: false,
        }
    }

    #[test]
    fn flags_updates_after_a_break_and_long_disuse() {
        let now = certdns_core::now();
        let fresh = reg(10, Some(1), now);
        assert_eq!(flag(&fresh, Some(&status("correct", 5, now)), now), "");
        assert!(flag(&fresh, Some(&status("missing", 5, now)), now).starts_with("still updated"), "updated after");
        assert_eq!(flag(&fresh, Some(&status("missing", 0, now)), now), "", "broke after the last update");
        assert_eq!(flag(&fresh, Some(&status("unknown", 5, now)), now), "", "a failing resolver proves nothing");
        assert!(flag(&reg(400, Some(200), now), None, now).starts_with("unused for 200 days"));
        assert!(flag(&reg(130, None, now), None, now).starts_with("unused for 130 days"), "never used");
        assert_eq!(flag(&reg(30, None, now), None, now), "", "new ones get time");
        let persist = Registration { kind: certdns_core::RegistrationKind::Persist, ..reg(400, None, now) };
        assert_eq!(flag(&persist, None, now), "", "a persist record is never updated");
    }
}
