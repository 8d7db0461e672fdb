//! A fault matrix that says what is lost. The production shape (an api role and
//! two dns roles on a PostgreSQL and a Redis of the test's own) runs under a
//! steady `/update` load while a prober asks every name on both responders;
//! Redis, Postgres, one responder and the api are killed (and Postgres also
//! frozen) in turn and brought back. Every update and every answer is recorded, judged afterwards, and
//! summed up in one table row per fault:
//!
//! ```sh
//! cargo test -p certdns --test it fault_matrix -- --nocapture
//! ```
//!
//! deploy/README.md ("Fault matrix") shows the table and what it means for an
//! operator.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certdns_testkit::{PrivatePostgres, PrivateRedis};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use serde_json::Value;

use crate::support::*;

/// Registrations under load.
const NAMES: usize = 10;
/// Concurrent `/update` clients, each with its own registrations...
const WORKERS: usize = 4;
/// ...each sending one update per this interval (20 updates/s in all).
const PACE: Duration = Duration::from_millis(200);
/// What a client waits for an answer before giving up.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);
/// No `/update` may take longer (the request deadline is 10 s).
const NO_HANG: Duration = Duration::from_secs(11);
/// Every name is asked on every responder this often...
const PROBE_EVERY: Duration = Duration::from_millis(200);
/// ...and an answer not back within this is a failed query.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// An answer must carry a value acknowledged at least this long before it was asked.
const GRACE: Duration = Duration::from_secs(1);
/// Undisturbed load before the first fault and after each recovery.
const QUIET: Duration = Duration::from_secs(4);
/// A fault that has not recovered within this fails the test.
const RECOVERY_BOUND: Duration = Duration::from_secs(40);
/// Set, the roles' warnings and errors are printed even when nothing failed.
const LOGS_ENV: &str = "CERTDNS_TEST_FAULT_MATRIX_LOGS";
/// The body of an update that every live responder already serves.
const CONFIRMED: &str = "\"propagationDelaySeconds\": 0}";

/// One `/update` as the client saw it.
struct Update {
    name: usize,
    value: String,
    sent: Instant,
    done: Instant,
    /// `None`: no HTTP answer (refused, reset, timed out).
    status: Option<u16>,
    body: String,
}

impl Update {
    fn acked(&self) -> bool {
        self.status == Some(200)
    }
    fn confirmed(&self) -> bool {
        self.acked() && self.body.ends_with(CONFIRMED)
    }
}

/// One DNS question and what came back.
struct Probe {
    sent: Instant,
    responder: usize,
    name: usize,
    answer: Result<(ResponseCode, Vec<String>), String>,
}

#[derive(Default)]
struct Record {
    /// Updates answered (or given up on), in the order they ended.
    updates: Mutex<Vec<Update>>,
    /// Per name, the value of the update under way, if any: it may be in the
    /// store already. Removed only after the update is in `updates`.
    in_flight: Mutex<HashMap<usize, String>>,
    probes: Mutex<Vec<Probe>>,
}

/// How the api and dns roles are started, and restarted the same way: fixed
/// ports (the api's HTTP, each responder's DNS) so clients and prober keep
/// their addresses across a restart; logs (`RUST_LOG=info`) in files.
struct Roles {
    dir: tempfile::TempDir,
    db: String,
    redis: String,
    api_port: u16,
    dns_ports: [u16; 2],
    starts: AtomicU64,
}

