//! License-key authentication (HTTP Basic from the base URL), shared by
//! `/register`, `/storage` and `/acmeproxy`. Calls without a valid key spend the
//! client address's unauthenticated budget (429 once it is gone), so guessing
//! keys is as slow everywhere.

use std::sync::Arc;

use certdns_core::LicenseKey;

use super::{Incoming, rate_limited};
use crate::auth::{self, KeyCheck};
use crate::error::ApiError;
use crate::state::AppState;

/// The active key the request carries, or the error to answer; `endpoint` labels
/// the failure metric.
pub(super) async fn authenticate_key(
    state: &Arc<AppState>,
    incoming: &Incoming,
    endpoint: &'static str,
) -> Result<LicenseKey, ApiError> {
    let found = check_key(state, incoming, endpoint).await;
    if let Err(e) = &found
        && !matches!(e, ApiError::DbError | ApiError::StoreUnavailable)
    {
        state.limits.register_unauthenticated(incoming.ip).map_err(|(w, d)| rate_limited(w, d))?;
    }
    found
}

async fn check_key(state: &Arc<AppState>, incoming: &Incoming, endpoint: &'static str) -> Result<LicenseKey, ApiError> {
    let realm = || state.config.basic_auth_realm.clone();
    let failed = |reason: &'static str| {
        metrics::counter!("certdns_api_auth_failures_total", "endpoint" => endpoint, "reason" => reason).increment(1);
    };
    let sent = auth::basic_credentials(&incoming.headers);
    // Nothing worth a key lookup, from an address that is out of budget: refused
    // before any work.
    if !matches!(sent, Some(Ok(_))) {
        state.limits.register_unauthenticated_blocked(incoming.ip).map_err(|(w, d)| rate_limited(w, d))?;
    }
    let creds = match sent {
        None => {
            failed("missing");
            return Err(ApiError::LicenseKeyRequired { realm: realm() });
        }
        Some(Err(())) => {
            failed("malformed");
            return Err(ApiError::InvalidLicenseKey { realm: realm() });
        }
        Some(Ok(c)) => c,
    };
    let (verdict, key) = state.keys.check(state.store.as_ref(), &creds).await?;
    let refused = match verdict {
        KeyCheck::Ok => return key.ok_or(ApiError::DbError),
        KeyCheck::Invalid => ("invalid", ApiError::InvalidLicenseKey { realm: realm() }),
        KeyCheck::Revoked => ("revoked", ApiError::LicenseKeyRevoked),
        KeyCheck::Suspended => ("suspended", ApiError::AccountSuspended),
    };
    failed(refused.0);
    Err(refused.1)
}
