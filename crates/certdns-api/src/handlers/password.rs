//! The one check of a registration's password, whatever the stored hash is.
//!
//! Our own hashes (`sha256:`) are checked in constant time on the spot. A hash
//! imported from acme-dns (bcrypt) is checked once on the bounded pool for
//! expensive hashes and, when it matches, replaced by our own, so that
//! registration pays bcrypt's cost only on its first authentication (and takes
//! the `/update` fast path from then on).

use certdns_core::Registration;

use crate::error::ApiError;
use crate::state::AppState;

/// Whether `key` is the password of `reg`.
pub(super) async fn verify(state: &AppState, reg: &Registration, key: &str) -> Result<bool, ApiError> {
    if !reg.password_hash.is_imported() {
        return Ok(reg.password_hash.verify(key));
    }
    let (stored, candidate) = (reg.password_hash.clone(), key.to_owned());
    let Ok(upgraded) = state.slow_hashes.run(move || stored.verify_imported(&candidate)).await else {
        metrics::counter!("certdns_api_imported_hash_busy_total").increment(1);
        return Err(ApiError::StoreUnavailable);
    };
    let Some(own) = upgraded else { return Ok(false) };
    // Only while the stored hash is still the imported one: a concurrent first
    // use upgraded it to the same value already.
    if state.store.replace_registration_password_hash(reg.account_id, reg.id, &reg.password_hash, &own).await? {
        metrics::counter!("certdns_api_imported_hashes_upgraded_total").increment(1);
        tracing::info!(subdomain = %reg.subdomain, "imported acme-dns password hash replaced on first use");
    }
    Ok(true)
}
