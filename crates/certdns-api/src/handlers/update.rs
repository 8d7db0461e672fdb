//! `POST /update`: set a TXT value. The common case takes the batched fast path;
//! everything else the checked path, which gives acme-dns's exact errors.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use certdns_core::{
    AccountStatus, Registration, RegistrationKind, SecretHash, Subdomain, TxtState, TxtValue, Username,
};
use certdns_store::AuthorizedWrite;

use super::{Incoming, Shared, auth_failed, authenticate_registration, plan_write, publish_and_confirm, read_body};
use crate::auth::{self, KeyCheck};
use crate::body as bodies;
use crate::error::{ApiError, json_response};
use crate::state::AppState;

/// acme-dns's subdomain rule (unreachable after the ownership check, kept for parity).
fn valid_label(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Set a TXT value (the newest `txt_values` are served; with billing on, at most
/// the plan's TXT values per name, and within its updates per name and UTC day).
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
        (status = 403, description = "`license_key_revoked` or `account_suspended`; `persist_record_not_updatable` for a dns-persist-01 registration (its record changes in the portal or the account API only); with billing on, `updates_per_day_limit_reached` (the plan's updates per name and UTC day, in `message`; nothing stored) or `payment_overdue_updates_stopped`", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::openapi::ErrorBody),
        (status = 429, description = "`rate_limited` (too many failed authentications), with `Retry-After`", body = crate::openapi::ErrorBody),
        (status = 500, description = "`db_error`", body = crate::openapi::ErrorBody),
        (status = 503, description = "`store_unavailable`: the store is down or full; retry after `Retry-After`", body = crate::openapi::ErrorBody),
    ),
    security(("api_user" = [], "api_key" = []))
)]
pub async fn update(State(state): Shared, req: Request) -> Result<Response, ApiError> {
    let state = &state;
    let (incoming, body) = Incoming::new(state, req);
    incoming.refuse_if_over_failure_budget(state)?;
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    let parsed = bodies::parse_update(&bytes);
    if let Some(response) = fast_update(state, &incoming, &parsed).await? {
        return Ok(response);
    }
    let (reg, status) = authenticate_registration(state, &incoming, "update").await?;
    check_optional_license(state, &incoming, &reg, "update").await?;
    if status != AccountStatus::Active {
        return Err(ApiError::AccountSuspended);
    }
    // The fast path's statement never matches one; said here, after the
    // credentials verified, so nobody learns a registration's kind without them.
    if reg.kind == RegistrationKind::Persist {
        return Err(ApiError::PersistRecordNotUpdatable);
    }
    // Renewals stop only long after a failed payment (see certdns_billing::Standing).
    let limits = plan_write::update_limits(state, &reg).await?;
    // Revoking a key retires what was registered with it (a leaked key's
    // registrations may be the attacker's); rotation keeps the key id instead.
    if let Some(key_id) = &reg.license_key_id
        && state.store.license_key(key_id).await?.is_some_and(|k| !k.is_active())
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
    // Last, so a request refused for any other reason does not count.
    let txt_state = plan_write::write_within_plan(state, &reg, &limits, &value, state.keep()).await?;
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
    let credentials = incoming.registration_credentials();
    let Some(user) = credentials.well_formed() else { return Ok(None) };
    let Ok(subdomain) = parsed.subdomain.parse::<Subdomain>() else { return Ok(None) };
    let Ok(value) = TxtValue::parse(&parsed.txt) else { return Ok(None) };
    if subdomain.to_string() != parsed.subdomain || !state.fast_path {
        return Ok(None);
    }
    let license = match auth::basic_credentials(&incoming.headers) {
        Some(Ok(creds)) => match state.keys.check(state.store.as_ref(), &creds).await? {
            (KeyCheck::Ok, Some(key)) => Some(key),
            (KeyCheck::Invalid, _) => None,
            _ => return Ok(None),
        },
        _ => None,
    };
    let write = AuthorizedWrite {
        username: user,
        password_hash: SecretHash::of(credentials.key),
        subdomain,
        account: license.as_ref().map(|k| k.account_id),
        value: value.clone(),
        daily_cap: state.fast_daily_cap,
    };
    // Written and published together with the other updates waiting now.
    let (written, everywhere) = state.updates.submit(write).await?;
    let Some(version) = written else { return Ok(None) };
    if let Some(key) = &license {
        state.key_used(&key.id, key.account_id, incoming.ip);
    }
    Ok(Some(answer_update(state, user, &subdomain, version, &value, everywhere)))
}

/// After a durable TXT write on the checked path: publish, count, answer.
async fn updated(state: &Arc<AppState>, username: Username, txt_state: TxtState, value: &TxtValue) -> Response {
    let (subdomain, version) = (txt_state.subdomain, txt_state.version);
    let everywhere = publish_and_confirm(state, txt_state).await;
    answer_update(state, username, &subdomain, version, value, everywhere)
}

/// The answer to a TXT write that is durable and published. When every live
/// responder already serves it, the client is told to wait for nothing.
fn answer_update(
    state: &AppState,
    username: Username,
    subdomain: &Subdomain,
    version: u64,
    value: &TxtValue,
    everywhere: bool,
) -> Response {
    tracing::debug!(%subdomain, version, "TXT updated");
    metrics::counter!("certdns_api_updates_total").increment(1);
    if let Some(usage) = &state.usage {
        usage.record(username);
    }
    // Hand-built like acme-dns's (`{"txt": "…"}`, a space after each colon); the
    // value is [A-Za-z0-9_-] only, so it needs no escaping.
    let delay = if everywhere { 0 } else { state.config.propagation_delay_secs };
    let body = format!("{{\"txt\": \"{}\", \"propagationDelaySeconds\": {delay}}}", value.as_str());
    json_response(StatusCode::OK, body)
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
    let (verdict, key) = state.keys.check(state.store.as_ref(), &creds).await?;
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
