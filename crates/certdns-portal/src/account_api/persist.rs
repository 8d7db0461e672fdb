//! `/api/v1/persist-records`: dns-persist-01 records (list, read, create,
//! replace, delete). Each is a registration of kind `persist`, answered at
//! `<subdomain>.<zone>`, which the customer's `_validation-persist.<domain>`
//! CNAMEs to. The checks and the audit are `crate::persist`'s, shared with the
//! pages.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use certdns_core::{Domain, PersistRecord, Registration, RegistrationKind, Subdomain, TokenScope};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ApiError;
use super::views::{CnameRecord, DelegationView, ErrorBody, rfc3339};
use super::{JsonBody, Shared};
use crate::persist::{self, AccountInput, RecordInput};
use crate::state::AppState;

type Answer = Result<Response, ApiError>;

/// A dns-persist-01 record and where it is answered.
#[derive(Serialize, ToSchema)]
pub(crate) struct PersistView {
    #[schema(format = "uuid")]
    pub subdomain: String,
    /// `<subdomain>.<zone>`: where the CNAME points and the record is answered.
    pub fulldomain: String,
    /// The validated domain (A-labels).
    pub domain: String,
    pub domain_unicode: String,
    /// The CA's issuer domain name.
    #[schema(example = "letsencrypt.org")]
    pub issuer: String,
    /// The hashed account URI (draft-ietf-acme-dns-persist-02 §4.1).
    pub accounturi: String,
    /// `policy=wildcard`: also subdomains and wildcard certificates.
    pub wildcard: bool,
    /// `persistUntil` (Unix seconds); `null`: until removed.
    pub persist_until: Option<i64>,
    /// The same as RFC 3339.
    pub persist_until_at: Option<String>,
    /// `persistUntil` has passed: CAs no longer accept the record.
    pub expired: bool,
    /// The TXT value exactly as answered.
    #[schema(
        example = "letsencrypt.org; accounturi=https://ca.example/account-hash/sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw"
    )]
    pub txt: String,
    /// The CNAME to create: `_validation-persist.<domain>` → `fulldomain`.
    pub cname: CnameRecord,
    /// What the background monitor last found.
    pub delegation: Option<DelegationView>,
    pub created_at: String,
    /// When the record last changed.
    pub updated_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct PersistList {
    pub persist_records: Vec<PersistView>,
}

/// The record's fields. Name the ACME account either by `accounturi` (the
/// hashed URI) or by `account_url`, `jwk_thumbprint` and `account_hash_prefix`,
/// from which it is computed; not both.
/// (Its schema in the document is `persist_schema`'s, which says the two
/// ways of naming the account.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PersistFields {
    /// The validated domain: required to create; fixed afterwards (the
    /// accounturi is computed over it), so a replacement may only repeat it.
    /// `*.example.com` needs `wildcard` (it is the record of `example.com`).
    #[serde(default)]
    pub domain: Option<String>,
    /// The CA's issuer domain name (its directory's `issuerDomainNames`).
    pub issuer: String,
    /// `<accountHashPrefix>sha-256/<43 base64url characters>`.
    #[serde(default)]
    pub accounturi: Option<String>,
    /// The ACME account URL (`https://…`), to compute the accounturi.
    #[serde(default)]
    pub account_url: Option<String>,
    /// The account key's SHA-256 JWK thumbprint, 43 base64url characters.
    #[serde(default)]
    pub jwk_thumbprint: Option<String>,
    /// The CA's `accountHashPrefix` (its directory's meta).
    #[serde(default)]
    pub account_hash_prefix: Option<String>,
    /// Compute over `*` instead of the domain: one value reusable across
    /// domains, which lets anyone link them.
    #[serde(default)]
    pub any_domain: bool,
    #[serde(default)]
    pub wildcard: bool,
    /// Unix seconds, in the future; `null` or absent: no expiry. A JSON
    /// integer written with a zero fraction (`1798761600.0`) is one too.
    #[serde(default, deserialize_with = "whole_seconds")]
    pub persist_until: Option<i64>,
}

