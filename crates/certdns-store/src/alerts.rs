//! What alerting keeps beyond the delegation monitor: which events each account
//! has mailed, its webhook endpoints and their delivery queue (which is also the
//! delivery log the customer sees), bursts of failed authentications, and the
//! use of rotated keys' previous secrets. Times are Unix seconds.
//!
//! Every "tell once" step is a single compare-and-set statement, so several
//! portal instances never send the same notice twice.

use async_trait::async_trait;
use certdns_core::{AccountId, KeyId};
use uuid::Uuid;

use crate::Result;

/// A customer's webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub account_id: AccountId,
    pub url: String,
    /// The HMAC key deliveries are signed with.
    pub secret: String,
    /// The event types sent to it.
    pub events: Vec<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its first or next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed; no more will be made.
    Failed,
}

impl DeliveryState {
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// One event for one endpoint, queued.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub account_id: AccountId,
    pub event_id: String,
    pub event_type: String,
    /// The exact body that is signed and sent.
    pub payload: String,
    pub created_at: i64,
}

/// A delivery with its attempts so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub account_id: AccountId,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    pub created_at: i64,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_attempt_at: Option<i64>,
    /// The HTTP status of the last answer (`None`: no answer, see `last_error`).
    pub last_status: Option<u16>,
    pub last_error: String,
}

/// A delivery whose attempt is due, claimed by this instance, with where to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub delivery: Delivery,
    pub url: String,
    pub secret: String,
}

/// What one attempt found.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub id: Uuid,
    pub at: i64,
    /// `Pending` again when another attempt follows at `next_attempt_at`.
    pub state: DeliveryState,
    pub status: Option<u16>,
    pub error: String,
    pub next_attempt_at: i64,
}

/// Failed authentications naming a known registration or key since the last flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailureCount {
    /// `registration:<username>` or `key:<key id>`.
    pub subject: String,
    pub account: AccountId,
    pub failures: u32,
}

/// A burst of failed authentications, claimed for its one notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailureBurst {
    pub subject: String,
    pub account: AccountId,
    pub first_at: i64,
    pub last_at: i64,
    pub failures: u64,
}

/// A rotated key's previous secret was accepted at `at`; its grace ends at `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousSecretUse {
    pub key: KeyId,
    pub at: i64,
    pub until: i64,
}

/// A key whose previous secret is still in use with its grace ending soon,
/// claimed for its one warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraceEnding {
    pub key: KeyId,
    pub account: AccountId,
    pub name: String,
    pub last_used_at: i64,
    pub until: i64,
}

#[async_trait]
pub trait AlertStore: Send + Sync {
    // --- settings ---------------------------------------------------------------

    /// The account's e-mail choices that differ from the default (mailed).
    async fn email_settings(&self, account: AccountId) -> Result<Vec<(String, bool)>>;
    async fn set_email_setting(&self, account: AccountId, event_type: &str, email: bool) -> Result<()>;

    // --- webhooks ---------------------------------------------------------------

    async fn create_webhook(&self, endpoint: &WebhookEndpoint) -> Result<()>;
    /// The account's endpoints, oldest first.
    async fn webhooks(&self, account: AccountId) -> Result<Vec<WebhookEndpoint>>;
    /// [`StoreError::NotFound`](crate::StoreError::NotFound) unless `account` has it.
    async fn delete_webhook(&self, account: AccountId, id: Uuid) -> Result<()>;
    async fn enqueue_deliveries(&self, deliveries: &[NewDelivery]) -> Result<()>;
    /// Up to `limit` pending deliveries due at `now`, each claimed for `lease`
    /// seconds (another instance skips it meanwhile).
    async fn claim_due_deliveries(&self, now: i64, lease: i64, limit: u32) -> Result<Vec<DueDelivery>>;
    async fn record_attempt(&self, outcome: &AttemptOutcome) -> Result<()>;
    /// The account's newest deliveries first.
    async fn deliveries(&self, account: AccountId, limit: u32) -> Result<Vec<Delivery>>;

    // --- failed authentications --------------------------------------------------

    /// Adds failures at `now`. A subject quiet for more than `quiet_secs` starts
    /// a new burst (its count and "told" flag reset).
    async fn add_auth_failures(&self, counts: &[AuthFailureCount], now: i64, quiet_secs: i64) -> Result<()>;
    /// Bursts of at least `threshold` failures not told about yet, marked told.
    async fn claim_auth_failure_bursts(&self, threshold: u64) -> Result<Vec<AuthFailureBurst>>;

    // --- key rotations -----------------------------------------------------------

    async fn note_previous_secret_use(&self, uses: &[PreviousSecretUse]) -> Result<()>;
    /// Active keys whose previous secret was used and whose grace ends within
    /// `within` seconds of `now` (not yet ended), not warned about that grace
    /// end yet, marked warned.
    async fn claim_grace_ending(&self, now: i64, within: i64) -> Result<Vec<GraceEnding>>;

    // --- upkeep ----------------------------------------------------------------

    /// Forgets finished deliveries and bursts older than `before`.
    async fn prune_alerts(&self, before: i64) -> Result<u64>;
}
