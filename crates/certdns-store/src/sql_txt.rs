//! The TXT writes of the checked paths: a challenge registration's values
//! (`remove_txt` here, `put_txt` in `txt_write.rs`: only `kind = 'challenge'` rows, so no path of
//! `/update` can ever write a persist registration) and a persist
//! registration's record (only `kind = 'persist'` rows of the caller's account).

use certdns_core::{AccountId, PersistRecord, RegistrationId, TxtState, TxtValue};
use sqlx::{AssertSqlSafe, Database, Encode, Executor, FromRow, IntoArguments, Type};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rows::TxtRow;
use crate::{Backend, Result, SqlStore, StoreError};

// The row types are the store's own; these methods are crate-private anyway.
#[allow(private_bounds)]
impl<DB> SqlStore<DB>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> Uuid: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    for<'a> OffsetDateTime: Encode<'a, DB> + Type<DB>,
    for<'r> TxtRow: FromRow<'r, DB::Row>,
    for<'r> (i64, String): FromRow<'r, DB::Row>,
{
    pub(crate) async fn withdraw_txt(
        &self,
        registration: RegistrationId,
        value: &TxtValue,
        keep: usize,
        at: OffsetDateTime,
    ) -> Result<Option<TxtState>> {
        // Read and write in one transaction holding the row: `FOR UPDATE` on
        // Postgres; on SQLite the single write connection already serialises.
        // No SQL string surgery that would differ between the backends.
        let lock = if self.backend == Backend::Postgres { " FOR UPDATE" } else { "" };
        let select =
            format!("SELECT txt_version, txt_recent FROM registrations WHERE id = $1 AND kind = 'challenge'{lock}");
        let mut tx = self.write.begin().await?;
        let row: Option<(i64, String)> =
            sqlx::query_as(AssertSqlSafe(select)).bind(*registration.as_uuid()).fetch_optional(&mut *tx).await?;
        let (_, recent) = row.ok_or(StoreError::NotFound)?;
        let held: Vec<&str> = recent.split(' ').filter(|v| !v.is_empty()).collect();
        let kept: Vec<&str> = held.iter().copied().filter(|v| *v != value.as_str()).collect();
        if kept.len() == held.len() {
            return Ok(None);
        }
        let row: TxtRow = sqlx::query_as(
            "UPDATE registrations SET txt_version = txt_version + 1, last_update_at = $2, txt_recent = $3 \
             WHERE id = $1 RETURNING subdomain, txt_version, txt_recent",
        )
        .bind(*registration.as_uuid())
        .bind(at)
        .bind(kept.join(" ").as_str())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        row.into_state(keep).map(Some)
    }

    /// Replaces a persist registration's record as a new version, in one
    /// statement (the row lock orders concurrent writers).
    pub(crate) async fn write_persist_record(
        &self,
        account: AccountId,
        id: RegistrationId,
        record: &PersistRecord,
        at: OffsetDateTime,
    ) -> Result<TxtState> {
        let row: Option<TxtRow> = sqlx::query_as(
            "UPDATE registrations SET txt_version = txt_version + 1, last_update_at = $3, persist_record = $4 \
             WHERE id = $1 AND account_id = $2 AND kind = 'persist' \
             RETURNING subdomain, txt_version, txt_recent, persist_record",
        )
        .bind(*id.as_uuid())
        .bind(*account.as_uuid())
        .bind(at)
        .bind(record.to_txt().as_str())
        .fetch_optional(&self.write)
        .await?;
        row.ok_or(StoreError::NotFound)?.into_state(1)
    }
}