/// An integer, also when JSON writes it as `1798761600.0` (JSON Schema's
/// `integer` admits that); anything else is refused.
fn whole_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    match n.as_f64() {
        // Exact below 2^53, far beyond the year 9999 (about 2^38).
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
        _ => Err(serde::de::Error::custom("persist_until must be a whole number of seconds")),
    }
}

impl PersistFields {
    fn input(&self) -> Result<RecordInput, ApiError> {
        let computed = [&self.account_url, &self.jwk_thumbprint, &self.account_hash_prefix];
        let account = match (&self.accounturi, computed) {
            (Some(uri), [None, None, None]) => AccountInput::Hashed(uri.clone()),
            (None, [Some(url), Some(key), Some(prefix)]) => AccountInput::Computed {
                account_url: url.clone(),
                thumbprint: key.clone(),
                hash_prefix: prefix.clone(),
                any_domain: self.any_domain,
            },
            _ => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "Give either `accounturi`, or all of `account_url`, `jwk_thumbprint` and `account_hash_prefix`.",
                ));
            }
        };
        Ok(RecordInput {
            issuer: self.issuer.clone(),
            account,
            wildcard: self.wildcard,
            persist_until: self.persist_until,
        })
    }
}

pub(crate) fn view(
    state: &AppState,
    reg: &Registration,
    record: &PersistRecord,
    status: Option<&certdns_store::DelegationStatus>,
) -> PersistView {
    let domain = reg.domain.as_ref().map(Domain::as_str).unwrap_or_default().to_owned();
    let fulldomain = state.fulldomain(reg.subdomain);
    let until = record.persist_until();
    PersistView {
        subdomain: reg.subdomain.to_string(),
        domain_unicode: reg.domain.as_ref().map(Domain::unicode).unwrap_or_default(),
        issuer: record.issuer().to_owned(),
        accounturi: record.account_uri().as_str().to_owned(),
        wildcard: record.wildcard(),
        persist_until: until,
        persist_until_at: until.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok()).map(rfc3339),
        expired: record.expired_at(certdns_core::now().unix_timestamp()),
        txt: record.to_txt(),
        cname: CnameRecord {
            name: reg.challenge_name().unwrap_or_default(),
            r#type: "CNAME".into(),
            target: fulldomain.clone(),
        },
        delegation: reg.domain.as_ref().map(|d| DelegationView::of(status, d)),
        created_at: rfc3339(reg.created_at),
        updated_at: reg.last_update_at.map(rfc3339),
        fulldomain,
        domain,
    }
}

async fn find(state: &AppState, caller: &Caller, sub: &str) -> Result<(Registration, PersistRecord), ApiError> {
    let subdomain = sub.parse::<Subdomain>().map_err(|_| ApiError::not_found("persist record"))?;
    let reg = state.core.registration_by_subdomain(caller.account.id, subdomain).await?;
    let reg =
        reg.filter(|r| r.kind == RegistrationKind::Persist).ok_or_else(|| ApiError::not_found("persist record"))?;
    let record = persist::current(state, &reg).await?;
    let record = record.ok_or_else(|| ApiError::not_found("persist record"))?;
    Ok((reg, record))
}

async fn answer(state: &AppState, reg: &Registration, record: &PersistRecord, status: StatusCode) -> Answer {
    let statuses = state.store.delegation_statuses(reg.account_id).await?;
    let found = statuses.iter().find(|s| s.registration_id == reg.id);
    Ok((status, Json(view(state, reg, record, found))).into_response())
}

fn action_error(state: &AppState, e: crate::actions::ActionError) -> ApiError {
    ApiError::from_action(e, "persist record", &state.zone_domain)
}

/// The account's dns-persist-01 records, newest first.
#[utoipa::path(get, path = "/api/v1/persist-records", tag = "account",
    responses((status = 200, body = PersistList)), security(("access_token" = [])))]