impl Roles {
    fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    fn dns_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.dns_ports[i]))
    }

    async fn api(&self) -> Certdns {
        let listen = format!("127.0.0.1:{}", self.api_port);
        let env = [("CERTDNS_DATABASE_URL", &self.db), ("CERTDNS_REDIS_URL", &self.redis)];
        self.start("api", &["serve", "--role", "api", "--http-listen", &listen], &env).await
    }

    async fn dns(&self, i: usize) -> Certdns {
        let listen = format!("127.0.0.1:{}", self.dns_ports[i]);
        let args = ["serve", "--role", "dns", "--http-listen", "127.0.0.1:0", "--dns-listen", &listen];
        self.start(&format!("dns{}", i + 1), &args, &[("CERTDNS_REDIS_URL", &self.redis)]).await
    }

    /// `Certdns::start` waits for the banner on a blocking channel: on a thread
    /// of its own, so the load and the prober keep their pace meanwhile.
    async fn start(&self, role: &str, args: &[&str], env: &[(&str, &String)]) -> Certdns {
        let n = self.starts.fetch_add(1, Ordering::Relaxed);
        let log_path = self.dir.path().join(format!("{n:02}-{role}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let dir = self.dir.path().to_owned();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let mut env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        env.push(("RUST_LOG".into(), "info".into()));
        let runtime = tokio::runtime::Handle::current();
        let started = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            runtime.block_on(Certdns::start_with_stderr(&dir, &args, &env, Stdio::from(log)))
        })
        .await;
        started.unwrap_or_else(|e| {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("the {role} role did not start ({e:?}); its log:\n{log}")
        })
    }

    /// Every WARN and ERROR line the roles logged, per log file.
    fn warnings(&self) -> String {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path()).unwrap().flatten().map(|e| e.path()).collect();
        files.retain(|p| p.extension().is_some_and(|e| e == "log"));
        files.sort();
        let mut out = String::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let lines: Vec<&str> = text.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).collect();
            let _ = writeln!(out, "--- {} ({} warnings/errors)", file.display(), lines.len());
            // The first and last few of a flood say enough.
            for line in lines.iter().take(8).chain(lines.iter().skip(8.max(lines.len().saturating_sub(8)))) {
                let _ = writeln!(out, "{line}");
            }
        }
        out
    }
}

fn kill_9(process: Certdns) {
    let status = std::process::Command::new("kill").args(["-KILL", &process.pid().to_string()]).status().unwrap();
    assert!(status.success());
    drop(process); // reaps it
}

/// A client looping over its own registrations, a fresh value per update, at
/// most one update per [`PACE`], until `stop`.
async fn load(worker: usize, api: String, regs: Arc<Vec<Value>>, record: Arc<Record>, stop: Arc<AtomicBool>) {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let client = reqwest::Client::builder().timeout(CLIENT_TIMEOUT).build().unwrap();
    let mine: Vec<usize> = (worker..regs.len()).step_by(WORKERS).collect();
    let mut next = tokio::time::Instant::now();
    for &name in mine.iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let value = txt(format!("n{name}u{}", SEQ.fetch_add(1, Ordering::Relaxed)));
        record.in_flight.lock().unwrap().insert(name, value.clone());
        let update = send_update(&client, &api, &regs[name], name, value).await;
        record.updates.lock().unwrap().push(update);
        record.in_flight.lock().unwrap().remove(&name);
        next = (next + PACE).max(tokio::time::Instant::now());
        tokio::time::sleep_until(next).await;
    }
}

/// A valid TXT value (43 characters) ending in `label`.
fn txt(label: String) -> String {
    format!("{label:_>43}")
}

async fn send_update(client: &reqwest::Client, api: &str, reg: &Value, name: usize, value: String) -> Update {
    let sent = Instant::now();
    let response = client
        .post(format!("{api}/update"))
        .header("X-Api-User", reg["username"].as_str().unwrap())
        .header("X-Api-Key", reg["password"].as_str().unwrap())
        .json(&serde_json::json!({ "subdomain": reg["subdomain"], "txt": value }))
        .send()
        .await;
    let (status, body) = match response {
        Ok(r) => {
            let status = r.status().as_u16();
            (Some(status), r.text().await.unwrap_or_else(|e| format!("(body lost: {e})")))
        }
        Err(e) => (None, format!("{e:?}")),
    };
    Update { name, value, sent, done: Instant::now(), status, body }
}

/// Asks every name on every responder each [`PROBE_EVERY`], until `stop`.
async fn prober(servers: Vec<SocketAddr>, names: Arc<Vec<String>>, record: Arc<Record>, stop: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut asking = tokio::task::JoinSet::new();
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        for (responder, &server) in servers.iter().enumerate() {
            for name in 0..names.len() {
                let (names, record) = (names.clone(), record.clone());
                asking.spawn(async move {
                    let sent = Instant::now();
                    let answer = ask(server, &names[name]).await;
                    record.probes.lock().unwrap().push(Probe { sent, responder, name, answer });
                });
            }
        }
        while asking.try_join_next().is_some() {}
    }
    while asking.join_next().await.is_some() {}
}

