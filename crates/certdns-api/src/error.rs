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
    // The extensions (`/storage`, `/acmeproxy`) say what to do in a `message`.
    /// The key may not read registration credentials (403).
    StorageAccessRequired,
    /// The operator has not set `api.credentials_key` (503).
    StorageNotConfigured,
    /// No registration of this key is bound to the domain (404).
    DomainNotBound {
        domain: String,
    },
    /// Another key of the account holds the domain (409).
    DomainBoundToOtherKey {
        domain: String,
    },
    /// Another registration of this key holds the domain (409).
    DomainBoundElsewhere {
        domain: String,
    },
    /// Not a domain name, or not a challenge name (400).
    BadDomain {
        reason: String,
    },
    /// The registration bound to the domain has no password the server may give back (409).
    CredentialsNotKept {
        domain: String,
    },
    /// A storage body whose credentials do not verify or belong to another key (403).
    AccountMismatch,
    /// The account's plan or an overdue payment refuses this (see certdns-billing).
    Billing(certdns_billing::Refusal),
    /// `/update` for a persist registration, whose dns-persist-01 record only
    /// the portal and the account API change (403).
    PersistRecordNotUpdatable,
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
            ApiError::StorageAccessRequired | ApiError::AccountMismatch => StatusCode::FORBIDDEN,
            ApiError::StorageNotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::DomainNotBound { .. } => StatusCode::NOT_FOUND,
            ApiError::DomainBoundToOtherKey { .. }
            | ApiError::DomainBoundElsewhere { .. }
            | ApiError::CredentialsNotKept { .. } => StatusCode::CONFLICT,
            ApiError::BadDomain { .. } => StatusCode::BAD_REQUEST,
            ApiError::Billing(_) | ApiError::PersistRecordNotUpdatable => StatusCode::FORBIDDEN,
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
            ApiError::StorageAccessRequired => "storage_access_required",
            ApiError::StorageNotConfigured => "storage_not_configured",
            ApiError::DomainNotBound { .. } => "domain_not_bound",
            ApiError::DomainBoundToOtherKey { .. } => "domain_bound_to_other_key",
            ApiError::DomainBoundElsewhere { .. } => "domain_bound_elsewhere",
            ApiError::BadDomain { .. } => "bad_domain",
            ApiError::CredentialsNotKept { .. } => "credentials_not_kept",
            ApiError::AccountMismatch => "account_mismatch",
            ApiError::Billing(refusal) => refusal.code(),
            ApiError::PersistRecordNotUpdatable => "persist_record_not_updatable",
        }
    }

    /// What the extensions add for people reading a client's log.
    pub fn message(&self) -> Option<String> {
        Some(match self {
            ApiError::StorageAccessRequired => "this license key may not read registration credentials; switch on \
                storage access for the key in the portal (Keys), knowing the key then works as an update \
                credential for every name registered with it"
                .into(),
            ApiError::StorageNotConfigured => {
                "the service keeps no registration credentials (its operator has not set api.credentials_key)".into()
            }
            ApiError::DomainNotBound { domain } => format!(
                "no registration of this license key is bound to {domain}; bind one by setting its domain in the \
                 portal (Registrations), or by POSTing its credentials to /storage/{domain}"
            ),
            ApiError::DomainBoundToOtherKey { domain } => {
                format!("{domain} is bound to a registration made with another license key of this account")
            }
            ApiError::DomainBoundElsewhere { domain } => format!(
                "{domain} is already bound to another registration of this key; move it in the portal \
                 (Registrations) if that is what you want"
            ),
            ApiError::BadDomain { reason } => reason.clone(),
            ApiError::Billing(refusal) => refusal.to_string(),
            ApiError::CredentialsNotKept { domain } => format!(
                "the registration bound to {domain} was made before its key had storage access, so its password \
                 was not kept; POST its credentials to /storage/{domain} once (lego does after registering)"
            ),
            ApiError::AccountMismatch => {
                "the credentials do not verify or belong to a registration of another license key".into()
            }
            ApiError::PersistRecordNotUpdatable => "this registration holds a dns-persist-01 record, which only the \
                portal (Persist records) or the account API (/api/v1/persist-records) change; /update never writes it"
                .into(),
            _ => return None,
        })
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

impl From<certdns_billing::CheckError> for ApiError {
    fn from(e: certdns_billing::CheckError) -> Self {
        match e {
            certdns_billing::CheckError::Refused(refusal) => ApiError::Billing(refusal),
            certdns_billing::CheckError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.message() {
            Some(message) => serde_json::json!({ "error": self.code(), "message": message }).to_string(),
            None => error_body(self.code()),
        };
        let mut response = json_response(self.status(), body);
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
