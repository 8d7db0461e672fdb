//! Starting the real binary and talking DNS to it.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};

pub const BIN: &str = env!("CARGO_BIN_EXE_certdns");

/// Every listener of `serve` on a free loopback port (append `--data-dir` and
/// the like after it).
pub const LOOPBACK_LISTENERS: [&str; 6] =
    ["--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--portal-listen", "127.0.0.1:0"];

/// `serve` with [`LOOPBACK_LISTENERS`] and `more` after them.
pub fn serve_on_loopback<'a>(more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["serve"];
    args.extend_from_slice(&LOOPBACK_LISTENERS);
    args.extend_from_slice(more);
    args
}

pub struct Certdns {
    child: Child,
    /// The working directory it was started in.
    pub dir: PathBuf,
    pub banner: String,
}

impl Certdns {
    /// Starts `certdns` in `dir` and waits for its banner (the line with the HTTP
    /// address, and the first-start block if there is one).
    pub async fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_with_stderr(dir, args, env, Stdio::inherit()).await
    }

    /// Like [`Certdns::start`], with the logs (stderr) going to `stderr`; `env`
    /// may set `RUST_LOG` (default `warn`).
    pub async fn start_with_stderr(dir: &Path, args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Self {
        // Tests run many processes at once: the operator listener on a free port
        // too, unless the test chose one.
        let mut args = args.to_vec();
        if args.first() == Some(&"serve") && !args.contains(&"--ops-listen") {
            args.extend(["--ops-listen", "127.0.0.1:0"]);
        }
        let mut child = Command::new(BIN)
            .args(&args)
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn certdns");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut banner = String::new();
        let mut saw_distribution = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(if saw_distribution { Duration::from_millis(300) } else { left }) {
                Ok(line) => {
                    saw_distribution |= line.contains("TXT distribution:");
                    banner.push_str(&line);
                    banner.push('\n');
                }
                Err(_) if saw_distribution => break,
                Err(_) => {
                    let _ = child.kill();
                    panic!("certdns {args:?} did not start; output so far:\n{banner}");
                }
            }
        }
        Self { child, dir: dir.to_owned(), banner }
    }

    fn banner_field(&self, prefix: &str) -> Option<&str> {
        self.banner.lines().find_map(|l| l.trim_start().strip_prefix(prefix)).map(str::trim)
    }

    pub fn http_url(&self) -> String {
        let line = self.banner_field("HTTP").expect("HTTP line in banner");
        line.split_whitespace().next().expect("URL").to_owned()
    }

    pub fn portal_url(&self) -> String {
        let line = self.banner_field("Portal").expect("Portal line in banner");
        line.split_whitespace().next().expect("URL").to_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time the process has used so far (user + system), from /proc.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("/proc/<pid>/stat");
        // Fields after the command name (which may hold spaces) start after ')'.
        let fields: Vec<&str> = stat.rsplit_once(')').expect("stat format").1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        let hz = rustix::param::clock_ticks_per_second();
        Duration::from_micros(ticks * 1_000_000 / hz)
    }

    /// The operator listener (`/metrics`).
    pub fn ops_url(&self) -> String {
        let line = self.banner_field("Ops").expect("Ops line in banner");
        line.split_whitespace().next().expect("URL").to_owned()
    }

    pub fn dns_udp(&self) -> SocketAddr {
        let line = self.banner_field("DNS").expect("DNS line in banner");
        let addr = line.split("udp ").nth(1).expect("udp listener").split([',', ' ']).next().expect("address");
        addr.parse().expect("socket address")
    }

    /// The first start's credentials file, when the banner names one (stdout is
    /// not a terminal in tests, so it always does on a first start).
    pub fn first_start_file(&self) -> Option<PathBuf> {
        let line = self.banner_field("Credentials written to")?;
        Some(PathBuf::from(line.split(" (readable").next()?))
    }

    pub fn first_start_base_url(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join(self.first_start_file()?)).expect("first-start file");
        let mut lines = text.lines().skip_while(|l| !l.contains("ACME client base URL"));
        lines.next()?;
        lines.next().map(|l| l.trim().to_owned())
    }

    /// SIGTERM, then wait for a clean exit.
    pub async fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "certdns exited with {status} after SIGTERM");
                return;
            }
            assert!(Instant::now() < deadline, "certdns did not stop within 15 s of SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Certdns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct CliOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a short-lived command of the binary to completion.
pub fn run_cli(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> CliOutput {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn certdns");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    CliOutput {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// One DNS query over UDP, answered within 2 s.
pub async fn dns_query(server: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut query = Message::query();
    query.add_query(Query::query(Name::from_ascii(name).expect("name"), rtype));
    let bytes = query.to_vec().expect("encode");
    let mut buf = vec![0u8; 4096];
    for _ in 0..3 {
        socket.send_to(&bytes, server).await.expect("send");
        if let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf)).await {
            return Message::from_vec(&buf[..n]).expect("decode answer");
        }
    }
    panic!("no DNS answer from {server} for {name} {rtype}");
}

/// Polls until `name` answers at least `count` TXT values (10 s at most).
pub async fn wait_for_txt(server: SocketAddr, name: &str, count: usize) -> Message {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = dns_query(server, name, RecordType::TXT).await;
        if txt_values(&answer).len() >= count {
            return answer;
        }
        assert!(Instant::now() < deadline, "{name} never answered {count} TXT values: {answer:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn txt_values(answer: &Message) -> Vec<String> {
    answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(txt.txt_data.iter().map(|d| String::from_utf8_lossy(d).into_owned()).collect()),
            _ => None,
        })
        .collect()
}

pub const ZONE: &str = "auth.certdns.localhost";

pub fn valid_txt(c: char) -> String {
    c.to_string().repeat(43)
}

pub async fn register(base_url: &str) -> serde_json::Value {
    let client = reqwest::Client::new();
    let resp = client.post(format!("{base_url}/register")).send().await.unwrap();
    assert_eq!(resp.status(), 201, "register through the license-keyed base URL");
    resp.json().await.unwrap()
}

pub async fn update(http: &str, reg: &serde_json::Value, txt: &str) {
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{http}/update"))
        .header("X-Api-User", reg["username"].as_str().unwrap())
        .header("X-Api-Key", reg["password"].as_str().unwrap())
        .json(&serde_json::json!({ "subdomain": reg["subdomain"], "txt": txt }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// Submits a portal form as a browser would: GET `path` for the CSRF cookie and
/// token, then POST `fields` there. Returns the status.
pub async fn submit_portal_form(portal: &str, path: &str, fields: &[(&str, &str)]) -> u16 {
    let page = reqwest::get(format!("{portal}{path}")).await.unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let html = page.text().await.unwrap();
    let token = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", &token)
        .extend_pairs(fields.iter().copied())
        .finish();
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{portal}{path}"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}
