//! lego's HTTP storage (`ACME_DNS_STORAGE_BASE_URL=https://KEYID:SECRET@api…/storage`):
//! lego keeps its acme-dns accounts here instead of a local file, so a second
//! host renews with no `/register` and no CNAME prompt.
//!
//! `GET /storage/<domain>` gives the account bound to the domain (404 when none),
//! `GET /storage` every one, `POST /storage/<domain>` binds the registration whose
//! credentials it carries and answers 201 when the CNAME is already in place (lego
//! carries on) or 200 when it is not (lego stops and asks for it). Reading
//! passwords back makes the key an update credential for every name it holds, so
//! it is a per-key capability, off by default, and every fetch is audited.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use certdns_core::{AuditKind, CredentialSealer, LicenseKey, Registration, Username};
use certdns_delegation::{CnameStatus, check_cname};
use certdns_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::bound::{bound_registration, parse_domain};
use super::key_auth::authenticate_key;
use super::{Incoming, Shared, read_body};
use crate::error::{ApiError, json_response};
use crate::state::AppState;

/// An acme-dns account as lego stores it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StorageAccount {
    #[schema(example = "8e5700ea-a4bf-41c7-8a77-e990661dcc6a.auth.example.net")]
    pub fulldomain: String,
    #[schema(example = "8e5700ea-a4bf-41c7-8a77-e990661dcc6a")]
    pub subdomain: String,
    #[schema(example = "c36f50e8-4632-44f0-83fe-e070fef28a10")]
    pub username: String,
    #[schema(example = "htB9mR9DYgcu9bX_afHF62erXaH2TS7bg9KW3F7Z")]
    pub password: String,
    /// The API's base URL.
    #[serde(default)]
    pub server_url: String,
}

/// The key, if it may use the storage; and the sealer, if the service keeps
/// credentials at all.
async fn storage_key<'s>(
    state: &'s Arc<AppState>,
    incoming: &Incoming,
) -> Result<(LicenseKey, &'s CredentialSealer), ApiError> {
    let key = authenticate_key(state, incoming, "storage").await?;
    if !key.storage_access {
        metrics::counter!("certdns_api_auth_failures_total", "endpoint" => "storage", "reason" => "no_storage_access")
            .increment(1);
        return Err(ApiError::StorageAccessRequired);
    }
    let sealer = state.sealer.as_ref().ok_or(ApiError::StorageNotConfigured)?;
    state.key_used(&key.id, key.account_id, incoming.ip);
    Ok((key, sealer))
}

/// The registration's password, when it is kept and opens; a sealed value that
/// does not open (another key, a damaged row) is logged, never given out.
fn kept_password(sealer: &CredentialSealer, reg: &Registration) -> Option<String> {
    let sealed = reg.password_sealed.as_deref()?;
    sealer
        .open(reg.id, sealed)
        .inspect_err(|e| tracing::error!(error = %e, subdomain = %reg.subdomain, "a sealed password does not open"))
        .ok()
}

fn account_of(state: &AppState, reg: &Registration, password: String) -> StorageAccount {
    StorageAccount {
        fulldomain: format!("{}.{}", reg.subdomain, state.zone_domain),
        subdomain: reg.subdomain.to_string(),
        username: reg.username.to_string(),
        password,
        server_url: state.public_url.clone(),
    }
}

fn to_json<T: Serialize>(status: StatusCode, value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_string(value).map_err(|_| ApiError::DbError)?;
    Ok(json_response(status, body))
}

/// lego: the account stored for one domain.
#[utoipa::path(
    get, path = "/storage/{domain}",
    params(("domain" = String, Path, description = "The domain being certified (`*.` is ignored)")),
    responses(
        (status = 200, description = "The account bound to the domain", body = StorageAccount),
        (status = 400, description = "`bad_domain`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`license_key_required` or `invalid_license_key`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`storage_access_required`, `license_key_revoked` or `account_suspended`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`domain_not_bound`: lego registers a new account", body = crate::openapi::ErrorBody),
        (status = 409, description = "`domain_bound_to_other_key` or `credentials_not_kept`", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::openapi::ErrorBody),
        (status = 429, description = "`rate_limited` (too many calls without a valid key), with `Retry-After`", body = crate::openapi::ErrorBody),
        (status = 500, description = "`db_error`", body = crate::openapi::ErrorBody),
        (status = 503, description = "`storage_not_configured` or `store_unavailable`", body = crate::openapi::ErrorBody),
    ),
    security(("license_key" = []))
)]
pub async fn fetch(State(state): Shared, Path(domain): Path<String>, req: Request) -> Result<Response, ApiError> {
    let (incoming, _) = Incoming::new(&state, req);
    let (key, sealer) = storage_key(&state, &incoming).await?;
    let domain = parse_domain(&domain)?;
    let reg = bound_registration(&state, &key, &domain).await?;
    let password = kept_password(sealer, &reg).ok_or(ApiError::CredentialsNotKept { domain: domain.to_string() })?;
    let detail = serde_json::json!({ "key_id": key.id.as_str(), "domain": domain.as_str(), "subdomain": reg.subdomain.to_string() });
    state.audit(Some(key.account_id), AuditKind::CredentialsFetched, incoming.ip, detail).await;
    to_json(StatusCode::OK, &account_of(&state, &reg, password))
}

