//! Operational endpoints every role serves. The public HTTP listener has the
//! probes load balancers and anycast health checks need (`/ready`, and `/health`
//! where the API role, which owns the acme-dns `/health`, is not running); the
//! operator's listener (`ops.listen`, loopback by default) adds `/metrics`,
//! which would tell strangers too much.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use certdns_replication::{Distribution, FollowerHealth, Replica};
use certdns_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Ops {
    pub metrics: PrometheusHandle,
    /// Checked when a role that writes (api) runs.
    pub store: Option<Arc<dyn Store>>,
    pub distribution: Arc<dyn Distribution>,
    /// Present when the dns role runs.
    pub replica: Option<(Arc<Replica>, Arc<FollowerHealth>)>,
    pub degraded_after: Duration,
    /// Readiness fails with the distribution (the api role runs).
    pub distribution_required: bool,
    /// The last write probe: when, and whether it worked.
    pub last_write: Arc<std::sync::Mutex<Option<(std::time::Instant, bool)>>>,
    /// The certificate the HTTP listeners serve, when they speak TLS.
    pub tls: Option<Arc<certdns_tls::CertSlot>>,
    /// How `tls.acme` is doing, when it fills that certificate.
    pub acme: Option<Arc<certdns_tls::AcmeStatus>>,
}

/// A certificate this close to its end is reported as `expiring` (still ready).
const EXPIRING_WITHIN: i64 = 14 * 24 * 3600;

/// Write probes run at most this often, however many load balancers ask.
const WRITE_PROBE_EVERY: Duration = Duration::from_secs(2);

impl Ops {
    /// Whether the store takes writes (a full disk, a read-only failover fail
    /// this while reads work), probed at most every [`WRITE_PROBE_EVERY`].
    async fn store_writes(&self, store: &dyn Store) -> bool {
        let cached = *self.last_write.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, ok)) = cached
            && at.elapsed() < WRITE_PROBE_EVERY
        {
            return ok;
        }
        let ok = match tokio::time::timeout(CHECK_TIMEOUT, store.ping_write()).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the store refuses writes");
                false
            }
            Err(_) => false,
        };
        *self.last_write.lock().unwrap_or_else(|p| p.into_inner()) = Some((std::time::Instant::now(), ok));
        ok
    }
}

/// `/ready` (and `/health` when asked) for the public HTTP listener.
pub fn probes(ops: Ops, with_health: bool) -> Router {
    let router = Router::new().route("/ready", get(ready));
    let router = if with_health { router.route("/health", get(|| async { StatusCode::OK })) } else { router };
    router.with_state(ops)
}

/// The operator's listener: `/metrics`, `/ready`, `/health`.
pub fn operator(ops: Ops) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/ready", get(ready))
        .route("/health", get(|| async { StatusCode::OK }))
        .with_state(ops)
}

async fn metrics(State(ops): State<Ops>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4")], ops.metrics.render())
}

/// 200 when every part this process depends on works; 503 otherwise, with the
/// failing part named. A DNS responder is ready once its first snapshot is loaded
/// and stops being ready when its change stream has been down longer than
/// `dns.degraded_after_secs` (it keeps answering; anycast should route elsewhere).
async fn ready(State(ops): State<Ops>) -> impl IntoResponse {
    let mut ok = true;
    let mut checks = serde_json::Map::new();
    if let Some(store) = &ops.store {
        let result = tokio::time::timeout(CHECK_TIMEOUT, store.ping()).await;
        let status = match result {
            Ok(Ok(())) if ops.store_writes(store.as_ref()).await => "ok",
            Ok(Ok(())) => "writes failing",
            _ => "unavailable",
        };
        ok &= status == "ok";
        checks.insert("store".into(), json!(status));
    }
    let result = tokio::time::timeout(CHECK_TIMEOUT, ops.distribution.ping()).await;
    let healthy = matches!(result, Ok(Ok(())));
    // Only the api role needs Redis to do its job. A responder keeps answering
    // from its replica while Redis is away (its replica check below turns it
    // unready after `dns.degraded_after_secs`; failing it at once would withdraw
    // every PoP from anycast together), and the portal's rare publishes are
    // repaired by the reconcile.
    if ops.distribution_required {
        ok &= healthy;
    }
    let mut distribution =
        json!({ "backend": ops.distribution.kind(), "status": if healthy { "ok" } else { "unavailable" } });
    if healthy && let Ok(Ok(generation)) = tokio::time::timeout(CHECK_TIMEOUT, ops.distribution.generation()).await {
        // Not a failure of this process: a writer is republishing the store.
        distribution["generation"] = json!(generation.status());
    }
    if ops.store.is_some()
        && let Ok(Ok(live)) = tokio::time::timeout(CHECK_TIMEOUT, ops.distribution.live_responders()).await
    {
        distribution["live_responders"] = json!(live.len());
    }
    checks.insert("distribution".into(), distribution);
    if let Some((replica, health)) = &ops.replica {
        let report = health.report(ops.degraded_after);
        ok &= report.ready && !report.degraded;
        // Ready once a complete generation is loaded. While the distribution is
        // rebuilt after losing its state, a responder that had one stays ready
        // (it serves it, plus every change since); one that never had one is not.
        let status = match (report.ready, report.degraded, report.down_for, report.rebuilding) {
            (false, _, _, true) => "incomplete",
            (false, _, _, false) => "loading",
            (true, true, _, _) => "degraded",
            (true, false, Some(_), _) => "reconnecting",
            (true, false, None, true) => "rebuilding",
            (true, false, None, false) => "ok",
        };
        checks.insert(
            "replica".into(),
            json!({
                "status": status,
                "entries": replica.len(),
                "stream_down_secs": report.down_for.map(|d| d.as_secs()),
                "resyncs": report.resyncs,
                "serving": if report.ready { "the last complete generation" } else { "part of the names" },
            }),
        );
    }
    if let Some(slot) = &ops.tls {
        // An expired certificate fails every client's handshake: not ready.
        let left = slot.not_after() - time::OffsetDateTime::now_utc().unix_timestamp();
        let status = match left {
            _ if !slot.is_serving() => "no certificate yet",
            ..=0 => "expired",
            1..EXPIRING_WITHIN => "expiring",
            _ => "ok",
        };
        ok &= slot.is_serving() && left > 0;
        let not_after = time::OffsetDateTime::from_unix_timestamp(slot.not_after())
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok());
        let mut tls =
            json!({ "status": status, "names": slot.names(), "not_after": not_after, "expires_in_secs": left });
        if let Some(acme) = &ops.acme {
            tls["acme"] = json!(acme.report());
        }
        checks.insert("tls".into(), tls);
    }
    let code = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(json!({ "ready": ok, "checks": checks })))
}
