//! [`OperatorStore`] over sqlx, for both backends (portable SQL).

use async_trait::async_trait;
use certdns_core::{AccountId, KeyId};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};
use uuid::Uuid;

use crate::operator::{AccountMatch, MatchedBy, OperatorStore};
use crate::sql_portal::SqlPortalStore;
use crate::{Result, StoreError};

/// `LIKE` pattern matching `text` anywhere, its wildcards taken literally.
fn contains_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// The UUID a query names: a bare UUID, or the first label of `<uuid>.<zone>`.
fn query_uuid(query: &str) -> Option<Uuid> {
    let first = query.split('.').next()?;
    Uuid::parse_str(first).ok()
}

#[async_trait]
impl<DB> OperatorStore for SqlPortalStore<DB>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> Uuid: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    for<'r> (Uuid, String): FromRow<'r, DB::Row>,
    for<'r> (Uuid,): FromRow<'r, DB::Row>,
    for<'r> (Option<String>,): FromRow<'r, DB::Row>,
{
    async fn search_accounts(&self, query: &str, limit: u32) -> Result<Vec<AccountMatch>> {
        let query = query.trim().trim_end_matches('.');
        if query.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let lower = query.to_lowercase();
        // A CNAME name as customers paste it: the domain is what follows.
        let domain = lower.strip_prefix("_acme-challenge.").unwrap_or(&lower);
        let limit = i64::from(limit);
        let mut found: Vec<(MatchedBy, Vec<(Uuid, String)>)> = Vec::new();
        if let Some(id) = query_uuid(&lower) {
            let by_account: Vec<(Uuid, String)> =
                sqlx::query_as("SELECT id, email FROM accounts WHERE id = $1").bind(id).fetch_all(self.read()).await?;
            found.push((MatchedBy::Account, by_account));
            let by_registration: Vec<(Uuid, String)> = sqlx::query_as(
                "SELECT account_id, COALESCE(domain, '') FROM registrations WHERE subdomain = $1 OR username = $1",
            )
            .bind(id)
            .fetch_all(self.read())
            .await?;
            let named = by_registration.into_iter().map(|(a, d)| (a, if d.is_empty() { id.to_string() } else { d }));
            found.push((MatchedBy::Registration, named.collect()));
        }
        if query.parse::<KeyId>().is_ok() {
            let by_key: Vec<(Uuid, String)> = sqlx::query_as("SELECT account_id, id FROM license_keys WHERE id = $1")
                .bind(query)
                .fetch_all(self.read())
                .await?;
            found.push((MatchedBy::LicenseKey, by_key));
        }
        let by_email: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT id, email FROM accounts WHERE LOWER(email) LIKE $1 ESCAPE '\\' ORDER BY email LIMIT $2",
        )
        .bind(contains_pattern(&lower).as_str())
        .bind(limit)
        .fetch_all(self.read())
        .await?;
        found.push((MatchedBy::Email, by_email));
        let by_domain: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT account_id, domain FROM registrations WHERE domain LIKE $1 ESCAPE '\\' ORDER BY domain LIMIT $2",
        )
        .bind(contains_pattern(domain).as_str())
        .bind(limit)
        .fetch_all(self.read())
        .await?;
        found.push((MatchedBy::Domain, by_domain));

        // Exact ids first (the order above), one entry per account.
        let mut matches: Vec<AccountMatch> = Vec::new();
        for (matched_by, rows) in found {
            for (account, value) in rows {
                let account_id = AccountId::from_uuid(account);
                if !matches.iter().any(|m| m.account_id == account_id) {
                    matches.push(AccountMatch { account_id, matched_by, value });
                }
            }
        }
        matches.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(matches)
    }

    async fn suspend_account(&self, account: AccountId, reason: &str) -> Result<()> {
        let changed: Option<(Uuid,)> = sqlx::query_as(
            "UPDATE accounts SET status = 'suspended', suspension_reason = $2 WHERE id = $1 RETURNING id",
        )
        .bind(*account.as_uuid())
        .bind(reason)
        .fetch_optional(self.write())
        .await?;
        changed.map(drop).ok_or(StoreError::NotFound)
    }

    async fn suspension_reason(&self, account: AccountId) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT suspension_reason FROM accounts WHERE id = $1 AND status = 'suspended'")
                .bind(*account.as_uuid())
                .fetch_optional(self.read())
                .await?;
        Ok(row.and_then(|(reason,)| reason).filter(|r| !r.is_empty()))
    }
}
