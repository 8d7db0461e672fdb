//! Plans and their limits.

use serde::{Deserialize, Serialize};

use crate::config::PlanConfig;

/// The fewest TXT values per name a plan may keep: a certificate for a name and
/// its wildcard (`example.com`, `*.example.com`) is validated with two values
/// at `_acme-challenge.example.com` at once.
pub const MIN_TXT_VALUES: u64 = 2;

/// The plan of every account that pays for none.
pub const FREE_PLAN: &str = "free";

/// What a plan allows. `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrations: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_keys: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txt_values: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updates_per_day: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub price: String,
    pub stripe_price_id: Option<String>,
    pub limits: Limits,
}

impl Plan {
    pub fn from_config(c: &PlanConfig) -> Plan {
        Plan {
            id: c.id.clone(),
            name: c.name.clone(),
            price: c.price.clone(),
            stripe_price_id: c.stripe_price_id.clone(),
            limits: c.limits,
        }
    }

    /// The free plan an operator gets without configuring one: enough to try
    /// the service on a couple of domains. 50 updates per name and day is far
    /// above what renewals need (one or two per certificate, every 60 days or
    /// so), so only a client stuck in a loop ever meets it.
    pub fn built_in_free() -> Plan {
        Plan {
            id: FREE_PLAN.into(),
            name: "Free".into(),
            price: "free".into(),
            stripe_price_id: None,
            limits: Limits {
                registrations: Some(3),
                license_keys: Some(1),
                txt_values: Some(2),
                updates_per_day: Some(50),
            },
        }
    }

    /// Whether customers can buy it through Checkout.
    pub fn purchasable(&self) -> bool {
        self.stripe_price_id.is_some()
    }
}

/// The plans in force; always has a free plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    free: Plan,
    others: Vec<Plan>,
}

impl Catalogue {
    /// `plans` as configured; the built-in free plan unless one has id `free`.
    pub fn new(plans: Vec<Plan>) -> Catalogue {
        let (mut free, others): (Vec<Plan>, Vec<Plan>) = plans.into_iter().partition(|p| p.id == FREE_PLAN);
        Catalogue { free: free.pop().unwrap_or_else(Plan::built_in_free), others }
    }

    /// Every plan, the free one first.
    pub fn all(&self) -> impl Iterator<Item = &Plan> {
        std::iter::once(&self.free).chain(&self.others)
    }

    pub fn free(&self) -> &Plan {
        &self.free
    }

    /// The plan an account is on: its stored plan when that still exists in the
    /// configuration, else the free plan (a plan removed from the file must not
    /// lift every limit).
    pub fn plan_for(&self, stored: Option<&str>) -> &Plan {
        stored.and_then(|id| self.get(id)).unwrap_or(&self.free)
    }

    pub fn get(&self, id: &str) -> Option<&Plan> {
        self.all().find(|p| p.id == id)
    }

    /// The configured plan Stripe's price id is for.
    pub fn by_price(&self, price_id: &str) -> Option<&Plan> {
        self.others.iter().find(|p| p.stripe_price_id.as_deref() == Some(price_id))
    }
}
