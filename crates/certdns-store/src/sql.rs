//! The one implementation of [`Store`], generic over the sqlx database.
//!
//! Portable SQL (`$n`, `RETURNING`, `ON CONFLICT` work on SQLite and Postgres);
//! rows are read as primitives and checked into domain types (corrupt = reported).

use std::net::IpAddr;

use async_trait::async_trait;
use certdns_core::{
    Account, AccountId, AccountStatus, AcmeAccountUrl, AuditEvent, Domain, Email, KeyId, LicenseKey, NewAuditEvent,
    PersistRecord, Registration, RegistrationId, SecretHash, Subdomain, TxtState, TxtValue, Username,
};
use sqlx::migrate::Migrate;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::batch::BatchWriter;
use crate::error::conflict_as;
use crate::rows::*;
use crate::sql_alerts::{BurstRow, DeliveryRow, DueDeliveryRow, GraceRow, SqlAlertStore, WebhookRow};
use crate::sql_billing::{BillingRow, SqlBillingStore};
use crate::sql_fleet::{HeartbeatRow, SqlFleetStore};
use crate::sql_import::REGISTRATION_CONFLICT;
use crate::{AuthorizedWrite, Backend, Result, Store, StoreError, TxtWrite};

/// A [`Store`] over a sqlx pool. `read` and `write` are the same pool on Postgres;
/// on SQLite writes get a single-connection pool of their own.
pub struct SqlStore<DB: Database> {
    pub(crate) backend: Backend,
    pub(crate) read: Pool<DB>,
    pub(crate) write: Pool<DB>,
    /// The `write` pool again, typed for the backend's batch statement (see `batch`).
    pub(crate) batches: BatchWriter,
}

