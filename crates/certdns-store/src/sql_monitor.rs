//! [`DelegationStore`] over sqlx, for both backends (portable SQL; times the
//! monitor schedules by are integers, so "due" compares numbers everywhere).

use async_trait::async_trait;
use certdns_core::{AccountId, RegistrationId, Subdomain};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::monitor::{CheckRecord, DelegationChange, DelegationStatus, DelegationStore, DueCheck, HISTORY_KEPT};
use crate::sql_portal::SqlPortalStore;
use crate::{Result, StoreError};

#[derive(FromRow)]
pub(crate) struct StatusRow {
    registration_id: Uuid,
    account_id: Uuid,
    domain: String,
    status: String,
    detail: String,
    checked_at: i64,
    changed_at: i64,
    next_check_at: i64,
    failures: i64,
    notified: String,
    renewals: String,
    overdue_notified: i64,
}

#[derive(FromRow)]
pub(crate) struct DueRow {
    #[sqlx(flatten)]
    status: StatusRow,
    subdomain: Uuid,
    current_domain: String,
    acme_account_url: Option<String>,
    kind: String,
    last_update_at: Option<OffsetDateTime>,
}

#[derive(FromRow)]
pub(crate) struct ChangeRow {
    at: i64,
    status: String,
    detail: String,
}

const STATUS_COLUMNS: &str = "s.registration_id, s.account_id, s.domain, s.status, s.detail, s.checked_at, \
                              s.changed_at, s.next_check_at, s.failures, s.notified, s.renewals, \
                              s.overdue_notified";

impl TryFrom<StatusRow> for DelegationStatus {
    type Error = StoreError;
    fn try_from(r: StatusRow) -> Result<Self> {
        Ok(DelegationStatus {
            registration_id: RegistrationId::from_uuid(r.registration_id),
            account_id: AccountId::from_uuid(r.account_id),
            domain: r.domain,
            status: r.status,
            detail: r.detail,
            checked_at: r.checked_at,
            changed_at: r.changed_at,
            next_check_at: r.next_check_at,
            failures: u32::try_from(r.failures)
                .map_err(|e| StoreError::Corrupt(format!("delegation_status.failures: {e}")))?,
            notified: r.notified,
            renewals: r.renewals.split(' ').filter_map(|t| t.parse().ok()).collect(),
            overdue_notified: r.overdue_notified != 0,
        })
    }
}

