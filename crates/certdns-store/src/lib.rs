//! Durable storage for certdns: accounts, license keys, registrations, their most
//! recent TXT values, and the audit log.
//!
//! [`Store`] is the one interface the rest of the code sees. [`open`] picks the
//! backend from the database URL: `sqlite:` for the embedded default, `postgres:`
//! for production. Both backends are the same generic code ([`sql::SqlStore`]) over
//! sqlx, with a migration folder each under `migrations/`.
//!
//! Architecture invariant: every method that reads or changes a tenant's rows takes
//! the tenant's [`AccountId`] and filters by it in SQL, so a caller cannot reach
//! another account's data by knowing an id.

pub mod acme_dns;
mod acme_state;
pub mod alerts;
mod batch;
pub mod billing;
mod error;
pub mod fleet;
mod migrations;
pub mod monitor;
mod open;
pub mod operator;
pub mod portal;
mod rows;
mod sql;
mod sql_alerts;
mod sql_billing;
mod sql_fleet;
mod sql_import;
mod sql_monitor;
mod sql_operator;
mod sql_portal;
mod sql_txt;
mod txt_write;

use async_trait::async_trait;
use certdns_core::{
    Account, AccountId, AccountStatus, AcmeAccountUrl, AuditEvent, Domain, KeyId, LicenseKey, NewAuditEvent,
    PersistRecord, Registration, RegistrationId, SecretHash, Subdomain, TxtState, TxtValue, Username,
};
use std::net::IpAddr;
use std::sync::Arc;

use time::OffsetDateTime;

pub use acme_state::{AcmeStateStore, AcmeValue};
pub use alerts::{
    AlertStore, AttemptOutcome, AuthFailureBurst, AuthFailureCount, Delivery, DeliveryState, DueDelivery, GraceEnding,
    NewDelivery, PreviousSecretUse, WebhookEndpoint,
};
pub use billing::{BillingChange, BillingRecord, BillingStore, EventOutcome, NameUpdates};
pub use error::StoreError;
pub use fleet::{FleetStore, Heartbeat};
pub use monitor::{CheckRecord, DelegationChange, DelegationStatus, DelegationStore, DueCheck};
pub use open::{Backend, open, open_with, redact};
pub use operator::{AccountMatch, MatchedBy, OperatorStore};
pub use portal::{AccountSummary, PortalStore, RemovedRegistration, TokenKind, UsageDay};
pub use sql::SqlStore;
pub use sql_portal::{SqlPortalStore, open_portal, open_portal_with};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One write of the `/update` fast path; see [`Store::put_txts_if_authorized`].
#[derive(Debug, Clone)]
pub struct AuthorizedWrite {
    pub username: Username,
    pub password_hash: SecretHash,
    pub subdomain: Subdomain,
    /// The account of the license key the request carried, if it carried one.
    pub account: Option<AccountId>,
    pub value: TxtValue,
    /// Written only if the registration had fewer updates than this today (UTC);
    /// `None`: no limit. The plans' smallest "updates per day", so a name nearer
    /// its limit takes the checked path, where its own plan decides.
    pub daily_cap: Option<u64>,
}

/// What [`Store::put_txt_within`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxtWrite {
    Written(TxtState),
    /// The registration already had `used` updates today (UTC): nothing written.
    DailyLimitReached {
        used: u64,
    },
}