/// Asks `server` every name in turn, the next as soon as an answer is back
/// (while nothing listens there, every millisecond), until `stop`: what a
/// starting responder answers first. Only answered questions are kept.
async fn first_answers(server: SocketAddr, names: Arc<Vec<String>>, stop: Arc<AtomicBool>) -> Vec<Probe> {
    let mut answers = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let (name, sent) = (answers.len() % names.len(), Instant::now());
        match ask(server, &names[name]).await {
            Ok(answer) => answers.push(Probe { sent, responder: 1, name, answer: Ok(answer) }),
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
    answers
}

/// One TXT question over UDP, no retry: the answer's code and values, or why
/// there was none.
async fn ask(server: SocketAddr, name: &str) -> Result<(ResponseCode, Vec<String>), String> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    // Connected: a responder that is down answers "refused" at once.
    socket.connect(server).await.map_err(|e| e.to_string())?;
    let mut query = Message::query();
    query.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::TXT));
    socket.send(&query.to_vec().unwrap()).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(PROBE_TIMEOUT, socket.recv(&mut buf)).await {
        Err(_) => Err("timed out".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(n)) => {
            let answer = Message::from_vec(&buf[..n]).map_err(|e| e.to_string())?;
            Ok((answer.metadata.response_code, txt_values(&answer)))
        }
    }
}

/// Each name's updates in the order they were sent (one client per name, one
/// update at a time: the order of the writes too).
fn ledgers(updates: &[Update]) -> Vec<Vec<&Update>> {
    let mut by_name: Vec<Vec<&Update>> = (0..NAMES).map(|_| Vec::new()).collect();
    for u in updates {
        by_name[u.name].push(u);
    }
    for ledger in &mut by_name {
        ledger.sort_by_key(|u| u.sent);
    }
    by_name
}

fn position(ledger: &[&Update], value: &str) -> Option<usize> {
    ledger.iter().position(|u| u.value == value)
}

/// Index of the newest update in `ledger` for which `pick` holds.
fn newest(ledger: &[&Update], pick: impl Fn(&Update) -> bool) -> Option<usize> {
    ledger.iter().rposition(|u| pick(u))
}

#[derive(Debug, PartialEq)]
enum Verdict {
    /// No answer (refused, timed out, SERVFAIL).
    Unanswered,
    /// Carries the newest acknowledged value, or a newer one.
    Right,
    /// Older than a value acknowledged with `propagationDelaySeconds` > 0 (the
    /// api said "not everywhere yet"): late, not lost.
    Stale,
    /// The name missing, or older than a value the api confirmed as served
    /// everywhere (`propagationDelaySeconds` 0): an answer went backwards.
    Wrong(String),
}

/// An answer is judged against the updates acknowledged at least [`GRACE`]
/// before it was asked; any value at least that new is right.
fn judge(probe: &Probe, ledger: &[&Update]) -> Verdict {
    let (rcode, values) = match &probe.answer {
        Err(_) => return Verdict::Unanswered,
        // "Ask another server" (a responder that has not loaded its replica yet):
        // not an answer, and nothing a resolver caches as the name's absence.
        Ok((ResponseCode::ServFail, _)) => return Verdict::Unanswered,
        Ok(answer) => answer,
    };
    if *rcode != ResponseCode::NoError || values.is_empty() {
        return Verdict::Wrong(format!("{rcode:?} with {} TXT", values.len()));
    }
    let Some(served) = values.iter().filter_map(|v| position(ledger, v)).max() else {
        return Verdict::Wrong(format!("values never sent: {values:?}"));
    };
    let before = |u: &Update| u.done + GRACE <= probe.sent;
    let confirmed = newest(ledger, |u| u.confirmed() && before(u));
    let acked = newest(ledger, |u| u.acked() && before(u));
    if confirmed.is_some_and(|c| served < c) {
        Verdict::Wrong(format!("update #{served} served, #{} confirmed before", confirmed.unwrap_or_default()))
    } else if acked.is_some_and(|a| served < a) {
        Verdict::Stale
    } else {
        Verdict::Right
    }
}

/// What the store holds per subdomain: the write count (`txt_version`) and
/// the values, newest first.
async fn store_view(pg: &PrivatePostgres) -> HashMap<String, (usize, Vec<String>)> {
    let rows = pg.psql("SELECT subdomain, txt_version, txt_recent FROM registrations").await;
    rows.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('|').collect();
            let values = fields[2].split_whitespace().map(str::to_owned).collect();
            (fields[0].to_owned(), (fields[1].parse().unwrap(), values))
        })
        .collect()
}

