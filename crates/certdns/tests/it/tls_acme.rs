//! `tls.acme` against a real CA: pebble (Debian's package) validates DNS-01
//! through a stand-in resolver that serves a customer zone's CNAME and asks
//! certdns's own responder for the rest. A certificate for a name inside the
//! zone and one outside it (through the CNAME certdns prints once), then HTTPS
//! `/health`, `/register`, `/update` with pebble's root trusted; the renewal of
//! a short-lived certificate while the old one is served; a restart that keeps
//! the CNAME and the certificate; two instances on one Postgres where one
//! orders and both serve the same certificate.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certdns_testkit::{TestPostgres, TestRedis};
use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::{Name, RData, Record};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::support::*;

const IN_ZONE: &str = "api.auth.certdns.localhost";
const OUTSIDE: &str = "api.example.test";
const CREDENTIALS_KEY: &str = "tls-acme-test-credentials-key-0123456789";

/// A UDP port whose TCP twin is free too (certdns binds both).
async fn free_dns_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).await.is_ok() {
            return port;
        }
    }
}

async fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port()
}

/// pebble with a throw-away CA for its own HTTPS, killed on drop.
struct Pebble {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    management: u16,
}

impl Pebble {
    /// `eab`: (key id, base64url HMAC key) pebble then requires of new accounts.
    async fn start(dns: SocketAddr, validity_secs: u64, eab: Option<(&str, &str)>) -> Self {
        assert!(
            Command::new("pebble").arg("-h").stderr(Stdio::null()).status().is_ok(),
            "pebble is not installed: run scripts/test-services.sh (Debian package pebble)"
        );
        let dir = tempfile::tempdir().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("localhost.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("localhost.key"), key.serialize_pem()).unwrap();
        let (port, management) = (free_tcp_port().await, free_tcp_port().await);
        let config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.path().join("localhost.pem"),
            "privateKey": dir.path().join("localhost.key"),
            "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "",
            "externalAccountBindingRequired": eab.is_some(),
            "externalAccountMACKeys": eab.map_or_else(|| serde_json::json!({}), |(kid, key)| serde_json::json!({ kid: key })),
            "certificateValidityPeriod": validity_secs,
        }});
        std::fs::write(dir.path().join("pebble.json"), config.to_string()).unwrap();
        let log = std::fs::File::create(dir.path().join("pebble.log")).unwrap();
        let child = Command::new("pebble")
            .args(["-config", &dir.path().join("pebble.json").display().to_string()])
            .args(["-dnsserver", &dns.to_string()])
            // No sleeps before validating, no bad-nonce injection, no reused
            // authorizations (a renewal validates again).
            .envs([("PEBBLE_VA_NOSLEEP", "1"), ("PEBBLE_WFE_NONCEREJECT", "0"), ("PEBBLE_AUTHZREUSE", "0")])
            .env("PEBBLE_VA_ALWAYS_VALID", "0")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let pebble = Self { child, dir, port, management };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "pebble did not listen: {}", pebble.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        pebble
    }

    fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.port)
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// The root pebble's chains lead to (made anew at each start).
    async fn root(&self) -> rustls::RootCertStore {
        let ca = std::fs::read(self.ca_file()).unwrap();
        let mut trust = rustls::RootCertStore::empty();
        trust.add(CertificateDer::from_pem_slice(&ca).unwrap()).unwrap();
        let addr = format!("127.0.0.1:{}", self.management);
        let (status, _, pem) = https(&trust, "localhost", &addr, "GET", "/roots/0", &[], "").await.unwrap();
        assert_eq!(status, 200);
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()).unwrap();
        roots
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

use rustls::pki_types::pem::PemObject;

fn client_config(roots: &rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
    Arc::new(config)
}

/// A TLS connection to `addr` for the name `sni`, trusting `roots` only.
async fn connect(
    roots: &rustls::RootCertStore,
    sni: &str,
    addr: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(client_config(roots));
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    connector.connect(name, tcp).await.map_err(|e| e.to_string())
}

/// The leaf certificate `addr` serves for `sni`.
async fn served_leaf(roots: &rustls::RootCertStore, sni: &str, addr: &str) -> Result<CertificateDer<'static>, String> {
    let stream = connect(roots, sni, addr).await?;
    Ok(stream.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned())
}

