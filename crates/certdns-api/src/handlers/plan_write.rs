//! A TXT write within the account's plan, shared by `/update` (checked path)
//! and the acmeproxy dialect's `present`: refused once a long-overdue payment
//! stopped updates, values rotated out past the plan's "TXT values per name",
//! and refused — nothing written — at the name's "updates per day".

use std::sync::Arc;

use certdns_billing::UpdateLimits;
use certdns_core::{Registration, TxtState, TxtValue};
use certdns_store::{StoreError, TxtWrite};

use crate::error::ApiError;
use crate::state::AppState;

/// What the account's plan and payment standing allow its names on `/update`
/// (nothing limited when billing is off).
pub(super) async fn update_limits(state: &AppState, reg: &Registration) -> Result<UpdateLimits, ApiError> {
    let Some(entitlements) = &state.entitlements else { return Ok(UpdateLimits::unlimited()) };
    let record = state.store.billing().billing(reg.account_id).await?;
    entitlements.check_update(&record, certdns_core::now()).map_err(ApiError::Billing)
}

/// Writes `value`, keeping the newest `dialect_keep` values (capped by the plan).
/// A registration deleted since it was read answers `Forbidden`, as acme-dns
/// does for an unknown one.
pub(super) async fn write_within_plan(
    state: &Arc<AppState>,
    reg: &Registration,
    limits: &UpdateLimits,
    value: &TxtValue,
    dialect_keep: usize,
) -> Result<TxtState, ApiError> {
    let keep = limits.keep(dialect_keep);
    match state.store.put_txt_within(reg.id, value, keep, limits.per_day, certdns_core::now()).await {
        Ok(TxtWrite::Written(state)) => Ok(state),
        Ok(TxtWrite::DailyLimitReached { used }) => {
            metrics::counter!("certdns_api_daily_limit_refusals_total").increment(1);
            Err(ApiError::Billing(limits.refusal(used)))
        }
        Err(StoreError::NotFound) => Err(ApiError::Forbidden),
        Err(e) => Err(e.into()),
    }
}
