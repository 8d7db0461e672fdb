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
//!
//! * [`both_backends!`] runs each case of a suite twice: on the embedded
//!   default's backends and on the production fleet's ([`Backend`]).
//!
//! When a server is unreachable the test fails with a message saying how to start
//! it. Tests are never skipped silently: a green run means both backends ran.

use std::time::Duration;

use sqlx::Connection;
use uuid::Uuid;

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

/// A PostgreSQL cluster of the test's own (the server binaries of Debian's
/// `postgresql` package, or those in `CERTDNS_TEST_PG_BIN`), for tests that kill
/// and restart the database: `initdb` into a fresh temporary directory, trust
/// authentication on 127.0.0.1, one free loopback port for its whole life.
///
/// Run as root, the cluster belongs to the `postgres` OS user (`initdb` and
/// `pg_ctl` refuse root). It runs with `fsync=off` for speed: commits are still
/// written to the kernel before they are acknowledged, so killing the server
/// loses nothing; only a crash of the machine would. Stopped (immediately) and
/// removed on drop, also when the test panics.
pub struct PrivatePostgres {
    bin: std::path::PathBuf,
    port: u16,
    /// As root: run the server's tools as this OS user.
    run_as: Option<&'static str>,
    running: bool,
    /// SIGSTOPped by [`PrivatePostgres::freeze`].
    frozen: bool,
    /// `data/` (the cluster), the Unix socket and `postgres.log`.
    dir: tempfile::TempDir,
}

/// Where the PostgreSQL server binaries are: `CERTDNS_TEST_PG_BIN`, else the
/// newest `/usr/lib/postgresql/<version>/bin`.
fn postgres_bin_dir() -> std::path::PathBuf {
    const PG_BIN_ENV: &str = "CERTDNS_TEST_PG_BIN";
    let found = match std::env::var_os(PG_BIN_ENV) {
        Some(dir) => Some(std::path::PathBuf::from(dir)),
        None => std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
            .max()
            .map(|(_, bin)| bin),
    };
    match found {
        Some(bin) if bin.join("initdb").is_file() && bin.join("pg_ctl").is_file() => bin,
        _ => panic!(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: looked in {PG_BIN_ENV} and \
             /usr/lib/postgresql/<version>/bin. Install them (Debian package `postgresql`; \
             `scripts/test-services.sh` does) or set {PG_BIN_ENV} to their directory."
        ),
    }
}

