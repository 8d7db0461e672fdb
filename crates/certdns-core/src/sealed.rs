//! Registration passwords the server must be able to give back (lego's HTTP
//! storage), sealed at rest: ChaCha20-Poly1305 under a key that lives in the
//! configuration, never in the database, so a database dump alone reveals nothing.
//! The registration id is the associated data: a sealed value copied onto another
//! row does not open.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

use crate::RegistrationId;

/// Prefix naming the format, so a later one can be told apart.
const VERSION: &str = "v1.";
/// Shortest configured secret accepted: 32 characters of a generated secret
/// carry well over 128 bits.
pub const MIN_SECRET_LEN: usize = 32;

/// Seals and opens registration passwords.
pub struct CredentialSealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the credentials key must be at least {MIN_SECRET_LEN} characters")]
    ShortKey,
    #[error("sealed value does not open with this key (another key, or a damaged or moved value)")]
    Unreadable,
    #[error("no randomness available")]
    Random,
}

impl std::fmt::Debug for CredentialSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialSealer(..)")
    }
}

impl CredentialSealer {
    /// The key is SHA-256 of a domain-separated configured secret, so an operator
    /// can hand over any long random string.
    pub fn from_secret(secret: &str) -> Result<Self, SealError> {
        Self::derived(secret, b"certdns registration credentials v1\0")
    }

    /// A sealer for the TLS private keys (and ACME account) `tls.acme` keeps in
    /// the store: the same configured secret, a key of its own (another domain
    /// separation), so neither kind of sealed value opens as the other.
    pub fn for_tls_keys(secret: &str) -> Result<Self, SealError> {
        Self::derived(secret, b"certdns tls acme keys v1\0")
    }

    fn derived(secret: &str, purpose: &[u8]) -> Result<Self, SealError> {
        if secret.chars().count() < MIN_SECRET_LEN {
            return Err(SealError::ShortKey);
        }
        let digest = Sha256::new().chain_update(purpose).chain_update(secret).finalize();
        let key = UnboundKey::new(&CHACHA20_POLY1305, &digest).map_err(|_| SealError::ShortKey)?;
        Ok(Self { key: LessSafeKey::new(key), rng: SystemRandom::new() })
    }

    pub fn seal(&self, registration: RegistrationId, password: &str) -> Result<String, SealError> {
        self.seal_bound(registration.as_uuid().as_bytes(), password)
    }

    pub fn open(&self, registration: RegistrationId, sealed: &str) -> Result<String, SealError> {
        self.open_bound(registration.as_uuid().as_bytes(), sealed)
    }

    /// Seals `plain` bound to `context` (the associated data): it opens only
    /// with the same context.
    pub fn seal_bound(&self, context: &[u8], plain: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut data = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context), &mut data)
            .map_err(|_| SealError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!("{VERSION}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    pub fn open_bound(&self, context: &[u8], sealed: &str) -> Result<String, SealError> {
        let raw = sealed
            .strip_prefix(VERSION)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .filter(|r| r.len() > NONCE_LEN)
            .ok_or(SealError::Unreadable)?;
        let (nonce, data) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Unreadable)?;
        let mut data = data.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(context), &mut data).map_err(|_| SealError::Unreadable)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Unreadable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_with_their_key_and_row() {
        let sealer = CredentialSealer::from_secret(&"k".repeat(40)).unwrap();
        let (a, b) = (RegistrationId::generate(), RegistrationId::generate());
        let sealed = sealer.seal(a, "the-password").unwrap();
        assert!(!sealed.contains("the-password"));
        assert_ne!(sealed, sealer.seal(a, "the-password").unwrap(), "fresh nonce each time");
        assert_eq!(sealer.open(a, &sealed).unwrap(), "the-password");
        assert_eq!(sealer.open(b, &sealed), Err(SealError::Unreadable));
        let other = CredentialSealer::from_secret(&"o".repeat(40)).unwrap();
        assert_eq!(other.open(a, &sealed), Err(SealError::Unreadable));
        let mut damaged = sealed.clone();
        damaged.push('A');
        assert_eq!(sealer.open(a, &damaged), Err(SealError::Unreadable));
        assert_eq!(sealer.open(a, "v1."), Err(SealError::Unreadable));
        assert_eq!(CredentialSealer::from_secret("short").unwrap_err(), SealError::ShortKey);
        // The TLS sealer's key is another: a registration's sealed password does
        // not open as a TLS key, nor the other way round.
        let tls = CredentialSealer::for_tls_keys(&"k".repeat(40)).unwrap();
        assert_eq!(tls.open_bound(a.as_uuid().as_bytes(), &sealed), Err(SealError::Unreadable));
        let key = tls.seal_bound(b"scope", "PRIVATE KEY").unwrap();
        assert_eq!(tls.open_bound(b"scope", &key).unwrap(), "PRIVATE KEY");
        assert_eq!(tls.open_bound(b"other", &key), Err(SealError::Unreadable));
    }
}