/// One HTTP/1.1 request over TLS: status, headers, body. `user:password` as
/// Basic credentials when `basic` is given.
async fn https(
    roots: &rustls::RootCertStore,
    sni: &str,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, http::HeaderMap, String), String> {
    let tls = connect(roots, sni, addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let mut request = http::Request::builder().method(method).uri(path).header("host", sni);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(http_body_util::Full::new(hyper::body::Bytes::from(body.to_owned()))).unwrap();
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    use http_body_util::BodyExt as _;
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((parts.status.as_u16(), parts.headers, String::from_utf8_lossy(&body).into_owned()))
}

/// The CA's resolver: a customer zone's CNAMEs (challenge name → target) from
/// `cnames`, everything else asked of certdns's responder at `upstream`; a
/// CNAME's target is looked up there too and answered in the same message, as
/// a recursive resolver does.
async fn spawn_resolver(upstream: SocketAddr, cnames: Arc<Mutex<HashMap<String, String>>>) -> SocketAddr {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else { return };
            let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
            let Some(question) = query.queries.first().cloned() else { continue };
            let asked = question.name().to_ascii().trim_end_matches('.').to_lowercase();
            let mut response = Message::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
            response.metadata.recursion_desired = query.metadata.recursion_desired;
            response.metadata.recursion_available = true;
            response.add_query(question.clone());
            let target = cnames.lock().unwrap().get(&asked).cloned();
            let lookup = match &target {
                Some(target) => {
                    let to = Name::from_ascii(format!("{target}.")).unwrap();
                    response.answers.push(Record::from_rdata(
                        question.name().clone(),
                        60,
                        RData::CNAME(CNAME(to.clone())),
                    ));
                    to
                }
                None => question.name().clone(),
            };
            let socket = socket.clone();
            tokio::spawn(async move {
                let Some(answer) = ask(upstream, &lookup, question.query_type()).await else { return };
                response.metadata.response_code = answer.metadata.response_code;
                response.answers.extend(answer.answers);
                if let Ok(bytes) = response.to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            });
        }
    });
    addr
}

async fn ask(server: SocketAddr, name: &Name, rtype: hickory_proto::rr::RecordType) -> Option<Message> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.ok()?;
    let mut query = Message::query();
    query.add_query(Query::query(name.clone(), rtype));
    socket.send_to(&query.to_vec().ok()?, server).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf)).await.ok()?.ok()?;
    Message::from_vec(&buf[..n]).ok()
}

async fn ready(server: &Certdns) -> Value {
    reqwest::get(format!("{}/ready", server.ops_url())).await.unwrap().json().await.unwrap()
}

/// Polls `/ready` until `done` holds for its `tls` check; that check.
async fn wait_tls(server: &Certdns, within: Duration, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let tls = ready(server).await["checks"]["tls"].clone();
        if done(&tls) {
            return tls;
        }
        assert!(Instant::now() < deadline, "{what} within {within:?}: {tls}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn acme_env<'a>(pebble: &'a Pebble, names: &'a str, ca_file: &'a str, directory: &'a str) -> Vec<(&'a str, &'a str)> {
    let _ = pebble;
    vec![
        ("CERTDNS_ZONE__DOMAIN", ZONE),
        ("CERTDNS_TLS__ACME__DIRECTORY_URL", directory),
        ("CERTDNS_TLS__ACME__NAMES", names),
        ("CERTDNS_TLS__ACME__CONTACT", "[\"ops@example.test\"]"),
        ("CERTDNS_TLS__ACME__DIRECTORY_CA_FILE", ca_file),
        ("CERTDNS_TLS__WATCH_INTERVAL_SECS", "1"),
    ]
}

fn http_addr(server: &Certdns) -> String {
    server.http_url().trim_start_matches("https://").to_owned()
}

fn count_in(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path).unwrap_or_default().matches(needle).count()
}

