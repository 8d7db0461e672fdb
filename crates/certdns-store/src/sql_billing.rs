//! [`BillingStore`] over sqlx, generic over the database like [`crate::SqlStore`].

use async_trait::async_trait;
use certdns_core::{AccountId, NewAuditEvent, Subdomain};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::billing::{BillingChange, BillingRecord, BillingStore, EventOutcome, NameUpdates};
use crate::error::conflict_as;
use crate::{Result, StoreError};

/// The billing view of a store's pools (see [`crate::Store::billing`]).
pub struct SqlBillingStore<DB: Database> {
    pub(crate) read: Pool<DB>,
    pub(crate) write: Pool<DB>,
}

#[derive(FromRow)]
pub struct BillingRow {
    plan: Option<String>,
    plan_override: Option<String>,
    stripe_customer_id: Option<String>,
    subscription_id: Option<String>,
    subscription_status: Option<String>,
    payment_failed_at: Option<i64>,
    warnings_sent: i64,
    last_warning_at: Option<i64>,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn instant(what: &str, secs: Option<i64>) -> Result<Option<OffsetDateTime>> {
    secs.map(|s| OffsetDateTime::from_unix_timestamp(s).map_err(|e| corrupt(what, e))).transpose()
}

impl TryFrom<BillingRow> for BillingRecord {
    type Error = StoreError;
    fn try_from(r: BillingRow) -> Result<Self> {
        Ok(BillingRecord {
            plan: r.plan,
            plan_override: r.plan_override,
            stripe_customer_id: r.stripe_customer_id,
            subscription_id: r.subscription_id,
            subscription_status: r.subscription_status,
            payment_failed_at: instant("account_billing.payment_failed_at", r.payment_failed_at)?,
            warnings_sent: u32::try_from(r.warnings_sent).map_err(|e| corrupt("account_billing.warnings_sent", e))?,
            last_warning_at: instant("account_billing.last_warning_at", r.last_warning_at)?,
        })
    }
}

/// Makes sure the account has a billing row, so every change is an `UPDATE`.
const ENSURE_ROW: &str = "INSERT INTO account_billing (account_id) VALUES ($1) ON CONFLICT (account_id) DO NOTHING";
const INSERT_AUDIT: &str =
    "INSERT INTO audit_log (at, account_id, kind, client_addr, detail) VALUES ($1, $2, $3, $4, $5)";

/// The statement applying a change and its parameters after the account id ($1):
/// text values, then the time (Unix seconds). It returns the account id when it
/// changed the row; no row back means the change was older than the state.
fn change_statement(change: &BillingChange) -> (&'static str, Vec<Option<&str>>, i64) {
    match change {
        BillingChange::CheckoutCompleted { customer_id, subscription_id } => (
            "UPDATE account_billing SET stripe_customer_id = $2, \
             subscription_id = COALESCE($3, subscription_id) WHERE account_id = $1 AND $4 >= 0 RETURNING account_id",
            vec![Some(customer_id.as_str()), subscription_id.as_deref()],
            0,
        ),
        BillingChange::Subscription { subscription_id, status, plan, at } => (
            "UPDATE account_billing SET subscription_id = $2, subscription_status = $3, plan = $4, \
             subscription_at = $5 WHERE account_id = $1 AND subscription_at <= $5 RETURNING account_id",
            vec![Some(subscription_id.as_str()), Some(status.as_str()), plan.as_deref()],
            at.unix_timestamp(),
        ),
        BillingChange::SubscriptionEnded { subscription_id, at } => (
            "UPDATE account_billing SET subscription_status = 'canceled', plan = NULL, subscription_at = $3 \
             WHERE account_id = $1 AND subscription_id = $2 AND subscription_at <= $3 RETURNING account_id",
            vec![Some(subscription_id.as_str())],
            at.unix_timestamp(),
        ),
        BillingChange::InvoicePaid { at } => (
            "UPDATE account_billing SET payment_failed_at = NULL, warnings_sent = 0, last_warning_at = NULL, \
             payment_at = $2 WHERE account_id = $1 AND payment_at <= $2 RETURNING account_id",
            vec![],
            at.unix_timestamp(),
        ),
        // The grace period counts from the first failure, not from each retry.
        BillingChange::PaymentFailed { at } => (
            "UPDATE account_billing SET payment_failed_at = COALESCE(payment_failed_at, $2), payment_at = $2 \
             WHERE account_id = $1 AND payment_at <= $2 RETURNING account_id",
            vec![],
            at.unix_timestamp(),
        ),
    }
}

#[async_trait]
impl<DB> BillingStore for SqlBillingStore<DB>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> Option<&'a str>: Encode<'a, DB> + Type<DB>,
    for<'a> Uuid: Encode<'a, DB> + Type<DB>,
    for<'a> Option<Uuid>: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    for<'a> OffsetDateTime: Encode<'a, DB> + Type<DB>,
    for<'r> BillingRow: FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'r> (Uuid,): FromRow<'r, DB::Row>,
    for<'r> (String,): FromRow<'r, DB::Row>,
    for<'r> (Uuid, Option<String>, i64): FromRow<'r, DB::Row>,
{
    async fn billing(&self, account: AccountId) -> Result<BillingRecord> {
        let row: Option<BillingRow> = sqlx::query_as(
            "SELECT plan, plan_override, stripe_customer_id, subscription_id, subscription_status, \
             payment_failed_at, warnings_sent, last_warning_at FROM account_billing WHERE account_id = $1",
        )
        .bind(*account.as_uuid())
        .fetch_optional(&self.read)
        .await?;
        row.map_or(Ok(BillingRecord::default()), BillingRecord::try_from)
    }

    async fn account_by_stripe_customer(&self, customer_id: &str) -> Result<Option<AccountId>> {
        let row: Option<(Uuid,)> =
            sqlx::query_as("SELECT account_id FROM account_billing WHERE stripe_customer_id = $1")
                .bind(customer_id)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(|(id,)| AccountId::from_uuid(id)))
    }