#[async_trait]
impl<DB> DelegationStore for SqlPortalStore<DB>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> Uuid: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    for<'a> Option<OffsetDateTime>: Encode<'a, DB> + Type<DB>,
    for<'r> StatusRow: FromRow<'r, DB::Row>,
    for<'r> DueRow: FromRow<'r, DB::Row>,
    for<'r> ChangeRow: FromRow<'r, DB::Row>,
    for<'r> (String,): FromRow<'r, DB::Row>,
    for<'r> (Uuid,): FromRow<'r, DB::Row>,
{
    async fn enroll_delegations(&self) -> Result<u64> {
        let added: Vec<(Uuid,)> = sqlx::query_as(
            "INSERT INTO delegation_status (registration_id, account_id, domain, status) \
             SELECT r.id, r.account_id, r.domain, 'pending' FROM registrations r \
             WHERE r.domain IS NOT NULL \
               AND NOT EXISTS (SELECT 1 FROM delegation_status s WHERE s.registration_id = r.id) \
             ON CONFLICT (registration_id) DO NOTHING RETURNING registration_id",
        )
        .fetch_all(self.write())
        .await?;
        Ok(added.len() as u64)
    }

    async fn claim_due_delegations(&self, now: i64, lease: i64, limit: u32) -> Result<Vec<DueCheck>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {STATUS_COLUMNS}, r.subdomain, r.domain AS current_domain, r.acme_account_url, r.kind, \
             r.last_update_at \
             FROM delegation_status s JOIN registrations r ON r.id = s.registration_id \
             WHERE r.domain IS NOT NULL AND (s.next_check_at <= $1 OR s.domain <> r.domain \
               OR (r.last_update_at IS NOT NULL AND (s.seen_update_at IS NULL OR s.seen_update_at <> r.last_update_at))) \
             ORDER BY s.next_check_at LIMIT $2"
        ));
        let rows: Vec<DueRow> = sqlx::query_as(sql).bind(now).bind(i64::from(limit)).fetch_all(self.write()).await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            // Compare-and-set on the time read: of two monitors that read the
            // same row, one claims it.
            let won: Option<(Uuid,)> = sqlx::query_as(
                "UPDATE delegation_status SET next_check_at = $1 WHERE registration_id = $2 AND next_check_at = $3 \
                 RETURNING registration_id",
            )
            .bind(now + lease)
            .bind(row.status.registration_id)
            .bind(row.status.next_check_at)
            .fetch_optional(self.write())
            .await?;
            if won.is_some() {
                claimed.push(DueCheck {
                    subdomain: Subdomain::from_uuid(row.subdomain),
                    domain: row.current_domain,
                    acme_account_url: row.acme_account_url,
                    kind: row.kind.parse().map_err(|e| crate::rows::corrupt("registrations.kind", e))?,
                    last_update_at: row.last_update_at,
                    status: row.status.try_into()?,
                });
            }
        }
        Ok(claimed)
    }

    async fn record_delegation_check(&self, c: &CheckRecord) -> Result<bool> {
        let id = *c.registration_id.as_uuid();
        let renewals = c.renewals.iter().map(i64::to_string).collect::<Vec<_>>().join(" ");
        let mut tx = self.write().begin().await?;
        let before: Option<(String,)> =
            sqlx::query_as("SELECT status FROM delegation_status WHERE registration_id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((before,)) = before else {
            // The registration went away meanwhile.
            tx.rollback().await?;
            return Ok(false);
        };
        let changed = before != c.status;
        sqlx::query(
            "UPDATE delegation_status SET domain = $2, status = $3, detail = $4, checked_at = $5, next_check_at = $6, \
             failures = $7, seen_update_at = $8, renewals = $9, \
             changed_at = CASE WHEN status <> $3 THEN $5 ELSE changed_at END \
             WHERE registration_id = $1",
        )
        .bind(id)
        .bind(c.domain.as_str())
        .bind(c.status.as_str())
        .bind(c.detail.as_str())
        .bind(c.checked_at)
        .bind(c.next_check_at)
        .bind(i64::from(c.failures))
        .bind(c.seen_update_at)
        .bind(renewals.as_str())
        .execute(&mut *tx)
        .await?;
        if changed {
            sqlx::query("INSERT INTO delegation_history (registration_id, at, status, detail) VALUES ($1, $2, $3, $4)")
                .bind(id)
                .bind(c.checked_at)
                .bind(c.status.as_str())
                .bind(c.detail.as_str())
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "DELETE FROM delegation_history WHERE registration_id = $1 AND id NOT IN \
                 (SELECT id FROM delegation_history WHERE registration_id = $1 ORDER BY id DESC LIMIT $2)",
            )
            .bind(id)
            .bind(HISTORY_KEPT)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn mark_delegation_notified(&self, registration: RegistrationId, state: &str) -> Result<bool> {
        let done: Option<(Uuid,)> = sqlx::query_as(
            "UPDATE delegation_status SET notified = $2 WHERE registration_id = $1 AND notified <> $2 \
             RETURNING registration_id",
        )
        .bind(*registration.as_uuid())
        .bind(state)
        .fetch_optional(self.write())
        .await?;
        Ok(done.is_some())
    }

    async fn mark_overdue_notified(&self, registration: RegistrationId, told: bool) -> Result<bool> {
        let done: Option<(Uuid,)> = sqlx::query_as(
            "UPDATE delegation_status SET overdue_notified = $2 WHERE registration_id = $1 AND overdue_notified <> $2 \
             RETURNING registration_id",
        )
        .bind(*registration.as_uuid())
        .bind(i64::from(told))
        .fetch_optional(self.write())
        .await?;
        Ok(done.is_some())
    }

    async fn delegation_statuses(&self, account: AccountId) -> Result<Vec<DelegationStatus>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {STATUS_COLUMNS} FROM delegation_status s WHERE s.account_id = $1 ORDER BY s.registration_id"
        ));
        let rows: Vec<StatusRow> = sqlx::query_as(sql).bind(*account.as_uuid()).fetch_all(self.read()).await?;
        rows.into_iter().map(DelegationStatus::try_from).collect()
    }

    async fn delegation_history(
        &self,
        account: AccountId,
        registration: RegistrationId,
    ) -> Result<Vec<DelegationChange>> {
        let rows: Vec<ChangeRow> = sqlx::query_as(
            "SELECT h.at, h.status, h.detail FROM delegation_history h \
             JOIN registrations r ON r.id = h.registration_id \
             WHERE h.registration_id = $1 AND r.account_id = $2 ORDER BY h.id DESC",
        )
        .bind(*registration.as_uuid())
        .bind(*account.as_uuid())
        .fetch_all(self.read())
        .await?;
        Ok(rows.into_iter().map(|r| DelegationChange { at: r.at, status: r.status, detail: r.detail }).collect())
    }
}
