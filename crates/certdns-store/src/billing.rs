//! Each account's plan and Stripe state, and the webhook events already seen.
//!
//! Stripe delivers events at least once and in any order, so every change is
//! applied together with its event id (a replay changes nothing) and only when
//! it is newer than what the row already holds (Stripe's own timestamps).

use async_trait::async_trait;
use certdns_core::{AccountId, NewAuditEvent, Subdomain};
use time::OffsetDateTime;

use crate::Result;

/// An account's billing row. An account without one is on the free plan and
/// has never been billed ([`BillingRecord::default`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillingRecord {
    /// The plan the subscription pays for (`None`: the free plan).
    pub plan: Option<String>,
    /// An operator's choice, which wins over `plan` while set.
    pub plan_override: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub subscription_id: Option<String>,
    /// Stripe's status word (`active`, `past_due`, `canceled`, …).
    pub subscription_status: Option<String>,
    /// When the unpaid invoice failed; cleared by a paid one.
    pub payment_failed_at: Option<OffsetDateTime>,
    /// Warnings e-mailed since that failure.
    pub warnings_sent: u32,
    pub last_warning_at: Option<OffsetDateTime>,
}

impl BillingRecord {
    /// The plan in force: the operator's override, else the paid one.
    pub fn effective_plan(&self) -> Option<&str> {
        self.plan_override.as_deref().or(self.plan.as_deref())
    }
}

/// How often a registration was updated on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameUpdates {
    pub subdomain: Subdomain,
    /// The domain it is bound to, if any.
    pub domain: Option<String>,
    pub updates: u64,
}

/// What one Stripe event changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillingChange {
    /// A finished Checkout: the customer (and subscription) are this account's.
    CheckoutCompleted { customer_id: String, subscription_id: Option<String> },
    /// A subscription was created or changed; `plan` is `None` when its price is
    /// no configured plan. Applied only if `at` is not older than the last one.
    Subscription { subscription_id: String, status: String, plan: Option<String>, at: OffsetDateTime },
    /// The subscription ended: back to the free plan (nothing is deleted).
    SubscriptionEnded { subscription_id: String, at: OffsetDateTime },
    /// An invoice was paid: any payment failure is over.
    InvoicePaid { at: OffsetDateTime },
    /// An invoice could not be paid; the grace period starts at the first one.
    PaymentFailed { at: OffsetDateTime },
}

/// What happened to an event handed to [`BillingStore::apply_stripe_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    Applied,
    /// Already processed once: nothing changed.
    Replay,
    /// Older than the state already held (out of order): recorded, not applied.
    Stale,
}

/// Billing storage. Object-safe; [`crate::Store::billing`] hands it out.
#[async_trait]
pub trait BillingStore: Send + Sync + 'static {
    /// The account's row, or the default (free, never billed) when it has none.
    async fn billing(&self, account: AccountId) -> Result<BillingRecord>;
    /// The account a Stripe customer belongs to.
    async fn account_by_stripe_customer(&self, customer_id: &str) -> Result<Option<AccountId>>;
    /// Stores the customer created for the account's first Checkout.
    /// [`crate::StoreError::Conflict`] if another account holds that customer.
    async fn set_stripe_customer(&self, account: AccountId, customer_id: &str) -> Result<()>;
    /// The operator's plan for the account (`None` lifts the override), with its
    /// audit event in the same transaction.
    async fn set_plan_override(&self, account: AccountId, plan: Option<&str>, event: &NewAuditEvent) -> Result<()>;
    /// Applies `change` to the account and records `event_id` (and the audit
    /// event, if any) in one transaction.
    async fn apply_stripe_event(
        &self,
        event_id: &str,
        event_type: &str,
        account: AccountId,
        change: &BillingChange,
        audit: Option<&NewAuditEvent>,
        at: OffsetDateTime,
    ) -> Result<EventOutcome>;
    /// Records an event that changes nothing (an unknown customer, a type not
    /// handled) so a replay is known; `false` if it was seen before.
    async fn note_stripe_event(&self, event_id: &str, event_type: &str, at: OffsetDateTime) -> Result<bool>;
    /// Accounts with an unpaid invoice (the payment reminders' work list).
    async fn accounts_with_failed_payment(&self) -> Result<Vec<AccountId>>;
    /// The warnings (by kind) sent for the failure of `failed_at`.
    async fn payment_warnings_sent(&self, account: AccountId, failed_at: OffsetDateTime) -> Result<Vec<String>>;
    /// Claims the warning `kind` of the failure of `failed_at` for sending:
    /// `true` when this caller is to send it — never claimed, or claimed before
    /// `stale_before` and never marked sent (the claimer died mid-send).
    async fn claim_payment_warning(
        &self,
        account: AccountId,
        failed_at: OffsetDateTime,
        kind: &str,
        now: OffsetDateTime,
        stale_before: OffsetDateTime,
    ) -> Result<bool>;
    /// Gives a claim back after the mail could not be sent (the next round tries again).
    async fn release_payment_warning(&self, account: AccountId, failed_at: OffsetDateTime, kind: &str) -> Result<()>;
    /// Marks a claimed warning sent and, while that failure is still the
    /// account's, counts it (`warnings_sent`, `last_warning_at`), with `audit`
    /// in the same transaction. Returns the new count, `None` when the
    /// warning was already marked or the failure is over.
    async fn payment_warning_sent(
        &self,
        account: AccountId,
        failed_at: OffsetDateTime,
        kind: &str,
        audit: &NewAuditEvent,
        now: OffsetDateTime,
    ) -> Result<Option<u32>>;
    /// The account's registrations updated on UTC day `day`, busiest first, at most `limit`.
    async fn updates_on_day(&self, account: AccountId, day: i64, limit: u32) -> Result<Vec<NameUpdates>>;
    /// Registrations the account holds (the quota's usage).
    async fn count_registrations(&self, account: AccountId) -> Result<u64>;
    /// License keys the account holds that are not revoked.
    async fn count_active_license_keys(&self, account: AccountId) -> Result<u64>;
}
