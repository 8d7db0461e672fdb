//! `POST /deregister` (extension): delete a registration so nothing stale stays
//! answerable, with its own credentials or with its account's license key.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use certdns_core::{AuditKind, Registration, Subdomain};
use certdns_store::StoreError;

use super::{Incoming, Shared, auth_failed, authenticate_registration, read_body};
use crate::auth::{self, KeyCheck};
use crate::body as bodies;
use crate::error::{ApiError, json_response};
use crate::state::AppState;

/// Extension: delete a registration, so nothing stale stays answerable.
#[utoipa::path(
    post, path = "/deregister",
    request_body(content = crate::openapi::DeregisterRequest, description = "With a license key: required. With registration credentials: may be left out (if given, must name the same subdomain)."),
    params(
        ("X-Api-User" = Option<String>, Header, nullable = false, description = "`username` from /register (with `X-Api-Key`, instead of a license key)"),
        ("X-Api-Key" = Option<String>, Header, nullable = false, description = "`password` from /register"),
    ),
    responses(
        (status = 200, description = "Deleted; the name stops answering", body = crate::openapi::DeregisterResponse),
        (status = 400, description = "`malformed_json_payload` or `bad_subdomain`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`forbidden` or `invalid_license_key`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`license_key_revoked`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: no such registration in this account", body = crate::openapi::ErrorBody),
        (status = 429, description = "`rate_limited`, with `Retry-After`", body = crate::openapi::ErrorBody),
        (status = 503, description = "`store_unavailable`: the store is down or full; retry after `Retry-After`", body = crate::openapi::ErrorBody),
    ),
    security(("api_user" = [], "api_key" = []), ("license_key" = []))
)]
pub async fn deregister(State(state): Shared, req: Request) -> Result<Response, ApiError> {
    let (incoming, body) = Incoming::new(&state, req);
    incoming.refuse_if_over_failure_budget(&state)?;
    let target = if incoming.sends_registration_credentials() {
        by_registration_credentials(&state, &incoming, body).await?
    } else {
        by_license_key(&state, &incoming, body).await?
    };
    let (account, subdomain) = (target.account_id, target.subdomain);
    match state.sync.delete_registration(account, target.id).await {
        Ok(deleted) => debug_assert_eq!(deleted, subdomain),
        Err(StoreError::NotFound) => return Err(ApiError::NotFound),
        Err(e) => return Err(e.into()),
    }
    metrics::counter!("certdns_api_deregistrations_total").increment(1);
    state
        .audit(
            Some(account),
            AuditKind::RegistrationDeleted,
            incoming.ip,
            serde_json::json!({ "subdomain": subdomain.to_string() }),
        )
        .await;
    tracing::info!(%account, %subdomain, "registration deleted");
    let body = format!("{{\"subdomain\":\"{subdomain}\",\"deleted\":true}}");
    Ok(json_response(StatusCode::OK, body))
}

/// The registration whose credentials came with the request; a body, if any,
/// must name its subdomain.
async fn by_registration_credentials(
    state: &Arc<AppState>,
    incoming: &Incoming,
    body: Body,
) -> Result<Registration, ApiError> {
    let (reg, _) = authenticate_registration(state, incoming, "deregister").await?;
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    if let Some(named) = bodies::parse_subdomain(&bytes)?
        && named != reg.subdomain.to_string()
    {
        let (ip, user, account) = (incoming.ip, Some(reg.username), Some(reg.account_id));
        return Err(auth_failed(state, ip, user, account, "deregister", "subdomain").await);
    }
    Ok(reg)
}

/// The registration the body names, within the license key's account. A
/// suspended account may still clean up.
async fn by_license_key(state: &Arc<AppState>, incoming: &Incoming, body: Body) -> Result<Registration, ApiError> {
    let realm = || state.config.basic_auth_realm.clone();
    let creds = match auth::basic_credentials(&incoming.headers) {
        Some(Ok(c)) => c,
        None => return Err(ApiError::LicenseKeyRequired { realm: realm() }),
        Some(Err(())) => return Err(ApiError::InvalidLicenseKey { realm: realm() }),
    };
    let key = match state.keys.check(state.store.as_ref(), &creds).await? {
        (KeyCheck::Ok | KeyCheck::Suspended, Some(key)) => key,
        (KeyCheck::Revoked, _) => return Err(ApiError::LicenseKeyRevoked),
        _ => {
            let err = auth_failed(state, incoming.ip, None, None, "deregister", "license_key").await;
            return Err(match err {
                ApiError::Forbidden => ApiError::InvalidLicenseKey { realm: realm() },
                other => other,
            });
        }
    };
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    let named = bodies::parse_subdomain(&bytes)?.ok_or(ApiError::BadSubdomain)?;
    let subdomain = named.parse::<Subdomain>().map_err(|_| ApiError::BadSubdomain)?;
    let reg = state.store.registration_by_subdomain(key.account_id, subdomain).await?.ok_or(ApiError::NotFound)?;
    state.key_used(&key.id, key.account_id, incoming.ip);
    Ok(reg)
}
