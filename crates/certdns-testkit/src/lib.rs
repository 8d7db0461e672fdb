//! Test support: real services, isolated per test.
//!
//! * [`TestPostgres`] creates a uniquely named database on the server that
//!   `CERTDNS_TEST_POSTGRES_URL` names (default `postgres://postgres@127.0.0.1:5432/postgres`)
//!   and drops it when the test ends.
//! * [`TestRedis`] hands out a unique key prefix on the server that
//!   `CERTDNS_TEST_REDIS_URL` names (default `redis://127.0.0.1:6379`) and deletes
//!   the prefix's keys when the test ends.
//! * [`TestSqlite`] is a database file in a temporary directory.
//! * [`PrivateRedis`] and [`PrivatePostgres`] are servers of the test's own, for
//!   tests that kill and restart them.
//! * [`resolver`] is a stand-in recursive resolver answering from a map.
//!
//! * [`both_backends!`] runs each case of a suite twice: on the embedded
//!   default's backends and on the production fleet's ([`Backend`]).
//!
//! When a server is unreachable the test fails with a message saying how to start
//! it. Tests are never skipped silently: a green run means both backends ran.

use std::time::Duration;

use sqlx::Connection;
use uuid::Uuid;

mod private_postgres;
pub mod resolver;
pub mod webhook;
pub use private_postgres::PrivatePostgres;

pub const POSTGRES_ENV: &str = "CERTDNS_TEST_POSTGRES_URL";
pub const REDIS_ENV: &str = "CERTDNS_TEST_REDIS_URL";
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DEFAULT_REDIS: &str = "redis://127.0.0.1:6379";
const HOW_TO_START: &str = "start the test services with `scripts/test-services.sh` \
    (installs and starts PostgreSQL and Redis on a Debian machine), or point the tests elsewhere";

pub fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned())
}

pub fn redis_url() -> String {
    std::env::var(REDIS_ENV).unwrap_or_else(|_| DEFAULT_REDIS.to_owned())
}

fn unique_name(prefix: &str) -> String {
    format!("{prefix}{}", Uuid::new_v4().simple())
}

/// A fresh, empty Postgres database, dropped on drop.
pub struct TestPostgres {
    admin_url: String,
    name: String,
    url: String,
}

impl TestPostgres {
    pub async fn new() -> Self {
        let admin_url = postgres_admin_url();
        let mut admin =
            match tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(&admin_url)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    panic!("PostgreSQL is not reachable at {admin_url} ({e}); {HOW_TO_START} with {POSTGRES_ENV}.")
                }
                Err(_) => {
                    panic!("PostgreSQL at {admin_url} did not answer within 10 s; {HOW_TO_START} with {POSTGRES_ENV}.")
                }
            };
        let name = unique_name("certdns_test_");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let url = replace_db_name(&admin_url, &name);
        Self { admin_url, name, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database goes away for its clients: new connections are refused and
    /// open ones are terminated (what a Postgres outage looks like to certdns).
    pub async fn cut_connections(&self) {
        let mut admin = sqlx::PgConnection::connect(&self.admin_url).await.expect("admin connection");
        let name = &self.name;
        for sql in [
            format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
            format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.expect("cut connections");
        }
    }

    /// Undoes [`TestPostgres::cut_connections`].
    pub async fn restore_connections(&self) {
        let mut admin = sqlx::PgConnection::connect(&self.admin_url).await.expect("admin connection");
        let sql = format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", self.name);
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.expect("restore connections");
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on; use a
        // thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut admin)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// Replaces the database name (the URL path) of a Postgres URL.
pub fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A unique key prefix on a real Redis; its keys are deleted on drop.
pub struct TestRedis {
    url: String,
    prefix: String,
}

impl TestRedis {
    pub async fn new() -> Self {
        let url = redis_url();
        let client = redis::Client::open(url.as_str()).unwrap_or_else(|e| panic!("invalid {REDIS_ENV} {url:?}: {e}"));
        let mut conn = match client.get_multiplexed_async_connection().await {
            Ok(c) => c,
            Err(e) => panic!("Redis is not reachable at {url} ({e}); {HOW_TO_START} with {REDIS_ENV}."),
        };
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("Redis at {url} did not answer PING ({e}); {HOW_TO_START} with {REDIS_ENV}."));
        assert_eq!(pong, "PONG");
        Self { url, prefix: format!("{}:", unique_name("certdns-test-")) }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let url = self.url.clone();
        let pattern = format!("{}*", self.prefix);
        let _ = std::thread::spawn(move || -> redis::RedisResult<()> {
            let client = redis::Client::open(url.as_str())?;
            let mut conn = client.get_connection()?;
            let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut conn)?;
            if !keys.is_empty() {
                redis::cmd("DEL").arg(keys).exec(&mut conn)?;
            }
            Ok(())
        })
        .join();
    }
}

