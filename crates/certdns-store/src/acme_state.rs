//! What `tls.acme` keeps in the store: who may order certdns's own certificate
//! right now (a lease with an expiry, so a crashed holder is replaced), the ACME
//! account and the certificate. Values arrive sealed; the store never sees a
//! private key in clear.

use async_trait::async_trait;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};

use crate::Result;
use crate::sql::SqlStore;

/// Which stored value of a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmeValue {
    /// The ACME account's credentials (sealed).
    Account,
    /// The certificate chain and its sealed key.
    Certificate,
}

impl AcmeValue {
    fn column(self) -> &'static str {
        match self {
            AcmeValue::Account => "account",
            AcmeValue::Certificate => "certificate",
        }
    }
}

/// `tls.acme`'s state, per scope (the ACME directory).
#[async_trait]
pub trait AcmeStateStore: Send + Sync {
    /// Takes (or extends, for its holder) the scope's lease until `until` when it
    /// is free or expired at `now`; whether `holder` holds it now.
    async fn acme_take_lease(&self, scope: &str, holder: &str, until: i64, now: i64) -> Result<bool>;
    /// Ends `holder`'s lease early (others may order at once).
    async fn acme_release_lease(&self, scope: &str, holder: &str) -> Result<()>;
    async fn acme_value(&self, scope: &str, which: AcmeValue) -> Result<Option<String>>;
    async fn acme_set_value(&self, scope: &str, which: AcmeValue, value: &str, now: i64) -> Result<()>;
}

#[async_trait]
impl<DB> AcmeStateStore for SqlStore<DB>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    for<'r> (String,): FromRow<'r, DB::Row>,
{
    async fn acme_take_lease(&self, scope: &str, holder: &str, until: i64, now: i64) -> Result<bool> {
        // One statement: the row lock (Postgres) or the write lock (SQLite) makes
        // two instances asking together see each other's lease.
        let taken: Option<(String,)> = sqlx::query_as(
            "INSERT INTO tls_acme (scope, lease_holder, lease_until) VALUES ($1, $2, $3) \
             ON CONFLICT (scope) DO UPDATE SET lease_holder = excluded.lease_holder, lease_until = excluded.lease_until \
             WHERE tls_acme.lease_until < $4 OR tls_acme.lease_holder = excluded.lease_holder \
             RETURNING lease_holder",
        )
        .bind(scope)
        .bind(holder)
        .bind(until)
        .bind(now)
        .fetch_optional(&self.write)
        .await?;
        // No row back: the conflict's WHERE kept someone else's live lease.
        Ok(taken.is_some())
    }

    async fn acme_release_lease(&self, scope: &str, holder: &str) -> Result<()> {
        sqlx::query("UPDATE tls_acme SET lease_until = 0 WHERE scope = $1 AND lease_holder = $2")
            .bind(scope)
            .bind(holder)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn acme_value(&self, scope: &str, which: AcmeValue) -> Result<Option<String>> {
        let sql = match which {
            AcmeValue::Account => "SELECT account FROM tls_acme WHERE scope = $1 AND account IS NOT NULL",
            AcmeValue::Certificate => "SELECT certificate FROM tls_acme WHERE scope = $1 AND certificate IS NOT NULL",
        };
        let row: Option<(String,)> = sqlx::query_as(sql).bind(scope).fetch_optional(&self.read).await?;
        Ok(row.map(|(v,)| v))
    }

    async fn acme_set_value(&self, scope: &str, which: AcmeValue, value: &str, now: i64) -> Result<()> {
        let sql = format!(
            "INSERT INTO tls_acme (scope, {c}, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (scope) DO UPDATE SET {c} = excluded.{c}, updated_at = excluded.updated_at",
            c = which.column()
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(scope).bind(value).bind(now).execute(&self.write).await?;
        Ok(())
    }
}
