//! API secrets: license-key secrets and registration passwords.
//!
//! Both are machine-generated with 240 bits of entropy and are verified on every
//! API request, so they are stored as a fast hash (SHA-256), not a slow password
//! hash: a slow hash protects *low-entropy* human passwords against offline
//! guessing, and there is nothing to guess in 2^240. See ARCHITECTURE.md, "Secrets".

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A freshly generated secret. Shown to its owner once, then only its hash is kept.
///
/// 40 characters drawn uniformly from `[A-Za-z0-9_-]`: the acme-dns password format,
/// which every client already accepts, and which needs no escaping in a URL's
/// userinfo, a header, a shell variable or JSON.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz1234567890-_";

impl Secret {
    pub const LEN: usize = 40;

    pub fn generate() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; Self::LEN];
        rand::rng().fill_bytes(&mut bytes);
        // 256 is a multiple of 64, so masking keeps the draw uniform.
        Self(bytes.iter().map(|b| char::from(ALPHABET[usize::from(b & 63)])).collect())
    }

    /// Whether `s` has the shape of a secret (acme-dns's key validator: exactly 40
    /// characters of `[A-Za-z0-9_-]`). Checked before any lookup.
    pub fn is_well_formed(s: &str) -> bool {
        s.len() == Self::LEN && s.bytes().all(|b| ALPHABET.contains(&b))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The stored form of a secret: `sha256:<64 hex digits>`.
///
/// The scheme prefix leaves room for hashes imported from acme-dns (`$2a$…`
/// bcrypt), which are upgraded to this scheme on first successful use.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(String);

const SCHEME: &str = "sha256:";
const ROTATION_PREVIOUS: &str = ";previous=";
const ROTATION_UNTIL: &str = ";until=";

impl SecretHash {
    pub fn of(secret: &str) -> Self {
        Self(format!("{SCHEME}{}", hex::encode(Sha256::digest(secret.as_bytes()))))
    }

    /// Wraps a hash read back from storage.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares with the current secret in constant time. Unknown schemes never
    /// verify. A previous secret kept by [`SecretHash::rotated`] is *not* accepted
    /// here; use [`SecretHash::verify_at`] for that.
    pub fn verify(&self, candidate: &str) -> bool {
        let current = self.current();
        if !current.starts_with(SCHEME) {
            return false;
        }
        let computed = Self::of(candidate);
        computed.0.as_bytes().ct_eq(current.as_bytes()).into()
    }

    /// Like [`SecretHash::verify`], and also accepts the previous secret of a
    /// rotation until its grace deadline. Both comparisons always run, so the
    /// time taken does not say which one matched.
    pub fn verify_at(&self, candidate: &str, now: time::OffsetDateTime) -> bool {
        let current = self.verify(candidate);
        let previous = match self.previous() {
            Some((hash, until)) => hash.verify(candidate) && now < until,
            None => false,
        };
        current | previous
    }

    /// The stored form after a rotation: `new` is the current secret's hash, and
    /// the current secret of `self` stays valid until `until`. An older previous
    /// secret is dropped (only one rotation is in grace at a time).
    ///
    /// Stored as `sha256:<new>;previous=sha256:<old>;until=<unix seconds>`, in the
    /// same column, so every reader of license keys carries it along.
    pub fn rotated(&self, new: &SecretHash, until: time::OffsetDateTime) -> SecretHash {
        Self(format!(
            "{}{ROTATION_PREVIOUS}{}{ROTATION_UNTIL}{}",
            new.current(),
            self.current(),
            until.unix_timestamp()
        ))
    }

    /// The hash of the current secret alone.
    pub fn current(&self) -> &str {
        self.0.split_once(ROTATION_PREVIOUS).map_or(self.0.as_str(), |(current, _)| current)
    }

    /// The previous secret of a rotation and when it stops being accepted.
    pub fn previous(&self) -> Option<(SecretHash, time::OffsetDateTime)> {
        let (_, rest) = self.0.split_once(ROTATION_PREVIOUS)?;
        let (hash, until) = rest.split_once(ROTATION_UNTIL)?;
        let until = time::OffsetDateTime::from_unix_timestamp(until.parse().ok()?).ok()?;
        Some((SecretHash(hash.to_owned()), until))
    }

    /// A hash of nothing in particular, verified against when the account looked
    /// up does not exist, so that "no such user" and "wrong secret" cost the same.
    pub fn decoy() -> Self {
        Self::of("certdns decoy: no account has this secret")
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_well_formed_and_distinct() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert!(Secret::is_well_formed(a.expose()));
        assert_ne!(a, b);
    }

    #[test]
    fn well_formedness_matches_acme_dns_key_rules() {
        assert!(Secret::is_well_formed(&"a".repeat(40)));
        assert!(Secret::is_well_formed("aaaaaaaa-aaa-aaaaaa-aaaaaaaa-aaa_aacaaaa"));
        assert!(!Secret::is_well_formed("aaaaaaaa-aaa-aaaaaa#aaaaaaaa-aaa_aacaaaa"));
        assert!(!Secret::is_well_formed(""));
        assert!(!Secret::is_well_formed(&"a".repeat(41)));
        assert!(!Secret::is_well_formed("tooshortpass"));
    }

    #[test]
    fn hash_verifies_only_the_secret() {
        let s = Secret::generate();
        let h = s.hash();
        assert!(h.as_str().starts_with("sha256:"));
        assert!(h.verify(s.expose()));
        assert!(!h.verify(&"x".repeat(40)));
        assert!(!SecretHash::from_stored("$2a$10$abc".into()).verify(s.expose()));
        assert!(!format!("{s:?}{h:?}").contains(s.expose()));
    }

    #[test]
    fn rotation_keeps_the_previous_secret_until_the_deadline() {
        let old = Secret::generate();
        let new = Secret::generate();
        let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let until = now + time::Duration::days(7);
        let h = old.hash().rotated(&new.hash(), until);
        assert_eq!(h.current(), new.hash().as_str());
        assert!(h.verify(new.expose()));
        assert!(!h.verify(old.expose()), "plain verify accepts only the current secret");
        assert!(h.verify_at(new.expose(), now));
        assert!(h.verify_at(old.expose(), now));
        assert!(!h.verify_at(old.expose(), until));
        assert!(h.verify_at(new.expose(), until + time::Duration::days(100)));
        assert!(!h.verify_at(&"x".repeat(40), now));
        // A second rotation forgets the first secret.
        let newer = Secret::generate();
        let h2 = h.rotated(&newer.hash(), until);
        assert!(!h2.verify_at(old.expose(), now));
        assert!(h2.verify_at(new.expose(), now));
        assert!(h2.verify_at(newer.expose(), now));
        assert!(!format!("{h2:?}").contains("sha256"));
        // Read back from storage unchanged.
        let stored = SecretHash::from_stored(h2.as_str().to_owned());
        assert!(stored.verify_at(new.expose(), now));
    }
}