/// A `redis-server` of the test's own on a free loopback port (Debian package
/// `redis-server`), for tests that stop and restart Redis; killed when dropped.
pub struct PrivateRedis {
    port: u16,
    child: Option<std::process::Child>,
    /// Its own working directory: a replica writes the RDB it receives there,
    /// and a server loads any RDB it finds at start; a fresh one per start keeps
    /// a restart really empty.
    _dir: tempfile::TempDir,
}

impl PrivateRedis {
    pub fn free_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        listener.local_addr().expect("its address").port()
    }

    pub async fn start(port: u16) -> Self {
        Self::start_with(port, &[]).await
    }

    /// A replica of the private Redis on `primary` (`replicaof`), read-only;
    /// returns once it has synchronised with the primary.
    pub async fn start_replica_of(port: u16, primary: u16) -> Self {
        let replica = Self::start_with(port, &["--replicaof", "127.0.0.1", &primary.to_string()]).await;
        replica.wait_until_in_sync().await;
        replica
    }

    /// Waits (up to 30 s) until this replica's link to its primary is up.
    pub async fn wait_until_in_sync(&self) {
        let client = redis::Client::open(self.url()).expect("a redis URL");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && let Ok(info) = redis::cmd("INFO").arg("replication").query_async::<String>(&mut conn).await
                && info.contains("master_link_status:up")
            {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "the replica on port {} never synchronised", self.port);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts one with more `redis-server` arguments.
    pub async fn start_with(port: u16, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("a directory for redis-server");
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (Debian package redis-server)");
        let me = Self { port, child: Some(child), _dir: dir };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(std::time::Instant::now() < deadline, "redis-server did not start on port {port}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        me
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it (SIGKILL, no chance to save anything) and waits for it to go.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A SQLite database file in a temporary directory, removed on drop.
pub struct TestSqlite {
    _dir: tempfile::TempDir,
    url: String,
}

impl TestSqlite {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("certdns.sqlite3").display());
        Self { _dir: dir, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Default for TestSqlite {
    fn default() -> Self {
        Self::new()
    }
}

/// The two deployments every storage and distribution behaviour runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite and the in-process TXT distribution (`certdns serve` with no configuration).
    Embedded,
    /// Postgres and Redis (the production roles).
    Fleet,
}

/// The test's own database for a [`Backend`]: a SQLite file or a Postgres
/// database, removed when dropped.
pub enum TestDatabase {
    Sqlite(TestSqlite),
    Postgres(TestPostgres),
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Embedded => Self::Sqlite(TestSqlite::new()),
            Backend::Fleet => Self::Postgres(TestPostgres::new().await),
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite(db) => db.url(),
            Self::Postgres(db) => db.url(),
        }
    }
}

/// The setup of a suite whose cases take the [`Backend`] itself (the default
/// of [`both_backends!`]); nothing to keep alive.
pub async fn the_backend(backend: Backend) -> (Backend, ()) {
    (backend, ())
}

/// Runs every named case on both [`Backend`]s, as `embedded::<case>` and
/// `fleet::<case>` tests in the calling module.
///
/// * `both_backends!(a, b)`: each case is `async fn a(backend: Backend)`.
/// * `both_backends!(setup = open; a, b)`: each case gets the first half of what
///   `async fn open(Backend) -> (T, Guard)` returns; the guard (its database, …)
///   lives until the case ends.
/// * Either form may start with `tokio(flavor = "multi_thread", worker_threads = 2);`
///   for the runtime of `#[tokio::test]`.
#[macro_export]
macro_rules! both_backends {
    (@emit $attr:tt $setup:tt $($case:ident),+) => {
        mod embedded {
            $(
                #[tokio::test $attr]
                async fn $case() {
                    let (arg, _guard) = $setup($crate::Backend::Embedded).await;
                    super::$case(arg).await;
                }
            )+
        }
        mod fleet {
            $(
                #[tokio::test $attr]
                async fn $case() {
                    let (arg, _guard) = $setup($crate::Backend::Fleet).await;
                    super::$case(arg).await;
                }
            )+
        }
    };
    (tokio($($attr:tt)*); setup = $setup:ident; $($case:ident),+ $(,)?) => {
        $crate::both_backends!(@emit ($($attr)*) (super::$setup) $($case),+);
    };
    (setup = $setup:ident; $($case:ident),+ $(,)?) => {
        $crate::both_backends!(@emit () (super::$setup) $($case),+);
    };
    (tokio($($attr:tt)*); $($case:ident),+ $(,)?) => {
        $crate::both_backends!(@emit ($($attr)*) ($crate::the_backend) $($case),+);
    };
    ($($case:ident),+ $(,)?) => {
        $crate::both_backends!(@emit () ($crate::the_backend) $($case),+);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_database_names() {
        assert_eq!(
            replace_db_name("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(replace_db_name("postgres://u:p@h/db?sslmode=disable", "x"), "postgres://u:p@h/x?sslmode=disable");
        assert_eq!(replace_db_name("postgres://h", "x"), "postgres://h/x");
    }
}
