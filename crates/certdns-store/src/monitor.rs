//! What the delegation monitor keeps: each domain-bound registration's CNAME
//! status, when to check it next, the recent changes, and which state its owner
//! was last told about. Times are Unix seconds.

use async_trait::async_trait;
use certdns_core::{AccountId, RegistrationId, Subdomain};
use time::OffsetDateTime;

use crate::Result;

/// A registration's delegation as last checked. `status` is `pending` (not
/// checked yet) or a `certdns_delegation::CnameStatus` code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationStatus {
    pub registration_id: RegistrationId,
    pub account_id: AccountId,
    /// The domain the status is about.
    pub domain: String,
    pub status: String,
    pub detail: String,
    pub checked_at: i64,
    /// When `status` last changed.
    pub changed_at: i64,
    pub next_check_at: i64,
    /// Checks in a row that did not find the CNAME correct.
    pub failures: u32,
    /// The state the owner was last told about (`none` before any notice).
    pub notified: String,
    /// When its renewals came (Unix seconds, oldest first; the last few).
    pub renewals: Vec<i64>,
    /// The owner was told the next renewal is overdue.
    pub overdue_notified: bool,
}

/// A registration whose check is due, claimed by this monitor.
#[derive(Debug, Clone)]
pub struct DueCheck {
    pub status: DelegationStatus,
    pub subdomain: Subdomain,
    /// The registration's domain now (may differ from `status.domain`).
    pub domain: String,
    /// Its ACME account URL (dns-account-01: the CA asks the label's name).
    pub acme_account_url: Option<String>,
    /// A persist registration's CNAME sits at `_validation-persist.<domain>`,
    /// and its updates are record changes, not renewals.
    pub kind: certdns_core::RegistrationKind,
    pub last_update_at: Option<OffsetDateTime>,
}

/// The outcome of one check, as recorded.
#[derive(Debug, Clone)]
pub struct CheckRecord {
    pub registration_id: RegistrationId,
    pub domain: String,
    pub status: String,
    pub detail: String,
    pub checked_at: i64,
    pub next_check_at: i64,
    pub failures: u32,
    /// The registration's `last_update_at` the check saw.
    pub seen_update_at: Option<OffsetDateTime>,
    /// The renewals known after this check (oldest first).
    pub renewals: Vec<i64>,
}

/// One change of a registration's delegation status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationChange {
    pub at: i64,
    pub status: String,
    pub detail: String,
}

/// Changes kept per registration.
pub const HISTORY_KEPT: i64 = 20;

#[async_trait]
pub trait DelegationStore: Send + Sync {
    /// Starts watching every domain-bound registration not watched yet (its
    /// first check is due at once). Returns how many were added.
    async fn enroll_delegations(&self) -> Result<u64>;
    /// Up to `limit` checks due at `now` — the time came, the domain changed, or
    /// the registration was updated since the last check — each claimed for
    /// `lease` seconds (another monitor instance skips it meanwhile).
    async fn claim_due_delegations(&self, now: i64, lease: i64, limit: u32) -> Result<Vec<DueCheck>>;
    /// Records a check; a changed status also goes into the history (the
    /// newest [`HISTORY_KEPT`] kept). Returns whether the status changed.
    async fn record_delegation_check(&self, check: &CheckRecord) -> Result<bool>;
    /// Notes that the owner was told about `state`; `false` if they already
    /// were (so exactly one notice goes out per change, whatever the instances).
    async fn mark_delegation_notified(&self, registration: RegistrationId, state: &str) -> Result<bool>;
    /// Sets whether the owner was told the next renewal is overdue; `false` if
    /// it already was so (one notice per overdue renewal).
    async fn mark_overdue_notified(&self, registration: RegistrationId, told: bool) -> Result<bool>;
    async fn delegation_statuses(&self, account: AccountId) -> Result<Vec<DelegationStatus>>;
    /// The registration's recent changes, newest first.
    async fn delegation_history(
        &self,
        account: AccountId,
        registration: RegistrationId,
    ) -> Result<Vec<DelegationChange>>;
}
