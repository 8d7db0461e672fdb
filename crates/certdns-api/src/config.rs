//! Configuration of the acme-dns API (`[api]` in certdns.toml).

use serde::{Deserialize, Serialize};

/// Who may call `/register`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    /// HTTP Basic credentials of an active license key are required (the default).
    License,
    /// Anyone may register, as with a stock acme-dns; registrations belong to the
    /// first operator account.
    Open,
    /// `/register` does not exist (404), as with acme-dns's `disable_registration`.
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub registration: RegistrationMode,
    /// How many of a registration's most recent TXT values are served (acme-dns: 2).
    pub txt_values: usize,
    /// Take the client address from this header (e.g. `X-Forwarded-For`) instead of
    /// the socket. Only for deployments behind a proxy that sets it.
    pub client_ip_header: Option<String>,
}

impl ApiConfig {
    /// Every key of `[api]` with a one-line description, for `serve --help`.
    /// A test in the binary checks that no key is missing.
    pub const DOCS: &'static [(&'static str, &'static str)] = &[
        ("registration", "who may POST /register: license (default), open, disabled"),
        ("txt_values", "how many of a registration's most recent TXT values are served"),
        ("client_ip_header", "take the client address from this header (only behind a proxy that sets it)"),
    ];
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self { registration: RegistrationMode::License, txt_values: 2, client_ip_header: None }
    }
}
