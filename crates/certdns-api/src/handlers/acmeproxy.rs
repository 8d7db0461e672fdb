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
use sha2::{Digest, Sha256};

use super::bound::{bound_registration_or_parent, parse_domain};
use super::key_auth::authenticate_key;
use super::{Incoming, Shared, publish_and_confirm, read_body};
use crate::error::{ApiError, json_response};
use crate::state::AppState;

/// What a request is about: the registration and the value.
struct Target {
    reg: Registration,
    value: TxtValue,
    fqdn: String,
}

/// The body's form: exactly `fqdn` + `value`, or exactly RAW mode's `domain` +
/// `keyAuth` (+ `token`), every field a string (`crate::openapi::ProxyRequest`).
/// Anything else — a mix, a missing or extra field, a null — is refused, so what
/// the server takes is what the document describes.
enum ProxyBody {
    Fqdn { fqdn: String, value: String },
    Raw { domain: String, key_auth: String },
}

fn parse_body(body: &[u8]) -> Result<ProxyBody, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| ApiError::MalformedJson)?;
    let obj = value.as_object().ok_or(ApiError::MalformedJson)?;
    let text = |k: &str| obj.get(k).and_then(|v| v.as_str()).map(str::to_owned).ok_or(ApiError::MalformedJson);
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    match keys.as_slice() {
        ["fqdn", "value"] => Ok(ProxyBody::Fqdn { fqdn: text("fqdn")?, value: text("value")? }),
        ["domain", "keyAuth"] | ["domain", "keyAuth", "token"] => {
            if obj.contains_key("token") {
                text("token")?;
            }
            Ok(ProxyBody::Raw { domain: text("domain")?, key_auth: text("keyAuth")? })
        }
        _ => Err(ApiError::MalformedJson),
    }
}

async fn target(state: &Arc<AppState>, key: &LicenseKey, body: &[u8]) -> Result<Target, ApiError> {
    match parse_body(body)? {
        ProxyBody::Fqdn { fqdn, value } => {
            untrimmed(&fqdn)?;
            let value = TxtValue::parse(&value).map_err(|_| ApiError::BadTxt)?;
            let reg = by_fqdn(state, key, &fqdn).await?;
            Ok(Target { reg, value, fqdn })
        }
        // lego's `HTTPREQ_MODE=RAW`: the value is the key authorization's digest.
        ProxyBody::Raw { domain, key_auth } => {
            untrimmed(&domain)?;
            let domain = parse_domain(&domain)?;
            let digest = Sha256::digest(key_auth.as_bytes());
            let value = TxtValue::parse(&URL_SAFE_NO_PAD.encode(digest)).map_err(|_| ApiError::BadTxt)?;
            let reg = bound_registration_or_parent(state, key, &domain).await?;
            Ok(Target { reg, value, fqdn: format!("{}.", domain.challenge_name()) })
        }
    }
}

/// Clients send names as DNS writes them; surrounding spaces mean a broken
/// client or a probe, not a name.
fn untrimmed(name: &str) -> Result<(), ApiError> {
    if name.trim() == name {
        Ok(())
    } else {
        Err(ApiError::BadDomain { reason: format!("{name:?}: surrounding spaces") })
    }
}

