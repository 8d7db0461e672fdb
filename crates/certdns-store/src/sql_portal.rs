//! [`PortalStore`] over sqlx, generic over the database like [`SqlStore`], and
//! [`open_portal`], which opens both over one set of pools.

use std::sync::Arc;

use async_trait::async_trait;
use certdns_core::{AccessToken, Account, AccountId, Email, KeyId, SecretHash, Subdomain, TokenId};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::open::{Pools, connect};
use crate::portal::{AccountSummary, PortalStore, RemovedRegistration, TokenKind, UsageDay};
use crate::{Result, Store, StoreError};

/// Opens the store a URL names (like [`crate::open`]) and returns the portal's
/// view of it; [`PortalStore::core`] is the [`Store`] over the same pools.
pub async fn open_portal(url: &str) -> Result<Arc<dyn PortalStore>> {
    open_portal_with(url, 16).await
}

/// [`open_portal`] with a pool size (see [`crate::open_with`]).
pub async fn open_portal_with(url: &str, max_connections: u32) -> Result<Arc<dyn PortalStore>> {
    let pools = connect(url, max_connections).await?;
    let core = pools.core();
    Ok(match pools {
        Pools::Sqlite { read, write } => Arc::new(SqlPortalStore { core, read, write }),
        Pools::Postgres(pool) => Arc::new(SqlPortalStore { core, read: pool.clone(), write: pool }),
    })
}

/// The portal's store: its own handles on the pools of `core`.
pub struct SqlPortalStore<DB: Database> {
    core: Arc<dyn Store>,
    read: Pool<DB>,
    write: Pool<DB>,
}

impl<DB: Database> SqlPortalStore<DB> {
    pub(crate) fn read(&self) -> &Pool<DB> {
        &self.read
    }

    pub(crate) fn write(&self) -> &Pool<DB> {
        &self.write
    }
}

#[derive(FromRow)]
struct SummaryRow {
    id: Uuid,
    email: String,
    role: String,
    status: String,
    created_at: OffsetDateTime,
    email_verified_at: Option<OffsetDateTime>,
    active_keys: i64,
    registrations: i64,
    updates: i64,
}

#[derive(FromRow)]
struct AccessTokenRow {
    id: String,
    account_id: Uuid,
    name: String,
    scope: String,
    secret_hash: String,
    created_at: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
    last_used_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
}

const ACCESS_TOKEN_COLUMNS: &str =
    "id, account_id, name, scope, secret_hash, created_at, expires_at, last_used_at, revoked_at";

impl TryFrom<AccessTokenRow> for AccessToken {
    type Error = StoreError;
    fn try_from(r: AccessTokenRow) -> Result<Self> {
        Ok(AccessToken {
            id: r.id.parse().map_err(|e| corrupt("access_tokens.id", e))?,
            account_id: AccountId::from_uuid(r.account_id),
            name: r.name,
            scope: r.scope.parse().map_err(|e| corrupt("access_tokens.scope", e))?,
            secret_hash: SecretHash::from_stored(r.secret_hash),
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        })
    }
}

