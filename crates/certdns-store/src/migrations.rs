//! The schema migrations of each backend (`migrations/sqlite`, `migrations/postgres`:
//! the same tables, column types per backend), compiled into the binary.

use sqlx::migrate::Migrator;

use crate::Backend;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

/// The migrations `backend` runs.
pub(crate) fn for_backend(backend: Backend) -> &'static Migrator {
    match backend {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    }
}
