//! The HTTP edge the acme-dns API and the portal share, written once so both
//! listeners follow the same rules: serving with connection limits, plain or over
//! TLS ([`serve`]), the plain listener that only sends clients to HTTPS
//! ([`redirect`]), and who the client is behind proxies ([`client_addr`]).

pub mod client_addr;
pub mod redirect;
pub mod serve;

pub use client_addr::{ClientAddrRule, ProxyHeader, ProxyNet};
pub use serve::{ConnectionLimits, Https, serve};
