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
    /// Certificates by ACME DNS-01, answered by certdns's own responder (instead
    /// of `cert_file`/`key_file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme: Option<AcmeConfig>,
}

/// `[tls.acme]`: where and for which names certdns orders its own certificate.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeConfig {
    /// The CA's ACME directory, e.g. Let's Encrypt's
    /// `https://acme-v02.api.letsencrypt.org/directory`.
    pub directory_url: String,
    /// Contacts for the ACME account (`mailto:` added to a bare address).
    #[serde(default)]
    pub contact: Vec<String>,
    /// The certificate's names (`api.example.net`, `*.auth.example.net`).
    pub names: Vec<String>,
    /// External account binding (CAs that ask for one): key id…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eab_kid: Option<String>,
    /// …and its HMAC key, base64url as CAs hand it out. A secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eab_hmac_key: Option<String>,
    /// PEM roots to trust for the directory's HTTPS (a test CA such as pebble);
    /// unset: the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for AcmeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeConfig")
            .field("directory_url", &self.directory_url)
            .field("contact", &self.contact)
            .field("names", &self.names)
            .field("eab_kid", &self.eab_kid)
            .field("eab_hmac_key", &self.eab_hmac_key.as_ref().map(|_| "***"))
            .field("directory_ca_file", &self.directory_ca_file)
            .finish()
    }
}

impl AcmeConfig {
    /// The keys and their descriptions, for `serve --help` (under `tls.acme.`).
    pub const DOCS: &'static [(&'static str, &'static str)] = &[
        (
            "directory_url",
            "ACME directory of the CA certdns orders its own certificate from (DNS-01 through its own responder)",
        ),
        ("contact", "contacts of the ACME account, e.g. [\"mailto:ops@example.net\"]"),
        (
            "names",
            "the certificate's names; inside the zone served directly, outside it through a CNAME certdns prints once",
        ),
        ("eab_kid", "external account binding key id, for CAs that require one"),
        ("eab_hmac_key", "external account binding HMAC key (base64url), a secret"),
        ("directory_ca_file", "PEM roots trusted for the directory's HTTPS (a test CA); unset: the system's roots"),
    ];

    /// The names, lower case, without a final dot.
    pub fn normalized_names(&self) -> Vec<String> {
        self.names.iter().map(|n| n.trim_end_matches('.').to_ascii_lowercase()).collect()
    }

    fn validate(&self) -> Result<(), String> {
        if !self.directory_url.starts_with("https://") {
            return Err(format!("tls.acme.directory_url: {:?} must be an https:// URL", self.directory_url));
        }
        if self.names.is_empty() {
            return Err("tls.acme.names: at least one name is needed".into());
        }
        for name in self.normalized_names() {
            let host = name.strip_prefix("*.").unwrap_or(&name);
            let labels_ok = host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
            if !labels_ok || host.len() > 253 || !host.contains('.') {
                return Err(format!("tls.acme.names: {name:?} is not a DNS name (A-labels, at least two)"));
            }
        }
        if self.eab_kid.is_some() != self.eab_hmac_key.is_some() {
            return Err("tls.acme.eab_hmac_key: external account binding needs both eab_kid and eab_hmac_key".into());
        }
        Ok(())
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            watch_interval_secs: 5,
            hsts_max_age_secs: DEFAULT_HSTS,
            redirect_listen: None,
            acme: None,
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
            "seconds between checks of cert_file and key_file (with acme: of the store); a change is served without a restart",
        ),
        ("hsts_max_age_secs", "Strict-Transport-Security max-age sent over HTTPS; 0 sends no HSTS header"),
        (
            "redirect_listen",
            "plain-HTTP listener that only redirects GET/HEAD to HTTPS and refuses the rest (unset: none)",
        ),
        ("acme", "[tls.acme]: certificates by ACME DNS-01 through certdns's own responder (see tls.acme.*)"),
    ];

    /// Whether the HTTP listeners speak TLS.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some() || self.acme.is_some()
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
        if let Some(acme) = &self.acme {
            if self.cert_file.is_some() {
                return Err("tls.acme: set either cert_file and key_file, or acme, not both".into());
            }
            acme.validate()?;
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
        let no_files = TlsConfig::default();
        let acme = AcmeConfig {
            directory_url: "https://ca.example/dir".into(),
            contact: vec![],
            names: vec!["api.example.net".into(), "*.auth.example.net".into()],
            eab_kid: None,
            eab_hmac_key: None,
            directory_ca_file: None,
        };
        let with_acme = TlsConfig { acme: Some(acme.clone()), ..TlsConfig::default() };
        assert!(with_acme.validate().is_ok() && with_acme.enabled(), "{with_acme:?}");
        for (bad, prefix) in [
            (TlsConfig { cert_file: Some("c".into()), ..TlsConfig::default() }, "tls.key_file:"),
            (TlsConfig { key_file: Some("k".into()), ..TlsConfig::default() }, "tls.cert_file:"),
            (TlsConfig { watch_interval_secs: 0, ..files.clone() }, "tls.watch_interval_secs:"),
            (TlsConfig { hsts_max_age_secs: 3 * DEFAULT_HSTS, ..files.clone() }, "tls.hsts_max_age_secs:"),
            (
                TlsConfig { redirect_listen: Some("127.0.0.1:80".parse().unwrap()), ..TlsConfig::default() },
                "tls.redirect_listen:",
            ),
            (TlsConfig { acme: Some(acme.clone()), ..files.clone() }, "tls.acme:"),
            (
                TlsConfig {
                    acme: Some(AcmeConfig { directory_url: "http://ca".into(), ..acme.clone() }),
                    ..no_files.clone()
                },
                "tls.acme.directory_url:",
            ),
            (
                TlsConfig { acme: Some(AcmeConfig { names: vec![], ..acme.clone() }), ..no_files.clone() },
                "tls.acme.names:",
            ),
            (
                TlsConfig {
                    acme: Some(AcmeConfig { names: vec!["bad_name.example".into()], ..acme.clone() }),
                    ..no_files.clone()
                },
                "tls.acme.names:",
            ),
            (
                TlsConfig { acme: Some(AcmeConfig { eab_kid: Some("k".into()), ..acme.clone() }), ..no_files.clone() },
                "tls.acme.eab_hmac_key:",
            ),
        ] {
            assert!(bad.validate().unwrap_err().starts_with(prefix), "{bad:?}");
        }
    }
}
