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
        let healthy = matches!(result, Ok(Ok(())));
        ok &= healthy;
        checks.insert("store".into(), json!(if healthy { "ok" } else { "unavailable" }));
    }
    let result = tokio::time::timeout(CHECK_TIMEOUT, ops.distribution.ping()).await;
    let healthy = matches!(result, Ok(Ok(())));
    ok &= healthy;
    checks.insert(
        "distribution".into(),
        json!({ "backend": ops.distribution.kind(), "status": if healthy { "ok" } else { "unavailable" } }),
    );
    if let Some((replica, health)) = &ops.replica {
        let report = health.report(ops.degraded_after);
        ok &= report.ready && !report.degraded;
        let status = match (report.ready, report.degraded, report.down_for) {
            (false, _, _) => "loading",
            (true, true, _) => "degraded",
            (true, false, Some(_)) => "reconnecting",
            (true, false, None) => "ok",
        };
        checks.insert(
            "replica".into(),
            json!({
                "status": status,
                "entries": replica.len(),
                "stream_down_secs": report.down_for.map(|d| d.as_secs()),
                "resyncs": report.resyncs,
            }),
        );
    }
    let code = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(json!({ "ready": ok, "checks": checks })))
}
