//! The acmeproxy / httpreq dialect at `/acmeproxy`: `POST /present` and
//! `POST /cleanup` with `{"fqdn": "_acme-challenge.www.example.com.", "value": "…"}`
//! (lego's `httpreq`, acme.sh's `dns_acmeproxy`, Caddy's `acmeproxy` module), or
//! lego's RAW mode `{"domain", "token", "keyAuth"}`, authenticated by the license
//! key. The name maps to the key's registration bound to that domain (or its
//! closest bound parent); `fqdn` may also be the delegation target itself
//! (`<subdomain>.<zone>.`), which lego sends once it has followed the CNAME.
//! `present` adds a value (the newest `api.acmeproxy_values` are kept), `cleanup`
//! removes exactly that value, and the DNS follows at once.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use certdns_core::{Domain, LicenseKey, Registration, Subdomain, TxtValue};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::bound::{bound_registration_or_parent, parse_domain};
use super::key_auth::authenticate_key;
use super::{Incoming, Shared, publish_and_confirm, read_body};
use crate::error::{ApiError, json_response};
use crate::state::AppState;

/// Either form a client sends (RAW mode's `token` is accepted and not needed).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ProxyRequest {
    /// `_acme-challenge.<domain>.`, or the delegation target `<subdomain>.<zone>.`
    #[schema(example = "_acme-challenge.www.example.com.")]
    pub fqdn: Option<String>,
    /// The TXT value (43 characters of base64url).
    #[schema(example = "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM")]
    pub value: Option<String>,
    /// RAW mode: the domain being certified.
    pub domain: Option<String>,
    /// RAW mode: the key authorization; the value is its SHA-256, base64url.
    #[serde(rename = "keyAuth")]
    pub key_auth: Option<String>,
}

/// What a request is about: the registration and the value.
struct Target {
    reg: Registration,
    value: TxtValue,
    fqdn: String,
}

async fn target(state: &Arc<AppState>, key: &LicenseKey, body: &[u8]) -> Result<Target, ApiError> {
    let req: ProxyRequest = serde_json::from_slice(body).map_err(|_| ApiError::MalformedJson)?;
    if let (Some(fqdn), Some(value)) = (&req.fqdn, &req.value) {
        let value = TxtValue::parse(value.trim()).map_err(|_| ApiError::BadTxt)?;
        let reg = by_fqdn(state, key, fqdn).await?;
        return Ok(Target { reg, value, fqdn: fqdn.clone() });
    }
    if let (Some(domain), Some(key_auth)) = (&req.domain, &req.key_auth) {
        let domain = parse_domain(domain)?;
        let digest = Sha256::digest(key_auth.as_bytes());
        let value = TxtValue::parse(&URL_SAFE_NO_PAD.encode(digest)).map_err(|_| ApiError::BadTxt)?;
        let reg = bound_registration_or_parent(state, key, &domain).await?;
        return Ok(Target { reg, value, fqdn: format!("{}.", domain.challenge_name()) });
    }
    Err(ApiError::MalformedJson)
}

/// `_acme-challenge.<domain>` → the bound registration; `<subdomain>.<zone>` →
/// the key's registration with that subdomain.
async fn by_fqdn(state: &Arc<AppState>, key: &LicenseKey, fqdn: &str) -> Result<Registration, ApiError> {
    let name = fqdn.trim().trim_end_matches('.');
    let zone_suffix = format!(".{}", state.zone_domain);
    if name.len() > zone_suffix.len() && name[name.len() - zone_suffix.len()..].eq_ignore_ascii_case(&zone_suffix) {
        let label = &name[..name.len() - zone_suffix.len()];
        let not_ours = || ApiError::DomainNotBound { domain: name.to_ascii_lowercase() };
        let subdomain = Subdomain::from_label(label.as_bytes()).ok_or_else(not_ours)?;
        return match state.store.registration_by_subdomain(key.account_id, subdomain).await? {
            Some(reg) if reg.license_key_id.as_ref() == Some(&key.id) => Ok(reg),
            _ => Err(not_ours()),
        };
    }
    match Domain::from_challenge_name(name) {
        Some(Ok(domain)) => bound_registration_or_parent(state, key, &domain).await,
        Some(Err(e)) => Err(ApiError::BadDomain { reason: format!("fqdn: {e}") }),
        None => Err(ApiError::BadDomain {
            reason: format!("fqdn must be _acme-challenge.<your domain> or <subdomain>.{}", state.zone_domain),
        }),
    }
}

