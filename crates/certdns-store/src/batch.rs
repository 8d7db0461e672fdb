//! The `/update` fast path as one statement for many writes.
//!
//! Each write is a conditional update: credentials, subdomain, no allow-from list,
//! active account and unrevoked key are all in the `WHERE`. Sent one by one, the
//! per-statement costs dominate (on SQLite the hand-off to the connection's worker
//! thread; on Postgres the round trip, executor start-up and commit), so the API
//! gathers concurrent writes (`certdns-api`'s `update_batch`) and applies them
//! here together.
//!
//! A statement updates a row at most once, so writes to the same registration go
//! into successive statements ("rounds"), in order, inside one transaction: each
//! sees the previous one's values and gets the next version, and the batch commits
//! whole or not at all.
//!
//! Postgres: every statement locks its rows in username order, so batches running
//! at once — from this process or another API instance — always wait for each
//! other in one order and cannot deadlock. A batch that still fails with a
//! deadlock or serialization error (against some other multi-row writer) wrote
//! nothing and is retried.

use std::collections::HashMap;
use std::sync::LazyLock;

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, FromRow, PgConnection, PgPool, SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::AuthorizedWrite;
use crate::rows::{TxtRow, below_daily_cap, count_update, daily_cap, prepend_recent};

/// How long opening the Postgres batch connection may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Attempts of a Postgres batch that failed with a deadlock or serialization error.
const PG_ATTEMPTS: usize = 3;

#[derive(FromRow)]
struct ReturnedRow {
    username: Uuid,
    subdomain: Uuid,
    txt_version: i64,
    txt_recent: String,
}

/// Where batches are written, typed by backend.
pub(crate) enum BatchWriter {
    /// The one-connection write pool.
    Sqlite(SqlitePool),
    /// A connection of its own (batches are written one at a time), opened on
    /// first use and again after it fails.
    ///
    /// Its planner may not pick sequential scans, hash or merge joins, so the
    /// batch statement always runs as the index lookups it is written for: the
    /// plan is cached per connection, and on a small, much-updated table the
    /// statistics otherwise made some connections cache a plan that scans every
    /// registration per batch (throughput halved for the life of the connection).
    Postgres { options: Box<PgConnectOptions>, conn: Mutex<Option<PgConnection>> },
}

impl BatchWriter {
    pub fn postgres(pool: &PgPool) -> Self {
        let options = (*pool.connect_options()).clone().options([
            ("enable_seqscan", "off"),
            ("enable_hashjoin", "off"),
            ("enable_mergejoin", "off"),
            // A stuck batch holds up every /update of this instance.
            ("statement_timeout", "10s"),
        ]);
        BatchWriter::Postgres { options: Box::new(options), conn: Mutex::new(None) }
    }

    /// Applies `writes`; one entry per write, in order: the new row, or `None` if
    /// the write was not authorized. `limit` is the length `txt_recent` keeps.
    pub async fn write(
        &self,
        writes: &[AuthorizedWrite],
        limit: i64,
        at: OffsetDateTime,
    ) -> Result<Vec<Option<TxtRow>>, sqlx::Error> {
        let rounds = rounds(writes);
        let mut rows = Vec::with_capacity(writes.len());
        match self {
            BatchWriter::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                if rounds.len() == 1 {
                    rows.extend(sqlite_round(&mut conn, &rounds[0], limit, at).await?);
                } else {
                    let mut tx = conn.begin().await?;
                    for round in &rounds {
                        rows.extend(sqlite_round(&mut tx, round, limit, at).await?);
                    }
                    tx.commit().await?;
                }
            }
            BatchWriter::Postgres { options, conn } => {
                let mut slot = conn.lock().await;
                let conn = match slot.as_mut() {
                    Some(conn) => conn,
                    None => {
                        let connect = PgConnection::connect_with(options.as_ref());
                        let timed_out = || sqlx::Error::PoolTimedOut;
                        slot.insert(tokio::time::timeout(CONNECT_TIMEOUT, connect).await.map_err(|_| timed_out())??)
                    }
                };
                let mut attempt = 1;
                loop {
                    match postgres_rounds(conn, &rounds, limit, at).await {
                        Ok(all) => break rows.extend(all),
                        Err(e) if attempt < PG_ATTEMPTS && is_lock_conflict(&e) => attempt += 1,
                        Err(e) => {
                            // A database error leaves the connection usable; anything
                            // else (I/O, protocol) may not.
                            if e.as_database_error().is_none() {
                                *slot = None;
                            }
                            return Err(e);
                        }
                    }
                }
            }
        }
        // Back into the callers' order.
        let mut by_position: Vec<Option<TxtRow>> = (0..writes.len()).map(|_| None).collect();
        for (position, row) in rows {
            by_position[position] = row;
        }
        Ok(by_position)
    }
}

