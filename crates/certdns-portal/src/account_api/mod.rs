//! The account API: `/api/v1` on the portal listener, for automation
//! (Terraform, scripts, CI) with personal access tokens made in the portal.
//! JSON in and out; errors `{"error", "message"}`; no cookies, so no CSRF;
//! every write goes through [`crate::actions`], the same code as the pages.
//! Its OpenAPI document is [`document`], served at `/api/v1/openapi.json` and
//! merged by the binary into the acme-dns API's `/openapi.json`.

mod auth;
mod error;
mod keys;
mod persist;
mod persist_schema;
mod registrations;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use self::error::ApiError;
use crate::state::AppState;

type Shared = axum::extract::State<Arc<AppState>>;

/// Request bodies are small JSON objects.
const MAX_BODY_BYTES: usize = 16 * 1024;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/api/v1/registrations", get(registrations::list).post(registrations::create))
        .route("/api/v1/registrations/{subdomain}", get(registrations::get_one).delete(registrations::delete))
        .route("/api/v1/registrations/{subdomain}/domain", put(registrations::set_domain))
        .route("/api/v1/registrations/{subdomain}/credentials", get(registrations::credentials))
        .route("/api/v1/registrations/{subdomain}/check", post(registrations::check))
        .route("/api/v1/persist-records", get(persist::list).post(persist::create))
        .route(
            "/api/v1/persist-records/{subdomain}",
            get(persist::get_one).put(persist::replace).delete(persist::delete),
        )
        .route("/api/v1/keys", get(keys::list).post(keys::create))
        .route("/api/v1/keys/{id}/rotate", post(keys::rotate))
        .route("/api/v1/keys/{id}/revoke", post(keys::revoke))
        .route("/api/v1/audit", get(keys::audit))
        .route("/api/v1", get(not_found))
        .route("/api/v1/{*rest}", axum::routing::any(not_found))
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such account API route; see /api/v1/openapi.json.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "This route does not take that method.")
}

/// The whole request within `portal.request_timeout_secs`, answered in JSON.
pub(crate) async fn deadline(axum::extract::State(state): Shared, req: Request, next: Next) -> Response {
    let limit = std::time::Duration::from_secs(state.config.request_timeout_secs);
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response =
                ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", "The request took too long to arrive.")
                    .into_response();
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

/// A JSON body, refused in the API's own error shape (unknown fields too).
pub(crate) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as JSON with `Content-Type: application/json`.",
            ));
        }
        let _ = state;
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await.map_err(|_| {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "The body is larger than 16 KiB.")
        })?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| ApiError::bad_request(format!("Body: {e}.")))
    }
}

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "access_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("cdpat_<id>_<secret>")
                    .description(Some(
                        "A personal access token made in the portal (Account → Access tokens); scope `read` or \
                         `read-write`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The answers any route may give (bad JSON, no or a bad token, a token of the
/// wrong scope, not in this account, a body too big or not JSON, too many bad
/// tokens, the store away), added to every operation that does not list them.
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let common = [
            ("400", "The body or query is not the documented one"),
            ("401", "No token, or a mistyped, revoked or expired one"),
            ("403", "The token's scope does not allow this, or the account is suspended"),
            ("404", "No such object in this account"),
            ("413", "The body is larger than 16 KiB"),
            ("415", "The body is not JSON"),
            ("429", "Too many bad tokens from this address; see Retry-After"),
            ("503", "The store is unavailable; nothing changed; see Retry-After"),
        ];
        let body = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                for (status, description) in common {
                    operation.responses.responses.entry(status.to_owned()).or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(description)
                            .content("application/json", body.clone())
                            .build()
                            .into()
                    });
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "certdns account API", description = "Registrations, dns-persist-01 records, license keys and the audit log of one account, for automation. On the portal's listener. See docs/account-api.md and docs/dns-persist-01.md."),
    paths(
        registrations::list,
        registrations::create,
        registrations::get_one,
        registrations::delete,
        registrations::set_domain,
        registrations::credentials,
        registrations::check,
        persist::list,
        persist::create,
        persist::get_one,
        persist::replace,
        persist::delete,
        keys::list,
        keys::create,
        keys::rotate,
        keys::revoke,
        keys::audit,
    ),
    components(schemas(views::ErrorBody)),
    modifiers(&Security, &CommonResponses),
    tags((name = "account", description = "The account API (`/api/v1` on the portal), with a personal access token"))
)]
struct AccountApiDoc;

/// The account API's OpenAPI document, its paths served from `portal_url`
/// (given per path, so it stays right when merged into the acme-dns API's
/// document, whose server is the API).
pub fn document(portal_url: &str) -> utoipa::openapi::OpenApi {
    let mut doc = AccountApiDoc::openapi();
    let server = utoipa::openapi::server::Server::new(portal_url.trim_end_matches('/'));
    for item in doc.paths.paths.values_mut() {
        item.servers = Some(vec![server.clone()]);
    }
    doc
}

async fn openapi_json(axum::extract::State(state): Shared) -> Response {
    let body = document(&state.base_url).to_json().unwrap_or_else(|_| "{}".into());
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}