/// A certificate is served (pebble's short-lived ones are always "expiring").
fn serving(tls: &Value) -> bool {
    tls["status"] == "ok" || tls["status"] == "expiring"
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn sorted_names(tls: &Value) -> Vec<String> {
    let mut names: Vec<String> =
        tls["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_certificate_inside_and_outside_the_zone_renewed_and_kept() {
    let dns: SocketAddr = ([127, 0, 0, 1], free_dns_port().await).into();
    let cnames = Arc::new(Mutex::new(HashMap::new()));
    let resolver = spawn_resolver(dns, cnames.clone()).await;
    // 60 s certificates: renewal due 40 s after issuance.
    let pebble = Pebble::start(resolver, 60, None).await;
    let dir = tempfile::tempdir().unwrap();
    let names = format!("[\"{IN_ZONE}\", \"{OUTSIDE}\"]");
    let (ca_file, directory) = (pebble.ca_file().display().to_string(), pebble.directory());
    let env = acme_env(&pebble, &names, &ca_file, &directory);
    let dns_listen = dns.to_string();
    let args = ["serve", "--http-listen", "127.0.0.1:0", "--dns-listen", &dns_listen, "--portal-listen", "127.0.0.1:0"];
    let log = dir.path().join("first.log");
    let started = Instant::now();
    let stderr = Stdio::from(std::fs::File::create(&log).unwrap());
    let server = Certdns::start_with_stderr(dir.path(), &args, &env, stderr).await;
    assert!(server.http_url().starts_with("https://"), "{}", server.banner);
    assert!(server.banner.contains("TLS   certificate by ACME for"), "{}", server.banner);

    // The CNAME to add for the name outside the zone is on /ready at once.
    let has_cname = |t: &Value| t["acme"]["cnames"].as_array().is_some_and(|c| !c.is_empty());
    let tls = wait_tls(&server, Duration::from_secs(30), "the CNAME on /ready", has_cname).await;
    let cname = &tls["acme"]["cnames"][0];
    assert_eq!(cname["cname"], format!("_acme-challenge.{OUTSIDE}"), "{tls}");
    let target = cname["target"].as_str().unwrap().to_owned();
    assert!(target.ends_with(&format!(".{ZONE}")), "{target}");
    // Without it the CA cannot validate that name: the order fails, the
    // process stays up and retries, and nothing is served yet.
    let retrying = |t: &Value| t["acme"]["state"] == "retrying";
    let tls = wait_tls(&server, Duration::from_secs(60), "a failed first order", retrying).await;
    assert_eq!(tls["status"], "no certificate yet", "{tls}");
    assert!(tls["acme"]["last_error"].as_str().unwrap().contains(OUTSIDE), "{tls}");
    assert_eq!(ready(&server).await["ready"], false);

    // The operator adds the CNAME in the customer zone: the retry succeeds.
    cnames.lock().unwrap().insert(format!("_acme-challenge.{OUTSIDE}"), target.clone());
    let tls = wait_tls(&server, Duration::from_secs(90), "a certificate", serving).await;
    eprintln!(
        "tls.acme figures: first certificate {:.1} s after start (one failed order and a 5 s back-off included); \
         the successful order took {} s",
        started.elapsed().as_secs_f64(),
        tls["acme"]["last_order_secs"]
    );
    assert_eq!(sorted_names(&tls), [IN_ZONE, OUTSIDE]);
    assert_eq!(ready(&server).await["ready"], true);

    // HTTPS with pebble's root trusted, under either name.
    let roots = pebble.root().await;
    let addr = http_addr(&server);
    for name in [IN_ZONE, OUTSIDE] {
        let (status, headers, _) = https(&roots, name, &addr, "GET", "/health", &[], "").await.unwrap();
        assert_eq!(status, 200);
        assert!(headers.contains_key("strict-transport-security"));
    }
    // /register with the license key of the base URL, /update, then DNS.
    let base = server.first_start_base_url().unwrap();
    // Handed out under the certificate's name, not the listener's address.
    assert!(base.contains(&format!("@{IN_ZONE}:")), "{base}");
    let userinfo = base.trim_start_matches("https://").split('@').next().unwrap();
    use base64::Engine as _;
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(userinfo));
    let (status, _, body) =
        https(&roots, IN_ZONE, &addr, "POST", "/register", &[("authorization", &basic)], "").await.unwrap();
    assert_eq!(status, 201, "{body}");
    let reg: Value = serde_json::from_str(&body).unwrap();
    let update = serde_json::json!({ "subdomain": reg["subdomain"], "txt": valid_txt('a') }).to_string();
    let headers = [
        ("X-Api-User", reg["username"].as_str().unwrap()),
        ("X-Api-Key", reg["password"].as_str().unwrap()),
        ("content-type", "application/json"),
    ];
    let (status, _, body) = https(&roots, IN_ZONE, &addr, "POST", "/update", &headers, &update).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let fulldomain = reg["fulldomain"].as_str().unwrap();
    assert_eq!(txt_values(&wait_for_txt(dns, fulldomain, 1).await), [valid_txt('a')]);

    // Renewal at two thirds of the lifetime: every handshake until then gets
    // the old certificate, then the new one is served.
    let first = served_leaf(&roots, IN_ZONE, &addr).await.unwrap();
    let renew_at = tls["acme"]["renew_at"].as_i64().unwrap();
    let not_after = tls["not_after"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    let renewed = loop {
        let leaf = served_leaf(&roots, IN_ZONE, &addr).await.expect("a handshake while renewing");
        if leaf != first {
            break leaf;
        }
        assert!(Instant::now() < deadline, "not renewed (due at {renew_at}, expiring {not_after})");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let late = unix_now() - renew_at;
    let tls = ready(&server).await["checks"]["tls"].clone();
    eprintln!(
        "tls.acme figures: renewed {late} s after the renewal date (the order took {} s); the old certificate \
         was served until then",
        tls["acme"]["last_order_secs"]
    );
    assert!(late >= 0, "renewed before two thirds of the lifetime");
    assert_eq!(tls["acme"]["ordered"], 2, "{tls}");
    assert_eq!(tls["acme"]["renew_by"], "two thirds of the lifetime", "pebble 2.4 offers no ARI: {tls}");

    // The key at rest is sealed: the database holds the chain, no private key.
    for file in ["certdns.sqlite3", "certdns.sqlite3-wal"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains("PRIVATE KEY"), "{file} holds a private key in clear");
    }
    server.stop().await;

    // A restart serves the stored certificate without ordering, and the CNAME
    // (the internal registration) stays what it was; the warning was given once.
    let second_log = dir.path().join("second.log");
    let stderr = Stdio::from(std::fs::File::create(&second_log).unwrap());
    let server = Certdns::start_with_stderr(dir.path(), &args, &env, stderr).await;
    let tls = wait_tls(&server, Duration::from_secs(20), "the stored certificate", serving).await;
    assert_eq!(tls["acme"]["ordered"], 0, "{tls}");
    assert_eq!(tls["acme"]["cnames"][0]["target"], target.as_str(), "{tls}");
    assert_eq!(served_leaf(&roots, OUTSIDE, &http_addr(&server)).await.unwrap(), renewed);
    assert_eq!(count_in(&log, "add this DNS record once"), 1);
    assert_eq!(count_in(&second_log, "add this DNS record once"), 0);
    server.stop().await;
}

/// Two API instances on one Postgres (and one Redis for the TXT values): one
/// takes the lease and orders, the other picks the certificate up from the
/// store; both serve the same one, and pebble issued one. The CA requires
/// external account binding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_one_order_the_same_certificate() {
    let pg = TestPostgres::new().await;
    let redis = TestRedis::new().await;
    let dns: SocketAddr = ([127, 0, 0, 1], free_dns_port().await).into();
    let resolver = spawn_resolver(dns, Arc::default()).await;
    // This CA requires external account binding; the HMAC key comes from a file.
    let (kid, hmac) = ("kid-certdns", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W");
    let pebble = Pebble::start(resolver, 3600, Some((kid, hmac))).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("eab.key"), format!("{hmac}\n")).unwrap();
    let names = format!("[\"{IN_ZONE}\"]");
    let (ca_file, directory) = (pebble.ca_file().display().to_string(), pebble.directory());
    let mut env = acme_env(&pebble, &names, &ca_file, &directory);
    env.extend([
        ("CERTDNS_DATABASE_URL", pg.url()),
        ("CERTDNS_REDIS_URL", redis.url()),
        ("CERTDNS_REDIS_PREFIX", redis.prefix()),
        ("CERTDNS_API__CREDENTIALS_KEY", CREDENTIALS_KEY),
        ("CERTDNS_TLS__ACME__EAB_KID", kid),
        ("CERTDNS_TLS__ACME__EAB_HMAC_KEY_FILE", "eab.key"),
    ]);
    let dns_listen = dns.to_string();
    let first =
        ["serve", "--http-listen", "127.0.0.1:0", "--dns-listen", &dns_listen, "--portal-listen", "127.0.0.1:0"];
    let a = Certdns::start(dir.path(), &first, &env).await;
    let b = Certdns::start(dir.path(), &serve_on_loopback(&[]), &env).await;
    let mut leaves = Vec::new();
    let mut ordered = 0;
    let roots = pebble.root().await;
    for server in [&a, &b] {
        let tls = wait_tls(server, Duration::from_secs(60), "a certificate", serving).await;
        ordered += tls["acme"]["ordered"].as_u64().unwrap();
        leaves.push(served_leaf(&roots, IN_ZONE, &http_addr(server)).await.unwrap());
    }
    assert_eq!(ordered, 1, "one instance orders");
    assert_eq!(leaves[0], leaves[1], "both serve the stored certificate");
    a.stop().await;
    b.stop().await;
}

/// On Postgres nothing generates `api.credentials_key`: without it `tls.acme`
/// would have nothing to seal the private key with, and the start says so.
#[tokio::test]
async fn a_fleet_without_the_credentials_key_does_not_start() {
    let pg = TestPostgres::new().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CERTDNS_DATABASE_URL", pg.url()),
        ("CERTDNS_TLS__ACME__DIRECTORY_URL", "https://127.0.0.1:1/dir"),
        ("CERTDNS_TLS__ACME__NAMES", "[\"api.auth.certdns.localhost\"]"),
    ];
    let out = run_cli(dir.path(), &serve_on_loopback(&["--ops-listen", "127.0.0.1:0"]), &env, None);
    assert!(!out.success);
    assert!(out.stderr.contains("tls.acme") && out.stderr.contains("api.credentials_key"), "{}", out.stderr);
}