/// The writes split into rounds of distinct usernames: the k-th write to a
/// registration goes into round k. Each entry keeps its position in the batch.
fn rounds(writes: &[AuthorizedWrite]) -> Vec<Vec<(usize, &AuthorizedWrite)>> {
    let mut seen: HashMap<Uuid, usize> = HashMap::with_capacity(writes.len());
    let mut rounds: Vec<Vec<(usize, &AuthorizedWrite)>> = Vec::new();
    for (position, write) in writes.iter().enumerate() {
        let round = seen.entry(*write.username.as_uuid()).or_insert(0);
        if *round == rounds.len() {
            rounds.push(Vec::new());
        }
        rounds[*round].push((position, write));
        *round += 1;
    }
    rounds
}

/// Matches the rows a round's statement returned back to the round's writes.
fn match_rows(round: &[(usize, &AuthorizedWrite)], returned: Vec<ReturnedRow>) -> Vec<(usize, Option<TxtRow>)> {
    let mut by_user: HashMap<Uuid, ReturnedRow> = returned.into_iter().map(|r| (r.username, r)).collect();
    round
        .iter()
        .map(|(position, w)| {
            let row = by_user.remove(w.username.as_uuid()).map(|r| TxtRow {
                subdomain: r.subdomain,
                txt_version: r.txt_version,
                txt_recent: r.txt_recent,
                persist_record: None,
            });
            (*position, row)
        })
        .collect()
}

/// Postgres `deadlock_detected` or `serialization_failure`.
fn is_lock_conflict(e: &sqlx::Error) -> bool {
    e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "40P01" || c == "40001")
}

/// The checks every fast-path write makes, shared by both statements; `v` is the
/// batch's row for a registration. Each check is an index lookup of this row's
/// account and key (`IN (SELECT …)` would hash every active account per
/// statement). `NOT EXISTS` on revoked keys also passes a registration without one.
/// An account with an unpaid invoice takes the checked path, where the billing
/// rules decide (they are about time and warnings, and such accounts are few);
/// so does a registration at the write's daily cap (`below_daily_cap`), where its
/// own plan's limit decides. A persist registration is never written here: its
/// record is the customer's, set in the portal or the account API only.
const AUTHORIZED: &str = "registrations.username = v.username AND registrations.password_hash = v.hash \
     AND registrations.kind = 'challenge' \
     AND registrations.subdomain = v.sub AND registrations.allow_from = '[]' \
     AND (v.account IS NULL OR registrations.account_id = v.account) \
     AND EXISTS (SELECT 1 FROM accounts a WHERE a.id = registrations.account_id AND a.status = 'active') \
     AND NOT EXISTS (SELECT 1 FROM license_keys k \
                     WHERE k.id = registrations.license_key_id AND k.revoked_at IS NOT NULL) \
     AND NOT EXISTS (SELECT 1 FROM account_billing b \
                     WHERE b.account_id = registrations.account_id AND b.payment_failed_at IS NOT NULL)";

async fn sqlite_round(
    conn: &mut SqliteConnection,
    round: &[(usize, &AuthorizedWrite)],
    limit: i64,
    at: OffsetDateTime,
) -> Result<Vec<(usize, Option<TxtRow>)>, sqlx::Error> {
    let mut sql = format!(
        "UPDATE registrations SET txt_version = txt_version + 1, last_update_at = v.at, txt_recent = {}, {} FROM (",
        prepend_recent("v.value", "v.lim"),
        count_update("v.day"),
    );
    for i in 0..round.len() {
        if i > 0 {
            sql.push_str(" UNION ALL ");
        }
        sql.push_str(
            "SELECT ? AS username, ? AS hash, ? AS sub, ? AS account, ? AS value, ? AS at, CAST(? AS INTEGER) AS lim, \
             CAST(? AS INTEGER) AS day, CAST(? AS INTEGER) AS cap",
        );
    }
    sql.push_str(") AS v WHERE ");
    sql.push_str(AUTHORIZED);
    sql.push_str(" AND ");
    sql.push_str(&below_daily_cap("v.day", "v.cap"));
    sql.push_str(" RETURNING username, subdomain, txt_version, txt_recent");
    let mut query = sqlx::query_as::<_, ReturnedRow>(AssertSqlSafe(sql));
    for (_, w) in round {
        query = query
            .bind(*w.username.as_uuid())
            .bind(w.password_hash.as_str())
            .bind(*w.subdomain.as_uuid())
            .bind(w.account.map(|a| *a.as_uuid()))
            .bind(w.value.as_str())
            .bind(at)
            .bind(limit)
            .bind(certdns_core::utc_day(at))
            .bind(daily_cap(w.daily_cap));
    }
    Ok(match_rows(round, query.fetch_all(conn).await?))
}

