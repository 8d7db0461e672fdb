//! What only operators ask of the store: finding accounts by anything a customer
//! might quote (e-mail, domain, registration subdomain, key id), and the reason
//! an account was suspended.

use async_trait::async_trait;
use certdns_core::AccountId;

use crate::Result;

/// Which of an account's things matched a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    /// The account's id.
    Account,
    Email,
    /// A registration's domain.
    Domain,
    /// A registration's subdomain (the CNAME target's first label) or username.
    Registration,
    /// A license key's id.
    LicenseKey,
}

impl MatchedBy {
    pub fn as_str(&self) -> &'static str {
        match self {
            MatchedBy::Account => "account id",
            MatchedBy::Email => "e-mail",
            MatchedBy::Domain => "domain",
            MatchedBy::Registration => "registration",
            MatchedBy::LicenseKey => "license key",
        }
    }
}

/// An account a search found, and what of it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountMatch {
    pub account_id: AccountId,
    pub matched_by: MatchedBy,
    /// The matching value as stored (the full e-mail or domain, the id).
    pub value: String,
}

#[async_trait]
pub trait OperatorStore: Send + Sync {
    /// Accounts whose e-mail or a registration's domain contains `query`
    /// (case-insensitive), or whose account id, registration subdomain or
    /// username, or license-key id is `query` (a subdomain may come as the full
    /// `<uuid>.<zone>` name). One entry per account, at most `limit`.
    async fn search_accounts(&self, query: &str, limit: u32) -> Result<Vec<AccountMatch>>;
    /// Suspends the account and keeps why, in one write. [`crate::StoreError::NotFound`]
    /// if there is no such account. (`Store::set_account_status` clears the reason.)
    async fn suspend_account(&self, account: AccountId, reason: &str) -> Result<()>;
    /// The reason of the account's current suspension, if it has one.
    async fn suspension_reason(&self, account: AccountId) -> Result<Option<String>>;
}