#[derive(FromRow)]
struct UsageRow {
    license_key_id: String,
    day: String,
    updates: i64,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn count(n: i64, what: &str) -> Result<u64> {
    u64::try_from(n).map_err(|e| corrupt(what, e))
}

const DAY_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

fn day_text(d: Date) -> Result<String> {
    d.format(DAY_FORMAT).map_err(|e| corrupt("day", e))
}

#[async_trait]
impl<DB> PortalStore for SqlPortalStore<DB>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> Uuid: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    for<'a> OffsetDateTime: Encode<'a, DB> + Type<DB>,
    for<'a> Option<OffsetDateTime>: Encode<'a, DB> + Type<DB>,
    for<'r> SummaryRow: FromRow<'r, DB::Row>,
    for<'r> UsageRow: FromRow<'r, DB::Row>,
    for<'r> AccessTokenRow: FromRow<'r, DB::Row>,
    for<'r> crate::sql_monitor::StatusRow: FromRow<'r, DB::Row>,
    for<'r> crate::sql_monitor::DueRow: FromRow<'r, DB::Row>,
    for<'r> crate::sql_monitor::ChangeRow: FromRow<'r, DB::Row>,
    for<'r> (Uuid, String): FromRow<'r, DB::Row>,
    for<'r> (Option<String>,): FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'r> (Uuid,): FromRow<'r, DB::Row>,
    for<'r> (Uuid, i64): FromRow<'r, DB::Row>,
    for<'r> (Uuid, OffsetDateTime): FromRow<'r, DB::Row>,
    for<'r> (String,): FromRow<'r, DB::Row>,
    for<'r> (String, i64): FromRow<'r, DB::Row>,
    for<'r> (Option<OffsetDateTime>,): FromRow<'r, DB::Row>,
{
    fn core(&self) -> Arc<dyn Store> {
        self.core.clone()
    }

    async fn setting(&self, name: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM portal_settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|(v,)| v))
    }

    async fn init_setting(&self, name: &str, value: &str) -> Result<String> {
        sqlx::query("INSERT INTO portal_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(value)
            .execute(&self.write)
            .await?;
        // Read through the write pool: on SQLite it is the connection that wrote.
        let (stored,): (String,) = sqlx::query_as("SELECT value FROM portal_settings WHERE name = $1")
            .bind(name)
            .fetch_one(&self.write)
            .await?;
        Ok(stored)
    }

    async fn session_version(&self, account: AccountId) -> Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT session_version FROM accounts WHERE id = $1")
            .bind(*account.as_uuid())
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|(v,)| v))
    }

    async fn revoke_session(&self, id: &str, expires_at: i64) -> Result<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query("INSERT INTO revoked_sessions (id, expires_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(id)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM revoked_sessions WHERE expires_at < $1")
            .bind(certdns_core::now().unix_timestamp())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session_revoked(&self, id: &str) -> Result<bool> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT id FROM revoked_sessions WHERE id = $1").bind(id).fetch_optional(&self.read).await?;
        Ok(row.is_some())
    }

    async fn bump_session_version(&self, account: AccountId) -> Result<i64> {
        let row: Option<(i64,)> = sqlx::query_as(
            "UPDATE accounts SET session_version = session_version + 1 WHERE id = $1 RETURNING session_version",
        )
        .bind(*account.as_uuid())
        .fetch_optional(&self.write)
        .await?;
        row.map(|(v,)| v).ok_or(StoreError::NotFound)
    }

    async fn set_password_hash(&self, account: AccountId, hash: &str) -> Result<i64> {
        let row: Option<(i64,)> = sqlx::query_as(
            "UPDATE accounts SET password_hash = $2, session_version = session_version + 1 \
             WHERE id = $1 RETURNING session_version",
        )
        .bind(*account.as_uuid())
        .bind(hash)
        .fetch_optional(&self.write)
        .await?;
        row.map(|(v,)| v).ok_or(StoreError::NotFound)
    }

    async fn email_verified_at(&self, account: AccountId) -> Result<Option<OffsetDateTime>> {
        let row: Option<(Option<OffsetDateTime>,)> =
            sqlx::query_as("SELECT email_verified_at FROM accounts WHERE id = $1")
                .bind(*account.as_uuid())
                .fetch_optional(&self.read)
                .await?;
        row.map(|(v,)| v).ok_or(StoreError::NotFound)
    }

    async fn mark_email_verified(&self, account: AccountId, at: OffsetDateTime) -> Result<()> {
        let row: Option<(Uuid,)> = sqlx::query_as(
            "UPDATE accounts SET email_verified_at = COALESCE(email_verified_at, $2) WHERE id = $1 RETURNING id",
        )
        .bind(*account.as_uuid())
        .bind(at)
        .fetch_optional(&self.write)
        .await?;
        row.map(drop).ok_or(StoreError::NotFound)
    }

    async fn delete_account(&self, account: AccountId) -> Result<Vec<RemovedRegistration>> {
        let mut tx = self.write.begin().await?;
        let removed: Vec<(Uuid, i64)> =
            sqlx::query_as("DELETE FROM registrations WHERE account_id = $1 RETURNING subdomain, txt_version")
                .bind(*account.as_uuid())
                .fetch_all(&mut *tx)
                .await?;
        // Keys, usage, tokens, audit entries and TXT values go by ON DELETE CASCADE.
        let gone: Option<(Uuid,)> = sqlx::query_as("DELETE FROM accounts WHERE id = $1 RETURNING id")
            .bind(*account.as_uuid())
            .fetch_optional(&mut *tx)
            .await?;
        if gone.is_none() {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        removed
            .into_iter()
            .map(|(s, v)| {
                Ok(RemovedRegistration {
                    subdomain: Subdomain::from_uuid(s),
                    version: count(v, "registrations.txt_version")?,
                })
            })
            .collect()
    }

    async fn create_token(
        &self,
        kind: TokenKind,
        token_hash: &str,
        account: AccountId,
        at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM portal_tokens WHERE account_id = $1 AND kind = $2")
            .bind(*account.as_uuid())
            .bind(kind.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO portal_tokens (token_hash, kind, account_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(kind.as_str())
        .bind(*account.as_uuid())
        .bind(at)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn token_account(&self, kind: TokenKind, token_hash: &str, now: OffsetDateTime) -> Result<Option<AccountId>> {
        // Expiry compared here, not in SQL: SQLite keeps timestamps as text.
        let row: Option<(Uuid, OffsetDateTime)> =
            sqlx::query_as("SELECT account_id, expires_at FROM portal_tokens WHERE token_hash = $1 AND kind = $2")
                .bind(token_hash)
                .bind(kind.as_str())
                .fetch_optional(&self.read)
                .await?;
        Ok(row.filter(|(_, expires)| now < *expires).map(|(a, _)| AccountId::from_uuid(a)))
    }

    async fn consume_token(&self, kind: TokenKind, token_hash: &str, now: OffsetDateTime) -> Result<Option<AccountId>> {
        let mut tx = self.write.begin().await?;
        // Deleted whatever its expiry: an expired link is spent as well.
        let row: Option<(Uuid, OffsetDateTime)> = sqlx::query_as(
            "DELETE FROM portal_tokens WHERE token_hash = $1 AND kind = $2 RETURNING account_id, expires_at",
        )
        .bind(token_hash)
        .bind(kind.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        // Expired tokens are useless; sweep them while here.
        sqlx::query("DELETE FROM portal_tokens WHERE expires_at <= $1").bind(now).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(row.filter(|(_, expires)| now < *expires).map(|(a, _)| AccountId::from_uuid(a)))
    }

    async fn create_access_token(&self, t: &AccessToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO access_tokens (id, account_id, name, scope, secret_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(t.id.as_str())
        .bind(*t.account_id.as_uuid())
        .bind(t.name.as_str())
        .bind(t.scope.as_str())
        .bind(t.secret_hash.as_str())
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn access_token(&self, id: &TokenId) -> Result<Option<AccessToken>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ACCESS_TOKEN_COLUMNS} FROM access_tokens WHERE id = $1"));
        let row: Option<AccessTokenRow> = sqlx::query_as(sql).bind(id.as_str()).fetch_optional(&self.read).await?;
        row.map(AccessToken::try_from).transpose()
    }

    async fn list_access_tokens(&self, account: AccountId) -> Result<Vec<AccessToken>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ACCESS_TOKEN_COLUMNS} FROM access_tokens WHERE account_id = $1 ORDER BY created_at DESC, id"
        ));
        let rows: Vec<AccessTokenRow> = sqlx::query_as(sql).bind(*account.as_uuid()).fetch_all(&self.read).await?;
        rows.into_iter().map(AccessToken::try_from).collect()
    }

    async fn revoke_access_token(&self, account: AccountId, id: &TokenId, at: OffsetDateTime) -> Result<()> {
        let row: Option<(String,)> = sqlx::query_as(
            "UPDATE access_tokens SET revoked_at = $3 \
             WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL RETURNING id",
        )
        .bind(id.as_str())
        .bind(*account.as_uuid())
        .bind(at)
        .fetch_optional(&self.write)
        .await?;
        row.map(drop).ok_or(StoreError::NotFound)
    }

    async fn touch_access_token(&self, id: &TokenId, at: OffsetDateTime) -> Result<()> {
        sqlx::query("UPDATE access_tokens SET last_used_at = $2 WHERE id = $1")
            .bind(id.as_str())
            .bind(at)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn rename_license_key(&self, account: AccountId, id: &KeyId, name: &str) -> Result<()> {
        let row: Option<(String,)> = sqlx::query_as(
            "UPDATE license_keys SET name = $3 WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL RETURNING id",
        )
        .bind(id.as_str())
        .bind(*account.as_uuid())
        .bind(name)
        .fetch_optional(&self.write)
        .await?;
        row.map(drop).ok_or(StoreError::NotFound)
    }

    async fn rotate_license_key(
        &self,
        account: AccountId,
        id: &KeyId,
        new_hash: &SecretHash,
        grace_until: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT secret_hash FROM license_keys WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL",
        )
        .bind(id.as_str())
        .bind(*account.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((stored,)) = row else {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        };
        let Ok(rotated) = SecretHash::from_stored(stored.clone()).rotated(new_hash, grace_until, certdns_core::now())
        else {
            tx.rollback().await?;
            return Err(StoreError::Conflict("too many earlier secrets of this key are still in their grace period"));
        };
        // Compare-and-set on the old value: two rotations racing cannot both win.
        let done: Option<(String,)> =
            sqlx::query_as("UPDATE license_keys SET secret_hash = $3 WHERE id = $1 AND secret_hash = $2 RETURNING id")
                .bind(id.as_str())
                .bind(stored.as_str())
                .bind(rotated.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_none() {
            tx.rollback().await?;
            return Err(StoreError::Conflict("a concurrent rotation of this key"));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn registration_counts(&self, account: AccountId) -> Result<Vec<(KeyId, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT license_key_id, COUNT(*) FROM registrations \
             WHERE account_id = $1 AND license_key_id IS NOT NULL GROUP BY license_key_id ORDER BY license_key_id",
        )
        .bind(*account.as_uuid())
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|(k, n)| {
                Ok((k.parse::<KeyId>().map_err(|e| corrupt("registrations.license_key_id", e))?, count(n, "count")?))
            })
            .collect()
    }

    async fn add_usage(&self, usage: &[(KeyId, Date, u32)]) -> Result<()> {
        if usage.is_empty() {
            return Ok(());
        }
        let mut tx = self.write.begin().await?;
        for (key, day, n) in usage {
            sqlx::query(
                "INSERT INTO license_key_usage (license_key_id, day, updates) \
                 SELECT id, $2, $3 FROM license_keys WHERE id = $1 \
                 ON CONFLICT (license_key_id, day) DO UPDATE SET updates = license_key_usage.updates + excluded.updates",
            )
            .bind(key.as_str())
            .bind(day_text(*day)?.as_str())
            .bind(i64::from(*n))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn usage_since(&self, account: AccountId, since: Date) -> Result<Vec<UsageDay>> {
        let rows: Vec<UsageRow> = sqlx::query_as(
            "SELECT u.license_key_id, u.day, u.updates FROM license_key_usage u \
             JOIN license_keys k ON k.id = u.license_key_id \
             WHERE k.account_id = $1 AND u.day >= $2 ORDER BY u.license_key_id, u.day",
        )
        .bind(*account.as_uuid())
        .bind(day_text(since)?.as_str())
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(UsageDay {
                    key: r.license_key_id.parse().map_err(|e| corrupt("license_key_usage.license_key_id", e))?,
                    day: Date::parse(&r.day, DAY_FORMAT).map_err(|e| corrupt("license_key_usage.day", e))?,
                    updates: count(r.updates, "license_key_usage.updates")?,
                })
            })
            .collect()
    }

    async fn account_summaries(&self, since: Date) -> Result<Vec<AccountSummary>> {
        let rows: Vec<SummaryRow> = sqlx::query_as(
            "SELECT a.id, a.email, a.role, a.status, a.created_at, a.email_verified_at, \
               (SELECT COUNT(*) FROM license_keys k WHERE k.account_id = a.id AND k.revoked_at IS NULL) AS active_keys, \
               (SELECT COUNT(*) FROM registrations r WHERE r.account_id = a.id) AS registrations, \
               (SELECT CAST(COALESCE(SUM(u.updates), 0) AS BIGINT) FROM license_key_usage u \
                  JOIN license_keys k ON k.id = u.license_key_id WHERE k.account_id = a.id AND u.day >= $1) AS updates \
             FROM accounts a ORDER BY a.created_at, a.id",
        )
        .bind(day_text(since)?.as_str())
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(AccountSummary {
                    account: Account {
                        id: AccountId::from_uuid(r.id),
                        email: Email::parse(&r.email).map_err(|e| corrupt("accounts.email", e))?,
                        role: r.role.parse().map_err(|e| corrupt("accounts.role", e))?,
                        status: r.status.parse().map_err(|e| corrupt("accounts.status", e))?,
                        password_hash: None,
                        created_at: r.created_at,
                    },
                    active_keys: count(r.active_keys, "count")?,
                    registrations: count(r.registrations, "count")?,
                    updates: count(r.updates, "sum")?,
                    email_verified_at: r.email_verified_at,
                })
            })
            .collect()
    }
}