/// All rounds of a batch, in one transaction when there is more than one.
async fn postgres_rounds(
    conn: &mut PgConnection,
    rounds: &[Vec<(usize, &AuthorizedWrite)>],
    limit: i64,
    at: OffsetDateTime,
) -> Result<Vec<(usize, Option<TxtRow>)>, sqlx::Error> {
    if let [round] = rounds {
        return postgres_round(conn, round, limit, at).await;
    }
    let mut tx = conn.begin().await?;
    let mut rows = Vec::new();
    for round in rounds {
        rows.extend(postgres_round(&mut tx, round, limit, at).await?);
    }
    tx.commit().await?;
    Ok(rows)
}

/// One statement for any round size (the writes travel as arrays), so Postgres
/// plans it once per connection.
///
/// The lateral subquery makes the plan independent of table statistics: for each
/// write in array order, one index lookup by username, checked and locked. The
/// writes are sorted by username, so every batch locks its rows in one global
/// order (see the module comment).
async fn postgres_round(
    conn: &mut PgConnection,
    round: &[(usize, &AuthorizedWrite)],
    limit: i64,
    at: OffsetDateTime,
) -> Result<Vec<(usize, Option<TxtRow>)>, sqlx::Error> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH authorized AS MATERIALIZED ( \
                 SELECT r.id, v.value, v.lim FROM \
                     (SELECT *, $6::int4 AS lim, $9::int8 AS day FROM unnest($1::uuid[], $2::text[], \
                         $3::uuid[], $4::uuid[], $5::text[], $8::int8[]) AS t(username, hash, sub, account, value, cap)) v \
                 CROSS JOIN LATERAL (SELECT registrations.id FROM registrations \
                     WHERE {AUTHORIZED} AND {} FOR UPDATE OF registrations) r) \
             UPDATE registrations SET txt_version = registrations.txt_version + 1, last_update_at = $7, \
                 txt_recent = {}, {} \
             FROM authorized v WHERE registrations.id = v.id \
             RETURNING registrations.username, registrations.subdomain, registrations.txt_version, \
                 registrations.txt_recent",
            below_daily_cap("v.day", "v.cap"),
            prepend_recent("v.value", "v.lim"),
            count_update("$9::int8"),
        )
    });
    let mut sorted = round.to_vec();
    sorted.sort_unstable_by_key(|(_, w)| *w.username.as_uuid());
    let round = sorted.as_slice();
    let returned = sqlx::query_as::<_, ReturnedRow>(AssertSqlSafe(SQL.as_str()))
        .bind(round.iter().map(|(_, w)| *w.username.as_uuid()).collect::<Vec<_>>())
        .bind(round.iter().map(|(_, w)| w.password_hash.as_str()).collect::<Vec<_>>())
        .bind(round.iter().map(|(_, w)| *w.subdomain.as_uuid()).collect::<Vec<_>>())
        .bind(round.iter().map(|(_, w)| w.account.map(|a| *a.as_uuid())).collect::<Vec<_>>())
        .bind(round.iter().map(|(_, w)| w.value.as_str()).collect::<Vec<_>>())
        .bind(i32::try_from(limit).unwrap_or(i32::MAX))
        .bind(at)
        .bind(round.iter().map(|(_, w)| daily_cap(w.daily_cap)).collect::<Vec<_>>())
        .bind(certdns_core::utc_day(at))
        .fetch_all(conn)
        .await?;
    Ok(match_rows(round, returned))
}
