//! SQLite write batching for the `/update` fast path.
//!
//! SQLite has one writer, and every statement sqlx sends it is a hand-off to the
//! connection's worker thread and back. Under load that hand-off, not SQLite,
//! bounds `/update`. The batcher gathers the fast-path writes that are waiting
//! and applies up to [`MAX_BATCH`] of them in one `UPDATE … FROM (…)` statement.
//! A statement updates a row at most once, so writes to the same registration go
//! into successive statements, in arrival order: each still sees the previous
//! one's values and gets the next version. Postgres does not batch: batches from
//! several API instances could deadlock on each other's row locks, and group
//! commit already shares WAL flushes between concurrent statements.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use sqlx::{AssertSqlSafe, FromRow, SqlitePool};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::sql::TxtRow;
use crate::{Result, StoreError};

const MAX_BATCH: usize = 32;

pub(crate) struct FastWrite {
    pub username: Uuid,
    pub password_hash: String,
    pub subdomain: Uuid,
    pub account: Option<Uuid>,
    pub value: String,
    pub limit: i64,
    pub at: OffsetDateTime,
    pub reply: oneshot::Sender<Result<Option<TxtRow>>>,
}

#[derive(FromRow)]
struct ReturnedRow {
    username: Uuid,
    subdomain: Uuid,
    txt_version: i64,
    txt_recent: String,
}

/// Handle to the batching writer task; the task ends when every handle is dropped.
#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::Sender<FastWrite>,
}

impl Batcher {
    pub fn spawn(pool: SqlitePool) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(run(pool, rx));
        Self { tx }
    }

    pub async fn submit(
        &self,
        write: FastWrite,
        reply: oneshot::Receiver<Result<Option<TxtRow>>>,
    ) -> Result<Option<TxtRow>> {
        let gone = || StoreError::Unavailable("the SQLite write batcher stopped".into());
        self.tx.send(write).await.map_err(|_| gone())?;
        reply.await.map_err(|_| gone())?
    }
}

async fn run(pool: SqlitePool, mut rx: mpsc::Receiver<FastWrite>) {
    let mut pending = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        pending.push(first);
        while pending.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => pending.push(w),
                Err(_) => break,
            }
        }
        while !pending.is_empty() {
            let mut seen = HashSet::new();
            let (round, rest): (Vec<_>, Vec<_>) = pending.drain(..).partition(|w| seen.insert(w.username));
            execute(&pool, round).await;
            pending = rest;
        }
    }
}

async fn execute(pool: &SqlitePool, round: Vec<FastWrite>) {
    let mut sql = String::from(
        "UPDATE registrations SET txt_version = txt_version + 1, last_update_at = v.at, \
         txt_recent = substr(CASE WHEN registrations.txt_recent = '' THEN v.value \
         ELSE v.value || ' ' || registrations.txt_recent END, 1, v.lim) FROM (",
    );
    for i in 0..round.len() {
        if i > 0 {
            sql.push_str(" UNION ALL ");
        }
        let _ = write!(
            sql,
            "SELECT ? AS username, ? AS hash, ? AS sub, ? AS account, ? AS value, ? AS at, CAST(? AS INTEGER) AS lim"
        );
    }
    sql.push_str(
        ") AS v WHERE registrations.username = v.username AND registrations.password_hash = v.hash \
         AND registrations.subdomain = v.sub AND registrations.allow_from = '[]' \
         AND (v.account IS NULL OR registrations.account_id = v.account) \
         AND registrations.account_id IN (SELECT id FROM accounts WHERE status = 'active') \
         AND (registrations.license_key_id IS NULL \
              OR registrations.license_key_id IN (SELECT id FROM license_keys WHERE revoked_at IS NULL)) \
         RETURNING username, subdomain, txt_version, txt_recent",
    );
    let mut query = sqlx::query_as::<_, ReturnedRow>(AssertSqlSafe(sql));
    for w in &round {
        query = query
            .bind(w.username)
            .bind(w.password_hash.as_str())
            .bind(w.subdomain)
            .bind(w.account)
            .bind(w.value.as_str())
            .bind(w.at)
            .bind(w.limit);
    }
    match query.fetch_all(pool).await {
        Ok(rows) => {
            let mut by_user: HashMap<Uuid, ReturnedRow> = rows.into_iter().map(|r| (r.username, r)).collect();
            for w in round {
                let row = by_user.remove(&w.username).map(|r| TxtRow {
                    subdomain: r.subdomain,
                    txt_version: r.txt_version,
                    txt_recent: r.txt_recent,
                });
                let _ = w.reply.send(Ok(row));
            }
        }
        Err(e) => {
            let message = e.to_string();
            for w in round {
                let _ = w.reply.send(Err(StoreError::Unavailable(message.clone())));
            }
        }
    }
}
