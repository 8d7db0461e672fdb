//! `[portal]` in certdns.toml.

use std::net::SocketAddr;

use certdns_http::{ConnectionLimits, ProxyHeader, ProxyNet};
use serde::{Deserialize, Serialize};

/// Whether anyone may create an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signup {
    Open,
    Closed,
}

/// Outgoing mail over SMTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// lettre's URL form: `smtps://user:password@smtp.example.net:465`,
    /// `smtp://user:password@smtp.example.net:587?tls=required`, or
    /// `smtp://127.0.0.1:25` (no TLS; loopback relays only).
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {
    /// Address of the portal's own HTTP listener (separate from the API's).
    pub listen: SocketAddr,
    /// Header timeout and connection cap of that listener.
    pub limits: ConnectionLimits,
    /// Whole-request deadline (a body that stalls gets 408).
    pub request_timeout_secs: u64,
    /// The portal's public URL (used in e-mailed links and to check `Origin`);
    /// unset = `http://<listen>`.
    pub public_url: Option<String>,
    /// Key signing session cookies (at least 32 characters). Unset = generated at
    /// first start and kept in the database, so every portal instance shares it.
    pub session_secret: Option<String>,
    /// Mark cookies `Secure` (sent over HTTPS only). Turn off only for plain-HTTP localhost.
    pub secure_cookies: bool,
    /// How long a login lasts, in hours.
    pub session_hours: u32,
    /// SMTP relay; unset = mails are appended to `<data dir>/outbox.eml` (0600).
    pub smtp: Option<SmtpConfig>,
    /// `From:` of the portal's mails.
    pub mail_from: String,
    /// Recursive resolver the CNAME check asks.
    pub resolver: SocketAddr,
    /// Seconds between background checks of a correct delegation (broken ones
    /// are checked sooner, with back-off); 0 turns the monitor off.
    pub monitor_interval_secs: u64,
    /// At most this many background CNAME checks start per second.
    pub monitor_checks_per_second: u32,
    /// Let customers' webhooks use plain `http` and reach private addresses
    /// (loopback, RFC 1918, link-local). Only where every customer is trusted.
    pub webhooks_allow_private: bool,
    /// Failed authentications naming one registration or key, without a quiet
    /// quarter of an hour between them, before its owner is told.
    pub alert_auth_failures: u32,
    /// `open`: anyone may sign up; `closed`: operators create accounts (`certdns admin`).
    pub signup: Signup,
    /// Failed sign-ins per minute allowed from one client address (any account).
    pub login_failures_per_minute_per_address: u32,
    /// After a few failed sign-ins to one account from one address, that address
    /// waits 2, 4, 8 … seconds between tries, up to this many.
    pub login_backoff_max_secs: u32,
    /// After a key rotation, how many hours the old secret keeps working.
    pub rotation_grace_hours: u32,
    /// Password hashes (argon2id) run at most this many at once; 0 = half the
    /// cores, 1 to 4.
    pub password_hash_threads: usize,
    /// Take the client address from this header (e.g. `X-Forwarded-For`), for
    /// login rate limits and the audit log. Only behind a proxy that sets it.
    pub client_ip_header: Option<ProxyHeader>,
    /// Peers (CIDRs or addresses) whose `client_ip_header` is believed.
    pub trusted_proxies: Vec<ProxyNet>,
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            limits: ConnectionLimits { max_connections: 256, ..ConnectionLimits::default() },
            request_timeout_secs: 30,
            public_url: None,
            session_secret: None,
            secure_cookies: true,
            session_hours: 12,
            smtp: None,
            mail_from: "certdns <no-reply@certdns.localhost>".into(),
            resolver: SocketAddr::from(([127, 0, 0, 1], 53)),
            monitor_interval_secs: 3600,
            monitor_checks_per_second: 5,
            webhooks_allow_private: false,
            alert_auth_failures: 20,
            signup: Signup::Open,
            login_failures_per_minute_per_address: 10,
            login_backoff_max_secs: 900,
            rotation_grace_hours: 24 * 7,
            password_hash_threads: 0,
            client_ip_header: None,
            trusted_proxies: certdns_http::client_addr::loopback(),
        }
    }
}

