//! The authoritative DNS responder.

pub mod config;

pub use config::{DnsConfig, ZoneConfig};
