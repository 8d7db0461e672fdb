//! `/api/v1/registrations`: list, read, create (bound to a domain), set or
//! clear the domain, delete, export kept credentials, run the CNAME check.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use certdns_core::{AuditKind, Domain, KeyId, Registration, Subdomain, TokenScope};

use super::auth::Caller;
use super::error::ApiError;
use super::views::{
    CnameCheck, CnameRecord, CreatedRegistration, Credentials, DomainChange, NewRegistration, RegistrationList,
    RegistrationView,
};
use super::{JsonBody, Shared};
use crate::actions::{self, domain_error_text};
use crate::state::AppState;

type Answer = Result<Response, ApiError>;

/// The registration as answered, with what the monitor found.
async fn view(state: &AppState, reg: &Registration) -> Result<RegistrationView, ApiError> {
    let statuses = state.store.delegation_statuses(reg.account_id).await?;
    Ok(RegistrationView::of(state, reg, statuses.iter().find(|s| s.registration_id == reg.id)))
}

async fn find(state: &AppState, caller: &Caller, sub: &str) -> Result<Registration, ApiError> {
    let subdomain = sub.parse::<Subdomain>().map_err(|_| ApiError::not_found("registration"))?;
    let found = state.core.registration_by_subdomain(caller.account.id, subdomain).await?;
    found.ok_or_else(|| ApiError::not_found("registration"))
}

fn action_error(state: &AppState, e: actions::ActionError, what: &str) -> ApiError {
    ApiError::from_action(e, what, &state.zone_domain)
}

/// The account's registrations, newest first.
#[utoipa::path(get, path = "/api/v1/registrations", tag = "account",
    responses((status = 200, body = RegistrationList), (status = 401, body = super::views::ErrorBody)),
    security(("access_token" = [])))]
pub(crate) async fn list(State(state): Shared, caller: Caller) -> Answer {
    let id = caller.account.id;
    let (mut regs, statuses) =
        tokio::try_join!(state.core.list_registrations(id), state.store.delegation_statuses(id))?;
    let statuses: std::collections::HashMap<_, _> = statuses.into_iter().map(|s| (s.registration_id, s)).collect();
    regs.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    let registrations = regs.iter().map(|r| RegistrationView::of(&state, r, statuses.get(&r.id))).collect();
    Ok(Json(RegistrationList { registrations }).into_response())
}

#[utoipa::path(get, path = "/api/v1/registrations/{subdomain}", tag = "account",
    params(("subdomain" = String, Path, format = "uuid")),
    responses((status = 200, body = RegistrationView), (status = 404, body = super::views::ErrorBody)),
    security(("access_token" = [])))]
pub(crate) async fn get_one(State(state): Shared, caller: Caller, Path(sub): Path<String>) -> Answer {
    let reg = find(&state, &caller, &sub).await?;
    Ok(Json(view(&state, &reg).await?).into_response())
}

/// A registration bound to a domain before any client runs; its credentials
/// are in this answer only (kept sealed too when the key has storage access).
#[utoipa::path(post, path = "/api/v1/registrations", tag = "account", request_body = NewRegistration,
    responses((status = 201, body = CreatedRegistration), (status = 403, body = super::views::ErrorBody),
        (status = 409, description = "the domain is bound to another registration", body = super::views::ErrorBody),
        (status = 422, body = super::views::ErrorBody)),
    security(("access_token" = ["read-write"])))]
pub(crate) async fn create(State(state): Shared, caller: Caller, JsonBody(body): JsonBody<NewRegistration>) -> Answer {
    caller.require(TokenScope::ReadWrite)?;
    let key = body.key_id.parse::<KeyId>().map_err(|_| ApiError::not_found("active license key"))?;
    let (reg, password) = actions::add_domain(&state, caller.actor(), &key, &body.domain)
        .await
        .map_err(|e| action_error(&state, e, "active license key"))?;
    let credentials = Credentials {
        username: reg.username.to_string(),
        password: password.expose().to_owned(),
        fulldomain: state.fulldomain(reg.subdomain),
        subdomain: reg.subdomain.to_string(),
        allowfrom: Vec::new(),
        server_url: state.api_url.as_str().trim_end_matches('/').to_owned(),
    };
    let body = CreatedRegistration { registration: RegistrationView::of(&state, &reg, None), credentials };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Sets or clears the domain. A domain another registration holds moves here
/// only with `take_over`; otherwise 409 names the holder and nothing changes.
#[utoipa::path(put, path = "/api/v1/registrations/{subdomain}/domain", tag = "account", request_body = DomainChange,
    params(("subdomain" = String, Path, format = "uuid")),
    responses((status = 200, body = RegistrationView), (status = 404, body = super::views::ErrorBody),
        (status = 409, body = super::views::ErrorBody), (status = 422, body = super::views::ErrorBody)),
    security(("access_token" = ["read-write"])))]
