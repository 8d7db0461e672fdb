//! Finding the registration a license key bound to a domain, the one rule the
//! `/storage` and `/acmeproxy` extensions share: a key sees and binds only the
//! registrations made with it.

use certdns_core::{Domain, LicenseKey, Registration};

use crate::error::ApiError;
use crate::state::AppState;

/// The key's registration bound to `domain`, or the error naming why not.
pub(super) async fn bound_registration(
    state: &AppState,
    key: &LicenseKey,
    domain: &Domain,
) -> Result<Registration, ApiError> {
    match state.store.registration_by_domain(key.account_id, domain).await? {
        Some(reg) if reg.license_key_id.as_ref() == Some(&key.id) => Ok(reg),
        Some(_) => Err(ApiError::DomainBoundToOtherKey { domain: domain.to_string() }),
        None => Err(ApiError::DomainNotBound { domain: domain.to_string() }),
    }
}

/// Like [`bound_registration`], and when the name itself is not bound, its
/// closest bound parent: one registration bound to `example.com` can serve the
/// challenges of every name whose `_acme-challenge` CNAME points at it. One
/// store query, however many labels the name has.
pub(super) async fn bound_registration_or_parent(
    state: &AppState,
    key: &LicenseKey,
    domain: &Domain,
) -> Result<Registration, ApiError> {
    match state.store.closest_bound_registration(key.account_id, domain).await? {
        Some(reg) if reg.license_key_id.as_ref() == Some(&key.id) => Ok(reg),
        Some(reg) => Err(ApiError::DomainBoundToOtherKey {
            domain: reg.domain.map_or_else(|| domain.to_string(), |d| d.to_string()),
        }),
        None => Err(ApiError::DomainNotBound { domain: domain.to_string() }),
    }
}

/// `domain` as a client wrote it, or 400 saying what is wrong with it.
pub(super) fn parse_domain(text: &str) -> Result<Domain, ApiError> {
    Domain::parse(text).map_err(|e| ApiError::BadDomain { reason: format!("{text:?}: {e}") })
}