/// Persistence behind one object-safe trait; used as `Arc<dyn Store>`.
/// [`AcmeStateStore`] is `tls.acme`'s part (in a module of its own).
#[async_trait]
pub trait Store: AcmeStateStore + Send + Sync + 'static {
    /// Which backend this is (for logs and readiness output).
    fn backend(&self) -> Backend;

    /// Applies pending migrations. Each migration runs in its own transaction, so a
    /// failing one leaves the database as it was before it.
    async fn migrate(&self) -> Result<()>;

    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<()>;

    /// A tiny write that nothing reads (a probe row), for readiness: a full disk
    /// or a database that went read-only fails it while reads still work.
    async fn ping_write(&self) -> Result<()>;

    /// Plans and Stripe state, over the same pools.
    fn billing(&self) -> Arc<dyn BillingStore>;

    /// Alert settings, webhooks and their deliveries, over the same pools.
    fn alerts(&self) -> Arc<dyn AlertStore>;
    /// The instances' heartbeats (the public status page), over the same pools.
    fn fleet(&self) -> Arc<dyn FleetStore>;

    // --- accounts -------------------------------------------------------------

    /// Inserts an account. [`StoreError::Conflict`] if the e-mail is taken.
    async fn create_account(&self, account: &Account) -> Result<()>;
    async fn account(&self, id: AccountId) -> Result<Option<Account>>;
    async fn account_by_email(&self, email: &str) -> Result<Option<Account>>;
    async fn list_accounts(&self) -> Result<Vec<Account>>;
    async fn count_accounts(&self) -> Result<u64>;
    /// [`StoreError::NotFound`] if the account does not exist.
    async fn set_account_status(&self, id: AccountId, status: AccountStatus) -> Result<()>;

    // --- license keys ---------------------------------------------------------

    async fn create_license_key(&self, key: &LicenseKey) -> Result<()>;
    /// Looks a key up by id, whichever account owns it (the API authenticates with
    /// it and then knows the account).
    async fn license_key(&self, id: &KeyId) -> Result<Option<LicenseKey>>;
    async fn list_license_keys(&self, account: AccountId) -> Result<Vec<LicenseKey>>;
    /// Revokes a key of `account`. [`StoreError::NotFound`] if `account` has no such
    /// active key.
    async fn revoke_license_key(&self, account: AccountId, id: &KeyId, at: OffsetDateTime) -> Result<()>;
    async fn touch_license_key(&self, id: &KeyId, at: OffsetDateTime) -> Result<()>;
    /// Remembers that key `id` was used from `addr`. Returns `true` the first time
    /// the pair is seen (the caller audits "key used from a new address").
    async fn note_license_key_address(&self, id: &KeyId, addr: IpAddr, at: OffsetDateTime) -> Result<bool>;

    // --- registrations --------------------------------------------------------

    /// Inserts a registration with no TXT values yet (version 0).
    async fn create_registration(&self, registration: &Registration) -> Result<()>;
    /// Inserts a registration and its audit event. On Postgres both are one
    /// statement (one commit, atomic); on SQLite two, since its single writer
    /// makes extra statements cost more than a second (unsynced) commit.
    async fn create_registration_audited(
        &self,
        registration: &Registration,
        event: &NewAuditEvent,
        at: OffsetDateTime,
    ) -> Result<()> {
        self.create_registration(registration).await?;
        self.append_audit(event, at).await
    }
    /// Inserts a registration together with its current TXT state, in one
    /// statement: both or nothing. Used for a registration moved here from
    /// another server, and for a persist registration made with its record.
    /// [`StoreError::Conflict`] if the username or subdomain is taken.
    async fn import_registration(&self, registration: &Registration, txt: &TxtState) -> Result<()>;
    /// Replaces a registration's password hash, only while it is still `from`
    /// (an imported hash upgraded on first use; a concurrent upgrade finds it
    /// done). Whether this call replaced it.
    async fn replace_registration_password_hash(
        &self,
        account: AccountId,
        id: RegistrationId,
        from: &SecretHash,
        to: &SecretHash,
    ) -> Result<bool>;
    async fn registration_by_username(&self, username: Username) -> Result<Option<Registration>>;
    /// The registration with `username` and the status of the account owning it, in
    /// one round trip (the `/update` hot path).
    async fn registration_for_update(&self, username: Username) -> Result<Option<(Registration, AccountStatus)>>;
    async fn registration_by_subdomain(&self, account: AccountId, subdomain: Subdomain)
    -> Result<Option<Registration>>;
    async fn list_registrations(&self, account: AccountId) -> Result<Vec<Registration>>;
    /// Deletes a registration of `account` with its TXT values and returns its
    /// subdomain. [`StoreError::NotFound`] if `account` has no such registration.
    async fn delete_registration(&self, account: AccountId, id: RegistrationId) -> Result<Subdomain>;
    /// Like [`Store::delete_registration`], and also returns the TXT version the
    /// registration had when it was deleted (read in the same statement), so the
    /// removal can be published with a version newer than any upsert before it.
    async fn delete_registration_versioned(&self, account: AccountId, id: RegistrationId) -> Result<(Subdomain, u64)>;

    // --- domains and credentials the server can give back ----------------------

    /// Binds `domain` to a registration of `account` (`None` unbinds it).
    /// [`StoreError::Conflict`] when another registration of the account holds the
    /// domain, unless `take_over`: then it moves here in one transaction.
    /// [`StoreError::NotFound`] if `account` has no such registration.
    async fn set_registration_domain(
        &self,
        account: AccountId,
        id: RegistrationId,
        domain: Option<&Domain>,
        take_over: bool,
    ) -> Result<()>;
    /// Makes a registration of `account` answer dns-account-01 challenges of the
    /// ACME account `url` (`None`: plain dns-01). [`StoreError::Conflict`] when
    /// another registration of the account holds the same domain for the same
    /// ACME account. [`StoreError::NotFound`] if `account` has no such registration.
    async fn set_registration_acme_account(
        &self,
        account: AccountId,
        id: RegistrationId,
        url: Option<&AcmeAccountUrl>,
    ) -> Result<()>;
    /// The dns-01 registration (no ACME account) of `account` bound to `domain`.
    async fn registration_by_domain(&self, account: AccountId, domain: &Domain) -> Result<Option<Registration>>;
    /// The dns-01 registration of `account` bound to `domain` or, failing that, to its
    /// closest parent (`a.b.example.com`, `b.example.com`, `example.com`), in one
    /// query.
    async fn closest_bound_registration(&self, account: AccountId, domain: &Domain) -> Result<Option<Registration>>;
    /// Keeps (or with `None` forgets) a registration's sealed password.
    async fn set_registration_password_sealed(
        &self,
        account: AccountId,
        id: RegistrationId,
        sealed: Option<&str>,
    ) -> Result<()>;
    /// Switches a license key's storage access (see [`LicenseKey::storage_access`]).
    async fn set_license_key_storage_access(&self, account: AccountId, id: &KeyId, on: bool) -> Result<()>;

    // --- TXT values -----------------------------------------------------------

    /// Records a new TXT value and keeps only the `keep` most recent, atomically
    /// (challenge registrations only: [`StoreError::NotFound`] for a persist one):
    /// concurrent writers to one registration are serialised and each gets its own
    /// version, and no reader ever sees a half-applied write. Returns the new state.
    async fn put_txt(
        &self,
        registration: RegistrationId,
        value: &TxtValue,
        keep: usize,
        at: OffsetDateTime,
    ) -> Result<TxtState>;

    /// [`Store::put_txt`] for a registration allowed `per_day` updates per UTC day
    /// (`None`: no limit). The count and the limit are checked and bumped in the
    /// write's own statement, so concurrent writers cannot pass the limit together.
    /// Every TXT write (this, `put_txt`, the fast path) counts.
    async fn put_txt_within(
        &self,
        registration: RegistrationId,
        value: &TxtValue,
        keep: usize,
        per_day: Option<u64>,
        at: OffsetDateTime,
    ) -> Result<TxtWrite>;

    /// Removes every copy of `value` from a registration's recent values as a new
    /// version: the new state, or `None` when it held no such value (nothing
    /// written). Read and write hold the row, so no concurrent write is lost.
    async fn remove_txt(
        &self,
        registration: RegistrationId,
        value: &TxtValue,
        keep: usize,
        at: OffsetDateTime,
    ) -> Result<Option<TxtState>>;

    /// Replaces the record of `account`'s persist registration `id` as a new
    /// version and returns the new state. [`StoreError::NotFound`] if `account`
    /// has no such persist registration (a challenge registration included).
    async fn set_persist_record(
        &self,
        account: AccountId,
        id: RegistrationId,
        record: &PersistRecord,
        at: OffsetDateTime,
    ) -> Result<TxtState>;

    /// The `/update` fast path, for a batch of writes in one statement: records
    /// each write's value on the registration with its username and subdomain only
    /// if the stored password hash equals the write's, the registration has no
    /// `allow_from` restriction, its account is active (and is the write's
    /// `account`, when given) and has no unpaid invoice, its license key, if
    /// any, is not revoked, and it had fewer than the write's `daily_cap` updates
    /// today (UTC). Each write counts as one update of the day.
    ///
    /// Returns one entry per write, in order: the new state, or `None` when any
    /// condition fails (the caller then takes the checked path to find out which).
    /// Writes to one registration apply in batch order, each on the previous one.
    /// The batch commits whole or not at all.
    async fn put_txts_if_authorized(
        &self,
        writes: &[AuthorizedWrite],
        keep: usize,
        at: OffsetDateTime,
    ) -> Result<Vec<Option<TxtState>>>;

    /// Current state of one subdomain (at most `keep` values, newest first).
    async fn txt_state(&self, subdomain: Subdomain, keep: usize) -> Result<Option<TxtState>>;

    /// Every registration's state, `limit` at a time in subdomain order, starting
    /// after `after`. Used to seed and reconcile the TXT distribution.
    async fn txt_states_page(&self, after: Option<Subdomain>, limit: u32, keep: usize) -> Result<Vec<TxtState>>;

    // --- audit log ------------------------------------------------------------

    async fn append_audit(&self, event: &NewAuditEvent, at: OffsetDateTime) -> Result<()>;
    /// Newest first; `before` is the id of the last event of the previous page.
    async fn audit_events(&self, account: AccountId, before: Option<i64>, limit: u32) -> Result<Vec<AuditEvent>>;
}
