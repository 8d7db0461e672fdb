//! [`PrivatePostgres`]: a PostgreSQL cluster of the test's own, which a test may
//! kill, freeze and restart.

use crate::PrivateRedis;

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
