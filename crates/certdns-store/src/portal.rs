//! What the web portal needs beyond [`Store`]: session revocation, password
//! changes, account deletion, one-time e-mail tokens, key rotation, per-key usage
//! and operator overviews.
//!
//! [`open_portal`](crate::open_portal) returns a [`PortalStore`] that shares its
//! connection pools with the [`Store`] it hands out through [`PortalStore::core`],
//! so on SQLite both go through the same single writer.
//!
//! Same rule as [`Store`]: every tenant-scoped method takes the [`AccountId`] and
//! filters by it in SQL.

use std::sync::Arc;

use async_trait::async_trait;
use certdns_core::{AccessToken, Account, AccountId, KeyId, SecretHash, Subdomain, TokenId};
use time::{Date, OffsetDateTime};

use crate::{Result, Store};

/// What a one-time token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    VerifyEmail,
    ResetPassword,
}

impl TokenKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            TokenKind::VerifyEmail => "verify_email",
            TokenKind::ResetPassword => "reset_password",
        }
    }
}

/// A registration removed together with its account: its subdomain and the TXT
/// version it had, so a `Change::Remove { version: version + 1 }` can be published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemovedRegistration {
    pub subdomain: Subdomain,
    pub version: u64,
}

/// Updates of one key on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDay {
    pub key: KeyId,
    pub day: Date,
    pub updates: u64,
}

/// One line of the operator's account list.
#[derive(Debug, Clone)]
pub struct AccountSummary {
    pub account: Account,
    /// Keys not revoked.
    pub active_keys: u64,
    pub registrations: u64,
    /// Updates over the window asked for.
    pub updates: u64,
    pub email_verified_at: Option<OffsetDateTime>,
}

/// The portal's storage. Object-safe; used as `Arc<dyn PortalStore>`.
#[async_trait]
pub trait PortalStore: crate::DelegationStore + crate::OperatorStore + Send + Sync + 'static {
    /// The [`Store`] over the same pools (accounts, keys, registrations, audit).
    fn core(&self) -> Arc<dyn Store>;

    // --- settings -------------------------------------------------------------

    async fn setting(&self, name: &str) -> Result<Option<String>>;
    /// Stores `value` under `name` unless a value is there already; returns the
    /// value that is stored afterwards (the first writer wins, across instances).
    async fn init_setting(&self, name: &str, value: &str) -> Result<String>;

    // --- sessions and passwords -------------------------------------------------

    /// The account's session version; `None` if there is no such account.
    async fn session_version(&self, account: AccountId) -> Result<Option<i64>>;
    /// Invalidates every session of the account; returns the new version.
    /// [`StoreError::NotFound`](crate::StoreError::NotFound) if there is no such account.
    async fn bump_session_version(&self, account: AccountId) -> Result<i64>;
    /// Signs out one session (`id`, the session's own random id) until it would
    /// have expired (`expires_at`, Unix seconds); forgets expired ones.
    async fn revoke_session(&self, id: &str, expires_at: i64) -> Result<()>;
    /// Whether the session `id` was signed out.
    async fn session_revoked(&self, id: &str) -> Result<bool>;
    /// Sets the password hash and bumps the session version in one statement;
    /// returns the new version.
    async fn set_password_hash(&self, account: AccountId, hash: &str) -> Result<i64>;
    async fn email_verified_at(&self, account: AccountId) -> Result<Option<OffsetDateTime>>;
    async fn mark_email_verified(&self, account: AccountId, at: OffsetDateTime) -> Result<()>;

    /// Deletes the account with its keys, registrations, TXT values, tokens, usage
    /// and audit entries. Returns the registrations that went with it.
    /// [`StoreError::NotFound`](crate::StoreError::NotFound) if there is no such account.
    async fn delete_account(&self, account: AccountId) -> Result<Vec<RemovedRegistration>>;

    // --- one-time tokens --------------------------------------------------------

    /// Stores the hash of a token. Older tokens of the same kind for the account
    /// are dropped, so only the newest link works.
    async fn create_token(
        &self,
        kind: TokenKind,
        token_hash: &str,
        account: AccountId,
        at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<()>;
    /// The account of a token that exists, has this kind and has not expired at
    /// `now`, without spending it: lets a form refuse a dead link before doing
    /// expensive work (hashing the new password).
    async fn token_account(&self, kind: TokenKind, token_hash: &str, now: OffsetDateTime) -> Result<Option<AccountId>>;
    /// Deletes the token and returns its account if it existed, had this kind and
    /// had not expired at `now`. A token works at most once.
    async fn consume_token(&self, kind: TokenKind, token_hash: &str, now: OffsetDateTime) -> Result<Option<AccountId>>;

    // --- license keys -----------------------------------------------------------

    /// [`StoreError::NotFound`](crate::StoreError::NotFound) unless `account` has this active key.
    async fn rename_license_key(&self, account: AccountId, id: &KeyId, name: &str) -> Result<()>;
    /// Replaces the key's secret hash by `new_hash`; the old secret keeps working
    /// until `grace_until` (see [`SecretHash::rotated`]).
    /// [`StoreError::NotFound`](crate::StoreError::NotFound) unless `account` has this active key.
    async fn rotate_license_key(
        &self,
        account: AccountId,
        id: &KeyId,
        new_hash: &SecretHash,
        grace_until: OffsetDateTime,
    ) -> Result<()>;
    /// Number of registrations per key of the account (keys without any are absent).
    async fn registration_counts(&self, account: AccountId) -> Result<Vec<(KeyId, u64)>>;

    // --- personal access tokens (the account API) --------------------------------

    async fn create_access_token(&self, token: &AccessToken) -> Result<()>;
    /// The token with this id, whoever owns it (authentication looks it up by
    /// the id half of what a client presents, then checks the secret).
    async fn access_token(&self, id: &TokenId) -> Result<Option<AccessToken>>;
    /// The account's tokens, revoked ones included, newest first.
    async fn list_access_tokens(&self, account: AccountId) -> Result<Vec<AccessToken>>;
    /// [`StoreError::NotFound`](crate::StoreError::NotFound) unless `account` has
    /// this token and it is not revoked yet.
    async fn revoke_access_token(&self, account: AccountId, id: &TokenId, at: OffsetDateTime) -> Result<()>;
    async fn touch_access_token(&self, id: &TokenId, at: OffsetDateTime) -> Result<()>;

    // --- usage ------------------------------------------------------------------

    /// Adds update counts per key and day. Unknown keys are ignored.
    async fn add_usage(&self, usage: &[(KeyId, Date, u32)]) -> Result<()>;
    /// Usage of the account's keys on `since` and later, by key then day.
    async fn usage_since(&self, account: AccountId, since: Date) -> Result<Vec<UsageDay>>;

    // --- operator ---------------------------------------------------------------

    /// Every account with its counts; `updates` counts days from `since`.
    async fn account_summaries(&self, since: Date) -> Result<Vec<AccountSummary>>;
}
