//! `POST /register`: a new subdomain and its credentials, owned by the license
//! key's account (or, in open mode, by the first operator).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use certdns_core::{
    AccountId, AuditKind, Domain, NewAuditEvent, Registration, RegistrationId, Secret, Subdomain, Username,
};
use certdns_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

use super::key_auth::authenticate_key;
use super::{Incoming, Shared, rate_limited, read_body};
use crate::body as bodies;
use crate::config::RegistrationMode;
use crate::error::{ApiError, json_response};
use crate::state::AppState;

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
    /// The key may read credentials back, so the password is kept sealed.
    storage_access: bool,
}

/// The owner of a registration made with a license key: the key's checks (see
/// `key_auth`), then that key's registration budget.
async fn license_owner(state: &Arc<AppState>, incoming: &Incoming) -> Result<Owner, ApiError> {
    let key = authenticate_key(state, incoming, "register").await?;
    state.limits.register_key(&key.id).map_err(|(w, d)| rate_limited(w, d))?;
    Ok(Owner { account: key.account_id, storage_access: key.storage_access, key: Some(key.id) })
}

/// Register a new acme-dns account (a subdomain and its credentials).
#[utoipa::path(
    post, path = "/register",
    request_body(content = Option<crate::openapi::RegisterRequest>, description = "Optional; empty, `null` or `{}` register without restrictions. Keys match case-insensitively; any Content-Type."),
    responses(
        (status = 201, description = "Registered", body = RegisterResponse, links(
            ("update" = (operation_id = "update", description = "Set a TXT value with the new credentials", parameters(
                ("header.X-Api-User" = "$response.body#/username"),
                ("header.X-Api-Key" = "$response.body#/password"),
            ), request_body = json!({"subdomain": "$response.body#/subdomain", "txt": "___validation_token_from_the_ca_43_chars___"}))),
            ("deregister" = (operation_id = "deregister", description = "Delete the registration with its own credentials", parameters(
                ("header.X-Api-User" = "$response.body#/username"),
                ("header.X-Api-Key" = "$response.body#/password"),
            ), request_body = json!({"subdomain": "$response.body#/subdomain"}))),
        )),
        (status = 400, description = "`malformed_json_payload`, `invalid_allowfrom_cidr` or `bad_subject`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`license_key_required` / `invalid_license_key`, with `WWW-Authenticate: Basic`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`license_key_revoked` or `account_suspended`; with billing on, `registrations_limit_reached` (the plan's quota, in `message`) or `payment_overdue`", body = crate::openapi::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::openapi::ErrorBody),
        (status = 429, description = "`rate_limited`, with `Retry-After`", body = crate::openapi::ErrorBody),
        (status = 500, description = "`db_error`", body = crate::openapi::ErrorBody),
        (status = 503, description = "`store_unavailable`: the store is down or full; retry after `Retry-After`", body = crate::openapi::ErrorBody),
    ),
    security(("license_key" = []))
)]
pub async fn register(State(state): Shared, req: Request) -> Result<Response, ApiError> {
    let (incoming, body) = Incoming::new(&state, req);
    let owner = match state.config.registration {
        RegistrationMode::License => license_owner(&state, &incoming).await?,
        // Everyone is anonymous here: one budget per address.
        RegistrationMode::Open => {
            state.limits.register_unauthenticated(incoming.ip).map_err(|(w, d)| rate_limited(w, d))?;
            match state.open_owner().await? {
                Some(account) => Owner { account, key: None, storage_access: false },
                None => return Err(ApiError::NoOwner),
            }
        }
        // The route is not mounted; kept total for safety.
        RegistrationMode::Disabled => return Err(ApiError::NotFound),
    };
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    let parsed = bodies::parse_register(&bytes)?;
    // After the body is known good, so a malformed request still says so first.
    if let Some(entitlements) = &state.entitlements {
        entitlements.check_new_registration(&*state.store.billing(), owner.account).await?;
    }

    // The subject binds the registration to its domain when no other registration
    // of the account holds it: a second registration for a name never takes it
    // over silently (the owner moves it in the portal).
    let domain = match parsed.subject.as_deref().map(Domain::parse) {
        Some(Ok(d)) if state.store.registration_by_domain(owner.account, &d).await?.is_none() => Some(d),
        _ => None,
    };
    let password = Secret::generate();
    let id = RegistrationId::generate();
    let password_sealed = match (&state.sealer, owner.storage_access) {
        (Some(sealer), true) => Some(sealer.seal(id, password.expose()).map_err(|_| ApiError::DbError)?),
        _ => None,
    };
    let mut registration = Registration {
        id,
        account_id: owner.account,
        license_key_id: owner.key.clone(),
        username: Username::generate(),
        password_hash: password.hash(),
        subdomain: Subdomain::generate(),
        allow_from: parsed.allow_from,
        subject: parsed.subject,
        domain,
        password_sealed,
        acme_account_url: None,
        kind: certdns_core::RegistrationKind::Challenge,
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
    let created = state.store.create_registration_audited(&registration, &event, registration.created_at).await;
    if matches!(created, Err(StoreError::Conflict(_))) && registration.domain.is_some() {
        // Another registration took the domain a moment ago.
        registration.domain = None;
        state.store.create_registration_audited(&registration, &event, registration.created_at).await?;
    } else {
        created?;
    }
    state.sync.registration_created(registration.subdomain).await;
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
