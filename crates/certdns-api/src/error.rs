//! Error responses. acme-dns builds its error bodies by hand as
//! `{"error": "<code>"}` (one space after the colon) and clients compare codes,
//! so every error goes through [`ApiError`] and keeps that exact shape.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use certdns_store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// `/update` authentication, ownership or allow-from failure (acme-dns: 401 `forbidden`).
    Forbidden,
    BadSubdomain,
    BadTxt,
    /// A storage failure on `/update` (acme-dns: 500 `db_error`).
    DbError,
    /// The store cannot serve now (down, unreachable, disk full): 503
    /// `store_unavailable` with `Retry-After`, so clients try again.
    StoreUnavailable,
    MalformedJson,
    InvalidAllowFrom,
    BadSubject,
    /// No license key on `/register` (401 with a `WWW-Authenticate` challenge).
    LicenseKeyRequired {
        realm: String,
    },
    /// A license key that does not exist or whose secret is wrong.
    InvalidLicenseKey {
        realm: String,
    },
    LicenseKeyRevoked,
    AccountSuspended,
    /// Open registration without an operator account to own registrations.
    NoOwner,
    NotFound,
    RateLimited {
        retry_after: Duration,
    },
    PayloadTooLarge,
    Timeout,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Forbidden | ApiError::LicenseKeyRequired { .. } | ApiError::InvalidLicenseKey { .. } => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::BadSubdomain | ApiError::BadTxt | ApiError::MalformedJson | ApiError::InvalidAllowFrom => {
                StatusCode::BAD_REQUEST
            }
            ApiError::BadSubject => StatusCode::BAD_REQUEST,
            ApiError::DbError | ApiError::NoOwner => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::LicenseKeyRevoked | ApiError::AccountSuspended => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Forbidden => "forbidden",
            ApiError::BadSubdomain => "bad_subdomain",
            ApiError::BadTxt => "bad_txt",
            ApiError::DbError => "db_error",
            ApiError::StoreUnavailable => "store_unavailable",
            ApiError::MalformedJson => "malformed_json_payload",
            ApiError::InvalidAllowFrom => "invalid_allowfrom_cidr",
            ApiError::BadSubject => "bad_subject",
            ApiError::LicenseKeyRequired { .. } => "license_key_required",
            ApiError::InvalidLicenseKey { .. } => "invalid_license_key",
            ApiError::LicenseKeyRevoked => "license_key_revoked",
            ApiError::AccountSuspended => "account_suspended",
            ApiError::NoOwner => "no_operator_account",
            ApiError::NotFound => "not_found",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::Timeout => "request_timeout",
        }
    }
}

/// `{"error": "<code>"}` exactly as acme-dns writes it. Codes are fixed ASCII
/// identifiers, so no escaping is needed.
pub fn error_body(code: &str) -> String {
    format!("{{\"error\": \"{code}\"}}")
}

pub fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// A storage failure is logged here, once, and answered as acme-dns does
/// (500 `db_error`); callers that give some store errors another meaning
/// (`NotFound`) match them before using `?`.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "the store is unavailable");
                ApiError::StoreUnavailable
            }
            _ => {
                tracing::error!(error = %e, "storage failure");
                ApiError::DbError
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json_response(self.status(), error_body(self.code()));
        match &self {
            ApiError::LicenseKeyRequired { realm } | ApiError::InvalidLicenseKey { realm } => {
                if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")) {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
            }
            ApiError::StoreUnavailable => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(5));
            }
            ApiError::RateLimited { retry_after } => {
                // Whole seconds, rounded up, at least 1 (RFC 9110 delay-seconds).
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_match_acme_dns_byte_for_byte() {
        assert_eq!(error_body(ApiError::Forbidden.code()), r#"{"error": "forbidden"}"#);
        assert_eq!(error_body(ApiError::MalformedJson.code()), r#"{"error": "malformed_json_payload"}"#);
    }

    #[test]
    fn retry_after_rounds_up() {
        let r = ApiError::RateLimited { retry_after: Duration::from_millis(1500) }.into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        let r = ApiError::RateLimited { retry_after: Duration::ZERO }.into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }
}
