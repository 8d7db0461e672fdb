//! Configuration of the acme-dns API (`[api]` in certdns.toml).

use certdns_http::{ProxyHeader, ProxyNet};
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

/// A token bucket: `per_minute` requests on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub per_minute: u32,
    pub burst: u32,
}

impl Rate {
    pub const fn new(per_minute: u32, burst: u32) -> Self {
        Self { per_minute, burst }
    }
}

/// Rate limits (`[api.rate_limits]`). A request over a limit gets `429` with a JSON
/// error and `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// `/register` calls per license key (open mode: not applied).
    pub register_per_key: Rate,
    /// `/register` calls without a valid license key (none, malformed, wrong,
    /// revoked) per client address. Calls with a valid key never spend it, so
    /// customers behind one proxy address are not refused for strangers' calls.
    pub register_unauthenticated_per_address: Rate,
    /// Failed `/update` (and deregistration) authentications per client address.
    pub auth_failures_per_address: Rate,
    /// Failed `/update` authentications per `X-Api-User`.
    pub auth_failures_per_user: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            register_per_key: Rate::new(600, 100),
            register_unauthenticated_per_address: Rate::new(60, 20),
            auth_failures_per_address: Rate::new(60, 20),
            auth_failures_per_user: Rate::new(30, 10),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub registration: RegistrationMode,
    /// How many of a registration's most recent TXT values are served (acme-dns: 2).
    pub txt_values: usize,
    /// Take the client address from this header (e.g. `X-Forwarded-For`) instead of
    /// the socket. Only for deployments behind a proxy that sets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip_header: Option<ProxyHeader>,
    /// Peers (CIDRs or addresses) whose `client_ip_header` is believed. Requests
    /// from any other peer use the socket address even when the header is present.
    pub trusted_proxies: Vec<ProxyNet>,
    /// An optional path prefix the API is also served under (e.g. `/acme`), for
    /// clients given a base URL with a path.
    pub path_prefix: String,
    /// CORS allowed origins (acme-dns `corsorigins`); entries may hold one `*`.
    pub cors_origins: Vec<String>,
    /// Largest request body accepted; larger ones get `413` with a JSON error.
    pub max_body_bytes: usize,
    /// Whole-request deadline; slower requests get `408`.
    pub request_timeout_secs: u64,
    /// Sent as `propagationDelaySeconds` in `/update` responses when the wait
    /// below ended before every responder served the value (or is off): the wait
    /// the service recommends before the client asks the CA to validate.
    pub propagation_delay_secs: u32,
    /// How long `/update` waits, at most, until every live DNS responder serves
    /// the new value (then it answers `propagationDelaySeconds: 0`); 0 = no wait.
    pub propagation_wait_ms: u64,
    /// Realm of the `WWW-Authenticate: Basic` challenge on `/register`.
    pub basic_auth_realm: String,
    pub rate_limits: RateLimits,
    /// How many values a name set through `/acmeproxy/present` keeps (newest
    /// first): a certificate with many names under one delegation needs them all
    /// at once.
    pub acmeproxy_values: usize,
    /// Recursive resolver asked whether a customer's CNAME is in place (lego's
    /// HTTP storage answers 201 when it is).
    pub resolver: std::net::SocketAddr,
    /// Secret (>= 32 characters) sealing registration passwords that keys with
    /// storage access may read back. Unset: storage answers 503.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_key: Option<String>,
}

impl ApiConfig {
    /// How many values per name the DNS serves: enough for either dialect.
    pub fn served_values(&self) -> usize {
        self.txt_values.max(self.acmeproxy_values)
    }
}

