//! The acme-dns compatible HTTP API.
//!
//! [`router`] serves `/register`, `/update`, `/health`, the `/deregister`
//! extension, lego's HTTP storage (`/storage`), the acmeproxy dialect
//! (`/acmeproxy/present`, `/acmeproxy/cleanup`) and `/openapi.json`, with its own middleware (request id, tracing,
//! body limit, deadline, CORS, path normalisation). The embedding binary merges it
//! with its operational routes and serves it with
//! `into_make_service_with_connect_info::<SocketAddr>()`, which gives the handlers
//! the peer address. See `docs/api.md` for the wire contract.
//!
//! Write path: authenticate → durable write in the [`Store`] → publish through
//! [`TxtSync`]. A failed publish never fails the request: the write is durable,
//! and the sync layer's reconciler republishes it.

mod auth;
mod body;
pub mod config;
mod cors;
mod error;
mod handlers;
mod limits;
mod middleware;
pub mod openapi;
mod routing;
mod signals;
mod state;
mod update_batch;
mod usage;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use certdns_store::Store;
use certdns_sync::TxtSync;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use auth::KEY_CACHE_TTL;
pub use config::{ApiConfig, Rate, RateLimits, RegistrationMode};
pub use usage::FLUSH_EVERY as USAGE_FLUSH_EVERY;

use crate::state::AppState;

/// What the API needs from the process that embeds it.
pub struct ApiDeps {
    pub store: Arc<dyn Store>,
    /// Publishes what the API writes (shared with the portal in one process).
    pub sync: Arc<TxtSync>,
    pub config: ApiConfig,
    /// The zone; `fulldomain` = `<subdomain>.<zone_domain>`, written as configured.
    pub zone_domain: String,
    /// The API's public base URL (`https://api.example.net`), for `server_url` in
    /// lego's storage answers.
    pub public_url: String,
    /// Where per-key update counts go (the portal's usage view); `None` counts nothing.
    pub usage: Option<Arc<dyn certdns_store::PortalStore>>,
    /// Routes served elsewhere that `/openapi.json` documents too (the portal's
    /// account API, each path with its own `servers`).
    pub also_documented: Option<utoipa::openapi::OpenApi>,
    /// Plans and payment standing; `None` (billing off) limits nothing.
    pub entitlements: Option<Arc<certdns_billing::Entitlements>>,
}

/// The API's routes and middleware. Has no fallback of its own beyond path
/// normalisation (404 `404 page not found` like acme-dns), so it merges with
/// routers that have none.
pub fn router(mut deps: ApiDeps) -> Router {
    let document = Arc::new(openapi::document_with(deps.also_documented.take()));
    let state = Arc::new(AppState::new(deps));
    let registration_open = state.config.registration != config::RegistrationMode::Disabled;

    let mut routes = Router::new()
        .route("/update", post(handlers::update).fallback(|| async { routing::method_not_allowed("OPTIONS, POST") }))
        .route(
            "/deregister",
            post(handlers::deregister).fallback(|| async { routing::method_not_allowed("OPTIONS, POST") }),
        )
        .route("/health", get(handlers::health).fallback(|| async { routing::method_not_allowed("GET, OPTIONS") }))
        .route("/openapi.json", get(move || openapi_json(document.clone())))
        .route("/storage", get(handlers::fetch_all).fallback(|| async { routing::method_not_allowed("GET, OPTIONS") }))
        .route(
            "/storage/{domain}",
            get(handlers::fetch)
                .post(handlers::put)
                .fallback(|| async { routing::method_not_allowed("GET, OPTIONS, POST") }),
        )
        .route(
            "/acmeproxy/present",
            post(handlers::present).fallback(|| async { routing::method_not_allowed("OPTIONS, POST") }),
        )
        .route(
            "/acmeproxy/cleanup",
            post(handlers::cleanup).fallback(|| async { routing::method_not_allowed("OPTIONS, POST") }),
        );
    let mut known = vec![
        "/update",
        "/deregister",
        "/health",
        "/openapi.json",
        "/storage",
        "/storage/*",
        "/acmeproxy/present",
        "/acmeproxy/cleanup",
    ];
    if registration_open {
        routes = routes.route(
            "/register",
            post(handlers::register).fallback(|| async { routing::method_not_allowed("OPTIONS, POST") }),
        );
        known.push("/register");
    }
    let inner: Router = routes
        .route_layer(axum::middleware::from_fn(middleware::track))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::deadline))
        .with_state(state.clone());

    let prefix = state.config.path_prefix.clone();
    let dispatch_to = inner.clone();
    let fallback = move |req: Request| routing::dispatch(dispatch_to.clone(), prefix.clone(), known.clone(), req);

    let outer = ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            // Method and path only: headers carry credentials, bodies carry TXT values.
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(cors::layer(&state.config.cors_origins));
    inner.fallback(fallback).layer(outer)
}

async fn openapi_json(document: Arc<String>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], document.as_str().to_owned())
}
