//! [`AlertStore`] over sqlx, generic over the database like [`crate::SqlStore`]
//! (portable SQL: `UPDATE … RETURNING` and `ON CONFLICT` exist on both backends).

use async_trait::async_trait;
use certdns_core::{AccountId, KeyId};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};
use uuid::Uuid;

use crate::alerts::{
    AlertStore, AttemptOutcome, AuthFailureBurst, AuthFailureCount, Delivery, DeliveryState, DueDelivery, GraceEnding,
    NewDelivery, PreviousSecretUse, WebhookEndpoint,
};
use crate::{Result, StoreError};

/// The alerting view of a store's pools (see [`crate::Store::alerts`]).
pub struct SqlAlertStore<DB: Database> {
    pub(crate) read: Pool<DB>,
    pub(crate) write: Pool<DB>,
}

#[derive(FromRow)]
pub struct WebhookRow {
    id: Uuid,
    account_id: Uuid,
    url: String,
    secret: String,
    events: String,
    created_at: i64,
}

#[derive(FromRow)]
pub struct DeliveryRow {
    id: Uuid,
    endpoint_id: Uuid,
    account_id: Uuid,
    event_id: String,
    event_type: String,
    payload: String,
    created_at: i64,
    state: String,
    attempts: i64,
    next_attempt_at: i64,
    last_attempt_at: Option<i64>,
    last_status: Option<i64>,
    last_error: String,
}

#[derive(FromRow)]
pub struct DueDeliveryRow {
    #[sqlx(flatten)]
    delivery: DeliveryRow,
    url: String,
    secret: String,
}

#[derive(FromRow)]
pub struct BurstRow {
    subject: String,
    account_id: Uuid,
    first_at: i64,
    last_at: i64,
    failures: i64,
}

#[derive(FromRow)]
pub struct GraceRow {
    id: String,
    account_id: Uuid,
    name: String,
    previous_used_at: i64,
    previous_used_until: i64,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

impl From<WebhookRow> for WebhookEndpoint {
    fn from(r: WebhookRow) -> Self {
        WebhookEndpoint {
            id: r.id,
            account_id: AccountId::from_uuid(r.account_id),
            url: r.url,
            secret: r.secret,
            events: r.events.split(' ').filter(|e| !e.is_empty()).map(str::to_owned).collect(),
            created_at: r.created_at,
        }
    }
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> Result<Self> {
        Ok(Delivery {
            id: r.id,
            endpoint_id: r.endpoint_id,
            account_id: AccountId::from_uuid(r.account_id),
            event_id: r.event_id,
            event_type: r.event_type,
            payload: r.payload,
            created_at: r.created_at,
            state: DeliveryState::parse(&r.state).ok_or_else(|| corrupt("webhook_deliveries.state", &r.state))?,
            attempts: u32::try_from(r.attempts).map_err(|e| corrupt("webhook_deliveries.attempts", e))?,
            next_attempt_at: r.next_attempt_at,
            last_attempt_at: r.last_attempt_at,
            last_status: r
                .last_status
                .map(u16::try_from)
                .transpose()
                .map_err(|e| corrupt("webhook_deliveries.last_status", e))?,
            last_error: r.last_error,
        })
    }
}

const DELIVERY_COLUMNS: &str = "d.id, d.endpoint_id, d.account_id, d.event_id, d.event_type, d.payload, \
                                d.created_at, d.state, d.attempts, d.next_attempt_at, d.last_attempt_at, \
                                d.last_status, d.last_error";

#[async_trait]
impl<DB> AlertStore for SqlAlertStore<DB>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> Uuid: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    for<'a> Option<i64>: Encode<'a, DB> + Type<DB>,
    for<'r> WebhookRow: FromRow<'r, DB::Row>,
    for<'r> DeliveryRow: FromRow<'r, DB::Row>,
    for<'r> DueDeliveryRow: FromRow<'r, DB::Row>,
    for<'r> BurstRow: FromRow<'r, DB::Row>,
    for<'r> GraceRow: FromRow<'r, DB::Row>,
    for<'r> (String, i64): FromRow<'r, DB::Row>,
    for<'r> (Uuid,): FromRow<'r, DB::Row>,
{
    async fn email_settings(&self, account: AccountId) -> Result<Vec<(String, bool)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT event_type, email FROM alert_email_settings WHERE account_id = $1")
                .bind(*account.as_uuid())
                .fetch_all(&self.read)
                .await?;
        Ok(rows.into_iter().map(|(event, email)| (event, email != 0)).collect())
    }

