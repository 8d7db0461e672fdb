//! The delegation monitor: every registration with a domain has its CNAME
//! (`_acme-challenge.<domain>` → `<subdomain>.<zone>`) re-checked in the
//! background through the configured resolver — at a bounded rate, spread over
//! time, sooner (with back-off) while it is broken, and again after each update
//! — and its owner is told once when a delegation that worked breaks, and once
//! when it is restored. The portal shows the status and the recent changes.
//!
//! Several portal instances may run it: a due check is claimed in the store
//! (compare-and-set on its time), and a notice goes out only for the instance
//! that moves the "last told" state (compare-and-set again), so each change is
//! told exactly once.

pub mod policy;
pub mod watchdog;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use certdns_core::{AccountId, RegistrationId};
use certdns_core::{AcmeAccountUrl, Domain, RegistrationKind};
use certdns_delegation::{CnameStatus, check_challenge_name};
use certdns_store::{CheckRecord, DelegationStore, DueCheck};
use tokio_util::sync::CancellationToken;

/// How long a claimed check may take before another instance may take it over.
const LEASE_SECS: i64 = 120;

#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Asked about every CNAME.
    pub resolver: SocketAddr,
    /// The zone; a registration's target is `<subdomain>.<zone>`.
    pub zone: String,
    /// Seconds between checks of a correct delegation.
    pub interval_secs: u64,
    /// At most this many checks start per second.
    pub checks_per_second: u32,
}

/// What the owner is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertKind {
    /// A delegation that was correct no longer is.
    Broken { status: String, detail: String },
    /// A broken delegation is correct again.
    Restored,
    /// No renewal came by `expected_by` (Unix seconds), judged from the usual
    /// interval between the earlier ones; the last came at `last_renewal`.
    RenewalOverdue { last_renewal: i64, expected_by: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub account: AccountId,
    pub registration: RegistrationId,
    pub domain: String,
    /// `_acme-challenge.<domain>`.
    pub cname_name: String,
    /// `<subdomain>.<zone>`: what it must point at.
    pub target: String,
    pub kind: AlertKind,
}

/// Delivers alerts (the portal's mailer, audit log, …).
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn alert(&self, alert: &Alert);
}

/// The name the CA asks for this registration (`certdns_core::challenge_name`,
/// the rule `Registration::challenge_name` keeps): `_acme-challenge.<domain>`,
/// with an ACME account dns-account-01's `_<label>._acme-challenge.<domain>`,
/// for a persist registration `_validation-persist.<domain>`.
fn challenge_name(due: &DueCheck) -> String {
    let Ok(domain) = Domain::parse(&due.domain) else {
        let label = match due.kind {
            RegistrationKind::Persist => certdns_core::PERSIST_LABEL,
            RegistrationKind::Challenge => certdns_core::domain::CHALLENGE_LABEL,
        };
        return format!("{label}.{}", due.domain.trim_start_matches("*."));
    };
    let url = due.acme_account_url.as_deref().and_then(|u| AcmeAccountUrl::parse(u).ok());
    certdns_core::challenge_name(due.kind, &domain, url.as_ref())
}

/// What one round did (for tests and the log).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub checked: usize,
    pub changed: usize,
    pub alerts: usize,
}

pub struct Monitor {
    store: Arc<dyn DelegationStore>,
    config: MonitorConfig,
    notifier: Arc<dyn Notifier>,
}

impl Monitor {
    pub fn new(store: Arc<dyn DelegationStore>, config: MonitorConfig, notifier: Arc<dyn Notifier>) -> Self {
        Self { store, config, notifier }
    }

