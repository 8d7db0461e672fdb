//! What an account may do now: its plan's limits against its usage, and its
//! standing after a failed payment. The API and the portal ask the same
//! questions here, so they give the same answers.

use certdns_core::AccountId;
use certdns_store::{BillingRecord, BillingStore, StoreError};
use time::OffsetDateTime;

use crate::config::BillingConfig;
use crate::plans::{Catalogue, Plan};
use crate::standing::{GracePeriods, Standing};

/// A limit of a plan, by the name customers see in errors and on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Registrations,
    LicenseKeys,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Registrations => "registrations",
            LimitKind::LicenseKeys => "license_keys",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            LimitKind::Registrations => "registrations",
            LimitKind::LicenseKeys => "license keys",
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{used} of {allowed} {} on the {plan} plan: upgrade, or delete some first", .limit.noun())]
    LimitReached { limit: LimitKind, allowed: u64, used: u64, plan: String },
    #[error("a payment is overdue: new registrations resume once the invoice is paid (Billing in the portal)")]
    PaymentOverdue,
    #[error("a payment is long overdue: updates resume once the invoice is paid (Billing in the portal)")]
    UpdatesStopped,
}

impl Refusal {
    /// The machine-readable code (`registrations_limit_reached`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::LimitReached { limit: LimitKind::Registrations, .. } => "registrations_limit_reached",
            Refusal::LimitReached { limit: LimitKind::LicenseKeys, .. } => "license_keys_limit_reached",
            Refusal::PaymentOverdue => "payment_overdue",
            Refusal::UpdatesStopped => "payment_overdue_updates_stopped",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An account's billing as the Billing page shows it.
#[derive(Debug, Clone)]
pub struct AccountBilling {
    pub plan: Plan,
    pub record: BillingRecord,
    pub standing: Standing,
    pub registrations: u64,
    pub license_keys: u64,
}

/// The plans and the grace periods, from `[billing]`; exists only when billing is on.
#[derive(Debug, Clone)]
pub struct Entitlements {
    pub catalogue: Catalogue,
    pub periods: GracePeriods,
}

impl Entitlements {
    /// `None` when billing is off: nothing is limited.
    pub fn from_config(config: &BillingConfig) -> Option<Entitlements> {
        Some(Entitlements {
            catalogue: config.catalogue()?,
            periods: GracePeriods::from_days(config.grace_days, config.update_grace_days),
        })
    }

    pub async fn account(&self, store: &dyn BillingStore, account: AccountId) -> Result<AccountBilling, StoreError> {
        let record = store.billing(account).await?;
        let plan = self.catalogue.plan_for(record.effective_plan()).clone();
        Ok(AccountBilling {
            standing: Standing::of(&record, self.periods, certdns_core::now()),
            registrations: store.count_registrations(account).await?,
            license_keys: store.count_active_license_keys(account).await?,
            plan,
            record,
        })
    }

    /// May the account make one more registration? Growth stops both at the
    /// plan's limit and when a payment is overdue past the grace period.
    pub async fn check_new_registration(&self, store: &dyn BillingStore, account: AccountId) -> Result<(), CheckError> {
        let record = store.billing(account).await?;
        if !Standing::of(&record, self.periods, certdns_core::now()).allows_new_registrations() {
            return Err(Refusal::PaymentOverdue.into());
        }
        let plan = self.catalogue.plan_for(record.effective_plan());
        if let Some(allowed) = plan.limits.registrations {
            let used = store.count_registrations(account).await?;
            check_limit(LimitKind::Registrations, plan, allowed, used)?;
        }
        Ok(())
    }

    /// May the account create one more license key?
    pub async fn check_new_license_key(&self, store: &dyn BillingStore, account: AccountId) -> Result<(), CheckError> {
        let record = store.billing(account).await?;
        let plan = self.catalogue.plan_for(record.effective_plan());
        if let Some(allowed) = plan.limits.license_keys {
            let used = store.count_active_license_keys(account).await?;
            check_limit(LimitKind::LicenseKeys, plan, allowed, used)?;
        }
        Ok(())
    }

    /// May the account's registrations still be updated?
    pub fn check_update(&self, record: &BillingRecord, now: OffsetDateTime) -> Result<(), Refusal> {
        if Standing::of(record, self.periods, now).allows_updates() { Ok(()) } else { Err(Refusal::UpdatesStopped) }
    }
}

/// Usage at or over the limit refuses one more; a downgrade below usage
/// deletes nothing, it only stops growth until usage fits.
fn check_limit(limit: LimitKind, plan: &Plan, allowed: u64, used: u64) -> Result<(), Refusal> {
    if used < allowed {
        return Ok(());
    }
    Err(Refusal::LimitReached { limit, allowed, used, plan: plan.name.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_refuse_at_and_over_the_quota_and_say_so() {
        let plan = Plan::built_in_free();
        assert!(check_limit(LimitKind::Registrations, &plan, 3, 2).is_ok());
        let refused = check_limit(LimitKind::Registrations, &plan, 3, 3).unwrap_err();
        assert_eq!(refused.code(), "registrations_limit_reached");
        assert_eq!(refused.to_string(), "3 of 3 registrations on the Free plan: upgrade, or delete some first");
        // After a downgrade usage can exceed the limit: still only refused, never trimmed.
        assert!(check_limit(LimitKind::LicenseKeys, &plan, 1, 5).is_err());
    }
}
