//! `/api/v1/keys` (list, create, rotate, revoke) and `/api/v1/audit`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use certdns_core::{KeyId, LicenseKey, Secret, TokenScope};
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use super::views::{AuditEventView, AuditPage, KeyList, KeySecret, KeyView, NewKey};
use super::{JsonBody, Shared};
use crate::actions;
use crate::state::AppState;

type Answer = Result<Response, ApiError>;

fn parse_key(id: &str) -> Result<KeyId, ApiError> {
    id.parse().map_err(|_| ApiError::not_found("license key"))
}

async fn registrations_of(state: &AppState, caller: &Caller, key: &KeyId) -> Result<u64, ApiError> {
    let counts = state.store.registration_counts(caller.account.id).await?;
    Ok(counts.into_iter().find(|(k, _)| k == key).map_or(0, |(_, n)| n))
}

async fn with_secret(
    state: &AppState,
    caller: &Caller,
    key: &LicenseKey,
    secret: &Secret,
) -> Result<KeySecret, ApiError> {
    let key = state.core.license_key(&key.id).await?.unwrap_or_else(|| key.clone());
    let mut url = state.api_url.clone();
    let _ = url.set_username(key.id.as_str());
    let _ = url.set_password(Some(secret.expose()));
    let registrations = registrations_of(state, caller, &key.id).await?;
    Ok(KeySecret {
        key: KeyView::of(&key, registrations, certdns_core::now()),
        secret: secret.expose().to_owned(),
        base_url: url.as_str().trim_end_matches('/').to_owned(),
    })
}

/// The account's keys, active first, newest first.
#[utoipa::path(get, path = "/api/v1/keys", tag = "account",
    responses((status = 200, body = KeyList), (status = 401, body = super::views::ErrorBody)),
    security(("access_token" = [])))]
pub(crate) async fn list(State(state): Shared, caller: Caller) -> Answer {
    let id = caller.account.id;
    let (mut keys, counts) = tokio::try_join!(state.core.list_license_keys(id), state.store.registration_counts(id))?;
    let counts: HashMap<KeyId, u64> = counts.into_iter().collect();
    keys.sort_by(|a, b| b.is_active().cmp(&a.is_active()).then(b.created_at.cmp(&a.created_at)));
    let now = certdns_core::now();
    let keys = keys.iter().map(|k| KeyView::of(k, counts.get(&k.id).copied().unwrap_or(0), now)).collect();
    Ok(Json(KeyList { keys }).into_response())
}

/// A new key; its secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/keys", tag = "account", request_body = NewKey,
    responses((status = 201, body = KeySecret), (status = 403, body = super::views::ErrorBody),
        (status = 422, body = super::views::ErrorBody)),
    security(("access_token" = ["read-write"])))]
pub(crate) async fn create(State(state): Shared, caller: Caller, JsonBody(body): JsonBody<NewKey>) -> Answer {
    caller.require(TokenScope::ReadWrite)?;
    let (key, secret) = actions::create_key(&state, caller.actor(), &body.name)
        .await
        .map_err(|e| ApiError::from_action(e, "license key", &state.zone_domain))?;
    Ok((StatusCode::CREATED, Json(with_secret(&state, &caller, &key, &secret).await?)).into_response())
}

/// A new secret; the previous one keeps working for the rotation grace period
/// (`grace_until` in the answer).
#[utoipa::path(post, path = "/api/v1/keys/{id}/rotate", tag = "account",
    params(("id" = String, Path)),
    responses((status = 200, body = KeySecret), (status = 404, body = super::views::ErrorBody),
        (status = 409, description = "too many secrets in grace", body = super::views::ErrorBody)),
    security(("access_token" = ["read-write"])))]
pub(crate) async fn rotate(State(state): Shared, caller: Caller, Path(id): Path<String>) -> Answer {
    caller.require(TokenScope::ReadWrite)?;
    let id = parse_key(&id)?;
    let (key, secret, _) = actions::rotate_key(&state, caller.actor(), &id)
        .await
        .map_err(|e| ApiError::from_action(e, "active license key", &state.zone_domain))?;
    Ok(Json(with_secret(&state, &caller, &key, &secret).await?).into_response())
}

/// Revokes the key: clients using it are refused from now on. It stays listed.
#[utoipa::path(post, path = "/api/v1/keys/{id}/revoke", tag = "account",
    params(("id" = String, Path)),
    responses((status = 200, body = KeyView), (status = 404, body = super::views::ErrorBody)),
    security(("access_token" = ["read-write"])))]
pub(crate) async fn revoke(State(state): Shared, caller: Caller, Path(id): Path<String>) -> Answer {
    caller.require(TokenScope::ReadWrite)?;
    let id = parse_key(&id)?;
    actions::revoke_key(&state, caller.actor(), &id)
        .await
        .map_err(|e| ApiError::from_action(e, "active license key", &state.zone_domain))?;
    let key = state.core.license_key(&id).await?.ok_or_else(|| ApiError::not_found("license key"))?;
    let registrations = registrations_of(&state, &caller, &id).await?;
    Ok(Json(KeyView::of(&key, registrations, certdns_core::now())).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// An event id: return events older than it (the previous page's `next_before`).
    #[param(minimum = 1)]
    before: Option<i64>,
    /// At most this many events (1–200, default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// The account's audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "account", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = super::views::ErrorBody)),
    security(("access_token" = [])))]
pub(crate) async fn audit(
    State(state): Shared,
    caller: Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let Query(q) = query.map_err(|e| ApiError::bad_request(format!("Query: {}", e.body_text())))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request("`limit` is between 1 and 200."));
    }
    if q.before.is_some_and(|b| b < 1) {
        return Err(ApiError::bad_request("`before` is an event id (a positive number)."));
    }
    let events = state.core.audit_events(caller.account.id, q.before, limit).await?;
    let next_before = (events.len() == limit as usize).then(|| events.last().map(|e| e.id)).flatten();
    let events = events.iter().map(AuditEventView::from).collect();
    Ok(Json(AuditPage { events, next_before }).into_response())
}