/// lego: every account the key holds, by domain.
#[utoipa::path(
    get, path = "/storage",
    responses(
        (status = 200, description = "Domain → account, for every registration of the key with a domain and a kept password", body = BTreeMap<String, StorageAccount>),
        (status = 401, description = "`license_key_required` or `invalid_license_key`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`storage_access_required`, `license_key_revoked` or `account_suspended`", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::openapi::ErrorBody),
        (status = 429, description = "`rate_limited` (too many calls without a valid key), with `Retry-After`", body = crate::openapi::ErrorBody),
        (status = 500, description = "`db_error`", body = crate::openapi::ErrorBody),
        (status = 503, description = "`storage_not_configured` or `store_unavailable`", body = crate::openapi::ErrorBody),
    ),
    security(("license_key" = []))
)]
pub async fn fetch_all(State(state): Shared, req: Request) -> Result<Response, ApiError> {
    let (incoming, _) = Incoming::new(&state, req);
    let (key, sealer) = storage_key(&state, &incoming).await?;
    let mut accounts = BTreeMap::new();
    for reg in state.store.list_registrations(key.account_id).await? {
        let Some(domain) = &reg.domain else { continue };
        if reg.license_key_id.as_ref() != Some(&key.id) {
            continue;
        }
        if let Some(password) = kept_password(sealer, &reg) {
            accounts.insert(domain.to_string(), account_of(&state, &reg, password));
        }
    }
    let detail = serde_json::json!({ "key_id": key.id.as_str(), "domain": "*", "count": accounts.len() });
    state.audit(Some(key.account_id), AuditKind::CredentialsFetched, incoming.ip, detail).await;
    to_json(StatusCode::OK, &accounts)
}

/// lego: keep this account for the domain (after `/register`).
#[utoipa::path(
    post, path = "/storage/{domain}",
    params(("domain" = String, Path, description = "The domain being certified (`*.` is ignored)")),
    request_body(content = StorageAccount, description = "The account lego registered"),
    responses(
        (status = 201, description = "Bound, and `_acme-challenge.<domain>` already points at it: lego carries on"),
        (status = 200, description = "Bound; the CNAME is not in place yet: lego stops and asks for it"),
        (status = 400, description = "`bad_domain` or `malformed_json_payload`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`license_key_required` or `invalid_license_key`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`storage_access_required`, `account_mismatch`, `license_key_revoked` or `account_suspended`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`domain_bound_to_other_key` or `domain_bound_elsewhere`", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::openapi::ErrorBody),
        (status = 429, description = "`rate_limited` (too many calls without a valid key), with `Retry-After`", body = crate::openapi::ErrorBody),
        (status = 500, description = "`db_error`", body = crate::openapi::ErrorBody),
        (status = 503, description = "`storage_not_configured` or `store_unavailable`", body = crate::openapi::ErrorBody),
    ),
    security(("license_key" = []))
)]
pub async fn put(State(state): Shared, Path(domain): Path<String>, req: Request) -> Result<Response, ApiError> {
    let (incoming, body) = Incoming::new(&state, req);
    let (key, sealer) = storage_key(&state, &incoming).await?;
    let domain = parse_domain(&domain)?;
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    let account: StorageAccount = serde_json::from_slice(&bytes).map_err(|_| ApiError::MalformedJson)?;

    // The credentials must verify and belong to a registration of this key.
    let username: Username = account.username.trim().parse().map_err(|_| ApiError::AccountMismatch)?;
    let found = state.store.registration_by_username(username).await?;
    let reg = match found {
        Some(reg)
            if reg.license_key_id.as_ref() == Some(&key.id)
                && account.subdomain == reg.subdomain.to_string()
                && super::password::verify(&state, &reg, &account.password).await? =>
        {
            reg
        }
        _ => {
            metrics::counter!("certdns_api_auth_failures_total", "endpoint" => "storage", "reason" => "account")
                .increment(1);
            return Err(ApiError::AccountMismatch);
        }
    };
    if reg.domain.as_ref() != Some(&domain) {
        match state.store.set_registration_domain(key.account_id, reg.id, Some(&domain), false).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(match bound_registration(&state, &key, &domain).await {
                    Err(e @ ApiError::DomainBoundToOtherKey { .. }) => e,
                    _ => ApiError::DomainBoundElsewhere { domain: domain.to_string() },
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    let sealed = sealer.seal(reg.id, &account.password).map_err(|_| ApiError::DbError)?;
    state.store.set_registration_password_sealed(key.account_id, reg.id, Some(&sealed)).await?;
    let detail = serde_json::json!({
        "key_id": key.id.as_str(), "domain": domain.as_str(), "subdomain": reg.subdomain.to_string(), "via": "storage",
    });
    state.audit(Some(key.account_id), AuditKind::RegistrationDomainSet, incoming.ip, detail).await;

    let fulldomain = format!("{}.{}", reg.subdomain, state.zone_domain);
    let cname = check_cname(state.config.resolver, domain.as_str(), &fulldomain).await;
    let status = if cname == CnameStatus::Correct { StatusCode::CREATED } else { StatusCode::OK };
    let body = serde_json::json!({ "domain": domain.as_str(), "fulldomain": fulldomain, "cname": cname.code() });
    to_json(status, &body)
}