pub(crate) async fn set_domain(
    State(state): Shared,
    caller: Caller,
    Path(sub): Path<String>,
    JsonBody(body): JsonBody<DomainChange>,
) -> Answer {
    caller.require(TokenScope::ReadWrite)?;
    let reg = find(&state, &caller, &sub).await?;
    let domain = match body.domain.as_deref().map(Domain::parse).transpose() {
        Ok(d) => d,
        Err(e) => return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_domain", domain_error_text(&e))),
    };
    actions::set_domain(&state, caller.actor(), &reg, domain.as_ref(), body.take_over)
        .await
        .map_err(|e| action_error(&state, e, "registration"))?;
    let reg = find(&state, &caller, &sub).await?;
    Ok(Json(view(&state, &reg).await?).into_response())
}

/// Deletes the registration; the DNS stops answering for it at once.
#[utoipa::path(delete, path = "/api/v1/registrations/{subdomain}", tag = "account",
    params(("subdomain" = String, Path, format = "uuid")),
    responses((status = 204), (status = 404, body = super::views::ErrorBody)),
    security(("access_token" = ["read-write"])))]
pub(crate) async fn delete(State(state): Shared, caller: Caller, Path(sub): Path<String>) -> Answer {
    caller.require(TokenScope::ReadWrite)?;
    let reg = find(&state, &caller, &sub).await?;
    actions::delete_registration(&state, caller.actor(), &reg)
        .await
        .map_err(|e| action_error(&state, e, "registration"))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The registration's credentials in the acme-dns account format: only for a
/// registration whose password is kept (made under a key with storage
/// access). Needs a read-write token; every export is audited.
#[utoipa::path(get, path = "/api/v1/registrations/{subdomain}/credentials", tag = "account",
    params(("subdomain" = String, Path, format = "uuid")),
    responses((status = 200, body = Credentials), (status = 403, body = super::views::ErrorBody),
        (status = 404, body = super::views::ErrorBody),
        (status = 409, description = "the password is not kept", body = super::views::ErrorBody)),
    security(("access_token" = ["read-write"])))]
pub(crate) async fn credentials(State(state): Shared, caller: Caller, Path(sub): Path<String>) -> Answer {
    caller.require(TokenScope::ReadWrite)?;
    let reg = find(&state, &caller, &sub).await?;
    let not_kept = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "credentials_not_kept",
            "This registration's password is not kept (only those made under a key with storage access are); \
             it was shown once when it was made.",
        )
    };
    let (Some(sealed), Some(sealer)) = (&reg.password_sealed, &state.sealer) else { return Err(not_kept()) };
    let password = match sealer.open(reg.id, sealed) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(subdomain = %reg.subdomain, error = %e, "a kept password does not open");
            return Err(not_kept());
        }
    };
    let detail =
        serde_json::json!({ "subdomain": reg.subdomain.to_string(), "token": caller.token.id.as_str(), "via": "api" });
    state.audit(Some(caller.account.id), AuditKind::CredentialsFetched, caller.peer, detail).await;
    Ok(Json(Credentials {
        username: reg.username.to_string(),
        password,
        fulldomain: state.fulldomain(reg.subdomain),
        subdomain: reg.subdomain.to_string(),
        allowfrom: reg.allow_from.as_strings().map(|n| n.to_string()).collect(),
        server_url: state.api_url.as_str().trim_end_matches('/').to_owned(),
    })
    .into_response())
}

/// Asks the portal's resolver whether the registration's CNAME name
/// (`_acme-challenge.<domain>`, dns-account-01's or `_validation-persist.<domain>`) points here.
#[utoipa::path(post, path = "/api/v1/registrations/{subdomain}/check", tag = "account",
    params(("subdomain" = String, Path, format = "uuid")),
    responses((status = 200, body = CnameCheck), (status = 404, body = super::views::ErrorBody),
        (status = 409, description = "the registration has no domain", body = super::views::ErrorBody)),
    security(("access_token" = [])))]
pub(crate) async fn check(State(state): Shared, caller: Caller, Path(sub): Path<String>) -> Answer {
    let reg = find(&state, &caller, &sub).await?;
    let Some(domain) = &reg.domain else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_domain",
            "This registration has no domain, so there is no CNAME to check. Set one first.",
        ));
    };
    let fulldomain = state.fulldomain(reg.subdomain);
    // The name the CA asks: dns-01's, dns-account-01's label name or `_validation-persist`.
    let name = reg.challenge_name().unwrap_or_else(|| domain.challenge_name());
    let status = certdns_delegation::check_challenge_name(state.config.resolver, &name, &fulldomain).await;
    let advice = crate::cname_advice::advise(&status, &name, &fulldomain, state.config.resolver);
    Ok(Json(CnameCheck {
        status: advice.code,
        headline: advice.headline,
        detail: advice.detail,
        fix: advice.fix,
        cname: CnameRecord { name, r#type: "CNAME".into(), target: fulldomain },
    })
    .into_response())
}
