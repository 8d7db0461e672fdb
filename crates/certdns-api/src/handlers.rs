//! The acme-dns endpoints and the deregistration extension.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use certdns_core::{
    AccountId, AccountStatus, AuditKind, NewAuditEvent, Registration, RegistrationId, Secret, SecretHash, Subdomain,
    TxtState, TxtValue, Username,
};
use certdns_distribution::Change;
use certdns_store::{AuthorizedWrite, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{self, KeyCheck};
use crate::body as bodies;
use crate::config::RegistrationMode;
use crate::error::{ApiError, json_response};
use crate::state::AppState;

type Shared = State<Arc<AppState>>;

/// A request taken apart: peer address, headers and the body read within the
/// size limit.
struct Incoming {
    ip: Option<IpAddr>,
    headers: HeaderMap,
}

impl Incoming {
    /// The body is returned apart: it is not `Sync`, and `&Incoming` is held
    /// across awaits.
    fn new(state: &AppState, req: Request) -> (Self, Body) {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let (parts, body) = req.into_parts();
        let ip = state.client_ip.client_ip(peer, &parts.headers);
        (Self { ip, headers: parts.headers }, body)
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

fn rate_limited(which: &'static str, retry_after: std::time::Duration) -> ApiError {
    metrics::counter!("certdns_api_rate_limited_total", "limit" => which).increment(1);
    ApiError::RateLimited { retry_after }
}

/// The `/register` success body: acme-dns's fields in acme-dns's order, then the
/// `subject` extension when one was given.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterResponse {
    /// Send as `X-Api-User` to `/update`.
    #[schema(example = "c36f50e8-4632-44f0-83fe-e070fef28a10")]
    pub username: String,
    /// Send as `X-Api-Key` to `/update`. Shown once; only a hash is kept.
    #[schema(example = "htB9mR9DYgcu9bX_afHF62erXaH2TS7bg9KW3F7Z")]
    pub password: String,
    /// Point `_acme-challenge.<your domain>` here with a CNAME.
    #[schema(example = "8e5700ea-a4bf-41c7-8a77-e990661dcc6a.auth.example.net")]
    pub fulldomain: String,
    #[schema(example = "8e5700ea-a4bf-41c7-8a77-e990661dcc6a")]
    pub subdomain: String,
    /// The accepted CIDRs, brackets removed; `[]` = any address.
    pub allowfrom: Vec<String>,
    /// Extension: the `subject` sent at registration, echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// Who a registration is made for, and with which key.
struct Owner {
    account: AccountId,
    key: Option<certdns_core::KeyId>,
}

async fn license_owner(state: &Arc<AppState>, incoming: &Incoming) -> Result<Owner, ApiError> {
    let realm = || state.config.basic_auth_realm.clone();
    let creds = match auth::basic_credentials(&incoming.headers) {
        None => {
            metrics::counter!("certdns_api_auth_failures_total", "endpoint" => "register", "reason" => "missing")
                .increment(1);
            return Err(ApiError::LicenseKeyRequired { realm: realm() });
        }
        Some(Err(())) => {
            metrics::counter!("certdns_api_auth_failures_total", "endpoint" => "register", "reason" => "malformed")
                .increment(1);
            return Err(ApiError::InvalidLicenseKey { realm: realm() });
        }
        Some(Ok(c)) => c,
    };
    let (verdict, key) = state.keys.check(state.store.as_ref(), &creds).await.map_err(|e| store_failure(&e))?;
    let reason = match verdict {
        KeyCheck::Ok => None,
        KeyCheck::Invalid => Some(("invalid", ApiError::InvalidLicenseKey { realm: realm() })),
        KeyCheck::Revoked => Some(("revoked", ApiError::LicenseKeyRevoked)),
        KeyCheck::Suspended => Some(("suspended", ApiError::AccountSuspended)),
    };
    if let Some((reason, err)) = reason {
        metrics::counter!("certdns_api_auth_failures_total", "endpoint" => "register", "reason" => reason).increment(1);
        return Err(err);
    }
    let key = key.ok_or(ApiError::DbError)?;
    Ok(Owner { account: key.account_id, key: Some(key.id) })
}

fn store_failure(e: &StoreError) -> ApiError {
    tracing::error!(error = %e, "storage failure");
    ApiError::DbError
}

/// Register a new acme-dns account (a subdomain and its credentials).
#[utoipa::path(
    post, path = "/register",
    request_body(content = Option<crate::openapi::RegisterRequest>, description = "Optional; empty, `null` or `{}` register without restrictions. Keys match case-insensitively; any Content-Type."),
    responses(
        (status = 201, description = "Registered", body = RegisterResponse),
        (status = 400, description = "`malformed_json_payload`, `invalid_allowfrom_cidr` or `bad_subject`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`license_key_required` / `invalid_license_key`, with `WWW-Authenticate: Basic`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`license_key_revoked` or `account_suspended`", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::openapi::ErrorBody),
        (status = 429, description = "`rate_limited`, with `Retry-After`", body = crate::openapi::ErrorBody),
        (status = 500, description = "`db_error`", body = crate::openapi::ErrorBody),
    ),
    security(("license_key" = []))
)]
pub async fn register(State(state): Shared, req: Request) -> Response {
    match register_inner(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn register_inner(state: &Arc<AppState>, req: Request) -> Result<Response, ApiError> {
    let (incoming, body) = Incoming::new(state, req);
    state.limits.register_address(incoming.ip).map_err(|(w, d)| rate_limited(w, d))?;
    let owner = match state.config.registration {
        RegistrationMode::License => license_owner(state, &incoming).await?,
        RegistrationMode::Open => match state.open_owner().await.map_err(|e| store_failure(&e))? {
            Some(account) => Owner { account, key: None },
            None => return Err(ApiError::NoOwner),
        },
        // The route is not mounted; kept total for safety.
        RegistrationMode::Disabled => return Err(ApiError::NotFound),
    };
    if let Some(key) = &owner.key {
        state.limits.register_key(key).map_err(|(w, d)| rate_limited(w, d))?;
    }
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    let parsed = bodies::parse_register(&bytes)?;

    let password = Secret::generate();
    let registration = Registration {
        id: RegistrationId::generate(),
        account_id: owner.account,
        license_key_id: owner.key.clone(),
        username: Username::generate(),
        password_hash: password.hash(),
        subdomain: Subdomain::generate(),
        allow_from: parsed.allow_from,
        subject: parsed.subject,
        created_at: certdns_core::now(),
        last_update_at: None,
    };
    let event = NewAuditEvent {
        account_id: Some(owner.account),
        kind: AuditKind::RegistrationCreated,
        client_addr: incoming.ip,
        detail: serde_json::json!({
            "subdomain": registration.subdomain.to_string(),
            "key_id": owner.key.as_ref().map(|k| k.as_str()),
        }),
    };
    state
        .store
        .create_registration_audited(&registration, &event, registration.created_at)
        .await
        .map_err(|e| store_failure(&e))?;
    // Version 0, no values: the name exists (NODATA rather than NXDOMAIN) at once.
    state.publish(Change::Upsert(TxtState { subdomain: registration.subdomain, version: 0, values: Vec::new() })).await;
    metrics::counter!("certdns_api_registrations_total").increment(1);
    if let Some(key) = &owner.key {
        state.key_used(key, owner.account, incoming.ip);
    }
    tracing::info!(account = %owner.account, subdomain = %registration.subdomain, "registration created");

    let response = RegisterResponse {
        username: registration.username.to_string(),
        password: password.expose().to_owned(),
        fulldomain: format!("{}.{}", registration.subdomain, state.zone_domain),
        subdomain: registration.subdomain.to_string(),
        allowfrom: registration.allow_from.as_strings().map(str::to_owned).collect(),
        subject: registration.subject,
    };
    let json = serde_json::to_string(&response).map_err(|_| ApiError::DbError)?;
    Ok(json_response(StatusCode::CREATED, json))
}

/// Outcome of checking `X-Api-User` / `X-Api-Key` (acme-dns steps 1-5).
async fn registration_credentials(
    state: &Arc<AppState>,
    incoming: &Incoming,
    endpoint: &'static str,
) -> Result<(Registration, AccountStatus), ApiError> {
    let header = |name: &str| incoming.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let user = header("x-api-user").trim().parse::<Username>().ok();
    let key = header("x-api-key");
    // The account is kept on a wrong key so a burst of failures is audited to it.
    let found = match user {
        Some(user) if Secret::is_well_formed(key) => {
            match state.store.registration_for_update(user).await.map_err(|e| store_failure(&e))? {
                Some((reg, status)) if reg.password_hash.verify(key) => Ok((reg, status)),
                Some((reg, _)) => Err(Some(reg.account_id)),
                None => {
                    // Same cost as a wrong key, so "no such user" cannot be told apart.
                    SecretHash::decoy().verify(key);
                    Err(None)
                }
            }
        }
        _ => Err(None),
    };
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

/// A Basic header on `/update` is tolerated (most clients send the license key
/// from the base URL on every request). When it names a real key with the right
/// secret, that key must belong to the registration's account and be active.
async fn check_optional_license(
    state: &Arc<AppState>,
    incoming: &Incoming,
    reg: &Registration,
    endpoint: &'static str,
) -> Result<(), ApiError> {
    let Some(Ok(creds)) = auth::basic_credentials(&incoming.headers) else { return Ok(()) };
    let (verdict, key) = state.keys.check(state.store.as_ref(), &creds).await.map_err(|e| store_failure(&e))?;
    let Some(key) = key else { return Ok(()) };
    if key.account_id != reg.account_id {
        return Err(auth_failed(
            state,
            incoming.ip,
            Some(reg.username),
            Some(reg.account_id),
            endpoint,
            "other_account",
        )
        .await);
    }
    match verdict {
        KeyCheck::Revoked => Err(ApiError::LicenseKeyRevoked),
        KeyCheck::Suspended => Err(ApiError::AccountSuspended),
        KeyCheck::Ok => {
            state.key_used(&key.id, key.account_id, incoming.ip);
            Ok(())
        }
        KeyCheck::Invalid => Ok(()),
    }
}

/// acme-dns's subdomain rule (unreachable after the ownership check, kept for parity).
fn valid_label(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Set a TXT value (the newest `txt_values` are served).
#[utoipa::path(
    post, path = "/update",
    request_body(content = crate::openapi::UpdateRequest, description = "Keys match case-insensitively; any Content-Type."),
    params(
        ("X-Api-User" = String, Header, description = "`username` from /register"),
        ("X-Api-Key" = String, Header, description = "`password` from /register"),
    ),
    responses(
        (status = 200, description = "Stored and published", body = crate::openapi::UpdateResponse),
        (status = 400, description = "`bad_txt` or `bad_subdomain`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`forbidden`: credentials, allow-from or subdomain ownership", body = crate::openapi::ErrorBody),
        (status = 403, description = "`license_key_revoked` or `account_suspended`", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::openapi::ErrorBody),
        (status = 429, description = "`rate_limited` (too many failed authentications), with `Retry-After`", body = crate::openapi::ErrorBody),
        (status = 500, description = "`db_error`", body = crate::openapi::ErrorBody),
    ),
    security(("api_user" = [], "api_key" = []))
)]
pub async fn update(State(state): Shared, req: Request) -> Response {
    match update_inner(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn update_inner(state: &Arc<AppState>, req: Request) -> Result<Response, ApiError> {
    let (incoming, body) = Incoming::new(state, req);
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    let parsed = bodies::parse_update(&bytes);
    if let Some(response) = fast_update(state, &incoming, &parsed).await? {
        return Ok(response);
    }
    let (reg, status) = registration_credentials(state, &incoming, "update").await?;
    check_optional_license(state, &incoming, &reg, "update").await?;
    if status != AccountStatus::Active {
        return Err(ApiError::AccountSuspended);
    }
    // Revoking a key retires what was registered with it (a leaked key's
    // registrations may be the attacker's); rotation keeps the key id instead.
    if let Some(key_id) = &reg.license_key_id
        && state.store.license_key(key_id).await.map_err(|e| store_failure(&e))?.is_some_and(|k| !k.is_active())
    {
        return Err(ApiError::LicenseKeyRevoked);
    }
    if parsed.subdomain != reg.subdomain.to_string() {
        return Err(
            auth_failed(state, incoming.ip, Some(reg.username), Some(reg.account_id), "update", "subdomain").await
        );
    }
    if !valid_label(&parsed.subdomain) {
        return Err(ApiError::BadSubdomain);
    }
    let value = TxtValue::parse(&parsed.txt).map_err(|_| ApiError::BadTxt)?;
    let txt_state = match state.store.put_txt(reg.id, &value, state.keep(), certdns_core::now()).await {
        Ok(s) => s,
        // Deleted between the lookup and the write.
        Err(StoreError::NotFound) => return Err(ApiError::Forbidden),
        Err(e) => return Err(store_failure(&e)),
    };
    Ok(updated(state, reg.username, txt_state, &value).await)
}

/// The common case in one statement: well-formed credentials, a valid value for
/// the registration's own subdomain, no allow-from list, and (if a license key is
/// sent) a valid key. The store writes only if the credentials match and the
/// account is active; anything else falls through to the checked path, which
/// produces acme-dns's exact error in acme-dns's order.
async fn fast_update(
    state: &Arc<AppState>,
    incoming: &Incoming,
    parsed: &bodies::UpdateBody,
) -> Result<Option<Response>, ApiError> {
    let header = |name: &str| incoming.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (Ok(user), key) = (header("x-api-user").trim().parse::<Username>(), header("x-api-key")) else {
        return Ok(None);
    };
    let Ok(subdomain) = parsed.subdomain.parse::<Subdomain>() else { return Ok(None) };
    let (true, Ok(value)) = (Secret::is_well_formed(key), TxtValue::parse(&parsed.txt)) else { return Ok(None) };
    if subdomain.to_string() != parsed.subdomain {
        return Ok(None);
    }
    let license = match auth::basic_credentials(&incoming.headers) {
        Some(Ok(creds)) => match state.keys.check(state.store.as_ref(), &creds).await.map_err(|e| store_failure(&e))? {
            (KeyCheck::Ok, Some(key)) => Some(key),
            (KeyCheck::Invalid, _) => None,
            _ => return Ok(None),
        },
        _ => None,
    };
    let write = AuthorizedWrite {
        username: user,
        password_hash: SecretHash::of(key),
        subdomain,
        account: license.as_ref().map(|k| k.account_id),
        value: value.clone(),
    };
    // Written and published together with the other updates waiting now.
    let written = state.updates.submit(write).await.map_err(|e| store_failure(&e))?;
    let Some(version) = written else { return Ok(None) };
    if let Some(key) = &license {
        state.key_used(&key.id, key.account_id, incoming.ip);
    }
    Ok(Some(answer_update(state, user, &subdomain, version, &value)))
}

/// After a durable TXT write on the checked path: publish, count, answer.
async fn updated(state: &Arc<AppState>, username: Username, txt_state: TxtState, value: &TxtValue) -> Response {
    let (subdomain, version) = (txt_state.subdomain, txt_state.version);
    state.publish(Change::Upsert(txt_state)).await;
    answer_update(state, username, &subdomain, version, value)
}

/// The answer to a TXT write that is durable and published.
fn answer_update(
    state: &AppState,
    username: Username,
    subdomain: &Subdomain,
    version: u64,
    value: &TxtValue,
) -> Response {
    tracing::debug!(%subdomain, version, "TXT updated");
    metrics::counter!("certdns_api_updates_total").increment(1);
    if let Some(usage) = &state.usage {
        usage.record(username);
    }
    // Hand-built like acme-dns's (`{"txt": "…"}`, a space after each colon); the
    // value is [A-Za-z0-9_-] only, so it needs no escaping.
    let body = format!(
        "{{\"txt\": \"{}\", \"propagationDelaySeconds\": {}}}",
        value.as_str(),
        state.config.propagation_delay_secs
    );
    json_response(StatusCode::OK, body)
}

/// Extension: delete a registration, so nothing stale stays answerable.
#[utoipa::path(
    post, path = "/deregister",
    request_body(content = Option<crate::openapi::DeregisterRequest>, description = "With registration credentials: optional (must name the same subdomain if given). With a license key: required."),
    responses(
        (status = 200, description = "Deleted; the name stops answering", body = crate::openapi::DeregisterResponse),
        (status = 400, description = "`malformed_json_payload` or `bad_subdomain`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`forbidden` or `invalid_license_key`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`license_key_revoked`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: no such registration in this account", body = crate::openapi::ErrorBody),
        (status = 429, description = "`rate_limited`, with `Retry-After`", body = crate::openapi::ErrorBody),
    ),
    security(("api_user" = [], "api_key" = []), ("license_key" = []))
)]
pub async fn deregister(State(state): Shared, req: Request) -> Response {
    match deregister_inner(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn deregister_inner(state: &Arc<AppState>, req: Request) -> Result<Response, ApiError> {
    let (incoming, body) = Incoming::new(state, req);
    let by_credentials = incoming.headers.contains_key("x-api-user") || incoming.headers.contains_key("x-api-key");
    let (account, registration_id, subdomain) = if by_credentials {
        let (reg, _) = registration_credentials(state, &incoming, "deregister").await?;
        let bytes = read_body(body, state.config.max_body_bytes).await?;
        if let Some(named) = bodies::parse_subdomain(&bytes)?
            && named != reg.subdomain.to_string()
        {
            return Err(auth_failed(
                state,
                incoming.ip,
                Some(reg.username),
                Some(reg.account_id),
                "deregister",
                "subdomain",
            )
            .await);
        }
        (reg.account_id, reg.id, reg.subdomain)
    } else {
        let realm = || state.config.basic_auth_realm.clone();
        let creds = match auth::basic_credentials(&incoming.headers) {
            Some(Ok(c)) => c,
            None => return Err(ApiError::LicenseKeyRequired { realm: realm() }),
            Some(Err(())) => return Err(ApiError::InvalidLicenseKey { realm: realm() }),
        };
        let (verdict, key) = state.keys.check(state.store.as_ref(), &creds).await.map_err(|e| store_failure(&e))?;
        let key = match (verdict, key) {
            // A suspended account may still clean up.
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
        let reg = state
            .store
            .registration_by_subdomain(key.account_id, subdomain)
            .await
            .map_err(|e| store_failure(&e))?
            .ok_or(ApiError::NotFound)?;
        state.key_used(&key.id, key.account_id, incoming.ip);
        (key.account_id, reg.id, reg.subdomain)
    };
    let (subdomain_deleted, version) = match state.store.delete_registration_versioned(account, registration_id).await {
        Ok(v) => v,
        Err(StoreError::NotFound) => return Err(ApiError::NotFound),
        Err(e) => return Err(store_failure(&e)),
    };
    debug_assert_eq!(subdomain_deleted, subdomain);
    state.publish(Change::Remove { subdomain, version: version + 1 }).await;
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

/// Liveness, as in acme-dns: `200` with an empty body, no storage check.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "Up (empty body)")))]
pub async fn health() -> StatusCode {
    StatusCode::OK
}
