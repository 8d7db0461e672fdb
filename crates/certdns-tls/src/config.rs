//! `[tls]`: one section for both HTTP listeners (API and portal).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One year: what HSTS preload lists ask for, and long enough that a browser
/// that saw the portal once never tries plain HTTP again.
const DEFAULT_HSTS: u64 = 365 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain (leaf first). Set with `key_file`: TLS on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `cert_file`'s leaf.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// How often the files are checked for a change.
    pub watch_interval_secs: u64,
    /// `Strict-Transport-Security: max-age` sent over TLS; 0 sends none.
    pub hsts_max_age_secs: u64,
    /// A plain-HTTP listener that only redirects to HTTPS (GET and HEAD) and
    /// refuses everything else: it never serves `/update` in clear.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_listen: Option<SocketAddr>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            watch_interval_secs: 5,
            hsts_max_age_secs: DEFAULT_HSTS,
            redirect_listen: None,
        }
    }
}

impl TlsConfig {
    /// The keys and their descriptions, for `serve --help` (under `tls.`).
    pub const DOCS: &'static [(&'static str, &'static str)] = &[
        ("cert_file", "PEM certificate chain, leaf first; with key_file the API and portal listeners speak HTTPS"),
        ("key_file", "PEM private key of cert_file's leaf (PKCS#8, PKCS#1 or SEC1); keep it 0600"),
        (
            "watch_interval_secs",
            "seconds between checks of cert_file and key_file; a change is served without a restart",
        ),
        ("hsts_max_age_secs", "Strict-Transport-Security max-age sent over HTTPS; 0 sends no HSTS header"),
        (
            "redirect_listen",
            "plain-HTTP listener that only redirects GET/HEAD to HTTPS and refuses the rest (unset: none)",
        ),
    ];

    /// Whether the HTTP listeners speak TLS.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some()
    }

    pub fn watch_interval(&self) -> Duration {
        Duration::from_secs(self.watch_interval_secs)
    }

    /// Checks the values; errors start with `tls.<key>:`.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => return Err("tls.key_file: cert_file is set, the key is needed too".into()),
            (None, Some(_)) => return Err("tls.cert_file: key_file is set, the certificate is needed too".into()),
            _ => {}
        }
        if !(1..=3600).contains(&self.watch_interval_secs) {
            return Err("tls.watch_interval_secs: must be between 1 and 3600".into());
        }
        if self.hsts_max_age_secs > 2 * DEFAULT_HSTS {
            return Err("tls.hsts_max_age_secs: at most 63072000 (two years)".into());
        }
        if self.redirect_listen.is_some() && !self.enabled() {
            return Err("tls.redirect_listen: redirects to HTTPS, which needs cert_file and key_file".into());
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!(TlsConfig::default().validate().is_ok());
        assert!(!TlsConfig::default().enabled());
        let files = TlsConfig { cert_file: Some("c".into()), key_file: Some("k".into()), ..TlsConfig::default() };
        assert!(files.validate().is_ok() && files.enabled());
        for (bad, prefix) in [
            (TlsConfig { cert_file: Some("c".into()), ..TlsConfig::default() }, "tls.key_file:"),
            (TlsConfig { key_file: Some("k".into()), ..TlsConfig::default() }, "tls.cert_file:"),
            (TlsConfig { watch_interval_secs: 0, ..files.clone() }, "tls.watch_interval_secs:"),
            (TlsConfig { hsts_max_age_secs: 3 * DEFAULT_HSTS, ..files.clone() }, "tls.hsts_max_age_secs:"),
            (
                TlsConfig { redirect_listen: Some("127.0.0.1:80".parse().unwrap()), ..TlsConfig::default() },
                "tls.redirect_listen:",
            ),
        ] {
            assert!(bad.validate().unwrap_err().starts_with(prefix), "{bad:?}");
        }
    }
}