/// Acknowledged updates the store does not have, judged from a view read after
/// `at`: for each name, the newest update acknowledged by then must be the
/// store's newest value or older than it, and the store must have counted at
/// least as many writes as were acknowledged. The store may already hold the
/// value of an update still under way (newer than every one that ended).
fn lost_in_store(
    record: &Record,
    regs: &[Value],
    view: &HashMap<String, (usize, Vec<String>)>,
    at: Instant,
) -> (usize, Vec<String>) {
    // Updates first: an update leaves `in_flight` only once it is in `updates`.
    let updates = record.updates.lock().unwrap();
    let in_flight = record.in_flight.lock().unwrap();
    let (mut lost, mut details) = (0, Vec::new());
    for (name, ledger) in ledgers(&updates).iter().enumerate() {
        let acked: Vec<usize> = (0..ledger.len()).filter(|&i| ledger[i].acked() && ledger[i].done <= at).collect();
        let (version, values) = &view[regs[name]["subdomain"].as_str().unwrap()];
        let under_way = |v: &String| in_flight.get(&name) == Some(v);
        let stored = values.first().and_then(|v| position(ledger, v).or(under_way(v).then_some(ledger.len())));
        let behind = acked.last().is_some_and(|&newest| stored.is_none_or(|s| s < newest));
        let missing = acked.len().saturating_sub(*version).max(usize::from(behind));
        if missing > 0 {
            lost += missing;
            details.push(format!(
                "name {name}: {} acknowledged, store at write {version} holding update #{stored:?}, newest acknowledged #{:?}",
                acked.len(),
                acked.last()
            ));
        }
    }
    (lost, details)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Redis kill -9, back empty.
    Redis,
    /// Postgres immediate stop, back on the same data.
    Postgres,
    /// Postgres SIGSTOPped: connections open, nothing answers.
    PostgresFrozen,
    /// One dns role kill -9, a new process in its place.
    Responder,
    /// The api role kill -9, a new process in its place.
    Api,
}

impl Fault {
    const ALL: [Fault; 5] = [Fault::Redis, Fault::Postgres, Fault::PostgresFrozen, Fault::Responder, Fault::Api];

    fn down_for(self) -> Duration {
        Duration::from_secs(match self {
            Fault::Postgres => 5,
            // Longer than two batch write deadlines (4 s each by default).
            Fault::PostgresFrozen => 9,
            _ => 3,
        })
    }

    fn describe(self) -> &'static str {
        match self {
            Fault::Redis => "Redis `kill -9`, back empty after 3 s",
            Fault::Postgres => "Postgres immediate stop, back after 5 s",
            Fault::PostgresFrozen => "Postgres frozen (SIGSTOP), thawed after 9 s",
            Fault::Responder => "one dns role (2) `kill -9`, restarted after 3 s",
            Fault::Api => "api role `kill -9`, restarted after 3 s",
        }
    }
}

/// One fault, as it happened.
struct Phase {
    /// `None` for the undisturbed baseline.
    fault: Option<Fault>,
    /// When the fault struck.
    injected: Instant,
    /// When the kill had taken effect (the process gone).
    down: Instant,
    restarted: Instant,
    recovered: Instant,
    /// The end of the quiet period after recovery.
    end: Instant,
    lost: usize,
    /// A restarted responder's answers from its first one on, for a second
    /// after its start-up (asked back to back, not in the table's counts).
    restart_answers: Vec<Probe>,
}

/// A table row: what the prober and the clients saw in a window.
#[derive(Default)]
struct Seen {
    asked: [usize; 2],
    answered: [usize; 2],
    wrong: [usize; 2],
    stale: [usize; 2],
    wrong_examples: Vec<String>,
    longest_gap: Duration,
    /// The longest an update acknowledged in the window waited, after its
    /// acknowledgement, until a responder that answered served it (or newer).
    slowest_to_serve: Duration,
    acked: usize,
    unconfirmed: usize,
    s503: usize,
    s408: usize,
    other: usize,
    no_answer: usize,
    slowest: Duration,
}

