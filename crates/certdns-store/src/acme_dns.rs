//! Reading an acme-dns database (v1 or v2; SQLite or Postgres) for
//! `certdns import-acme-dns`. Rows come back as acme-dns stored them, each field
//! optional, so one malformed row is the caller's to report and skip rather than
//! an error for the whole read.
//!
//! acme-dns's schema: `records (Username, Password, Subdomain, AllowFrom)` with the
//! bcrypt hash in `Password` (Go's SQLite driver stores it as a BLOB, hence the
//! casts) and `AllowFrom` a JSON list; `txt (Subdomain, Value, LastUpdate)` with
//! `txtlimit` rows per subdomain (2 by default), `Value` empty until first written.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::{Backend, StoreError, redact};

/// One row of `records`, as stored.
#[derive(Clone, sqlx::FromRow)]
pub struct AcmeDnsRecord {
    pub username: Option<String>,
    pub password: Option<String>,
    pub subdomain: Option<String>,
    pub allow_from: Option<String>,
}

impl fmt::Debug for AcmeDnsRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcmeDnsRecord")
            .field("username", &self.username)
            .field("subdomain", &self.subdomain)
            .field("allow_from", &self.allow_from)
            .finish_non_exhaustive()
    }
}

/// One row of `txt`, as stored (`last_update` in Unix seconds, 0 when never written).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AcmeDnsTxt {
    pub subdomain: Option<String>,
    pub value: Option<String>,
    pub last_update: i64,
}

/// Everything an import needs from an acme-dns database.
#[derive(Debug, Default)]
pub struct AcmeDnsDump {
    pub records: Vec<AcmeDnsRecord>,
    pub txt: Vec<AcmeDnsTxt>,
}

// CAST: Go's SQLite driver stores []byte (the bcrypt hash) as a BLOB in a TEXT
// column; both backends read every field back as text this way.
const RECORDS: &str = "SELECT CAST(Username AS TEXT) AS username, CAST(Password AS TEXT) AS password, \
     CAST(Subdomain AS TEXT) AS subdomain, CAST(AllowFrom AS TEXT) AS allow_from FROM records";
const TXT: &str = "SELECT CAST(Subdomain AS TEXT) AS subdomain, CAST(Value AS TEXT) AS value, \
     CAST(COALESCE(LastUpdate, 0) AS BIGINT) AS last_update FROM txt";

/// Reads `source`: a `postgres://` URL, a `sqlite:` URL or a path to acme-dns's
/// SQLite file, opened read-only (nothing in it changes).
pub async fn read(source: &str) -> Result<AcmeDnsDump, StoreError> {
    let unavailable = |e: sqlx::Error| StoreError::Unavailable(format!("{}: {e}", redact(source)));
    match Backend::of_url(source) {
        Some(Backend::Postgres) => {
            let options = PgConnectOptions::from_str(source).map_err(unavailable)?;
            let mut conn = options.connect().await.map_err(unavailable)?;
            // A read-only transaction: the import never writes to its source.
            let mut tx = conn.begin().await?;
            sqlx::query("SET TRANSACTION READ ONLY").execute(&mut *tx).await?;
            let records = sqlx::query_as(RECORDS).fetch_all(&mut *tx).await.map_err(not_acme_dns)?;
            let txt = sqlx::query_as(TXT).fetch_all(&mut *tx).await.map_err(not_acme_dns)?;
            tx.rollback().await?;
            Ok(AcmeDnsDump { records, txt })
        }
        _ => {
            let options = match Backend::of_url(source) {
                Some(Backend::Sqlite) => SqliteConnectOptions::from_str(source).map_err(unavailable)?,
                _ => {
                    if !std::path::Path::new(source).is_file() {
                        return Err(StoreError::Unavailable(format!(
                            "{source}: no such file (expected acme-dns's SQLite file or a postgres:// URL)"
                        )));
                    }
                    SqliteConnectOptions::new().filename(source)
                }
            };
            let options = options.read_only(true).create_if_missing(false).busy_timeout(Duration::from_secs(5));
            let mut conn = options.connect().await.map_err(unavailable)?;
            let records = sqlx::query_as(RECORDS).fetch_all(&mut conn).await.map_err(not_acme_dns)?;
            let txt = sqlx::query_as(TXT).fetch_all(&mut conn).await.map_err(not_acme_dns)?;
            conn.close().await?;
            Ok(AcmeDnsDump { records, txt })
        }
    }
}

/// A query on acme-dns's tables failed: most likely not an acme-dns database.
fn not_acme_dns(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(_) => StoreError::Unavailable(format!(
            "not an acme-dns database (tables records and txt with acme-dns's columns): {e}"
        )),
        _ => e.into(),
    }
}
