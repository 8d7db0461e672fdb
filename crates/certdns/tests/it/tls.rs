//! HTTPS from certificate files: the API and the portal over TLS with the test's
//! own CA pinned, a replaced certificate served without a restart (open
//! connections untouched), a broken replacement ignored, a client that never
//! sends its ClientHello dropped, the plain listener that only redirects, and
//! the warning when credentials would travel in clear.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// The test's CA.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "certdns test CA");
        Self { issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap() }
    }

    /// A leaf for localhost and 127.0.0.1, as (chain PEM, key PEM, leaf DER).
    fn leaf(&self) -> (String, String, CertificateDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (format!("{}{}", cert.pem(), self.issuer.pem()), key.serialize_pem(), cert.der().clone())
    }

    fn client_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        alpn: &[&[u8]],
    ) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    /// One HTTPS request trusting this CA only, over a new connection (HTTP/1.1).
    /// `url` may carry `user:password@` (sent as Basic credentials, as ACME
    /// clients do with the base URL). Status, headers, body.
    async fn request(&self, method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Response {
        let config = self.client_config(rustls::ALL_VERSIONS, &[b"http/1.1"]);
        let rest = url.strip_prefix("https://").expect("an https:// URL");
        let (authority, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
        let (userinfo, host) = authority.rsplit_once('@').map_or((None, authority), |(u, h)| (Some(u), h));
        let tls = handshake(host, config).await.map_err(|e| e.to_string())?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let mut request = http::Request::builder().method(method).uri(path).header("host", host);
        if let Some(userinfo) = userinfo {
            use base64::Engine as _;
            let encoded = base64::engine::general_purpose::STANDARD.encode(userinfo);
            request = request.header("authorization", format!("Basic {encoded}"));
        }
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
}

type Response = Result<(u16, http::HeaderMap, String), String>;

fn write_pair(dir: &Path, (chain, key, _): &(String, String, CertificateDer<'static>)) {
    // The key first, then the chain: the order a careless renewal script uses,
    // leaving a moment where they do not match.
    std::fs::write(dir.join("key.pem"), key).unwrap();
    std::fs::write(dir.join("cert.pem"), chain).unwrap();
}

/// A TLS connection to `addr` (for the name localhost).
async fn handshake(
    addr: &str,
    config: rustls::ClientConfig,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, std::io::Error> {
    let tcp = TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await
}

fn leaf_of(stream: &tokio_rustls::client::TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned()
}

fn host_port(url: &str) -> String {
    url.split("://").nth(1).unwrap().trim_end_matches('/').to_owned()
}

/// One HTTP/1.1 request on an open TLS connection; the status line.
async fn get_on(stream: &mut tokio_rustls::client::TlsStream<TcpStream>, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
    String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_from_certificate_files() {
    let ca = Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let first = ca.leaf();
    write_pair(dir.path(), &first);
    let server = Certdns::start(
        dir.path(),
        &["serve", "--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--portal-listen", "127.0.0.1:0"],
        &[
            ("CERTDNS_ZONE__DOMAIN", ZONE),
            ("CERTDNS_TLS__CERT_FILE", "cert.pem"),
            ("CERTDNS_TLS__KEY_FILE", "key.pem"),
            ("CERTDNS_TLS__WATCH_INTERVAL_SECS", "1"),
            ("CERTDNS_TLS__REDIRECT_LISTEN", "127.0.0.1:0"),
            ("CERTDNS_HTTP__LIMITS__HEADER_READ_TIMEOUT_SECS", "2"),
        ],
    )
    .await;
    let api = server.http_url();
    let portal = server.portal_url();
    assert!(api.starts_with("https://") && portal.starts_with("https://"), "{}", server.banner);
    assert!(server.banner.contains("TLS   certificate for localhost, 127.0.0.1, expires"), "{}", server.banner);
    assert!(!server.banner.contains("WARNING"), "{}", server.banner);

    // The acme-dns API over HTTPS, the license key in the base URL as clients get it.
    let (status, headers, _) = ca.request("GET", &format!("{api}/health"), &[], "").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(headers["strict-transport-security"], "max-age=31536000");
    let base_url = server.first_start_base_url().unwrap();
    assert!(base_url.starts_with("https://"), "{base_url}");
    let (status, _, body) = ca.request("POST", &format!("{base_url}/register"), &[], "").await.unwrap();
    assert_eq!(status, 201, "{body}");
    let reg: serde_json::Value = serde_json::from_str(&body).unwrap();
    let update = serde_json::json!({ "subdomain": reg["subdomain"], "txt": valid_txt('t') }).to_string();
    let credentials = [
        ("X-Api-User", reg["username"].as_str().unwrap()),
        ("X-Api-Key", reg["password"].as_str().unwrap()),
        ("content-type", "application/json"),
    ];
    let (status, _, body) = ca.request("POST", &format!("{api}/update"), &credentials, &update).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let fulldomain = reg["fulldomain"].as_str().unwrap();
    assert_eq!(txt_values(&wait_for_txt(server.dns_udp(), fulldomain, 1).await), [valid_txt('t')]);
    // The portal too, with HSTS.
    let (status, headers, _) = ca.request("GET", &format!("{portal}/login"), &[], "").await.unwrap();
    assert_eq!(status, 200);
    assert!(headers.contains_key("strict-transport-security"));
    // A client that does not trust the CA gets no answer.
    let refused = Ca::new().request("GET", &format!("{api}/health"), &[], "").await.unwrap_err();
    assert!(refused.contains("certificate"), "{refused}");

    // TLS 1.2 and 1.3; ALPN h2 and http/1.1.
    let addr = host_port(&api);
    let tls13 = handshake(&addr, ca.client_config(&[&rustls::version::TLS13], &[b"h2", b"http/1.1"])).await.unwrap();
    assert_eq!(tls13.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let tls12 = handshake(&addr, ca.client_config(&[&rustls::version::TLS12], &[b"http/1.1"])).await.unwrap();
    assert_eq!(tls12.get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
    assert_eq!(tls12.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(leaf_of(&tls12), first.2);

    // A client that connects and never sends its ClientHello is dropped after
    // the header deadline (2 s here).
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(6), silent.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "a silent client still connected after 6 s");
    assert!(started.elapsed() >= Duration::from_millis(1500), "dropped too early: {:?}", started.elapsed());

    // A replaced certificate is served from the next handshake on, without a
    // restart; a connection opened before keeps working.
    let open = ca.client_config(rustls::ALL_VERSIONS, &[b"http/1.1"]);
    let mut before = handshake(&addr, open).await.unwrap();
    assert_eq!(get_on(&mut before, "/health").await, "HTTP/1.1 200 OK");
    let second = ca.leaf();
    write_pair(dir.path(), &second);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = handshake(&addr, ca.client_config(rustls::ALL_VERSIONS, &[])).await.unwrap();
        if leaf_of(&now) == second.2 {
            break;
        }
        assert!(Instant::now() < deadline, "the replaced certificate was not served within 10 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(get_on(&mut before, "/health").await, "HTTP/1.1 200 OK", "the open connection survives");

    // A broken replacement (garbage in the chain) is not served: the previous
    // certificate stays, and the next good one is picked up.
    std::fs::write(dir.path().join("cert.pem"), "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let still = handshake(&addr, ca.client_config(rustls::ALL_VERSIONS, &[])).await.unwrap();
    assert_eq!(leaf_of(&still), second.2);
    let metrics = reqwest::get(format!("{}/metrics", server.ops_url())).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("certdns_tls_reload_failures_total"), "reload failures counted");
    assert!(metrics.contains("certdns_tls_certificate_not_after_seconds"), "expiry exported");
    let ready: serde_json::Value =
        reqwest::get(format!("{}/ready", server.ops_url())).await.unwrap().json().await.unwrap();
    assert_eq!(ready["checks"]["tls"]["status"], "ok", "{ready}");
    assert_eq!(ready["checks"]["tls"]["names"], serde_json::json!(["localhost", "127.0.0.1"]), "{ready}");

    // The plain listener redirects reads and refuses writes: no /update in clear.
    let redirect = server
        .banner
        .lines()
        .find(|l| l.contains("redirects to HTTPS only"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .to_owned();
    let plain = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let moved = plain.get(format!("{redirect}/health?x=1")).send().await.unwrap();
    assert_eq!(moved.status(), 308);
    let https_port = addr.rsplit(':').next().unwrap();
    assert_eq!(moved.headers()["location"], format!("https://127.0.0.1:{https_port}/health?x=1"));
    let refused = plain.post(format!("{redirect}/update")).body("{}").send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.text().await.unwrap(), r#"{"error": "https_required"}"#);

    server.stop().await;
}

/// Plain HTTP on an address other machines reach warns that credentials would
/// travel in clear; on loopback, or with TLS, it does not.
#[tokio::test]
async fn plain_http_beyond_loopback_warns() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["serve", "--http-listen", "0.0.0.0:0", "--dns-listen", "127.0.0.1:0", "--portal-listen", "127.0.0.1:0"];
    let server = Certdns::start(dir.path(), &args, &[("CERTDNS_ZONE__DOMAIN", ZONE)]).await;
    let warning = server.banner.lines().find(|l| l.contains("WARNING")).unwrap_or_default().to_owned();
    assert!(warning.contains("http.listen 0.0.0.0:") && warning.contains("in clear"), "{}", server.banner);
    assert!(!server.banner.contains("portal.listen"), "the portal is on loopback: {}", server.banner);
    server.stop().await;
}