impl ApiConfig {
    /// Every key of `[api]` with a one-line description, for `serve --help`.
    /// A test in the binary checks that no key is missing.
    pub const DOCS: &'static [(&'static str, &'static str)] = &[
        ("registration", "who may POST /register: license (default), open, disabled"),
        ("txt_values", "how many of a registration's most recent TXT values are served (1-10, default 2)"),
        ("client_ip_header", "take the client address from this header (only behind a proxy that sets it)"),
        ("trusted_proxies", "CIDRs or addresses of proxies whose client_ip_header is believed (default loopback)"),
        ("path_prefix", "also serve the API under this path prefix, e.g. /acme (default none)"),
        ("cors_origins", "CORS allowed origins; \"*\" or patterns with one * (default [\"*\"])"),
        ("max_body_bytes", "largest request body accepted; larger gets 413"),
        ("request_timeout_secs", "whole-request deadline in seconds; slower requests get 408"),
        ("propagation_delay_secs", "propagationDelaySeconds sent when the responders did not all confirm in time"),
        (
            "propagation_wait_ms",
            "how long /update waits, at most, until every live responder serves the value (0: no wait)",
        ),
        ("basic_auth_realm", "realm of the WWW-Authenticate: Basic challenge on /register"),
        ("acmeproxy_values", "how many values a name set through /acmeproxy keeps (1-10, default 10)"),
        ("resolver", "recursive resolver (ip:port) asked whether a customer's CNAME is in place"),
        (
            "credentials_key",
            "secret (>= 32 chars) sealing registration passwords for lego's HTTP storage; unset: storage off",
        ),
        ("rate_limits", "rate limits, each { per_minute, burst }; over the limit: 429 + Retry-After"),
        ("rate_limits.register_per_key", "POST /register per license key"),
        (
            "rate_limits.register_unauthenticated_per_address",
            "POST /register without a valid license key, per client address",
        ),
        ("rate_limits.auth_failures_per_address", "failed /update and /deregister authentications per client address"),
        ("rate_limits.auth_failures_per_user", "failed /update authentications per X-Api-User"),
    ];

    /// Checks values serde cannot. The error names the full key
    /// (`api.txt_values: must be between 1 and 10`).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=10).contains(&self.txt_values) {
            return Err("api.txt_values: must be between 1 and 10".into());
        }
        if !(1..=10).contains(&self.acmeproxy_values) {
            return Err("api.acmeproxy_values: must be between 1 and 10".into());
        }
        if self.credentials_key.as_ref().is_some_and(|k| k.chars().count() < certdns_core::sealed::MIN_SECRET_LEN) {
            return Err("api.credentials_key: must be at least 32 characters".into());
        }
        let p = &self.path_prefix;
        if !p.is_empty()
            && (!p.starts_with('/')
                || p.ends_with('/')
                || p.contains("//")
                || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b)))
        {
            return Err(format!(
                "api.path_prefix: {p:?} must be empty or like /acme (leading slash, no trailing slash)"
            ));
        }
        if let Some(bad) = self
            .cors_origins
            .iter()
            .find(|o| o.matches('*').count() > 1 || o.is_empty() || o.contains(char::is_whitespace))
        {
            return Err(format!("api.cors_origins: {bad:?} must be an origin with at most one *"));
        }
        if !(64..=1_048_576).contains(&self.max_body_bytes) {
            return Err("api.max_body_bytes: must be between 64 and 1048576".into());
        }
        if !(1..=300).contains(&self.request_timeout_secs) {
            return Err("api.request_timeout_secs: must be between 1 and 300".into());
        }
        if self.propagation_delay_secs > 3600 {
            return Err("api.propagation_delay_secs: must be at most 3600".into());
        }
        if self.propagation_wait_ms > 30_000 {
            return Err("api.propagation_wait_ms: must be at most 30000".into());
        }
        if self.propagation_wait_ms >= self.request_timeout_secs * 1000 {
            return Err("api.propagation_wait_ms: must be shorter than api.request_timeout_secs".into());
        }
        if self.basic_auth_realm.is_empty()
            || !self.basic_auth_realm.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        {
            return Err("api.basic_auth_realm: must be non-empty printable ASCII without quotes".into());
        }
        let limits = [
            ("register_per_key", self.rate_limits.register_per_key),
            ("register_unauthenticated_per_address", self.rate_limits.register_unauthenticated_per_address),
            ("auth_failures_per_address", self.rate_limits.auth_failures_per_address),
            ("auth_failures_per_user", self.rate_limits.auth_failures_per_user),
        ];
        for (name, rate) in limits {
            if rate.per_minute == 0 || rate.burst == 0 {
                return Err(format!("api.rate_limits.{name}: per_minute and burst must be at least 1"));
            }
        }
        Ok(())
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            registration: RegistrationMode::License,
            txt_values: 2,
            acmeproxy_values: 10,
            resolver: std::net::SocketAddr::from(([127, 0, 0, 1], 53)),
            credentials_key: None,
            client_ip_header: None,
            trusted_proxies: certdns_http::client_addr::loopback(),
            path_prefix: String::new(),
            cors_origins: vec!["*".into()],
            max_body_bytes: 16 * 1024,
            request_timeout_secs: 10,
            propagation_delay_secs: 2,
            propagation_wait_ms: 2_000,
            basic_auth_realm: "certdns".into(),
            rate_limits: RateLimits::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(ApiConfig::default().validate(), Ok(()));
    }

    #[test]
    fn errors_name_the_full_key() {
        type Case = (fn(&mut ApiConfig), &'static str);
        let cases: Vec<Case> = vec![
            (|c| c.txt_values = 0, "api.txt_values: must be between 1 and 10"),
            (|c| c.txt_values = 11, "api.txt_values:"),
            (|c| c.path_prefix = "acme/".into(), "api.path_prefix:"),
            (|c| c.cors_origins = vec!["https://*.*.example".into()], "api.cors_origins:"),
            (|c| c.max_body_bytes = 1, "api.max_body_bytes:"),
            (|c| c.request_timeout_secs = 0, "api.request_timeout_secs:"),
            (|c| c.propagation_delay_secs = 9999, "api.propagation_delay_secs:"),
            (|c| c.basic_auth_realm = "a\"b".into(), "api.basic_auth_realm:"),
            (|c| c.rate_limits.register_per_key.burst = 0, "api.rate_limits.register_per_key:"),
        ];
        for (mutate, expected) in cases {
            let mut c = ApiConfig::default();
            mutate(&mut c);
            let err = c.validate().unwrap_err();
            assert!(err.starts_with(expected), "{err} should start with {expected}");
        }
        let ok = ApiConfig { path_prefix: "/acme".into(), ..ApiConfig::default() };
        assert_eq!(ok.validate(), Ok(()));
    }

    #[test]
    fn every_top_level_key_is_documented() {
        let value =
            serde_json::to_value(ApiConfig { client_ip_header: Some("x".parse().unwrap()), ..Default::default() })
                .unwrap();
        for key in value.as_object().unwrap().keys() {
            assert!(ApiConfig::DOCS.iter().any(|(k, _)| k == key), "{key} missing from DOCS");
        }
        for key in value["rate_limits"].as_object().unwrap().keys() {
            let full = format!("rate_limits.{key}");
            assert!(ApiConfig::DOCS.iter().any(|(k, _)| *k == full), "{full} missing from DOCS");
        }
    }
}