impl Seen {
    fn of(record: &Record, from: Instant, to: Instant) -> Self {
        let updates = record.updates.lock().unwrap();
        let probes = record.probes.lock().unwrap();
        let ledgers = ledgers(&updates);
        let mut seen = Seen::default();
        let mut answered_at: Vec<Vec<Instant>> = vec![vec![from, to]; NAMES];
        for p in probes.iter().filter(|p| p.sent >= from && p.sent <= to) {
            let r = p.responder;
            seen.asked[r] += 1;
            match judge(p, &ledgers[p.name]) {
                Verdict::Unanswered => continue,
                Verdict::Right => answered_at[p.name].push(p.sent),
                Verdict::Stale => {
                    seen.stale[r] += 1;
                    answered_at[p.name].push(p.sent);
                }
                Verdict::Wrong(why) => {
                    seen.wrong[r] += 1;
                    if seen.wrong_examples.len() < 5 {
                        let at = p.sent.saturating_duration_since(from);
                        seen.wrong_examples.push(format!("responder {} name {} at +{at:.1?}: {why}", r + 1, p.name));
                    }
                }
            }
            seen.answered[r] += 1;
        }
        for times in &mut answered_at {
            times.sort();
            let gap = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
            seen.longest_gap = seen.longest_gap.max(gap);
        }
        let mut answers: HashMap<(usize, usize), Vec<(Instant, usize)>> = HashMap::new();
        for p in probes.iter() {
            let served = p
                .answer
                .as_ref()
                .ok()
                .and_then(|(_, values)| values.iter().filter_map(|v| position(&ledgers[p.name], v)).max());
            if let Some(served) = served {
                answers.entry((p.responder, p.name)).or_default().push((p.sent, served));
            }
        }
        for list in answers.values_mut() {
            list.sort();
        }
        for (name, ledger) in ledgers.iter().enumerate() {
            for (i, u) in ledger.iter().enumerate().filter(|(_, u)| u.acked() && u.done >= from && u.done <= to) {
                for responder in 0..2 {
                    let list = answers.get(&(responder, name)).map(Vec::as_slice).unwrap_or_default();
                    let served_at = list.iter().find(|&&(at, served)| at >= u.done && served >= i);
                    if let Some((at, _)) = served_at {
                        seen.slowest_to_serve = seen.slowest_to_serve.max(*at - u.done);
                    }
                }
            }
        }
        for u in updates.iter().filter(|u| u.sent >= from && u.sent <= to) {
            match u.status {
                Some(200) if u.confirmed() => seen.acked += 1,
                Some(200) => {
                    seen.acked += 1;
                    seen.unconfirmed += 1;
                }
                Some(503) => seen.s503 += 1,
                Some(408) => seen.s408 += 1,
                Some(_) => seen.other += 1,
                None => seen.no_answer += 1,
            }
            seen.slowest = seen.slowest.max(u.done - u.sent);
        }
        seen
    }