    /// Runs until `cancel`: once a second, enrols new domain-bound registrations
    /// and checks up to `checks_per_second` due ones.
    pub async fn run(self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.round(certdns_core::now().unix_timestamp()).await {
                tracing::warn!(error = %e, "delegation monitor round failed; retrying");
            }
        }
    }

    /// One round at `now` (Unix seconds).
    pub async fn round(&self, now: i64) -> Result<Round, certdns_store::StoreError> {
        self.store.enroll_delegations().await?;
        let due = self.store.claim_due_delegations(now, LEASE_SECS, self.config.checks_per_second.max(1)).await?;
        let results = futures_util::future::join_all(due.into_iter().map(|d| self.check_one(d, now))).await;
        let mut round = Round::default();
        for result in results {
            let (changed, alerted) = result?;
            round.checked += 1;
            round.changed += usize::from(changed);
            round.alerts += usize::from(alerted);
        }
        Ok(round)
    }

    /// Checks one delegation, records it, and alerts on a change worth telling.
    async fn check_one(&self, due: DueCheck, now: i64) -> Result<(bool, bool), certdns_store::StoreError> {
        let target = format!("{}.{}", due.subdomain, self.config.zone.trim_end_matches('.'));
        let cname_name = challenge_name(&due);
        let status = check_challenge_name(self.config.resolver, &cname_name, &target).await;
        let code = status.code();
        let detail = match &status {
            CnameStatus::PointsElsewhere { target } => format!("points at {target}"),
            CnameStatus::ShadowedByTxt { values } => format!("TXT {}", values.join(", ")),
            CnameStatus::Unknown { reason } => reason.clone(),
            CnameStatus::Correct | CnameStatus::Missing => String::new(),
        };
        let same_domain = due.status.domain == due.domain;
        let failures = match (code, same_domain) {
            ("correct", _) => 0,
            (_, true) => due.status.failures.saturating_add(1),
            (_, false) => 1,
        };
        let jitter = rand::random::<f64>() * 2.0 - 1.0;
        let delay = policy::next_delay(code, failures, self.config.interval_secs, jitter);
        let record = CheckRecord {
            registration_id: due.status.registration_id,
            domain: due.domain.clone(),
            status: code.to_owned(),
            detail: detail.clone(),
            checked_at: now,
            next_check_at: now + i64::try_from(delay).unwrap_or(i64::MAX / 2),
            failures,
            seen_update_at: due.last_update_at,
            // A persist record changes when its owner edits it, never per renewal.
            renewals: match (due.last_update_at, due.kind) {
                (Some(t), RegistrationKind::Challenge) => {
                    watchdog::note_update(&due.status.renewals, t.unix_timestamp())
                }
                _ => due.status.renewals.clone(),
            },
        };
        let renewed = record.renewals.last() != due.status.renewals.last();
        let changed = self.store.record_delegation_check(&record).await?;
        metrics::counter!("certdns_delegation_checks_total", "status" => code).increment(1);
        if !same_domain {
            // A new domain starts afresh: nothing was told about it yet.
            self.store.mark_delegation_notified(record.registration_id, "none").await?;
        }
        let told = if same_domain { due.status.notified.as_str() } else { "none" };
        let alert = match (code, told) {
            ("correct", "broken") => Some(AlertKind::Restored),
            // Working for the first time: the portal's status says so; no mail.
            ("correct", "none") => {
                self.store.mark_delegation_notified(record.registration_id, "correct").await?;
                None
            }
            (c, "correct") if policy::is_broken(c) => Some(AlertKind::Broken { status: c.to_owned(), detail }),
            _ => None,
        };
        let overdue = self.watch_renewals(&due, &record, renewed, now, &target).await?;
        let Some(kind) = alert else { return Ok((changed, overdue)) };
        let state = if kind == AlertKind::Restored { "correct" } else { "broken" };
        // Exactly one instance wins the right to tell.
        if !self.store.mark_delegation_notified(record.registration_id, state).await? {
            return Ok((changed, false));
        }
        let alert = Alert {
            account: due.status.account_id,
            registration: record.registration_id,
            cname_name,
            domain: due.domain,
            target,
            kind,
        };
        self.notifier.alert(&alert).await;
        Ok((changed, true))
    }

    /// The renewal watchdog's part of a check: a renewal that came resets the
    /// "overdue" notice; one that is late is told once. Returns whether it told.
    async fn watch_renewals(
        &self,
        due: &DueCheck,
        record: &CheckRecord,
        renewed: bool,
        now: i64,
        target: &str,
    ) -> Result<bool, certdns_store::StoreError> {
        if renewed && due.status.overdue_notified {
            self.store.mark_overdue_notified(record.registration_id, false).await?;
        }
        let Some(expected_by) = watchdog::expected_by(&record.renewals).filter(|t| now > *t) else { return Ok(false) };
        if (due.status.overdue_notified && !renewed)
            || !self.store.mark_overdue_notified(record.registration_id, true).await?
        {
            return Ok(false);
        }
        let alert = Alert {
            account: due.status.account_id,
            registration: record.registration_id,
            domain: due.domain.clone(),
            cname_name: challenge_name(due),
            target: target.to_owned(),
            kind: AlertKind::RenewalOverdue {
                last_renewal: record.renewals.last().copied().unwrap_or_default(),
                expected_by,
            },
        };
        self.notifier.alert(&alert).await;
        Ok(true)
    }
}