async fn authenticated(state: &Arc<AppState>, req: Request) -> Result<(Incoming, LicenseKey, Target), ApiError> {
    let (incoming, body) = Incoming::new(state, req);
    let key = authenticate_key(state, &incoming, "acmeproxy").await?;
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    let target = target(state, &key, &bytes).await?;
    state.key_used(&key.id, key.account_id, incoming.ip);
    Ok((incoming, key, target))
}

fn answer(target: &Target) -> Response {
    let body = serde_json::json!({ "fqdn": target.fqdn, "value": target.value.as_str() }).to_string();
    json_response(StatusCode::OK, body)
}

/// acmeproxy: publish a TXT value.
#[utoipa::path(
    post, path = "/acmeproxy/present",
    request_body(content = ProxyRequest, description = "`fqdn` + `value`, or RAW mode's `domain` + `keyAuth`"),
    responses(
        (status = 200, description = "Stored and published"),
        (status = 400, description = "`malformed_json_payload`, `bad_txt` or `bad_domain`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`license_key_required` or `invalid_license_key`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`license_key_revoked` or `account_suspended`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`domain_not_bound`: the message says how to bind one", body = crate::openapi::ErrorBody),
        (status = 409, description = "`domain_bound_to_other_key`", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::openapi::ErrorBody),
        (status = 429, description = "`rate_limited` (too many calls without a valid key), with `Retry-After`", body = crate::openapi::ErrorBody),
        (status = 500, description = "`db_error`", body = crate::openapi::ErrorBody),
        (status = 503, description = "`store_unavailable`", body = crate::openapi::ErrorBody),
    ),
    security(("license_key" = []))
)]
pub async fn present(State(state): Shared, req: Request) -> Result<Response, ApiError> {
    let (_, _, target) = authenticated(&state, req).await?;
    let served = state.sync.keep();
    let current = state.store.txt_state(target.reg.subdomain, served).await?;
    // A retried present must not push out a value the CA still needs.
    if current.is_some_and(|s| s.values.contains(&target.value)) {
        return Ok(answer(&target));
    }
    let keep = state.config.acmeproxy_values;
    let written = state.store.put_txt(target.reg.id, &target.value, keep, certdns_core::now()).await?;
    publish_and_confirm(&state, written).await;
    metrics::counter!("certdns_api_acmeproxy_total", "action" => "present").increment(1);
    Ok(answer(&target))
}

/// acmeproxy: remove exactly this TXT value.
#[utoipa::path(
    post, path = "/acmeproxy/cleanup",
    request_body(content = ProxyRequest, description = "`fqdn` + `value`, or RAW mode's `domain` + `keyAuth`"),
    responses(
        (status = 200, description = "Removed (or was not there)"),
        (status = 400, description = "`malformed_json_payload`, `bad_txt` or `bad_domain`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`license_key_required` or `invalid_license_key`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`license_key_revoked` or `account_suspended`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`domain_not_bound`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`domain_bound_to_other_key`", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::openapi::ErrorBody),
        (status = 429, description = "`rate_limited` (too many calls without a valid key), with `Retry-After`", body = crate::openapi::ErrorBody),
        (status = 500, description = "`db_error`", body = crate::openapi::ErrorBody),
        (status = 503, description = "`store_unavailable`", body = crate::openapi::ErrorBody),
    ),
    security(("license_key" = []))
)]
pub async fn cleanup(State(state): Shared, req: Request) -> Result<Response, ApiError> {
    let (_, _, target) = authenticated(&state, req).await?;
    let served = state.sync.keep();
    if let Some(written) = state.store.remove_txt(target.reg.id, &target.value, served, certdns_core::now()).await? {
        publish_and_confirm(&state, written).await;
    }
    metrics::counter!("certdns_api_acmeproxy_total", "action" => "cleanup").increment(1);
    Ok(answer(&target))
}
