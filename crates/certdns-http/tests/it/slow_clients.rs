//! Clients that never finish their headers (slowloris) or sit idle are closed
//! within the configured time, while the listener keeps answering; at the
//! connection cap, new connections wait instead of failing.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use certdns_http::{ConnectionLimits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

async fn start(limits: ConnectionLimits) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let router =
        Router::new()
            .route(
                "/health",
                get(|axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>| async move {
                    peer.to_string()
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    "done"
                }),
            );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve(listener, router, limits, "test", None, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (addr, stop, task)
}

async fn health(addr: SocketAddr) -> (u16, String) {
    let r = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Waits until the server closes `socket` (EOF or reset), up to `within`.
async fn closed_within(socket: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue, // a 408 page, then the close
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_headers_are_closed_while_the_listener_keeps_answering() {
    let (addr, stop, task) = start(ConnectionLimits { header_read_timeout_secs: 2, max_connections: 1024 }).await;
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: a").await.unwrap();
        slow.push(s);
    }
    // 300 half-open connections do not stop the listener.
    let started = Instant::now();
    let (status, peer) = health(addr).await;
    assert_eq!(status, 200);
    assert!(peer.starts_with("127.0.0.1:"), "handlers see the peer: {peer}");
    assert!(started.elapsed() < Duration::from_secs(1), "answered at once: {:?}", started.elapsed());
    // Every one of them is closed within the timeout (plus scheduling slack).
    let began = Instant::now();
    for s in &mut slow {
        assert!(closed_within(s, Duration::from_secs(5)).await, "a half-open connection stayed open");
    }
    assert!(began.elapsed() < Duration::from_secs(5), "{:?}", began.elapsed());
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn idle_kept_alive_connections_are_closed() {
    let (addr, stop, task) = start(ConnectionLimits { header_read_timeout_secs: 1, max_connections: 16 }).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    // Kept alive, then silent: closed after about the header timeout.
    let began = Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(4)).await, "an idle keep-alive connection stayed open");
    assert!(began.elapsed() >= Duration::from_millis(900), "{:?}", began.elapsed());
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn at_the_connection_cap_new_clients_wait_for_a_slot() {
    let (addr, stop, task) = start(ConnectionLimits { header_read_timeout_secs: 2, max_connections: 4 }).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The fifth waits until the slow ones are reaped, then is served.
    let started = Instant::now();
    assert_eq!(health(addr).await.0, 200);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1500) && waited < Duration::from_secs(5), "{waited:?}");
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_open_requests_finish() {
    let (addr, stop, task) = start(ConnectionLimits::default()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await; // in the handler now
    let _ = stop.send(());
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    tokio::time::timeout(Duration::from_secs(12), task).await.unwrap().unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
}