/// Runs a blocking command on tokio's blocking pool; its output if it succeeded,
/// otherwise a panic naming `what` with the command's output.
async fn run_checked(what: String, mut command: std::process::Command) -> String {
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the command's thread")
        .unwrap_or_else(|e| panic!("{what}: cannot run it: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

impl PrivatePostgres {
    /// Creates and starts a cluster on a free loopback port; returns once it
    /// accepts connections.
    pub async fn start() -> Self {
        let bin = postgres_bin_dir();
        let dir = tempfile::tempdir().expect("a directory for the PostgreSQL cluster");
        let root = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
        let run_as = if root.unwrap_or(false) { Some("postgres") } else { None };
        let port = PrivateRedis::free_port();
        let mut me = Self { bin, port, run_as, running: false, frozen: false, dir };
        if let Some(user) = me.run_as {
            let mut chown = std::process::Command::new("chown");
            chown.arg(format!("{user}:")).arg(me.dir.path());
            run_checked(
                format!("giving the cluster's directory to the OS user {user:?} (initdb refuses root; it must exist)"),
                chown,
            )
            .await;
        }
        let mut initdb = me.tool("initdb");
        initdb.arg("-D").arg(me.dir.path().join("data"));
        initdb.args(["-U", "postgres", "-A", "trust"]).args(["--no-sync", "-E", "UTF8", "--locale=C"]);
        run_checked(format!("initdb ({})", me.bin.display()), initdb).await;
        me.pg_ctl_start().await;
        me
    }

    /// One of the server's tools, run as the cluster's OS user.
    fn tool(&self, name: &str) -> std::process::Command {
        let path = self.bin.join(name);
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => std::process::Command::new(path),
        };
        command.stdin(std::process::Stdio::null());
        command
    }

    fn pg_ctl(&self, action: &str) -> std::process::Command {
        let mut command = self.tool("pg_ctl");
        command.arg("-D").arg(self.dir.path().join("data")).args(["-w", "-t", "30"]);
        if action == "start" {
            let options =
                format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
            command.arg("-l").arg(self.dir.path().join("postgres.log")).args(["-o", &options]);
        } else {
            command.args(["-m", "immediate"]);
        }
        command.arg(action);
        command
    }

    async fn pg_ctl_start(&mut self) {
        let mut start = self.pg_ctl("start");
        let output = tokio::task::spawn_blocking(move || start.output()).await.expect("the command's thread");
        match output {
            Ok(o) if o.status.success() => self.running = true,
            other => panic!("PostgreSQL did not start on port {}: {other:?}\nserver log:\n{}", self.port, self.log()),
        }
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Immediate shutdown (`pg_ctl stop -m immediate`): every connection is cut
    /// at once, nothing is checkpointed, the next start runs crash recovery —
    /// what a crashed database looks like to its clients. Returns once it is down.
    pub async fn kill(&mut self) {
        if self.running {
            run_checked("pg_ctl stop -m immediate".into(), self.pg_ctl("stop")).await;
            self.running = false;
        }
    }

    /// Freezes the server (SIGSTOP to the postmaster and every backend): its
    /// sockets stay open but nothing answers, as with a database host that hangs
    /// or a network that drops packets instead of refusing them.
    pub async fn freeze(&mut self) {
        assert!(self.running, "freeze() a running server");
        self.signal_all("STOP").await;
        self.frozen = true;
    }

    /// Lets a [`PrivatePostgres::freeze`]d server run on.
    pub async fn thaw(&mut self) {
        if self.frozen {
            self.signal_all("CONT").await;
            self.frozen = false;
        }
    }

    /// Sends `signal` to every process of the server: the postmaster must get it;
    /// a child may be gone by then (an exiting backend, reaped as soon as the
    /// postmaster runs again), which is fine.
    async fn signal_all(&self, signal: &str) {
        let pids = self.server_pids();
        let (postmaster, children) = pids.split_first().expect("the postmaster's pid");
        let mut kill = std::process::Command::new("kill");
        kill.arg(format!("-{signal}")).arg(postmaster);
        run_checked(format!("kill -{signal} {postmaster} (the postmaster)"), kill).await;
        if !children.is_empty() {
            let quiet = || std::process::Stdio::null();
            let children = children.to_vec();
            let signal = format!("-{signal}");
            let _ = tokio::task::spawn_blocking(move || {
                std::process::Command::new("kill").arg(signal).args(children).stderr(quiet()).status()
            })
            .await;
        }
    }

    /// The postmaster (the first line of `postmaster.pid`) and its children.
    fn server_pids(&self) -> Vec<String> {
        let pid_file = self.dir.path().join("data/postmaster.pid");
        let text = std::fs::read_to_string(&pid_file).unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()));
        let postmaster = text.lines().next().unwrap_or_default().trim().to_owned();
        let mut pids = vec![postmaster.clone()];
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces.
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            if after_comm.split_whitespace().nth(1) == Some(postmaster.as_str()) {
                pids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        pids
    }

    /// Starts it again on the same port and data (after [`PrivatePostgres::kill`]);
    /// returns once it accepts connections.
    pub async fn restart(&mut self) {
        assert!(!self.running, "restart() after kill()");
        self.pg_ctl_start().await;
    }

    /// Runs `sql` with `psql` against the `postgres` database; its output,
    /// unaligned and without headers (`-At`: one row a line, columns split by `|`).
    pub async fn psql(&self, sql: &str) -> String {
        let mut psql = std::process::Command::new(self.bin.join("psql"));
        psql.args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"])
            .args(["-p", &self.port.to_string(), "-c", sql])
            .stdin(std::process::Stdio::null());
        run_checked(format!("psql -c {sql:?}"), psql).await
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Also after a start that failed half-way: whatever runs on this data goes.
        if self.running || self.dir.path().join("data/postmaster.pid").exists() {
            if self.frozen {
                // A stopped process would not act on pg_ctl's signal.
                let _ = std::process::Command::new("kill").arg("-CONT").args(self.server_pids()).status();
            }
            // Blocking is fine here: the server is ours and goes down in well under a second.
            let quiet = || std::process::Stdio::null();
            let _ = self.pg_ctl("stop").stdout(quiet()).stderr(quiet()).status();
        }
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
