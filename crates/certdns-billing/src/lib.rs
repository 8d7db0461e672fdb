//! certdns billing: plans and their limits (`[billing]`), what an account may
//! do ([`Entitlements`], [`Standing`]) and, with the `stripe` feature, Stripe:
//! Checkout, the customer portal and the signed webhook.
//!
//! Without the two Stripe secrets billing is off: [`BillingConfig::catalogue`]
//! is `None`, and callers limit nothing.

pub mod config;
pub mod entitlements;
pub mod plans;
pub mod standing;

pub use config::{BillingConfig, PlanConfig, StripeConfig};
pub use entitlements::{AccountBilling, CheckError, Entitlements, LimitKind, Refusal, UpdateLimits};
pub use plans::{Catalogue, FREE_PLAN, Limits, MIN_TXT_VALUES, Plan};
pub use standing::{GracePeriods, Standing, WarningKind, updates_stop_at};

#[cfg(feature = "stripe")]
pub mod stripe_api;
#[cfg(feature = "stripe")]
pub mod webhook;