pub(crate) async fn list(State(state): Shared, caller: Caller) -> Answer {
    let id = caller.account.id;
    let (mut regs, statuses) =
        tokio::try_join!(state.core.list_registrations(id), state.store.delegation_statuses(id))?;
    regs.retain(|r| r.kind == RegistrationKind::Persist);
    regs.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    let mut persist_records = Vec::with_capacity(regs.len());
    for reg in &regs {
        if let Some(record) = persist::current(&state, reg).await? {
            let status = statuses.iter().find(|s| s.registration_id == reg.id);
            persist_records.push(view(&state, reg, &record, status));
        }
    }
    Ok(Json(PersistList { persist_records }).into_response())
}

#[utoipa::path(get, path = "/api/v1/persist-records/{subdomain}", tag = "account",
    params(("subdomain" = String, Path, format = "uuid")),
    responses((status = 200, body = PersistView), (status = 404, body = ErrorBody)),
    security(("access_token" = [])))]
pub(crate) async fn get_one(State(state): Shared, caller: Caller, Path(sub): Path<String>) -> Answer {
    let (reg, record) = find(&state, &caller, &sub).await?;
    answer(&state, &reg, &record, StatusCode::OK).await
}

/// A dns-persist-01 record for a domain, answered at once; the answer names
/// the CNAME to create.
#[utoipa::path(post, path = "/api/v1/persist-records", tag = "account", request_body = super::persist_schema::NewPersistRecord,
    responses((status = 201, body = PersistView), (status = 403, body = ErrorBody),
        (status = 409, description = "the account has a persist record for this domain (`persist_record_exists`)", body = ErrorBody),
        (status = 422, description = "a field is not valid; the message says which and why", body = ErrorBody)),
    security(("access_token" = ["read-write"])))]
pub(crate) async fn create(State(state): Shared, caller: Caller, JsonBody(body): JsonBody<PersistFields>) -> Answer {
    caller.require(TokenScope::ReadWrite)?;
    let Some(domain) = &body.domain else {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "Give the `domain` the record is for."));
    };
    let input = body.input()?;
    let (reg, record) =
        persist::create(&state, caller.actor(), domain, &input).await.map_err(|e| action_error(&state, e))?;
    answer(&state, &reg, &record, StatusCode::CREATED).await
}

/// Replaces the record (every field; the domain stays).
#[utoipa::path(put, path = "/api/v1/persist-records/{subdomain}", tag = "account", request_body = super::persist_schema::PersistChange,
    params(("subdomain" = String, Path, format = "uuid")),
    responses((status = 200, body = PersistView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("access_token" = ["read-write"])))]
pub(crate) async fn replace(
    State(state): Shared,
    caller: Caller,
    Path(sub): Path<String>,
    JsonBody(body): JsonBody<PersistFields>,
) -> Answer {
    caller.require(TokenScope::ReadWrite)?;
    let (reg, _) = find(&state, &caller, &sub).await?;
    let same = |d: &str| Domain::parse(d).ok().is_some_and(|d| Some(&d) == reg.domain.as_ref());
    if body.domain.as_deref().is_some_and(|d| !same(d)) {
        let fixed = crate::actions::PERSIST_DOMAIN_FIXED;
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", fixed));
    }
    let input = body.input()?;
    let record = persist::replace(&state, caller.actor(), &reg, &input).await.map_err(|e| action_error(&state, e))?;
    let reg = state.core.registration_by_subdomain(caller.account.id, reg.subdomain).await?.unwrap_or(reg);
    answer(&state, &reg, &record, StatusCode::OK).await
}

/// Removes the record: the DNS stops answering it at once (and the CNAME then
/// leads nowhere; remove it from your zone too).
#[utoipa::path(delete, path = "/api/v1/persist-records/{subdomain}", tag = "account",
    params(("subdomain" = String, Path, format = "uuid")),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("access_token" = ["read-write"])))]
pub(crate) async fn delete(State(state): Shared, caller: Caller, Path(sub): Path<String>) -> Answer {
    caller.require(TokenScope::ReadWrite)?;
    let (reg, _) = find(&state, &caller, &sub).await?;
    crate::actions::delete_registration(&state, caller.actor(), &reg).await.map_err(|e| action_error(&state, e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
