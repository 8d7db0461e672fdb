//! What an account may do now: its plan's limits against its usage, and its
//! standing after a failed payment. The API and the portal ask the same
//! questions here, so they give the same answers.

use certdns_core::AccountId;
use certdns_store::{BillingRecord, BillingStore, NameUpdates, StoreError};
use time::OffsetDateTime;

use crate::config::BillingConfig;
use crate::plans::{Catalogue, Plan};
use crate::standing::{GracePeriods, Standing};

/// A limit of a plan, by the name customers see in errors and on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Registrations,
    LicenseKeys,
    /// Updates of one registration (name) per UTC day.
    UpdatesPerDay,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Registrations => "registrations",
            LimitKind::LicenseKeys => "license_keys",
            LimitKind::UpdatesPerDay => "updates_per_day",
        }
    }

    /// The words after a count ("1 license key", "2 license keys"); in
    /// "7 of 50 registrations" they agree with the limit.
    pub fn noun(self, n: u64) -> &'static str {
        match (self, n == 1) {
            (LimitKind::Registrations, true) => "registration",
            (LimitKind::Registrations, false) => "registrations",
            (LimitKind::LicenseKeys, true) => "license key",
            (LimitKind::LicenseKeys, false) => "license keys",
            (LimitKind::UpdatesPerDay, true) => "update",
            (LimitKind::UpdatesPerDay, false) => "updates",
        }
    }

    /// What the count is of, after the noun ("updates *of this name today*").
    fn scope(self) -> &'static str {
        match self {
            LimitKind::Registrations | LimitKind::LicenseKeys => "",
            LimitKind::UpdatesPerDay => " of this name today",
        }
    }

    /// What the customer can do about it.
    fn advice(self) -> &'static str {
        match self {
            LimitKind::Registrations | LimitKind::LicenseKeys => "upgrade, or delete some first",
            LimitKind::UpdatesPerDay => "updates resume at 00:00 UTC, or upgrade",
        }
    }
}

/// "7 of 50 registrations on the Pro plan: upgrade, or delete some first".
fn limit_reached(limit: LimitKind, allowed: u64, used: u64, plan: &str) -> String {
    format!("{used} of {allowed} {}{} on the {plan} plan: {}", limit.noun(allowed), limit.scope(), limit.advice())
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{}", limit_reached(*.limit, *.allowed, *.used, .plan))]
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
            Refusal::LimitReached { limit: LimitKind::UpdatesPerDay, .. } => "updates_per_day_limit_reached",
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
    /// Today's (UTC) busiest names, most updates first (at most [`BUSIEST_SHOWN`]).
    pub busiest_today: Vec<NameUpdates>,
}

/// How many of the day's busiest names the Billing page lists.
pub const BUSIEST_SHOWN: u32 = 3;

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
        let now = certdns_core::now();
        Ok(AccountBilling {
            standing: Standing::of(&record, self.periods, now),
            busiest_today: store.updates_on_day(account, certdns_core::utc_day(now), BUSIEST_SHOWN).await?,
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

    /// May the account's registrations still be updated, and within what? The
    /// daily limit is checked by the store in the write itself
    /// ([`certdns_store::Store::put_txt_within`]); its refusal is
    /// [`UpdateLimits::refusal`].
    pub fn check_update(&self, record: &BillingRecord, now: OffsetDateTime) -> Result<UpdateLimits, Refusal> {
        if !Standing::of(record, self.periods, now).allows_updates() {
            return Err(Refusal::UpdatesStopped);
        }
        let plan = self.catalogue.plan_for(record.effective_plan());
        Ok(UpdateLimits {
            txt_values: plan.limits.txt_values.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            per_day: plan.limits.updates_per_day,
            plan: plan.name.clone(),
        })
    }

    /// The smallest "updates per day" of any plan: a name below it is within
    /// every plan's limit, so the `/update` fast path may write it without
    /// knowing the plan. `None`: no plan limits updates.
    pub fn fast_path_daily_cap(&self) -> Option<u64> {
        self.catalogue.all().filter_map(|p| p.limits.updates_per_day).min()
    }

    /// Whether some plan keeps fewer TXT values per name than `keep` (the
    /// `/update` fast path's, which does not know the plan).
    pub fn caps_txt_values_below(&self, keep: usize) -> bool {
        self.catalogue.all().filter_map(|p| p.limits.txt_values).any(|n| usize::try_from(n).is_ok_and(|n| n < keep))
    }
}

/// What a name of an account in good enough standing may do on `/update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateLimits {
    /// Values a name keeps at most (the newest; older ones rotate out). `None`: no cap.
    pub txt_values: Option<usize>,
    /// Updates per name and UTC day. `None`: no limit.
    pub per_day: Option<u64>,
    /// The plan's name, for the refusal.
    pub plan: String,
}

impl UpdateLimits {
    /// No plan: nothing limited (billing off).
    pub fn unlimited() -> UpdateLimits {
        UpdateLimits { txt_values: None, per_day: None, plan: String::new() }
    }

    /// The values a name keeps: the dialect's own count (`api.txt_values`,
    /// `api.acmeproxy_values`), capped by the plan. Never fewer than two
    /// unless the operator asked for fewer: a wildcard and apex certificate
    /// needs two values at once (plans are checked to allow two).
    pub fn keep(&self, dialect_keep: usize) -> usize {
        let floor = usize::try_from(crate::plans::MIN_TXT_VALUES).unwrap_or(usize::MAX);
        self.txt_values.map_or(dialect_keep, |cap| dialect_keep.min(cap.max(floor)))
    }

    /// The refusal when the store found the name at its daily limit.
    pub fn refusal(&self, used: u64) -> Refusal {
        Refusal::LimitReached {
            limit: LimitKind::UpdatesPerDay,
            allowed: self.per_day.unwrap_or(used),
            used,
            plan: self.plan.clone(),
        }
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
        let over = check_limit(LimitKind::LicenseKeys, &plan, 1, 5).unwrap_err();
        assert_eq!(over.to_string(), "5 of 1 license key on the Free plan: upgrade, or delete some first");
    }

    #[test]
    fn update_limits_rotate_values_and_name_the_daily_limit() {
        let limits = UpdateLimits { txt_values: Some(2), per_day: Some(50), plan: "Free".into() };
        assert_eq!((limits.keep(2), limits.keep(10), limits.keep(1)), (2, 2, 1), "a cap, never a raise");
        let generous = UpdateLimits { txt_values: Some(5), ..limits.clone() };
        assert_eq!(generous.keep(2), 2, "the dialect's own count stays the most");
        assert_eq!(UpdateLimits::unlimited().keep(10), 10);
        let refused = limits.refusal(50);
        assert_eq!(refused.code(), "updates_per_day_limit_reached");
        assert_eq!(
            refused.to_string(),
            "50 of 50 updates of this name today on the Free plan: updates resume at 00:00 UTC, or upgrade"
        );
    }
}
