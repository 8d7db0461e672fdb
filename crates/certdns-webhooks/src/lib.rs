//! Outgoing webhooks. The portal decides which events go to which endpoint and
//! queues a delivery per endpoint in the store; this crate signs each body
//! ([`signature`]), sends it only to public `https` addresses ([`target`]), and
//! retries with back-off until the endpoint answers 2xx ([`deliver`]).

pub mod deliver;
pub mod signature;
pub mod target;

pub use deliver::{Deliverer, DeliveryConfig};
pub use signature::{VerifyError, new_secret, sign, verify};
pub use target::{BadTarget, check_url};
