//! Serving a router on a TCP listener with the limits a public listener needs,
//! in plain HTTP or over TLS.
//!
//! `axum::serve` gives hyper no timer, so hyper's header read timeout never
//! fires: a client that sends half a request line keeps its socket forever, and
//! a thousand of them take every file descriptor (slowloris). Here every
//! connection gets a deadline for its request headers — which also bounds how
//! long a kept-alive connection may sit idle before its next request (hyper
//! starts the same timer while it waits) — and the listener serves at most
//! `max_connections` at once: the rest wait in the kernel's accept queue until a
//! slot frees. Over TLS the handshake gets the same deadline (a client that
//! connects and never sends its ClientHello is dropped like one that never sends
//! its headers). The whole-request deadline (a body that stalls) is each
//! router's own middleware, so its answer can be in that router's error format.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::either::Either;
use tower::ServiceExt;

/// How long open connections get to finish after shutdown starts.
const DRAIN: Duration = Duration::from_secs(10);

/// The connection limits of one listener (`[http.limits]`, `[portal.limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionLimits {
    /// Seconds a client has to send a request's headers, and to start its next
    /// request on a kept-alive connection.
    pub header_read_timeout_secs: u64,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self { header_read_timeout_secs: 10, max_connections: 1024 }
    }
}

impl ConnectionLimits {
    /// The keys and their descriptions, for a section's `DOCS` (under `limits.`).
    pub const DOCS: &'static [(&'static str, &'static str)] = &[
        ("limits", "connection limits of this listener (table, keys below)"),
        (
            "limits.header_read_timeout_secs",
            "seconds a client has to send its request headers, and to start the next request on a kept-alive connection",
        ),
        ("limits.max_connections", "connections served at once; more wait in the kernel's accept queue"),
    ];

    /// Checks the values; errors start with `<section>.limits.<key>:`.
    pub fn validate(&self, section: &str) -> Result<(), String> {
        if !(1..=300).contains(&self.header_read_timeout_secs) {
            return Err(format!("{section}.limits.header_read_timeout_secs: must be between 1 and 300"));
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(format!("{section}.limits.max_connections: must be between 1 and 1000000"));
        }
        Ok(())
    }
}

/// What a listener needs to speak HTTPS.
#[derive(Clone)]
pub struct Https {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// `Strict-Transport-Security: max-age=…` on every answer; 0: none.
    pub hsts_max_age_secs: u64,
}

/// Serves `router` on `listener` (over TLS when `https` is given) until
/// `shutdown` completes, then lets open connections finish (for up to 10 s).
/// Handlers see the peer as `ConnectInfo<SocketAddr>`. `name` labels the
/// metrics (`api`, `portal`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    name: &'static str,
    https: Option<Https>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let header_timeout = Duration::from_secs(limits.header_read_timeout_secs);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(header_timeout)
        .max_concurrent_streams(64);
    let builder = Arc::new(builder);
    let router = match &https {
        Some(https) if https.hsts_max_age_secs > 0 => with_hsts(router, https.hsts_max_age_secs),
        _ => router,
    };
    let acceptor = https.map(|h| h.acceptor);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // A free slot first: at the cap, connections wait in the accept queue.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.map_err(std::io::Error::other)?,
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: wait a little, keep serving.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = router.clone().map_request(move |mut req: axum::extract::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        });
        let service = TowerToHyperService::new(service);
        let builder = builder.clone();
        let connection = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let io = match acceptor {
                None => Either::Left(stream),
                Some(acceptor) => match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => Either::Right(tls),
                    Ok(Err(e)) => {
                        tracing::debug!(listener = name, %peer, error = %e, "TLS handshake failed");
                        metrics::counter!("certdns_http_tls_handshake_failures_total", "listener" => name, "reason" => "error").increment(1);
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(listener = name, %peer, "TLS handshake not done within the header deadline");
                        metrics::counter!("certdns_http_tls_handshake_failures_total", "listener" => name, "reason" => "timeout").increment(1);
                        return;
                    }
                },
            };
            metrics::gauge!("certdns_http_connections", "listener" => name).increment(1.0);
            let served = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            if let Err(e) = connection.watch(served.into_owned()).await {
                tracing::debug!(listener = name, %peer, error = %e, "connection ended with an error");
            }
            metrics::gauge!("certdns_http_connections", "listener" => name).decrement(1.0);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!(listener = name, "connections still open {DRAIN:?} after shutdown began");
    }
    Ok(())
}

/// Every answer tells the browser to use HTTPS only from now on (RFC 6797; sent
/// over TLS only, where it counts).
fn with_hsts(router: Router, max_age_secs: u64) -> Router {
    let value = http::HeaderValue::from_str(&format!("max-age={max_age_secs}"))
        .unwrap_or_else(|e| unreachable!("digits are a header value: {e}"));
    router.layer(axum::middleware::map_response(move |mut response: axum::response::Response| {
        let value = value.clone();
        async move {
            response.headers_mut().entry(http::header::STRICT_TRANSPORT_SECURITY).or_insert(value);
            response
        }
    }))
}