impl PortalConfig {
    /// Every key of `[portal]` with a one-line description, for `serve --help`.
    pub const DOCS: &'static [(&'static str, &'static str)] = &[
        ("listen", "address of the portal's HTTP listener (its own, separate from the API's)"),
        ("request_timeout_secs", "whole-request deadline in seconds; slower requests (a stalled body) get 408"),
        ("public_url", "public URL of the portal, for e-mailed links and Origin checks; unset = http://<listen>"),
        ("session_secret", "key signing session cookies (>= 32 chars); unset = generated once, kept in the database"),
        ("secure_cookies", "mark cookies Secure (HTTPS only); false only for plain-HTTP localhost"),
        ("session_hours", "how long a login lasts, hours"),
        (
            "smtp",
            "SMTP relay table: { url = \"smtps://user:pass@host:465\" }; unset = appended to <data dir>/outbox.eml (private file)",
        ),
        ("mail_from", "From: address of the portal's mails"),
        ("resolver", "recursive resolver (ip:port) the CNAME check and the delegation monitor ask"),
        (
            "monitor_interval_secs",
            "seconds between background checks of a correct delegation (broken: sooner, backing off); 0 = no monitor",
        ),
        ("monitor_checks_per_second", "at most this many background CNAME checks start per second"),
        (
            "webhooks_allow_private",
            "let customers' webhooks use http:// and private addresses (loopback, RFC 1918); trusted customers only",
        ),
        (
            "alert_auth_failures",
            "failed authentications on one registration or key in a burst before its owner is told",
        ),
        ("signup", "open | closed: whether anyone may create an account"),
        ("login_failures_per_minute_per_address", "failed sign-ins per minute from one client address (any account)"),
        (
            "login_backoff_max_secs",
            "longest wait between sign-in tries of one address at one account after failures (2, 4, 8 … s)",
        ),
        ("rotation_grace_hours", "after a key rotation, hours the old secret keeps working"),
        (
            "password_hash_threads",
            "password hashes (argon2id, ~20 ms and 19 MiB each) run at most this many at once; 0 = half the cores, 1 to 4",
        ),
        ("client_ip_header", "take the client address from this header (e.g. X-Forwarded-For); only behind a proxy"),
        ("trusted_proxies", "CIDRs or addresses of proxies whose client_ip_header is believed (default loopback)"),
    ];

    /// Checks what serde cannot; errors start with `portal.<key>:`.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url).map_err(|e| format!("portal.public_url: {url:?} is not a URL ({e})"))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(format!("portal.public_url: {url:?} must be an http(s) URL with a host"));
            }
        }
        self.limits.validate("portal")?;
        if !(1..=300).contains(&self.request_timeout_secs) {
            return Err("portal.request_timeout_secs: must be between 1 and 300".into());
        }
        if let Some(secret) = &self.session_secret
            && secret.chars().count() < 32
        {
            return Err("portal.session_secret: must be at least 32 characters (or unset to generate one)".into());
        }
        if self.monitor_interval_secs != 0 && !(60..=7 * 86_400).contains(&self.monitor_interval_secs) {
            return Err("portal.monitor_interval_secs: 0 (off) or between 60 and 604800".into());
        }
        if !(3..=100_000).contains(&self.alert_auth_failures) {
            return Err("portal.alert_auth_failures: must be between 3 and 100000".into());
        }
        if !(1..=100).contains(&self.monitor_checks_per_second) {
            return Err("portal.monitor_checks_per_second: must be between 1 and 100".into());
        }
        if !(1..=24 * 90).contains(&self.session_hours) {
            return Err("portal.session_hours: must be between 1 and 2160".into());
        }
        if let Some(smtp) = &self.smtp {
            let parsed = url::Url::parse(&smtp.url).map_err(|e| format!("portal.smtp: url is not a URL ({e})"))?;
            if !matches!(parsed.scheme(), "smtp" | "smtps") {
                return Err("portal.smtp: url must start with smtp:// or smtps://".into());
            }
        }
        if self.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(format!(
                "portal.mail_from: {:?} is not a mailbox (\"Name <addr@example.net>\")",
                self.mail_from
            ));
        }
        if self.login_failures_per_minute_per_address == 0 {
            return Err("portal.login_failures_per_minute_per_address: must be at least 1".into());
        }
        if !(2..=86_400).contains(&self.login_backoff_max_secs) {
            return Err("portal.login_backoff_max_secs: must be between 2 and 86400".into());
        }
        if self.password_hash_threads > 64 {
            return Err("portal.password_hash_threads: at most 64".into());
        }
        if self.rotation_grace_hours > 24 * 90 {
            return Err("portal.rotation_grace_hours: at most 2160 (90 days)".into());
        }
        Ok(())
    }

    /// The size of the password-hashing pool.
    pub fn password_hash_threads(&self) -> usize {
        if self.password_hash_threads == 0 { crate::passwords::default_threads() } else { self.password_hash_threads }
    }

    /// The portal's public base URL, without a trailing slash.
    pub fn base_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_errors_name_the_key() {
        assert_eq!(PortalConfig::default().validate(), Ok(()));
        let bad = PortalConfig { session_secret: Some("short".into()), ..Default::default() };
        assert!(bad.validate().unwrap_err().starts_with("portal.session_secret:"));
        let bad = PortalConfig { public_url: Some("ftp://x".into()), ..Default::default() };
        assert!(bad.validate().unwrap_err().starts_with("portal.public_url:"));
        let bad = PortalConfig { mail_from: "nope".into(), ..Default::default() };
        assert!(bad.validate().unwrap_err().starts_with("portal.mail_from:"));
    }

    #[test]
    fn every_key_is_documented() {
        let json = serde_json::to_value(PortalConfig::default()).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        // `limits` is described by ConnectionLimits::DOCS (the binary adds it).
        for key in keys.iter().filter(|k| k.as_str() != "limits") {
            assert!(PortalConfig::DOCS.iter().any(|(k, _)| k == key), "{key} is not in DOCS");
        }
        assert_eq!(keys.len(), PortalConfig::DOCS.len() + 1);
    }
}
