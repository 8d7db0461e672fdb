//! The acme-dns compatible HTTP API.

pub mod config;

pub use config::{ApiConfig, RegistrationMode};