/// `_acme-challenge.<domain>` → the bound registration; `<subdomain>.<zone>` →
/// the key's registration with that subdomain.
async fn by_fqdn(state: &Arc<AppState>, key: &LicenseKey, fqdn: &str) -> Result<Registration, ApiError> {
    let name = fqdn.trim_end_matches('.');
    let zone_suffix = format!(".{}", state.zone_domain);
    // `get`, not indexing: the name is the client's text, and a split inside a
    // multi-byte character must be a non-match, not a panic.
    let split = name.len().saturating_sub(zone_suffix.len());
    let in_zone = split > 0 && name.get(split..).is_some_and(|tail| tail.eq_ignore_ascii_case(&zone_suffix));
    if let (true, Some(label)) = (in_zone, name.get(..split)) {
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

async fn authenticated(state: &Arc<AppState>, req: Request) -> Result<Target, ApiError> {
    let (incoming, body) = Incoming::new(state, req);
    let key = authenticate_key(state, &incoming, "acmeproxy").await?;
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    let target = target(state, &key, &bytes).await?;
    state.key_used(&key.id, key.account_id, incoming.ip);
    Ok(target)
}

fn answer(target: &Target) -> Response {
    let body = serde_json::json!({ "fqdn": target.fqdn, "value": target.value.as_str() }).to_string();
    json_response(StatusCode::OK, body)
}

/// acmeproxy: publish a TXT value.
#[utoipa::path(
    post, path = "/acmeproxy/present",
    request_body(content = crate::openapi::ProxyRequest, description = "`fqdn` + `value`, or RAW mode's `domain` + `keyAuth`"),
    responses(
        (status = 200, description = "Stored and published"),
        (status = 400, description = "`malformed_json_payload`, `bad_txt` or `bad_domain`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`license_key_required` or `invalid_license_key`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`license_key_revoked` or `account_suspended`; with billing on, `updates_per_day_limit_reached` or `payment_overdue_updates_stopped` (as on /update)", body = crate::openapi::ErrorBody),
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
    let target = authenticated(&state, req).await?;
    let limits = super::plan_write::update_limits(&state, &target.reg).await?;
    let served = state.sync.keep();
    let current = state.store.txt_state(target.reg.subdomain, served).await?;
    // A retried present must not push out a value the CA still needs.
    if current.is_some_and(|s| s.values.contains(&target.value)) {
        return Ok(answer(&target));
    }
    let keep = state.config.acmeproxy_values;
    let written = super::plan_write::write_within_plan(&state, &target.reg, &limits, &target.value, keep).await?;
    publish_and_confirm(&state, written).await;
    metrics::counter!("certdns_api_acmeproxy_total", "action" => "present").increment(1);
    Ok(answer(&target))
}

/// acmeproxy: remove exactly this TXT value.
#[utoipa::path(
    post, path = "/acmeproxy/cleanup",
    request_body(content = crate::openapi::ProxyRequest, description = "`fqdn` + `value`, or RAW mode's `domain` + `keyAuth`"),
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
    let target = authenticated(&state, req).await?;
    let served = state.sync.keep();
    if let Some(written) = state.store.remove_txt(target.reg.id, &target.value, served, certdns_core::now()).await? {
        publish_and_confirm(&state, written).await;
    }
    metrics::counter!("certdns_api_acmeproxy_total", "action" => "cleanup").increment(1);
    Ok(answer(&target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_one_form_exactly() {
        assert!(matches!(parse_body(br#"{"fqdn":"a","value":"b"}"#), Ok(ProxyBody::Fqdn { .. })));
        assert!(matches!(parse_body(br#"{"domain":"a","keyAuth":"b"}"#), Ok(ProxyBody::Raw { .. })));
        assert!(matches!(parse_body(br#"{"domain":"a","keyAuth":"b","token":"c"}"#), Ok(ProxyBody::Raw { .. })));
        for bad in [
            "",
            "[]",
            "{}",
            r#"{"fqdn":"a"}"#,
            r#"{"fqdn":"a","value":null}"#,
            r#"{"fqdn":"a","value":1}"#,
            r#"{"fqdn":"a","value":"b","x":1}"#,
            r#"{"fqdn":"a","value":"b","domain":"c","keyAuth":"d"}"#,
            r#"{"domain":"a","keyAuth":"b","fqdn":null}"#,
            r#"{"domain":"a","keyAuth":"b","token":5}"#,
        ] {
            assert!(matches!(parse_body(bad.as_bytes()), Err(ApiError::MalformedJson)), "{bad}");
        }
    }
}
