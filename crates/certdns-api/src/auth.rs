//! License-key authentication: HTTP Basic `KEYID:SECRET`.
//!
//! Secrets are machine-generated (240 bits), so they are checked with a fast
//! constant-time hash comparison ([`SecretHash::verify`]) and no slow password
//! hash ever runs on the request path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use certdns_core::{AccountStatus, KeyId, LicenseKey, Secret, SecretHash, SecretMatch};
use certdns_store::{Store, StoreError};

use crate::signals::AlertSignals;

/// Credentials as sent. `Debug` never shows the secret.
pub struct BasicCredentials {
    pub user: String,
    pub secret: String,
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredentials").field("user", &self.user).finish_non_exhaustive()
    }
}

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
/// Standard alphabet (Go, Python, curl, Posh-ACME, win-acme) and URL-safe
/// alphabet (Certify's DNS provider), each with or without `=` padding.
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// `None`: no `Authorization: Basic` header. `Some(Err)`: one that cannot be read.
pub fn basic_credentials(headers: &HeaderMap) -> Option<Result<BasicCredentials, ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let Ok(value) = value.to_str() else { return Some(Err(())) };
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let encoded = encoded.trim();
    let decoded = STANDARD.decode(encoded).or_else(|_| URL_SAFE.decode(encoded));
    Some(
        decoded
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|s| s.split_once(':').map(|(u, p)| BasicCredentials { user: u.to_owned(), secret: p.to_owned() }))
            .ok_or(()),
    )
}

#[derive(Debug, PartialEq, Eq)]
pub enum KeyCheck {
    /// Unknown key id or wrong secret.
    Invalid,
    Revoked,
    Suspended,
    Ok,
}

/// How long a looked-up key (and its account's status) is reused. Revoking a key
/// or suspending an account takes effect at most this much later.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(2);
const KEY_CACHE_MAX: usize = 10_000;

/// A short-lived cache of license keys, so clients that send their key on every
/// `/update` do not cost a database read each time.
pub struct KeyCache {
    entries: Mutex<HashMap<KeyId, (Instant, LicenseKey, AccountStatus)>>,
    /// Wrong secrets for known keys and uses of previous secrets go here.
    signals: Arc<AlertSignals>,
}

impl KeyCache {
    pub fn new(signals: Arc<AlertSignals>) -> Self {
        Self { entries: Mutex::default(), signals }
    }

    fn get(&self, id: &KeyId) -> Option<(LicenseKey, AccountStatus)> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(id).filter(|(at, _, _)| at.elapsed() < KEY_CACHE_TTL).map(|(_, k, s)| (k.clone(), *s))
    }

    fn put(&self, key: LicenseKey, status: AccountStatus) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= KEY_CACHE_MAX {
            entries.retain(|_, (at, _, _)| at.elapsed() < KEY_CACHE_TTL);
            if entries.len() >= KEY_CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(key.id.clone(), (Instant::now(), key, status));
    }

    /// Looks the key up (cache, then store) and checks the secret and the key's
    /// and account's state. The secret is compared even for unknown keys, so both
    /// cases take the same time.
    pub async fn check(
        &self,
        store: &dyn Store,
        creds: &BasicCredentials,
    ) -> Result<(KeyCheck, Option<LicenseKey>), StoreError> {
        let Ok(id) = creds.user.parse::<KeyId>() else {
            SecretHash::decoy().verify(&creds.secret);
            return Ok((KeyCheck::Invalid, None));
        };
        if !Secret::is_well_formed(&creds.secret) {
            return Ok((KeyCheck::Invalid, None));
        }
        let now = certdns_core::now();
        // A rotated key's new secret is accepted once the cached entry expires
        // (KEY_CACHE_TTL); re-reading on every mismatch would let anyone holding a
        // key id force a database read per request.
        let found = match self.get(&id) {
            Some(hit) => Some(hit),
            None => match store.license_key(&id).await? {
                Some(key) => {
                    let status = match store.account(key.account_id).await? {
                        Some(account) => account.status,
                        None => AccountStatus::Suspended,
                    };
                    self.put(key.clone(), status);
                    Some((key, status))
                }
                None => None,
            },
        };
        let Some((key, status)) = found else {
            SecretHash::decoy().verify(&creds.secret);
            return Ok((KeyCheck::Invalid, None));
        };
        // The current secret, or the previous one of a rotation within its grace period.
        match key.secret_match(&creds.secret, now) {
            None => {
                self.signals.key_failure(&key.id, key.account_id);
                return Ok((KeyCheck::Invalid, None));
            }
            Some(SecretMatch::Previous { until }) => self.signals.previous_secret_used(&key.id, now, until),
            Some(SecretMatch::Current) => {}
        }
        let verdict = if !key.is_active() {
            KeyCheck::Revoked
        } else if status != AccountStatus::Active {
            KeyCheck::Suspended
        } else {
            KeyCheck::Ok
        };
        Ok((verdict, Some(key)))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn decodes_standard_and_url_safe_base64() {
        // "abc:a?>b" encodes with '+'/'/' in standard and '-'/'_' in URL-safe form.
        let raw = "k1:s?>?~";
        let std = base64::engine::general_purpose::STANDARD.encode(raw);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        assert_ne!(std.trim_end_matches('='), url);
        for encoded in [std.clone(), url, std.trim_end_matches('=').to_owned()] {
            let c = basic_credentials(&headers(&format!("Basic {encoded}"))).unwrap().unwrap();
            assert_eq!((c.user.as_str(), c.secret.as_str()), ("k1", "s?>?~"));
        }
        let c = basic_credentials(&headers(&format!("basic  {std}"))).unwrap().unwrap();
        assert_eq!(c.user, "k1");
    }

    #[test]
    fn missing_and_unreadable_headers() {
        assert!(basic_credentials(&HeaderMap::new()).is_none());
        assert!(basic_credentials(&headers("Bearer abc")).is_none());
        assert!(basic_credentials(&headers("Basic !!!")).unwrap().is_err());
        let no_colon = base64::engine::general_purpose::STANDARD.encode("nocolon");
        assert!(basic_credentials(&headers(&format!("Basic {no_colon}"))).unwrap().is_err());
        assert!(!format!("{:?}", BasicCredentials { user: "u".into(), secret: "hidden".into() }).contains("hidden"));
    }
}
