//! The public edge under slow clients, against the real binary: half-sent
//! headers and stalled bodies on both HTTP listeners are cut off within the
//! configured times while the service keeps answering.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

fn addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

/// Reads until the server closes the connection; returns what it sent.
async fn until_closed(socket: &mut TcpStream, within: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(String::from_utf8_lossy(&seen).into_owned()),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_while_the_service_answers() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CERTDNS_HTTP__LIMITS__HEADER_READ_TIMEOUT_SECS", "2"),
        ("CERTDNS_PORTAL__LIMITS__HEADER_READ_TIMEOUT_SECS", "2"),
        ("CERTDNS_API__REQUEST_TIMEOUT_SECS", "2"),
        ("CERTDNS_PORTAL__REQUEST_TIMEOUT_SECS", "2"),
    ];
    let args =
        ["serve", "--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--portal-listen", "127.0.0.1:0"];
    let server = Certdns::start(dir.path(), &args, &env).await;
    let (api, portal) = (addr(&server.http_url()), addr(&server.portal_url()));

    let mut slow = Vec::new();
    for target in std::iter::repeat_n(api, 200).chain(std::iter::repeat_n(portal, 100)) {
        let mut s = TcpStream::connect(target).await.unwrap();
        s.write_all(b"POST /update HTTP/1.1\r\nHost: x\r\nX-Api-User: ").await.unwrap();
        slow.push(s);
    }
    // Both listeners answer while 300 connections hang.
    let started = Instant::now();
    assert_eq!(reqwest::get(format!("http://{api}/health")).await.unwrap().status(), 200);
    assert_eq!(reqwest::get(format!("http://{portal}/login")).await.unwrap().status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    let began = Instant::now();
    for s in &mut slow {
        assert!(until_closed(s, Duration::from_secs(6)).await.is_some(), "a half-open connection stayed open");
    }
    assert!(began.elapsed() < Duration::from_secs(6), "closed in {:?}", began.elapsed());

    // A body that stalls: 408 within the request deadline, on both listeners.
    for (target, path, code) in [(api, "/update", "request_timeout"), (portal, "/login", "Request timed out")] {
        let mut s = TcpStream::connect(target).await.unwrap();
        let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{\"subdomain\":");
        s.write_all(head.as_bytes()).await.unwrap();
        let began = Instant::now();
        let answer = until_closed(&mut s, Duration::from_secs(6)).await.expect("closed");
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains(code), "{path}: {answer}");
        assert!(began.elapsed() < Duration::from_secs(4), "{path}: {:?}", began.elapsed());
    }
    server.stop().await;
}
