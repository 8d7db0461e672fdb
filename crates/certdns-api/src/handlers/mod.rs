//! The acme-dns endpoints (`register`, `update`), the deregistration extension,
//! and what they share: taking a request apart, reading credentials, counting
//! failed authentications.

mod acmeproxy;
mod bound;
mod deregister;
mod key_auth;
mod password;
mod plan_write;
mod register;
mod storage;
mod update;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use certdns_core::{AccountId, AccountStatus, AuditKind, Registration, Secret, SecretHash, Username};

pub use acmeproxy::{__path_cleanup, __path_present, cleanup, present};
pub use deregister::{__path_deregister, deregister};
pub use register::{__path_register, RegisterResponse, register};
pub use storage::{__path_fetch, __path_fetch_all, __path_put, StorageAccount, fetch, fetch_all, put};
pub use update::{__path_update, update};

use crate::error::ApiError;
use crate::state::AppState;

type Shared = State<Arc<AppState>>;

/// A request taken apart: the client address and the headers. The body is kept
/// apart (it is not `Sync`, and `&Incoming` is held across awaits).
struct Incoming {
    ip: Option<IpAddr>,
    headers: HeaderMap,
}

impl Incoming {
    fn new(state: &AppState, req: Request) -> (Self, Body) {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let (parts, body) = req.into_parts();
        let ip = state.client_addr.client_addr(peer, &parts.headers);
        (Self { ip, headers: parts.headers }, body)
    }

    /// `X-Api-User` / `X-Api-Key` as sent (see [`RegistrationCredentials`]).
    fn registration_credentials(&self) -> RegistrationCredentials<'_> {
        let header = |name: &str| self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
        RegistrationCredentials { user: header("x-api-user").trim().parse().ok(), key: header("x-api-key") }
    }

    /// 429 at once, before any store read or write, when this address or the
    /// username sent is out of failed authentications.
    fn refuse_if_over_failure_budget(&self, state: &AppState) -> Result<(), ApiError> {
        let user = self.registration_credentials().user;
        state.limits.auth_blocked(self.ip, user).map_err(|(which, wait)| rate_limited(which, wait))
    }

    fn sends_registration_credentials(&self) -> bool {
        self.headers.contains_key("x-api-user") || self.headers.contains_key("x-api-key")
    }
}

/// A registration's credentials as the client sent them: the username when it
/// is one, and the key (checked against the stored hash by the caller).
struct RegistrationCredentials<'a> {
    user: Option<Username>,
    key: &'a str,
}

impl RegistrationCredentials<'_> {
    /// Both well-formed: worth a store lookup.
    fn well_formed(&self) -> Option<Username> {
        self.user.filter(|_| Secret::is_well_formed(self.key))
    }
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.downcast_ref::<http_body_util::LengthLimitError>().is_some())
            || e.to_string().contains("length limit");
        if too_large { ApiError::PayloadTooLarge } else { ApiError::MalformedJson }
    })
}

fn rate_limited(which: &'static str, retry_after: Duration) -> ApiError {
    metrics::counter!("certdns_api_rate_limited_total", "limit" => which).increment(1);
    ApiError::RateLimited { retry_after }
}

/// Checks `X-Api-User` / `X-Api-Key` and the allow-from list (acme-dns steps
/// 1-5): the registration and its account's status, or the failure counted.
async fn authenticate_registration(
    state: &Arc<AppState>,
    incoming: &Incoming,
    endpoint: &'static str,
) -> Result<(Registration, AccountStatus), ApiError> {
    let credentials = incoming.registration_credentials();
    // The account is kept on a wrong key so a burst of failures is audited to it.
    let found = match credentials.well_formed() {
        Some(user) => match state.store.registration_for_update(user).await? {
            Some((reg, status)) if password::verify(state, &reg, credentials.key).await? => Ok((reg, status)),
            Some((reg, _)) => Err(Some(reg.account_id)),
            None => {
                // Same cost as a wrong key, so "no such user" cannot be told apart.
                SecretHash::decoy().verify(credentials.key);
                Err(None)
            }
        },
        None => Err(None),
    };
    let user = credentials.user;
    let (reg, status) = match found {
        Ok(found) => found,
        Err(account) => return Err(auth_failed(state, incoming.ip, user, account, endpoint, "credentials").await),
    };
    if !incoming.ip.is_some_and(|ip| reg.allow_from.allows(ip)) && !reg.allow_from.is_unrestricted() {
        return Err(auth_failed(state, incoming.ip, user, Some(reg.account_id), endpoint, "allowfrom").await);
    }
    Ok((reg, status))
}

/// Counts a failed authentication: 401 `forbidden`, or 429 once the address or
/// user is over its budget (the first time a minute, also an audit event).
async fn auth_failed(
    state: &Arc<AppState>,
    ip: Option<IpAddr>,
    user: Option<Username>,
    account: Option<AccountId>,
    endpoint: &'static str,
    reason: &'static str,
) -> ApiError {
    metrics::counter!("certdns_api_auth_failures_total", "endpoint" => endpoint, "reason" => reason).increment(1);
    if let (Some(user), Some(account)) = (user, account) {
        state.signals.registration_failure(user, account);
    }
    match state.limits.auth_failure(ip, user) {
        Ok(()) => ApiError::Forbidden,
        Err((which, wait)) => {
            if state.limits.should_audit_burst(ip) {
                tracing::warn!(client = ?ip, endpoint, "burst of failed authentications");
                state
                    .audit(
                        account,
                        AuditKind::AuthFailureBurst,
                        ip,
                        serde_json::json!({ "endpoint": endpoint, "limit": which }),
                    )
                    .await;
            }
            rate_limited(which, wait)
        }
    }
}

/// Publishes a durable TXT write and waits (at most `propagation_wait_ms`) until
/// every live responder serves it; whether they all did.
async fn publish_and_confirm(state: &Arc<AppState>, written: certdns_core::TxtState) -> bool {
    let published = std::time::Instant::now();
    let position = state.sync.publish_states(vec![written]).await;
    let wait = Duration::from_millis(state.config.propagation_wait_ms);
    crate::update_batch::confirm(&state.sync, position.as_ref(), wait, published).await
}

/// Liveness, as in acme-dns: `200` with an empty body, no storage check.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "Up (empty body)")))]
pub async fn health() -> StatusCode {
    StatusCode::OK
}