#[async_trait]
impl<DB> Store for SqlStore<DB>
where
    DB: Database,
    DB::Connection: Migrate,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> Option<&'a str>: Encode<'a, DB> + Type<DB>,
    for<'a> Uuid: Encode<'a, DB> + Type<DB>,
    for<'a> Option<Uuid>: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    for<'a> bool: Encode<'a, DB> + Type<DB>,
    for<'a> OffsetDateTime: Encode<'a, DB> + Type<DB>,
    for<'a> Option<OffsetDateTime>: Encode<'a, DB> + Type<DB>,
    for<'r> AccountRow: FromRow<'r, DB::Row>,
    for<'r> LicenseKeyRow: FromRow<'r, DB::Row>,
    for<'r> RegistrationRow: FromRow<'r, DB::Row>,
    for<'r> RegistrationStatusRow: FromRow<'r, DB::Row>,
    for<'r> TxtRow: FromRow<'r, DB::Row>,
    for<'r> AuditRow: FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'r> (Uuid,): FromRow<'r, DB::Row>,
    for<'r> (Uuid, i64): FromRow<'r, DB::Row>,
    for<'r> (String,): FromRow<'r, DB::Row>,
    for<'r> (i64, String): FromRow<'r, DB::Row>,
    for<'r> (i64, i64): FromRow<'r, DB::Row>,
    for<'r> (Uuid, Option<String>, i64): FromRow<'r, DB::Row>,
    for<'r> BillingRow: FromRow<'r, DB::Row>,
    for<'a> Option<i64>: Encode<'a, DB> + Type<DB>,
    for<'r> WebhookRow: FromRow<'r, DB::Row>,
    for<'r> DeliveryRow: FromRow<'r, DB::Row>,
    for<'r> DueDeliveryRow: FromRow<'r, DB::Row>,
    for<'r> BurstRow: FromRow<'r, DB::Row>,
    for<'r> GraceRow: FromRow<'r, DB::Row>,
    for<'r> (String, i64): FromRow<'r, DB::Row>,
    for<'r> HeartbeatRow: FromRow<'r, DB::Row>,
{
    fn backend(&self) -> Backend {
        self.backend
    }

    fn billing(&self) -> std::sync::Arc<dyn crate::BillingStore> {
        std::sync::Arc::new(SqlBillingStore { read: self.read.clone(), write: self.write.clone() })
    }

    fn alerts(&self) -> std::sync::Arc<dyn crate::AlertStore> {
        std::sync::Arc::new(SqlAlertStore { read: self.read.clone(), write: self.write.clone() })
    }

    fn fleet(&self) -> std::sync::Arc<dyn crate::FleetStore> {
        std::sync::Arc::new(SqlFleetStore { read: self.read.clone(), write: self.write.clone() })
    }

    async fn migrate(&self) -> Result<()> {
        crate::migrations::for_backend(self.backend).run(&self.write).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn ping_write(&self) -> Result<()> {
        let at = certdns_core::now().unix_timestamp().to_string();
        sqlx::query(
            "INSERT INTO portal_settings (name, value) VALUES ('readiness.write_probe', $1) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(at.as_str())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn create_account(&self, a: &Account) -> Result<()> {
        sqlx::query(
            "INSERT INTO accounts (id, email, role, status, password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(*a.id.as_uuid())
        .bind(a.email.as_str())
        .bind(a.role.as_str())
        .bind(a.status.as_str())
        .bind(a.password_hash.as_deref())
        .bind(a.created_at)
        .execute(&self.write)
        .await
        .map_err(conflict_as("an account with this e-mail"))?;
        Ok(())
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"));
        let row: Option<AccountRow> = sqlx::query_as(sql).bind(*id.as_uuid()).fetch_optional(&self.read).await?;
        row.map(Account::try_from).transpose()
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<Account>> {
        let Ok(email) = Email::parse(email) else {
            return Ok(None);
        };
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = $1"));
        let row: Option<AccountRow> = sqlx::query_as(sql).bind(email.as_str()).fetch_optional(&self.read).await?;
        row.map(Account::try_from).transpose()
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at, id"));
        let rows: Vec<AccountRow> = sqlx::query_as(sql).fetch_all(&self.read).await?;
        rows.into_iter().map(Account::try_from).collect()
    }

    async fn count_accounts(&self) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM accounts").fetch_one(&self.read).await?;
        u64::try_from(n).map_err(|e| corrupt("count", e))
    }

    async fn set_account_status(&self, id: AccountId, status: AccountStatus) -> Result<()> {
        // A reason belongs to one suspension (`OperatorStore::suspend_account` sets it).
        let changed: Option<(Uuid,)> =
            sqlx::query_as("UPDATE accounts SET status = $2, suspension_reason = NULL WHERE id = $1 RETURNING id")
                .bind(*id.as_uuid())
                .bind(status.as_str())
                .fetch_optional(&self.write)
                .await?;
        changed.map(drop).ok_or(StoreError::NotFound)
    }

    async fn create_license_key(&self, k: &LicenseKey) -> Result<()> {
        sqlx::query(
            "INSERT INTO license_keys (id, account_id, name, secret_hash, created_at, last_used_at, revoked_at, \
             storage_access) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(k.id.as_str())
        .bind(*k.account_id.as_uuid())
        .bind(k.name.as_str())
        .bind(k.secret_hash.as_str())
        .bind(k.created_at)
        .bind(k.last_used_at)
        .bind(k.revoked_at)
        .bind(k.storage_access)
        .execute(&self.write)
        .await
        .map_err(conflict_as("a license key with this id"))?;
        Ok(())
    }

    async fn license_key(&self, id: &KeyId) -> Result<Option<LicenseKey>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {KEY_COLUMNS} FROM license_keys WHERE id = $1"));
        let row: Option<LicenseKeyRow> = sqlx::query_as(sql).bind(id.as_str()).fetch_optional(&self.read).await?;
        row.map(LicenseKey::try_from).transpose()
    }

    async fn list_license_keys(&self, account: AccountId) -> Result<Vec<LicenseKey>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM license_keys WHERE account_id = $1 ORDER BY created_at, id"
        ));
        let rows: Vec<LicenseKeyRow> = sqlx::query_as(sql).bind(*account.as_uuid()).fetch_all(&self.read).await?;
        rows.into_iter().map(LicenseKey::try_from).collect()
    }

    async fn revoke_license_key(&self, account: AccountId, id: &KeyId, at: OffsetDateTime) -> Result<()> {
        let changed: Option<(Uuid,)> = sqlx::query_as(
            "UPDATE license_keys SET revoked_at = $3 \
             WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL RETURNING account_id",
        )
        .bind(id.as_str())
        .bind(*account.as_uuid())
        .bind(at)
        .fetch_optional(&self.write)
        .await?;
        changed.map(drop).ok_or(StoreError::NotFound)
    }

    async fn touch_license_key(&self, id: &KeyId, at: OffsetDateTime) -> Result<()> {
        sqlx::query("UPDATE license_keys SET last_used_at = $2 WHERE id = $1")
            .bind(id.as_str())
            .bind(at)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn note_license_key_address(&self, id: &KeyId, addr: IpAddr, at: OffsetDateTime) -> Result<bool> {
        let inserted: Option<(String,)> = sqlx::query_as(
            "INSERT INTO license_key_addresses (license_key_id, client_addr, first_seen_at) VALUES ($1, $2, $3) \
             ON CONFLICT (license_key_id, client_addr) DO NOTHING RETURNING client_addr",
        )
        .bind(id.as_str())
        .bind(addr.to_canonical().to_string().as_str())
        .bind(at)
        .fetch_optional(&self.write)
        .await?;
        Ok(inserted.is_some())
    }

    async fn create_registration(&self, r: &Registration) -> Result<()> {
        self.insert_registration(r, &TxtState::values(r.subdomain, 0, Vec::new())).await
    }

    async fn import_registration(&self, r: &Registration, txt: &TxtState) -> Result<()> {
        self.insert_registration(r, txt).await
    }

    async fn create_registration_audited(&self, r: &Registration, e: &NewAuditEvent, at: OffsetDateTime) -> Result<()> {
        if self.backend != Backend::Postgres {
            self.create_registration(r).await?;
            return self.append_audit(e, at).await;
        }
        sqlx::query(
            "WITH r AS (INSERT INTO registrations (id, account_id, license_key_id, username, password_hash, subdomain, \
             allow_from, subject, txt_version, created_at, last_update_at, domain, password_sealed, kind) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $16, $17, $18) RETURNING id) \
             INSERT INTO audit_log (at, account_id, kind, client_addr, detail) \
             SELECT $11, $12, $13, $14, $15 FROM r",
        )
        .bind(*r.id.as_uuid())
        .bind(*r.account_id.as_uuid())
        .bind(r.license_key_id.as_ref().map(KeyId::as_str))
        .bind(*r.username.as_uuid())
        .bind(r.password_hash.as_str())
        .bind(*r.subdomain.as_uuid())
        .bind(r.allow_from.to_json().as_str())
        .bind(r.subject.as_deref())
        .bind(r.created_at)
        .bind(r.last_update_at)
        .bind(at)
        .bind(e.account_id.map(|a| *a.as_uuid()))
        .bind(e.kind.as_str())
        .bind(e.client_addr.map(|a| a.to_string()).as_deref())
        .bind(e.detail.to_string().as_str())
        .bind(r.domain.as_ref().map(Domain::as_str))
        .bind(r.password_sealed.as_deref())
        .bind(r.kind.as_str())
        .execute(&self.write)
        .await
        .map_err(conflict_as(REGISTRATION_CONFLICT))?;
        Ok(())
    }

    async fn registration_by_username(&self, username: Username) -> Result<Option<Registration>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {REGISTRATION_COLUMNS} FROM registrations WHERE username = $1"));
        let row: Option<RegistrationRow> =
            sqlx::query_as(sql).bind(*username.as_uuid()).fetch_optional(&self.read).await?;
        row.map(Registration::try_from).transpose()
    }

    async fn registration_for_update(&self, username: Username) -> Result<Option<(Registration, AccountStatus)>> {
        let row: Option<RegistrationStatusRow> = sqlx::query_as(
            "SELECT r.id, r.account_id, r.license_key_id, r.username, r.password_hash, r.subdomain, r.allow_from, \
             r.subject, r.domain, r.password_sealed, r.acme_account_url, r.kind, r.created_at, r.last_update_at, \
             a.status AS account_status \
             FROM registrations r JOIN accounts a ON a.id = r.account_id WHERE r.username = $1",
        )
        .bind(*username.as_uuid())
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status = row.account_status.parse().map_err(|e| corrupt("accounts.status", e))?;
        Ok(Some((Registration::try_from(row.registration)?, status)))
    }

    async fn registration_by_subdomain(
        &self,
        account: AccountId,
        subdomain: Subdomain,
    ) -> Result<Option<Registration>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {REGISTRATION_COLUMNS} FROM registrations WHERE subdomain = $1 AND account_id = $2"
        ));
        let row: Option<RegistrationRow> =
            sqlx::query_as(sql).bind(*subdomain.as_uuid()).bind(*account.as_uuid()).fetch_optional(&self.read).await?;
        row.map(Registration::try_from).transpose()
    }

    async fn list_registrations(&self, account: AccountId) -> Result<Vec<Registration>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {REGISTRATION_COLUMNS} FROM registrations WHERE account_id = $1 ORDER BY created_at, id"
        ));
        let rows: Vec<RegistrationRow> = sqlx::query_as(sql).bind(*account.as_uuid()).fetch_all(&self.read).await?;
        rows.into_iter().map(Registration::try_from).collect()
    }

    async fn delete_registration(&self, account: AccountId, id: RegistrationId) -> Result<Subdomain> {
        // The TXT values live in the row itself.
        let row: Option<(Uuid,)> =
            sqlx::query_as("DELETE FROM registrations WHERE id = $1 AND account_id = $2 RETURNING subdomain")
                .bind(*id.as_uuid())
                .bind(*account.as_uuid())
                .fetch_optional(&self.write)
                .await?;
        row.map(|(s,)| Subdomain::from_uuid(s)).ok_or(StoreError::NotFound)
    }

    async fn delete_registration_versioned(&self, account: AccountId, id: RegistrationId) -> Result<(Subdomain, u64)> {
        let row: Option<(Uuid, i64)> = sqlx::query_as(
            "DELETE FROM registrations WHERE id = $1 AND account_id = $2 RETURNING subdomain, txt_version",
        )
        .bind(*id.as_uuid())
        .bind(*account.as_uuid())
        .fetch_optional(&self.write)
        .await?;
        let (subdomain, version) = row.ok_or(StoreError::NotFound)?;
        let version = u64::try_from(version).map_err(|e| corrupt("registrations.txt_version", e))?;
        Ok((Subdomain::from_uuid(subdomain), version))
    }

    async fn put_txt(
        &self,
        registration: RegistrationId,
        value: &TxtValue,
        keep: usize,
        at: OffsetDateTime,
    ) -> Result<TxtState> {
        match self.put_txt_within(registration, value, keep, None, at).await? {
            TxtWrite::Written(state) => Ok(state),
            // No limit was asked for: cannot happen, but never panic on it.
            TxtWrite::DailyLimitReached { .. } => Err(StoreError::Corrupt("updates_today beyond i64".into())),
        }
    }

    async fn put_txt_within(
        &self,
        registration: RegistrationId,
        value: &TxtValue,
        keep: usize,
        per_day: Option<u64>,
        at: OffsetDateTime,
    ) -> Result<TxtWrite> {
        crate::txt_write::put_txt_within(&self.write, registration, value, keep, per_day, at).await
    }

    async fn remove_txt(
        &self,
        registration: RegistrationId,
        value: &TxtValue,
        keep: usize,
        at: OffsetDateTime,
    ) -> Result<Option<TxtState>> {
        self.withdraw_txt(registration, value, keep, at).await
    }

    async fn set_persist_record(
        &self,
        account: AccountId,
        id: RegistrationId,
        record: &PersistRecord,
        at: OffsetDateTime,
    ) -> Result<TxtState> {
        self.write_persist_record(account, id, record, at).await
    }

    async fn set_registration_domain(
        &self,
        account: AccountId,
        id: RegistrationId,
        domain: Option<&Domain>,
        take_over: bool,
    ) -> Result<()> {
        let mut tx = self.write.begin().await?;
        if take_over && let Some(d) = domain {
            // Only the holder of the same challenge name: the same ACME account, or none.
            sqlx::query(
                "UPDATE registrations SET domain = NULL WHERE account_id = $1 AND domain = $2 AND id <> $3 \
                 AND acme_account_url IS NOT DISTINCT FROM (SELECT acme_account_url FROM registrations WHERE id = $3) \
                 AND kind = (SELECT kind FROM registrations WHERE id = $3)",
            )
            .bind(*account.as_uuid())
            .bind(d.as_str())
            .bind(*id.as_uuid())
            .execute(&mut *tx)
            .await?;
        }
        let done: Option<(Uuid,)> =
            sqlx::query_as("UPDATE registrations SET domain = $3 WHERE id = $1 AND account_id = $2 RETURNING id")
                .bind(*id.as_uuid())
                .bind(*account.as_uuid())
                .bind(domain.map(Domain::as_str))
                .fetch_optional(&mut *tx)
                .await
                .map_err(conflict_as("a registration for this domain"))?;
        done.ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(())
    }

    async fn registration_by_domain(&self, account: AccountId, domain: &Domain) -> Result<Option<Registration>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {REGISTRATION_COLUMNS} FROM registrations WHERE account_id = $1 AND domain = $2 \
             AND acme_account_url IS NULL AND kind = 'challenge'"
        ));
        let row: Option<RegistrationRow> =
            sqlx::query_as(sql).bind(*account.as_uuid()).bind(domain.as_str()).fetch_optional(&self.read).await?;
        row.map(Registration::try_from).transpose()
    }

    async fn closest_bound_registration(&self, account: AccountId, domain: &Domain) -> Result<Option<Registration>> {
        let names: Vec<&str> = domain.self_and_parents().collect();
        // Placeholders only: the names themselves are bound.
        let placeholders: Vec<String> = (0..names.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {REGISTRATION_COLUMNS} FROM registrations WHERE account_id = $1 AND acme_account_url IS NULL \
             AND kind = 'challenge' AND domain IN ({})",
            placeholders.join(", ")
        ));
        let mut query = sqlx::query_as::<_, RegistrationRow>(sql).bind(*account.as_uuid());
        for name in &names {
            query = query.bind(*name);
        }
        let rows = query.fetch_all(&self.read).await?;
        let found: Vec<Registration> = rows.into_iter().map(Registration::try_from).collect::<Result<_>>()?;
        // The longest bound name is the closest.
        Ok(found.into_iter().max_by_key(|r| r.domain.as_ref().map_or(0, |d| d.as_str().len())))
    }

    async fn set_registration_password_sealed(
        &self,
        account: AccountId,
        id: RegistrationId,
        sealed: Option<&str>,
    ) -> Result<()> {
        let done: Option<(Uuid,)> = sqlx::query_as(
            "UPDATE registrations SET password_sealed = $3 WHERE id = $1 AND account_id = $2 RETURNING id",
        )
        .bind(*id.as_uuid())
        .bind(*account.as_uuid())
        .bind(sealed)
        .fetch_optional(&self.write)
        .await?;
        done.map(drop).ok_or(StoreError::NotFound)
    }

    async fn replace_registration_password_hash(
        &self,
        account: AccountId,
        id: RegistrationId,
        from: &SecretHash,
        to: &SecretHash,
    ) -> Result<bool> {
        let done: Option<(Uuid,)> = sqlx::query_as(
            "UPDATE registrations SET password_hash = $4 \
             WHERE id = $1 AND account_id = $2 AND password_hash = $3 RETURNING id",
        )
        .bind(*id.as_uuid())
        .bind(*account.as_uuid())
        .bind(from.as_str())
        .bind(to.as_str())
        .fetch_optional(&self.write)
        .await?;
        Ok(done.is_some())
    }

    async fn set_registration_acme_account(
        &self,
        account: AccountId,
        id: RegistrationId,
        url: Option<&AcmeAccountUrl>,
    ) -> Result<()> {
        let done: Option<(Uuid,)> = sqlx::query_as(
            "UPDATE registrations SET acme_account_url = $3 WHERE id = $1 AND account_id = $2 AND kind = 'challenge' \
             RETURNING id",
        )
        .bind(*id.as_uuid())
        .bind(*account.as_uuid())
        .bind(url.map(AcmeAccountUrl::as_str))
        .fetch_optional(&self.write)
        .await
        .map_err(conflict_as("a registration for this domain and ACME account"))?;
        done.map(drop).ok_or(StoreError::NotFound)
    }

    async fn set_license_key_storage_access(&self, account: AccountId, id: &KeyId, on: bool) -> Result<()> {
        let done: Option<(String,)> = sqlx::query_as(
            "UPDATE license_keys SET storage_access = $3 WHERE id = $1 AND account_id = $2 RETURNING id",
        )
        .bind(id.as_str())
        .bind(*account.as_uuid())
        .bind(on)
        .fetch_optional(&self.write)
        .await?;
        done.map(drop).ok_or(StoreError::NotFound)
    }

    async fn put_txts_if_authorized(
        &self,
        writes: &[AuthorizedWrite],
        keep: usize,
        at: OffsetDateTime,
    ) -> Result<Vec<Option<TxtState>>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let keep = keep.max(1);
        let limit = recent_len(keep)?;
        // Comparing hashes of 240-bit random secrets in SQL leaks nothing useful
        // through timing (learning bytes of a SHA-256 digest does not help find
        // its preimage), so the batch's check may be a plain equality.
        let rows = self.batches.write(writes, limit, at).await?;
        rows.into_iter().map(|row| row.map(|r| r.into_state(keep)).transpose()).collect()
    }

    async fn txt_state(&self, subdomain: Subdomain, keep: usize) -> Result<Option<TxtState>> {
        let row: Option<TxtRow> = sqlx::query_as(
            "SELECT subdomain, txt_version, txt_recent, persist_record FROM registrations WHERE subdomain = $1",
        )
        .bind(*subdomain.as_uuid())
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| r.into_state(keep)).transpose()
    }

    async fn txt_states_page(&self, after: Option<Subdomain>, limit: u32, keep: usize) -> Result<Vec<TxtState>> {
        let rows: Vec<TxtRow> = sqlx::query_as(
            "SELECT subdomain, txt_version, txt_recent, persist_record FROM registrations \
             WHERE $1 IS NULL OR subdomain > $1 ORDER BY subdomain LIMIT $2",
        )
        .bind(after.map(|s| *s.as_uuid()))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.into_iter().map(|r| r.into_state(keep)).collect()
    }

    async fn append_audit(&self, e: &NewAuditEvent, at: OffsetDateTime) -> Result<()> {
        sqlx::query("INSERT INTO audit_log (at, account_id, kind, client_addr, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(at)
            .bind(e.account_id.map(|a| *a.as_uuid()))
            .bind(e.kind.as_str())
            .bind(e.client_addr.map(|a| a.to_string()).as_deref())
            .bind(e.detail.to_string().as_str())
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn audit_events(&self, account: AccountId, before: Option<i64>, limit: u32) -> Result<Vec<AuditEvent>> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, at, account_id, kind, client_addr, detail FROM audit_log \
             WHERE account_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(*account.as_uuid())
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.into_iter().map(AuditEvent::try_from).collect()
    }
}
