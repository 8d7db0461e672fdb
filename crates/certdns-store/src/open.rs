use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::batch::BatchWriter;
use crate::{SqlStore, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// How long to wait for a connection before calling the database unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// A Postgres connection idle for longer than this is pinged before it is handed
/// out; one used more recently is trusted. (sqlx's default pings on every acquire,
/// a second round trip per query; a connection that died since is replaced after
/// its first failed query.)
const PING_IF_IDLE: Duration = Duration::from_secs(10);

/// Opens the store a URL names, with default pool sizes.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, 16).await
}

/// Opens the store a URL names. `max_connections` sizes the Postgres pool and the
/// SQLite read pool; SQLite writes always go through one connection, which queues
/// writers in the pool (fair, async) instead of in SQLite's sleeping busy handler.
pub async fn open_with(url: &str, max_connections: u32) -> Result<Arc<dyn Store>, StoreError> {
    Ok(connect(url, max_connections).await?.core())
}

/// The connection pools behind a store; shared by [`open_with`] and
/// [`crate::open_portal_with`], so both views sit on the same connections.
pub(crate) enum Pools {
    Sqlite { read: SqlitePool, write: SqlitePool },
    Postgres(PgPool),
}

impl Pools {
    /// The core [`Store`] over these pools.
    pub(crate) fn core(&self) -> Arc<dyn Store> {
        match self {
            Pools::Sqlite { read, write } => {
                let batches = BatchWriter::Sqlite(write.clone());
                Arc::new(SqlStore::new(Backend::Sqlite, read.clone(), write.clone(), batches))
            }
            Pools::Postgres(pool) => {
                let batches = BatchWriter::postgres(pool);
                Arc::new(SqlStore::new(Backend::Postgres, pool.clone(), pool.clone(), batches))
            }
        }
    }
}

pub(crate) async fn connect(url: &str, max_connections: u32) -> Result<Pools, StoreError> {
    let bad_url = |e: sqlx::Error| StoreError::Unavailable(format!("invalid database URL: {e}"));
    match Backend::of_url(url) {
        Some(Backend::Sqlite) => {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(bad_url)?
                .create_if_missing(true)
                .foreign_keys(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL + NORMAL: a commit survives a crash of the process; only a power
                // loss can drop the last commits. TXT values are re-sent by ACME
                // clients on retry, and fsync-per-update would cap /update at the
                // disk's sync rate.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5));
            // In-process connections cannot drop, so they are never pinged.
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options.clone())
                .await?;
            let read = SqlitePoolOptions::new()
                .max_connections(max_connections.max(1))
                .test_before_acquire(false)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options.read_only(true))
                .await?;
            Ok(Pools::Sqlite { read, write })
        }
        Some(Backend::Postgres) => {
            let options = PgConnectOptions::from_str(url).map_err(bad_url)?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= PING_IF_IDLE {
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(options)
                .await?;
            Ok(Pools::Postgres(pool))
        }
        None => Err(StoreError::Unavailable(format!(
            "unsupported database URL {:?}: expected sqlite:<path> or postgres://…",
            redact(url)
        ))),
    }
}

/// A database URL without its secrets (see [`certdns_core::redact::url`]).
pub fn redact(url: &str) -> String {
    certdns_core::redact::url(url)
}

impl<DB: sqlx::Database> crate::SqlStore<DB> {
    pub(crate) fn new(
        backend: Backend,
        read: sqlx::Pool<DB>,
        write: sqlx::Pool<DB>,
        batches: crate::batch::BatchWriter,
    ) -> Self {
        Self { backend, read, write, batches }
    }

    pub(crate) fn write_pool(&self) -> &sqlx::Pool<DB> {
        &self.write
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite:certdns.sqlite3"), "sqlite:certdns.sqlite3");
    }
}