    fn all_answered(&self) -> bool {
        self.answered == self.asked
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn row(phase: &Phase, during: &Seen, after: &Seen) -> String {
    let recovery = match phase.fault {
        Some(_) => secs(phase.recovered - phase.restarted),
        None => "–".into(),
    };
    let (answered, asked, wrong, stale) = (during.answered, during.asked, during.wrong, during.stale);
    format!(
        "| {} | {}/{}, {}/{} | {}, {}; {}, {} | {} | {} ({}) / {} / {} / {} / {} | {} | {} | {} | {} / {} | {} |",
        phase.fault.map_or("none (baseline)", Fault::describe),
        answered[0],
        asked[0],
        answered[1],
        asked[1],
        wrong[0],
        wrong[1],
        stale[0],
        stale[1],
        secs(during.longest_gap),
        during.acked,
        during.unconfirmed,
        during.s503,
        during.s408,
        during.other,
        during.no_answer,
        secs(during.slowest),
        secs(during.slowest_to_serve),
        recovery,
        after.wrong.iter().sum::<usize>(),
        after.stale.iter().sum::<usize>(),
        phase.lost,
    )
}

/// Waits until an update sent after `since` is acknowledged as served by every
/// live responder; when it was answered.
async fn recovered_after(record: &Record, since: Instant) -> Instant {
    let deadline = Instant::now() + RECOVERY_BOUND;
    loop {
        let first =
            record.updates.lock().unwrap().iter().filter(|u| u.sent >= since && u.confirmed()).map(|u| u.done).min();
        if let Some(at) = first {
            return at;
        }
        assert!(Instant::now() < deadline, "no confirmed update within {RECOVERY_BOUND:?} of the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `responder` gives a right answer to a question asked after
/// `since`; when that question was asked.
async fn answering_after(record: &Record, responder: usize, since: Instant) -> Instant {
    let deadline = Instant::now() + RECOVERY_BOUND;
    loop {
        {
            let updates = record.updates.lock().unwrap();
            let ledgers = ledgers(&updates);
            let probes = record.probes.lock().unwrap();
            let right = probes
                .iter()
                .filter(|p| p.responder == responder && p.sent >= since)
                .filter(|p| judge(p, &ledgers[p.name]) == Verdict::Right)
                .map(|p| p.sent)
                .min();
            if let Some(at) = right {
                return at;
            }
        }
        assert!(
            Instant::now() < deadline,
            "responder {} not answering {RECOVERY_BOUND:?} after its restart",
            responder + 1
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix() {
    let began = Instant::now();
    let t = move || format!("[{:>5.1} s]", began.elapsed().as_secs_f64());
    let mut pg = PrivatePostgres::start().await;
    let redis_port = PrivateRedis::free_port();
    let mut redis = PrivateRedis::start(redis_port).await;
    let roles = Roles {
        dir: tempfile::tempdir().unwrap(),
        db: pg.url(),
        redis: redis.url(),
        api_port: PrivateRedis::free_port(),
        dns_ports: [PrivateRedis::free_port(), PrivateRedis::free_port()],
        starts: AtomicU64::new(0),
    };
    let mut api = Some(roles.api().await);
    let mut responders = vec![roles.dns(0).await, roles.dns(1).await];
    let http = roles.api_url();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ready: Value = reqwest::get(format!("{http}/ready")).await.unwrap().json().await.unwrap();
        if ready["checks"]["distribution"]["live_responders"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "2 live responders expected: {ready}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Registrations, each with a first value every responder serves.
    let record = Arc::new(Record::default());
    let base_url = api.as_ref().unwrap().first_start_base_url().unwrap();
    let (mut regs, mut names) = (Vec::new(), Vec::new());
    let client = reqwest::Client::new();
    for name in 0..NAMES {
        let reg = register(&base_url).await;
        let first = send_update(&client, &http, &reg, name, txt(format!("n{name}first"))).await;
        assert!(first.confirmed(), "{:?} {}", first.status, first.body);
        record.updates.lock().unwrap().push(first);
        names.push(reg["fulldomain"].as_str().unwrap().to_owned());
        regs.push(reg);
    }
    let (regs, names) = (Arc::new(regs), Arc::new(names));

    let stop_load = Arc::new(AtomicBool::new(false));
    let stop_probing = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| tokio::spawn(load(w, http.clone(), regs.clone(), record.clone(), stop_load.clone())))
        .collect();
    let servers = vec![roles.dns_addr(0), roles.dns_addr(1)];
    let probing = tokio::spawn(prober(servers, names.clone(), record.clone(), stop_probing.clone()));
    eprintln!("{} fleet up: api {http}, responders {:?}, {NAMES} names under load", t(), roles.dns_ports);

    // The baseline row: the quiet period but its last second, so that no update
    // it counts is still under way when the first fault strikes.
    let quiet_from = Instant::now();
    tokio::time::sleep(QUIET - Duration::from_secs(1)).await;
    let quiet_to = Instant::now();
    let mut phases = vec![Phase {
        fault: None,
        injected: quiet_from,
        down: quiet_from,
        restarted: quiet_from,
        recovered: quiet_to,
        end: quiet_to,
        lost: 0,
        restart_answers: Vec::new(),
    }];
    tokio::time::sleep(Duration::from_secs(1)).await;

    for fault in Fault::ALL {
        let name = fault.describe();
        let injected = Instant::now();
        match fault {
            Fault::Redis => redis.stop(),
            Fault::Postgres => pg.kill().await,
            Fault::PostgresFrozen => pg.freeze().await,
            // The second responder (the prober's "responder 2").
            Fault::Responder => kill_9(responders.pop().unwrap()),
            Fault::Api => kill_9(api.take().unwrap()),
        }
        let down = Instant::now();
        eprintln!("{} {name}: struck", t());
        tokio::time::sleep(fault.down_for()).await;
        let restarted = Instant::now();
        let mut restart_answers = Vec::new();
        match fault {
            Fault::Redis => redis = PrivateRedis::start(redis_port).await,
            Fault::Postgres => pg.restart().await,
            Fault::PostgresFrozen => pg.thaw().await,
            Fault::Responder => {
                // Its very first answers too, asked as fast as it answers.
                let stop = Arc::new(AtomicBool::new(false));
                let asking = tokio::spawn(first_answers(roles.dns_addr(1), names.clone(), stop.clone()));
                responders.push(roles.dns(1).await);
                tokio::time::sleep(Duration::from_secs(1)).await;
                stop.store(true, Ordering::Relaxed);
                restart_answers = asking.await.unwrap();
            }
            Fault::Api => api = Some(roles.api().await),
        }
        eprintln!("{} {name}: restarted", t());
        let mut recovered = recovered_after(&record, restarted).await;
        if fault == Fault::Responder {
            // The fleet is whole when the new process answers too.
            recovered = recovered.max(answering_after(&record, 1, restarted).await);
        }
        eprintln!("{} {name}: recovered", t());
        tokio::time::sleep(QUIET).await;
        let end = Instant::now();
        let view = store_view(&pg).await;
        let (lost, details) = lost_in_store(&record, &regs, &view, end);
        for d in &details {
            eprintln!("{} LOST after {name}: {d}", t());
        }
        phases.push(Phase { fault: Some(fault), injected, down, restarted, recovered, end, lost, restart_answers });
    }

    // The load stops; everything acknowledged must be in the store and served.
    stop_load.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let load_ended = Instant::now();
    let view = store_view(&pg).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut unserved: Vec<String>;
    loop {
        unserved = Vec::new();
        for (name, reg) in regs.iter().enumerate() {
            let newest = view[reg["subdomain"].as_str().unwrap()].1.first().cloned();
            for (r, server) in [roles.dns_addr(0), roles.dns_addr(1)].into_iter().enumerate() {
                let served = ask(server, &names[name]).await;
                let newest_served = served.as_ref().ok().and_then(|(_, values)| values.first().cloned());
                if newest_served != newest {
                    unserved.push(format!("name {name} on responder {}: store {newest:?}, served {served:?}", r + 1));
                }
            }
        }
        if unserved.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop_probing.store(true, Ordering::Relaxed);
    probing.await.unwrap();

    let (report, mut failures) = summarize(&record, &phases, &regs, &view, load_ended);
    eprintln!("\n{report}{:.0?} in all", began.elapsed());
    if !unserved.is_empty() {
        failures.push(format!("at the end, not served as stored: {unserved:?}"));
    }
    if !failures.is_empty() || std::env::var_os(LOGS_ENV).is_some() {
        eprintln!("roles' warnings and errors:\n{}", roles.warnings());
    }
    assert!(failures.is_empty(), "the fault matrix found:\n  {}", failures.join("\n  "));
    for r in responders {
        r.stop().await;
    }
    api.unwrap().stop().await;
}

/// The table, a line of totals, and every broken promise.
fn summarize(
    record: &Record,
    phases: &[Phase],
    regs: &[Value],
    view: &HashMap<String, (usize, Vec<String>)>,
    load_ended: Instant,
) -> (String, Vec<String>) {
    let (lost_at_end, lost_details) = lost_in_store(record, regs, view, load_ended);
    let updates = record.updates.lock().unwrap();
    let acked_total = updates.iter().filter(|u| u.acked()).count();
    let writes_total: usize = view.values().map(|(version, _)| version).sum();
    let slowest = updates.iter().max_by_key(|u| u.done - u.sent).unwrap();
    let slowest_took = slowest.done - slowest.sent;
    // Postgres down or frozen: no write may be acknowledged; clients are told
    // to retry. A frozen one must not look like a slow client (408): its
    // updates get 503 before the request deadline.
    let mut failures: Vec<String> = Vec::new();
    let unavailable = |u: &Update| u.status == Some(503) && u.body == r#"{"error": "store_unavailable"}"#;
    for (fault, refused) in [(Fault::Postgres, "503/408"), (Fault::PostgresFrozen, "503")] {
        let phase = phases.iter().find(|p| p.fault == Some(fault)).unwrap();
        let accepted: Vec<String> = updates
            .iter()
            .filter(|u| u.sent >= phase.down && u.done <= phase.restarted)
            .filter(|u| !(unavailable(u) || fault == Fault::Postgres && u.status == Some(408)))
            .map(|u| format!("{:?} {}", u.status, u.body))
            .collect();
        if !accepted.is_empty() {
            let examples = &accepted[..accepted.len().min(5)];
            failures.push(format!(
                "{}: {} updates not refused with {refused}: {examples:?}",
                fault.describe(),
                accepted.len()
            ));
        }
    }
    if slowest_took > NO_HANG {
        failures.push(format!("an /update took {slowest_took:?} ({:?} {})", slowest.status, slowest.body));
    }
    if lost_at_end > 0 {
        failures.push(format!("at the end, {lost_at_end} acknowledged updates lost: {lost_details:?}"));
    }
    let totals = format!(
        "{} updates sent, {acked_total} acknowledged, {writes_total} writes in the store ({} durable without an \
         acknowledgement), slowest /update {slowest_took:.1?}; {} DNS questions; ",
        updates.len(),
        writes_total.saturating_sub(acked_total),
        record.probes.lock().unwrap().len(),
    );
    drop(updates);

    let mut table = String::from(
        "| fault | DNS answered / asked | wrong; stale | longest a name went unanswered \
         | `/update`: 200 (unconfirmed) / 503 / 408 / other / no answer | slowest `/update` \
         | acknowledged → served | back to normal after the restart | after that: wrong / stale \
         | acknowledged updates lost |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for phase in phases {
        let during = Seen::of(record, phase.injected, phase.recovered);
        // After recovery, the quiet period: answers judged a second after it began.
        let after = Seen::of(record, phase.recovered + GRACE, phase.end);
        table.push_str(&row(phase, &during, &after));
        table.push('\n');

        let mut fail =
            |what: String| failures.push(format!("{}: {what}", phase.fault.map_or("baseline", Fault::describe)));
        if !during.wrong_examples.is_empty() || !after.wrong_examples.is_empty() {
            fail(format!("wrong answers: {:?} {:?}", during.wrong_examples, after.wrong_examples));
        }
        if after.stale.iter().sum::<usize>() > 0 || !after.all_answered() {
            fail(format!("after recovery {:?} stale, {:?} of {:?} answered", after.stale, after.answered, after.asked));
        }
        if phase.lost > 0 {
            fail(format!("{} acknowledged updates lost", phase.lost));
        }
        let stale = during.stale.iter().sum::<usize>();
        match phase.fault {
            // One responder away: the other answers everything, up to date.
            Some(Fault::Responder) if during.answered[0] != during.asked[0] || during.stale[0] > 0 => fail(format!(
                "the other responder answered {} of {}, {} stale",
                during.answered[0], during.asked[0], during.stale[0]
            )),
            Some(Fault::Responder) => {}
            // Anything else: every name answered by both responders...
            _ if !during.all_answered() => {
                fail(format!("{:?} of {:?} questions answered", during.answered, during.asked));
            }
            // ...and only with Redis away may an answer lag an acknowledged update.
            Some(Fault::Redis) => {}
            _ if stale > 0 => fail(format!("{:?} stale answers", during.stale)),
            _ => {}
        }
    }
    let mut restarts = String::new();
    for phase in phases.iter().filter(|p| !p.restart_answers.is_empty()) {
        let updates = record.updates.lock().unwrap();
        let ledgers = ledgers(&updates);
        let wrong: Vec<(&Probe, Verdict)> = phase
            .restart_answers
            .iter()
            .map(|p| (p, judge(p, &ledgers[p.name])))
            .filter(|(_, v)| matches!(v, Verdict::Wrong(_)))
            .collect();
        let first = phase.restart_answers[0].sent;
        let _ = writeln!(
            restarts,
            "restarted responder: first answer {} after the restart began; {} wrong of its {} answers in the next second{}",
            secs(first - phase.restarted),
            wrong.len(),
            phase.restart_answers.len(),
            wrong
                .last()
                .map_or(String::new(), |(p, _)| format!(", the last {:.1?} after its first answer", p.sent - first)),
        );
        if let Some((_, why)) = wrong.first() {
            failures.push(format!(
                "{}: the restarted responder answered {} of its first {} questions wrong, e.g. {why:?}",
                phase.fault.map_or("baseline", Fault::describe),
                wrong.len(),
                phase.restart_answers.len()
            ));
        }
    }
    (format!("{table}\n{restarts}{totals}"), failures)
}
