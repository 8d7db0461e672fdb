#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("not found")]
    NotFound,
    /// A row that violates an invariant the code relies on (a value that does not
    /// parse back). Points at manual edits or a bug, never at user input.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(db) if out_of_service(db.as_ref()) => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Database(e),
        }
    }
}

/// Errors that say the database cannot serve now — not that the request is
/// wrong — so callers can answer "try again later" rather than "broken".
fn out_of_service(db: &dyn sqlx::error::DatabaseError) -> bool {
    let Some(code) = db.code() else { return false };
    if db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() {
        // Connection exceptions, insufficient resources (disk full, out of
        // memory, too many connections), operator intervention (shutdown).
        return ["08", "53", "57"].iter().any(|class| code.starts_with(class));
    }
    // SQLite: the primary code is the extended code's low byte. I/O error,
    // database or disk full, cannot open.
    code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 10 | 13 | 14))
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`].
pub(crate) fn conflict_as(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => e.into(),
    }
}
