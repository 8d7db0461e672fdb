//! The checked TXT write: one statement that writes the value, keeps the newest
//! `keep`, and counts the update of the day — only while the registration is
//! under its daily limit, and only of a challenge registration (no path of
//! `/update` can ever write a persist registration's record).

use std::sync::LazyLock;

use certdns_core::{RegistrationId, TxtValue};
use sqlx::{AssertSqlSafe, Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rows::{TxtRow, below_daily_cap, count_update, daily_cap, prepend_recent, recent_len};
use crate::{Result, StoreError, TxtWrite};

pub(crate) async fn put_txt_within<DB>(
    pool: &Pool<DB>,
    registration: RegistrationId,
    value: &TxtValue,
    keep: usize,
    per_day: Option<u64>,
    at: OffsetDateTime,
) -> Result<TxtWrite>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> Uuid: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    for<'a> OffsetDateTime: Encode<'a, DB> + Type<DB>,
    for<'r> TxtRow: FromRow<'r, DB::Row>,
    for<'r> (i64, i64): FromRow<'r, DB::Row>,
{
    let keep = keep.max(1);
    // One statement on one row: the row lock (Postgres) or the write lock
    // (SQLite) serialises concurrent writers, each computes the new list and the
    // day's count from the committed ones and gets the next version. Truncating
    // to `keep` slots drops the oldest values (acme-dns's rotation).
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "UPDATE registrations SET txt_version = txt_version + 1, last_update_at = $2, txt_recent = {}, {} \
             WHERE id = $1 AND kind = 'challenge' AND {} RETURNING subdomain, txt_version, txt_recent",
            prepend_recent("$3", "CAST($4 AS INTEGER)"),
            count_update("$5"),
            below_daily_cap("$5", "$6"),
        )
    });
    let day = certdns_core::utc_day(at);
    let row: Option<TxtRow> = sqlx::query_as(AssertSqlSafe(SQL.as_str()))
        .bind(*registration.as_uuid())
        .bind(at)
        .bind(value.as_str())
        .bind(recent_len(keep)?)
        .bind(day)
        .bind(daily_cap(per_day))
        .fetch_optional(pool)
        .await?;
    if let Some(row) = row {
        return Ok(TxtWrite::Written(row.into_state(keep)?));
    }
    // Nothing written: no such registration, or its limit is reached.
    let counted: Option<(i64, i64)> =
        sqlx::query_as("SELECT updates_day, updates_today FROM registrations WHERE id = $1 AND kind = 'challenge'")
            .bind(*registration.as_uuid())
            .fetch_optional(pool)
            .await?;
    let (_, used) = counted.ok_or(StoreError::NotFound)?;
    let used = u64::try_from(used).map_err(|e| StoreError::Corrupt(format!("registrations.updates_today: {e}")))?;
    Ok(TxtWrite::DailyLimitReached { used })
}
