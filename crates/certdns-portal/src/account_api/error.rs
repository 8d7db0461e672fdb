//! The account API's errors: a status and `{"error": "<code>", "message": "…"}`,
//! the same shape as the acme-dns API's extensions.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use certdns_store::StoreError;

use crate::actions::ActionError;

#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
    /// Extra fields of the body (the registration holding a domain, say).
    pub extra: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None, extra: None }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("No such {what} in this account."))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = Some(extra);
        self
    }

    /// An action's refusal; `what` names the thing a `NotFound` was about.
    pub fn from_action(e: ActionError, what: &str, zone: &str) -> Self {
        match e {
            ActionError::Invalid(message) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message),
            // The same 403 and code as the acme-dns API's /register answers.
            ActionError::Refused { code, message } => Self::new(StatusCode::FORBIDDEN, code, message),
            ActionError::NotFound => Self::not_found(what),
            ActionError::DomainTaken(other) => Self::new(
                StatusCode::CONFLICT,
                "domain_bound_elsewhere",
                "Another registration of this account holds that domain. Set `take_over` to move it here \
                 (that registration is left without a domain).",
            )
            .with_extra(serde_json::json!({
                "held_by": { "subdomain": other.subdomain.to_string(), "fulldomain": format!("{}.{zone}", other.subdomain) }
            })),
            ActionError::PersistExists(other) => Self::new(
                StatusCode::CONFLICT,
                "persist_record_exists",
                "This account has a dns-persist-01 record for that domain already; change it with PUT, or delete it \
                 first.",
            )
            .with_extra(serde_json::json!({
                "held_by": { "subdomain": other.subdomain.to_string(), "fulldomain": format!("{}.{zone}", other.subdomain) }
            })),
            ActionError::TooManyRotations { next_ends } => Self::new(
                StatusCode::CONFLICT,
                "too_many_rotations",
                format!(
                    "{} earlier secrets of this key are still in their grace period; rotate again after {}.",
                    certdns_core::secret::MAX_IN_GRACE,
                    super::views::rfc3339(next_ends)
                ),
            ),
            ActionError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found("object"),
            StoreError::Unavailable(_) => {
                let mut e = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "The database is unavailable; nothing was changed. Try again shortly.",
                );
                e.retry_after = Some(5);
                e
            }
            e => {
                tracing::error!(error = %e, "account API request failed");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "The request could not be completed.")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.code, "message": self.message });
        if let (Some(serde_json::Value::Object(extra)), serde_json::Value::Object(fields)) = (self.extra, &mut body) {
            fields.extend(extra);
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"certdns account API\""));
        }
        response
    }
}
