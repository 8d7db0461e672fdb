//! `[billing]`: the plans and the Stripe account. Billing is on only when both
//! Stripe secrets are set; without them (self-hosting, the embedded default)
//! there is no plan, no limit and no billing page.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::plans::{Catalogue, Limits, Plan};

/// Days a customer keeps everything after a failed payment.
pub const DEFAULT_GRACE_DAYS: u32 = 14;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingConfig {
    pub stripe: StripeConfig,
    /// The plans customers may buy; a plan with id `free` replaces the built-in one.
    pub plans: Vec<PlanConfig>,
    /// After a failed payment, days in which everything keeps working.
    pub grace_days: u32,
    /// Days after the grace period (and after at least two warnings) before
    /// `/update` of existing registrations stops.
    pub update_grace_days: u32,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            stripe: StripeConfig::default(),
            plans: Vec::new(),
            grace_days: DEFAULT_GRACE_DAYS,
            update_grace_days: DEFAULT_GRACE_DAYS,
        }
    }
}

/// `[billing.stripe]`. Both secrets are secrets (never shown, `*_FILE` works).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StripeConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// Another Stripe API base URL (tests point it at a fake).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_base: Option<String>,
}

impl fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "***");
        f.debug_struct("StripeConfig")
            .field("secret_key", &hidden(&self.secret_key))
            .field("webhook_secret", &hidden(&self.webhook_secret))
            .field("api_base", &self.api_base)
            .finish()
    }
}

/// One `[[billing.plans]]` entry. An unset limit is no limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanConfig {
    /// Stable id stored on accounts (`pro`); `free` is the plan of new accounts.
    pub id: String,
    /// Shown to customers (`Pro`).
    pub name: String,
    /// The price as shown (`€9 / month`); Stripe's price decides what is charged.
    #[serde(default)]
    pub price: String,
    /// Stripe's price id (`price_…`); a plan without one cannot be bought.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripe_price_id: Option<String>,
    #[serde(default, flatten)]
    pub limits: Limits,
}

impl BillingConfig {
    /// Every key, for `serve --help` (a test in the binary checks they match).
    pub const DOCS: &'static [(&'static str, &'static str)] = &[
        ("stripe", "the Stripe account ([billing.stripe]): secret_key, webhook_secret, api_base"),
        ("stripe.secret_key", "Stripe secret API key (sk_…); billing is on when it and webhook_secret are set"),
        ("stripe.webhook_secret", "signing secret of the webhook endpoint /billing/webhook (whsec_…)"),
        ("stripe.api_base", "another Stripe API base URL (tests; default: Stripe's)"),
        (
            "plans",
            "[[billing.plans]] id, name, price (as shown), stripe_price_id, registrations, license_keys, \
             txt_values (at least 2; the newest are kept, older ones rotate out), updates_per_day (per name and \
             UTC day; unset = no limit); id \"free\" replaces the built-in free plan",
        ),
        ("grace_days", "days after a failed payment in which everything keeps working"),
        ("update_grace_days", "days after grace (and two warnings) before /update of existing names stops"),
    ];

    /// Whether billing is on: both Stripe secrets set.
    pub fn enabled(&self) -> bool {
        self.stripe.secret_key.is_some() && self.stripe.webhook_secret.is_some()
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.stripe.secret_key.is_some() != self.stripe.webhook_secret.is_some() {
            return Err("billing.stripe: set both secret_key and webhook_secret, or neither".into());
        }
        if !self.enabled() && !self.plans.is_empty() {
            return Err("billing.plans: plans need billing on (billing.stripe.secret_key and webhook_secret)".into());
        }
        if let Some(base) = &self.stripe.api_base
            && !(base.starts_with("https://") || base.starts_with("http://"))
        {
            return Err(format!("billing.stripe.api_base: {base:?} is not an http(s) URL"));
        }
        let mut seen = Vec::new();
        for plan in &self.plans {
            let id = plan.id.as_str();
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
                return Err(format!("billing.plans: id {id:?} must be lowercase letters, digits and '-'"));
            }
            if seen.contains(&id) {
                return Err(format!("billing.plans: id {id:?} appears twice"));
            }
            if plan.name.trim().is_empty() {
                return Err(format!("billing.plans: plan {id:?} needs a name"));
            }
            if plan.limits.txt_values.is_some_and(|n| n < crate::plans::MIN_TXT_VALUES) {
                return Err(format!(
                    "billing.plans: plan {id:?} keeps txt_values below 2; a certificate for a name and its wildcard \
                     needs two values at once"
                ));
            }
            if plan.limits.updates_per_day == Some(0) {
                return Err(format!("billing.plans: plan {id:?} has updates_per_day = 0, which stops every renewal"));
            }
            if id == crate::plans::FREE_PLAN && plan.stripe_price_id.is_some() {
                return Err("billing.plans: the free plan has no stripe_price_id".into());
            }
            seen.push(id);
        }
        Ok(())
    }

    /// The plans in force: `None` when billing is off (no limits).
    pub fn catalogue(&self) -> Option<Catalogue> {
        self.enabled().then(|| Catalogue::new(self.plans.iter().map(Plan::from_config).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> BillingConfig {
        BillingConfig {
            stripe: StripeConfig {
                secret_key: Some("sk_test_secret".into()),
                webhook_secret: Some("whsec_secret".into()),
                api_base: None,
            },
            ..BillingConfig::default()
        }
    }

    fn plan(id: &str, price: Option<&str>) -> PlanConfig {
        PlanConfig {
            id: id.into(),
            name: id.to_uppercase(),
            price: String::new(),
            stripe_price_id: price.map(str::to_owned),
            limits: Limits::default(),
        }
    }

    #[test]
    fn off_without_both_secrets_and_secrets_never_debug_printed() {
        assert!(BillingConfig::default().validate().is_ok() && BillingConfig::default().catalogue().is_none());
        let mut half = on();
        half.stripe.webhook_secret = None;
        assert!(half.validate().unwrap_err().contains("set both"));
        let config = on();
        let catalogue = config.catalogue().unwrap();
        assert_eq!(catalogue.all().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["free"], "the built-in free plan");
        let shown = format!("{config:?}");
        assert!(!shown.contains("sk_test_secret") && !shown.contains("whsec_secret"), "{shown}");
    }

    #[test]
    fn plans_are_checked() {
        let with = |plans: Vec<PlanConfig>| BillingConfig { plans, ..on() };
        assert!(with(vec![plan("pro", Some("price_1")), plan("free", None)]).validate().is_ok());
        assert!(with(vec![plan("pro", None), plan("pro", None)]).validate().unwrap_err().contains("twice"));
        assert!(with(vec![plan("Pro!", None)]).validate().is_err());
        assert!(with(vec![plan("free", Some("price_1"))]).validate().is_err());
        let mut one_value = plan("tiny", None);
        one_value.limits.txt_values = Some(1);
        assert!(with(vec![one_value]).validate().unwrap_err().contains("two values at once"));
        let mut no_updates = plan("tiny", None);
        no_updates.limits.updates_per_day = Some(0);
        assert!(with(vec![no_updates]).validate().unwrap_err().contains("stops every renewal"));
        let off = BillingConfig { plans: vec![plan("pro", None)], ..BillingConfig::default() };
        assert!(off.validate().unwrap_err().contains("need billing on"));
        let catalogue = with(vec![plan("pro", Some("price_1"))]).catalogue().unwrap();
        assert_eq!(catalogue.by_price("price_1").map(|p| p.id.as_str()), Some("pro"));
        assert_eq!(catalogue.plan_for(Some("gone")).id, "free", "a removed plan falls back to free");
    }
}
