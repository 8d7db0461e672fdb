//! The HTTP edge the acme-dns API and the portal share, written once so both
//! listeners follow the same rules: serving with connection limits, plain or over
//! TLS ([`serve`]), the plain listener that only sends clients to HTTPS
//! ([`redirect`]), who the client is behind proxies ([`client_addr`]), and the
//! bounded pool for expensive password hashes ([`slow_work`]).

pub mod client_addr;
pub mod redirect;
pub mod serve;
pub mod slow_work;

pub use client_addr::{ClientAddrRule, ProxyHeader, ProxyNet};
pub use serve::{ConnectionLimits, Https, serve};
pub use slow_work::{Busy, SlowWork};