    async fn set_email_setting(&self, account: AccountId, event_type: &str, email: bool) -> Result<()> {
        if email {
            // The default: nothing to keep.
            sqlx::query("DELETE FROM alert_email_settings WHERE account_id = $1 AND event_type = $2")
                .bind(*account.as_uuid())
                .bind(event_type)
                .execute(&self.write)
                .await?;
        } else {
            sqlx::query(
                "INSERT INTO alert_email_settings (account_id, event_type, email) VALUES ($1, $2, 0) \
                 ON CONFLICT (account_id, event_type) DO UPDATE SET email = 0",
            )
            .bind(*account.as_uuid())
            .bind(event_type)
            .execute(&self.write)
            .await?;
        }
        Ok(())
    }

    async fn create_webhook(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, account_id, url, secret, events, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(endpoint.id)
        .bind(*endpoint.account_id.as_uuid())
        .bind(endpoint.url.as_str())
        .bind(endpoint.secret.as_str())
        .bind(endpoint.events.join(" ").as_str())
        .bind(endpoint.created_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn webhooks(&self, account: AccountId) -> Result<Vec<WebhookEndpoint>> {
        let rows: Vec<WebhookRow> = sqlx::query_as(
            "SELECT id, account_id, url, secret, events, created_at FROM webhook_endpoints \
             WHERE account_id = $1 ORDER BY created_at, id",
        )
        .bind(*account.as_uuid())
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(WebhookEndpoint::from).collect())
    }

    async fn delete_webhook(&self, account: AccountId, id: Uuid) -> Result<()> {
        let done: Option<(Uuid,)> =
            sqlx::query_as("DELETE FROM webhook_endpoints WHERE id = $1 AND account_id = $2 RETURNING id")
                .bind(id)
                .bind(*account.as_uuid())
                .fetch_optional(&self.write)
                .await?;
        done.map(|_| ()).ok_or(StoreError::NotFound)
    }

    async fn enqueue_deliveries(&self, deliveries: &[NewDelivery]) -> Result<()> {
        let mut tx = self.write.begin().await?;
        for d in deliveries {
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, endpoint_id, account_id, event_id, event_type, payload, \
                 created_at, state, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $7)",
            )
            .bind(d.id)
            .bind(d.endpoint_id)
            .bind(*d.account_id.as_uuid())
            .bind(d.event_id.as_str())
            .bind(d.event_type.as_str())
            .bind(d.payload.as_str())
            .bind(d.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_due_deliveries(&self, now: i64, lease: i64, limit: u32) -> Result<Vec<DueDelivery>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS}, e.url, e.secret FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.state = 'pending' AND d.next_attempt_at <= $1 ORDER BY d.next_attempt_at LIMIT $2"
        ));
        let rows: Vec<DueDeliveryRow> =
            sqlx::query_as(sql).bind(now).bind(i64::from(limit)).fetch_all(&self.write).await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            // Compare-and-set on the time read: of two instances, one sends it.
            let won: Option<(Uuid,)> = sqlx::query_as(
                "UPDATE webhook_deliveries SET next_attempt_at = $1 \
                 WHERE id = $2 AND state = 'pending' AND next_attempt_at = $3 RETURNING id",
            )
            .bind(now + lease)
            .bind(row.delivery.id)
            .bind(row.delivery.next_attempt_at)
            .fetch_optional(&self.write)
            .await?;
            if won.is_some() {
                claimed.push(DueDelivery { delivery: row.delivery.try_into()?, url: row.url, secret: row.secret });
            }
        }
        Ok(claimed)
    }

    async fn record_attempt(&self, outcome: &AttemptOutcome) -> Result<()> {
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $2, attempts = attempts + 1, next_attempt_at = $3, \
             last_attempt_at = $4, last_status = $5, last_error = $6 WHERE id = $1",
        )
        .bind(outcome.id)
        .bind(outcome.state.as_str())
        .bind(outcome.next_attempt_at)
        .bind(outcome.at)
        .bind(outcome.status.map(i64::from))
        .bind(outcome.error.as_str())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn deliveries(&self, account: AccountId, limit: u32) -> Result<Vec<Delivery>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.account_id = $1 \
             ORDER BY d.created_at DESC, d.id LIMIT $2"
        ));
        let rows: Vec<DeliveryRow> =
            sqlx::query_as(sql).bind(*account.as_uuid()).bind(i64::from(limit)).fetch_all(&self.read).await?;
        rows.into_iter().map(Delivery::try_from).collect()
    }

    async fn add_auth_failures(&self, counts: &[AuthFailureCount], now: i64, quiet_secs: i64) -> Result<()> {
        let mut tx = self.write.begin().await?;
        for c in counts {
            // SET reads the row as it was, so every CASE sees the old last_at.
            sqlx::query(
                "INSERT INTO auth_failure_bursts (subject, account_id, first_at, last_at, failures, notified) \
                 VALUES ($1, $2, $3, $3, $4, 0) ON CONFLICT (subject) DO UPDATE SET \
                 first_at = CASE WHEN auth_failure_bursts.last_at < $5 THEN $3 ELSE auth_failure_bursts.first_at END, \
                 failures = CASE WHEN auth_failure_bursts.last_at < $5 THEN $4 \
                                 ELSE auth_failure_bursts.failures + $4 END, \
                 notified = CASE WHEN auth_failure_bursts.last_at < $5 THEN 0 ELSE auth_failure_bursts.notified END, \
                 last_at = $3, account_id = $2",
            )
            .bind(c.subject.as_str())
            .bind(*c.account.as_uuid())
            .bind(now)
            .bind(i64::from(c.failures))
            .bind(now - quiet_secs)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_auth_failure_bursts(&self, threshold: u64) -> Result<Vec<AuthFailureBurst>> {
        let rows: Vec<BurstRow> = sqlx::query_as(
            "UPDATE auth_failure_bursts SET notified = 1 WHERE notified = 0 AND failures >= $1 \
             RETURNING subject, account_id, first_at, last_at, failures",
        )
        .bind(i64::try_from(threshold).unwrap_or(i64::MAX))
        .fetch_all(&self.write)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuthFailureBurst {
                subject: r.subject,
                account: AccountId::from_uuid(r.account_id),
                first_at: r.first_at,
                last_at: r.last_at,
                failures: u64::try_from(r.failures).unwrap_or_default(),
            })
            .collect())
    }

    async fn note_previous_secret_use(&self, uses: &[PreviousSecretUse]) -> Result<()> {
        let mut tx = self.write.begin().await?;
        for u in uses {
            sqlx::query("UPDATE license_keys SET previous_used_at = $2, previous_used_until = $3 WHERE id = $1")
                .bind(u.key.as_str())
                .bind(u.at)
                .bind(u.until)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_grace_ending(&self, now: i64, within: i64) -> Result<Vec<GraceEnding>> {
        let rows: Vec<GraceRow> = sqlx::query_as(
            "UPDATE license_keys SET grace_notified_until = previous_used_until \
             WHERE revoked_at IS NULL AND previous_used_until IS NOT NULL \
               AND previous_used_until > $1 AND previous_used_until <= $2 \
               AND (grace_notified_until IS NULL OR grace_notified_until <> previous_used_until) \
             RETURNING id, account_id, name, previous_used_at, previous_used_until",
        )
        .bind(now)
        .bind(now.saturating_add(within))
        .fetch_all(&self.write)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(GraceEnding {
                    key: r.id.parse::<KeyId>().map_err(|e| corrupt("license_keys.id", e))?,
                    account: AccountId::from_uuid(r.account_id),
                    name: r.name,
                    last_used_at: r.previous_used_at,
                    until: r.previous_used_until,
                })
            })
            .collect()
    }

    async fn prune_alerts(&self, before: i64) -> Result<u64> {
        let deliveries: Vec<(Uuid,)> =
            sqlx::query_as("DELETE FROM webhook_deliveries WHERE state <> 'pending' AND created_at < $1 RETURNING id")
                .bind(before)
                .fetch_all(&self.write)
                .await?;
        let bursts: Vec<(String, i64)> =
            sqlx::query_as("DELETE FROM auth_failure_bursts WHERE last_at < $1 RETURNING subject, last_at")
                .bind(before)
                .fetch_all(&self.write)
                .await?;
        Ok((deliveries.len() + bursts.len()) as u64)
    }
}