    async fn set_stripe_customer(&self, account: AccountId, customer_id: &str) -> Result<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(ENSURE_ROW).bind(*account.as_uuid()).execute(&mut *tx).await?;
        sqlx::query("UPDATE account_billing SET stripe_customer_id = $2 WHERE account_id = $1")
            .bind(*account.as_uuid())
            .bind(customer_id)
            .execute(&mut *tx)
            .await
            .map_err(conflict_as("a billing row with this Stripe customer"))?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_plan_override(&self, account: AccountId, plan: Option<&str>, event: &NewAuditEvent) -> Result<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(ENSURE_ROW).bind(*account.as_uuid()).execute(&mut *tx).await?;
        sqlx::query("UPDATE account_billing SET plan_override = $2 WHERE account_id = $1")
            .bind(*account.as_uuid())
            .bind(plan)
            .execute(&mut *tx)
            .await?;
        audit(&mut tx, event, certdns_core::now()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn apply_stripe_event(
        &self,
        event_id: &str,
        event_type: &str,
        account: AccountId,
        change: &BillingChange,
        event: Option<&NewAuditEvent>,
        at: OffsetDateTime,
    ) -> Result<EventOutcome> {
        let mut tx = self.write.begin().await?;
        let fresh: Option<(String,)> = sqlx::query_as(
            "INSERT INTO stripe_events (id, type, received_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(event_id)
        .bind(event_type)
        .bind(at.unix_timestamp())
        .fetch_optional(&mut *tx)
        .await?;
        if fresh.is_none() {
            return Ok(EventOutcome::Replay);
        }
        sqlx::query(ENSURE_ROW).bind(*account.as_uuid()).execute(&mut *tx).await?;
        let (statement, texts, time) = change_statement(change);
        let mut query = sqlx::query_as::<DB, (Uuid,)>(statement).bind(*account.as_uuid());
        for text in texts {
            query = query.bind(text);
        }
        let changed = query
            .bind(time)
            .fetch_optional(&mut *tx)
            .await
            .map_err(conflict_as("a billing row with this Stripe customer"))?;
        let outcome = if changed.is_some() { EventOutcome::Applied } else { EventOutcome::Stale };
        if let (EventOutcome::Applied, Some(event)) = (outcome, event) {
            audit(&mut tx, event, at).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    async fn note_stripe_event(&self, event_id: &str, event_type: &str, at: OffsetDateTime) -> Result<bool> {
        let fresh: Option<(String,)> = sqlx::query_as(
            "INSERT INTO stripe_events (id, type, received_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(event_id)
        .bind(event_type)
        .bind(at.unix_timestamp())
        .fetch_optional(&self.write)
        .await?;
        Ok(fresh.is_some())
    }

    async fn accounts_with_failed_payment(&self) -> Result<Vec<AccountId>> {
        let rows: Vec<(Uuid,)> =
            sqlx::query_as("SELECT account_id FROM account_billing WHERE payment_failed_at IS NOT NULL")
                .fetch_all(&self.read)
                .await?;
        Ok(rows.into_iter().map(|(id,)| AccountId::from_uuid(id)).collect())
    }

    async fn payment_warnings_sent(&self, account: AccountId, failed_at: OffsetDateTime) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT kind FROM payment_warnings WHERE account_id = $1 AND failed_at = $2 AND sent_at IS NOT NULL \
             ORDER BY sent_at",
        )
        .bind(*account.as_uuid())
        .bind(failed_at.unix_timestamp())
        .fetch_all(&self.write)
        .await?;
        Ok(rows.into_iter().map(|(kind,)| kind).collect())
    }

    async fn claim_payment_warning(
        &self,
        account: AccountId,
        failed_at: OffsetDateTime,
        kind: &str,
        now: OffsetDateTime,
        stale_before: OffsetDateTime,
    ) -> Result<bool> {
        // One statement: of several portal instances, one gets the row back.
        let claimed: Option<(String,)> = sqlx::query_as(
            "INSERT INTO payment_warnings (account_id, failed_at, kind, claimed_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account_id, failed_at, kind) DO UPDATE SET claimed_at = excluded.claimed_at \
             WHERE payment_warnings.sent_at IS NULL AND payment_warnings.claimed_at < $5 RETURNING kind",
        )
        .bind(*account.as_uuid())
        .bind(failed_at.unix_timestamp())
        .bind(kind)
        .bind(now.unix_timestamp())
        .bind(stale_before.unix_timestamp())
        .fetch_optional(&self.write)
        .await?;
        Ok(claimed.is_some())
    }

    async fn release_payment_warning(&self, account: AccountId, failed_at: OffsetDateTime, kind: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM payment_warnings WHERE account_id = $1 AND failed_at = $2 AND kind = $3 AND sent_at IS NULL",
        )
        .bind(*account.as_uuid())
        .bind(failed_at.unix_timestamp())
        .bind(kind)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn payment_warning_sent(
        &self,
        account: AccountId,
        failed_at: OffsetDateTime,
        kind: &str,
        event: &NewAuditEvent,
        now: OffsetDateTime,
    ) -> Result<Option<u32>> {
        let mut tx = self.write.begin().await?;
        let marked: Option<(String,)> = sqlx::query_as(
            "UPDATE payment_warnings SET sent_at = $4 \
             WHERE account_id = $1 AND failed_at = $2 AND kind = $3 AND sent_at IS NULL RETURNING kind",
        )
        .bind(*account.as_uuid())
        .bind(failed_at.unix_timestamp())
        .bind(kind)
        .bind(now.unix_timestamp())
        .fetch_optional(&mut *tx)
        .await?;
        if marked.is_none() {
            return Ok(None);
        }
        let counted: Option<(i64,)> = sqlx::query_as(
            "UPDATE account_billing SET warnings_sent = warnings_sent + 1, last_warning_at = $3 \
             WHERE account_id = $1 AND payment_failed_at = $2 RETURNING warnings_sent",
        )
        .bind(*account.as_uuid())
        .bind(failed_at.unix_timestamp())
        .bind(now.unix_timestamp())
        .fetch_optional(&mut *tx)
        .await?;
        audit(&mut tx, event, now).await?;
        tx.commit().await?;
        counted.map(|(n,)| u32::try_from(n).map_err(|e| corrupt("account_billing.warnings_sent", e))).transpose()
    }

    async fn updates_on_day(&self, account: AccountId, day: i64, limit: u32) -> Result<Vec<NameUpdates>> {
        let rows: Vec<(Uuid, Option<String>, i64)> = sqlx::query_as(
            "SELECT subdomain, domain, updates_today FROM registrations \
             WHERE account_id = $1 AND updates_day = $2 AND updates_today > 0 \
             ORDER BY updates_today DESC, subdomain LIMIT $3",
        )
        .bind(*account.as_uuid())
        .bind(day)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|(subdomain, domain, updates)| {
                Ok(NameUpdates {
                    subdomain: Subdomain::from_uuid(subdomain),
                    domain,
                    updates: u64::try_from(updates).map_err(|e| corrupt("registrations.updates_today", e))?,
                })
            })
            .collect()
    }

    async fn count_registrations(&self, account: AccountId) -> Result<u64> {
        count(&self.read, "SELECT COUNT(*) FROM registrations WHERE account_id = $1", account).await
    }

    async fn count_active_license_keys(&self, account: AccountId) -> Result<u64> {
        let sql = "SELECT COUNT(*) FROM license_keys WHERE account_id = $1 AND revoked_at IS NULL";
        count(&self.read, sql, account).await
    }
}

async fn count<DB>(pool: &Pool<DB>, sql: &'static str, account: AccountId) -> Result<u64>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> Uuid: Encode<'a, DB> + Type<DB>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
{
    let (n,): (i64,) = sqlx::query_as(sql).bind(*account.as_uuid()).fetch_one(pool).await?;
    u64::try_from(n).map_err(|e| corrupt("count", e))
}

async fn audit<DB>(tx: &mut sqlx::Transaction<'static, DB>, e: &NewAuditEvent, at: OffsetDateTime) -> Result<()>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> Option<&'a str>: Encode<'a, DB> + Type<DB>,
    for<'a> Option<Uuid>: Encode<'a, DB> + Type<DB>,
    for<'a> OffsetDateTime: Encode<'a, DB> + Type<DB>,
{
    sqlx::query(INSERT_AUDIT)
        .bind(at)
        .bind(e.account_id.map(|a| *a.as_uuid()))
        .bind(e.kind.as_str())
        .bind(e.client_addr.map(|a| a.to_string()).as_deref())
        .bind(e.detail.to_string().as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
