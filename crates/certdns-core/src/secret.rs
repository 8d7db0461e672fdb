//! API secrets: license-key secrets and registration passwords.
//!
//! Both are machine-generated with 240 bits of entropy and are verified on every
//! API request, so they are stored as a fast hash (SHA-256), not a slow password
//! hash: a slow hash protects *low-entropy* human passwords against offline
//! guessing, and there is nothing to guess in 2^240. See ARCHITECTURE.md, "Secrets".

use std::fmt;
use std::str::FromStr;

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
/// Hashes imported from acme-dns (`$2a$…` bcrypt) are kept as they are and
/// replaced by this scheme on their first successful use
/// ([`SecretHash::verify_imported`]).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(String);

const SCHEME: &str = "sha256:";
/// `$2b$NN$` + 22 characters of salt + 31 of hash.
const BCRYPT_LEN: usize = 60;
/// acme-dns writes cost 10. A far higher cost would make one `/update` hold a
/// hashing thread for minutes, so such a hash is refused at import.
pub const MAX_IMPORTED_COST: u32 = 14;
const ROTATION_PREVIOUS: &str = ";previous=";
const ROTATION_UNTIL: &str = ";until=";

/// Secrets that may be in a rotation's grace period at once (the current one
/// not counted): enough for a rotation that went wrong and its fix, few enough
/// that a key cannot accumulate working secrets.
pub const MAX_IN_GRACE: usize = 3;

/// A rotation refused: [`MAX_IN_GRACE`] earlier secrets are still in grace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{MAX_IN_GRACE} earlier secrets of this key are still in their grace period; the first ends at {next_ends}")]
pub struct TooManyRotations {
    pub next_ends: time::OffsetDateTime,
}

/// Which secret of a key matched (see [`SecretHash::matched_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretMatch {
    Current,
    /// A rotation's previous secret, accepted until `until`.
    Previous {
        until: time::OffsetDateTime,
    },
}

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

    /// Like [`SecretHash::verify`], and also accepts the previous secrets of
    /// rotations until their grace deadlines. Every comparison always runs, so
    /// the time taken does not say which one matched.
    pub fn verify_at(&self, candidate: &str, now: time::OffsetDateTime) -> bool {
        self.matched_at(candidate, now).is_some()
    }

    /// Which secret `candidate` is: the current one, or a previous one still in
    /// its grace period (alerting warns when a grace ends while it is still in
    /// use). Same constant-time comparisons as [`SecretHash::verify_at`].
    pub fn matched_at(&self, candidate: &str, now: time::OffsetDateTime) -> Option<SecretMatch> {
        let current = self.verify(candidate);
        let mut previous = None;
        for (hash, until) in self.previous_all() {
            if hash.verify(candidate) & (now < until) {
                previous = Some(until);
            }
        }
        match (current, previous) {
            (true, _) => Some(SecretMatch::Current),
            (false, Some(until)) => Some(SecretMatch::Previous { until }),
            (false, None) => None,
        }
    }

    /// The stored form after a rotation at `now`: `new` is the current secret's
    /// hash, and the current secret of `self` stays valid until `until`. Earlier
    /// rotations still in their grace period keep their own deadlines — a second
    /// rotation never cuts the first one's grace short; expired ones are dropped.
    /// At most [`MAX_IN_GRACE`] secrets can be in grace at once.
    ///
    /// Stored as `sha256:<new>;previous=sha256:<old>;until=<unix seconds>`, one
    /// `;previous=…;until=…` per secret in grace (newest first), in the same
    /// column, so every reader of license keys carries them along.
    pub fn rotated(
        &self,
        new: &SecretHash,
        until: time::OffsetDateTime,
        now: time::OffsetDateTime,
    ) -> Result<SecretHash, TooManyRotations> {
        let still: Vec<(SecretHash, time::OffsetDateTime)> =
            self.previous_all().into_iter().filter(|(_, deadline)| *deadline > now).collect();
        if still.len() >= MAX_IN_GRACE {
            let ends = still.iter().map(|(_, deadline)| *deadline).min().unwrap_or(until);
            return Err(TooManyRotations { next_ends: ends });
        }
        let mut stored =
            format!("{}{ROTATION_PREVIOUS}{}{ROTATION_UNTIL}{}", new.current(), self.current(), until.unix_timestamp());
        for (hash, deadline) in still {
            stored.push_str(&format!(
                "{ROTATION_PREVIOUS}{}{ROTATION_UNTIL}{}",
                hash.current(),
                deadline.unix_timestamp()
            ));
        }
        Ok(Self(stored))
    }

    /// The hash of the current secret alone.
    pub fn current(&self) -> &str {
        self.0.split_once(ROTATION_PREVIOUS).map_or(self.0.as_str(), |(current, _)| current)
    }

    /// Every previous secret kept by rotations and when each stops being
    /// accepted (newest first), expired ones included.
    pub fn previous_all(&self) -> Vec<(SecretHash, time::OffsetDateTime)> {
        self.0
            .split(ROTATION_PREVIOUS)
            .skip(1)
            .filter_map(|entry| {
                let (hash, until) = entry.split_once(ROTATION_UNTIL)?;
                let until = time::OffsetDateTime::from_unix_timestamp(until.parse().ok()?).ok()?;
                Some((SecretHash(hash.to_owned()), until))
            })
            .collect()
    }

    /// When the last previous secret still in grace at `now` stops being
    /// accepted; `None` when no rotation is in grace.
    pub fn grace_until(&self, now: time::OffsetDateTime) -> Option<time::OffsetDateTime> {
        self.previous_all().into_iter().map(|(_, until)| until).filter(|until| *until > now).max()
    }

    /// A registration password hash imported from acme-dns (bcrypt, `$2a$`,
    /// `$2b$` or `$2y$`), kept as it is until its first use; see
    /// [`SecretHash::verify_imported`]. `None` for anything else.
    pub fn imported(stored: &str) -> Option<Self> {
        let is_bcrypt = ["$2a$", "$2b$", "$2y$"].iter().any(|p| stored.starts_with(p))
            && stored.len() == BCRYPT_LEN
            && bcrypt::HashParts::from_str(stored).is_ok_and(|parts| parts.get_cost() <= MAX_IMPORTED_COST);
        is_bcrypt.then(|| Self(stored.to_owned()))
    }

    /// Whether this is an imported hash that [`SecretHash::verify`] does not
    /// check: the caller verifies it once with [`SecretHash::verify_imported`].
    pub fn is_imported(&self) -> bool {
        Self::imported(&self.0).is_some()
    }

    /// The one rule for imported hashes: checks `candidate` with bcrypt and, when
    /// it matches, returns the hash that replaces this one (`sha256:`, checked
    /// fast from then on). `None` on a mismatch or when this is not an imported
    /// hash. bcrypt costs tens of milliseconds of CPU on purpose: callers on an
    /// async runtime run it on a bounded blocking pool.
    pub fn verify_imported(&self, candidate: &str) -> Option<SecretHash> {
        if !self.is_imported() {
            return None;
        }
        bcrypt::verify(candidate, &self.0).unwrap_or(false).then(|| Self::of(candidate))
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
        let h = old.hash().rotated(&new.hash(), until, now).unwrap();
        assert_eq!(h.current(), new.hash().as_str());
        assert!(h.verify(new.expose()));
        assert!(!h.verify(old.expose()), "plain verify accepts only the current secret");
        assert!(h.verify_at(new.expose(), now));
        assert!(h.verify_at(old.expose(), now));
        assert!(!h.verify_at(old.expose(), until));
        assert!(h.verify_at(new.expose(), until + time::Duration::days(100)));
        assert!(!h.verify_at(&"x".repeat(40), now));
        // A second rotation keeps the first secret's grace: nothing promised is cut short.
        let newer = Secret::generate();
        let later = until + time::Duration::days(3);
        let h2 = h.rotated(&newer.hash(), later, now + time::Duration::days(1)).unwrap();
        assert!(h2.verify_at(old.expose(), now), "the first secret keeps its grace");
        assert_eq!(h2.matched_at(old.expose(), now), Some(SecretMatch::Previous { until }));
        assert_eq!(h2.matched_at(newer.expose(), now), Some(SecretMatch::Current));
        assert_eq!(h2.matched_at(new.expose(), now), Some(SecretMatch::Previous { until: later }));
        assert_eq!(h2.matched_at(old.expose(), until), None);
        assert!(!h2.verify_at(old.expose(), until), "until its own deadline");
        assert!(h2.verify_at(new.expose(), until));
        assert!(!h2.verify_at(new.expose(), later));
        assert!(h2.verify_at(newer.expose(), later));
        assert_eq!(h2.grace_until(now), Some(later));
        assert_eq!(h2.grace_until(later), None);
        assert!(!format!("{h2:?}").contains("sha256"));
        // Expired secrets are dropped at the next rotation; at most MAX_IN_GRACE in grace.
        let after = h2.rotated(&Secret::generate().hash(), later + time::Duration::days(30), later).unwrap();
        assert_eq!(after.previous_all().len(), 1);
        let mut full = old.hash();
        for _ in 0..MAX_IN_GRACE {
            full = full.rotated(&Secret::generate().hash(), until, now).unwrap();
        }
        let refused = full.rotated(&Secret::generate().hash(), until, now).unwrap_err();
        assert_eq!(refused.next_ends, until);
        // Read back from storage unchanged.
        let stored = SecretHash::from_stored(h2.as_str().to_owned());
        assert!(stored.verify_at(new.expose(), now));
    }

    #[test]
    fn imported_bcrypt_hashes_verify_once_into_sha256() {
        let password = Secret::generate();
        // Cost 4 keeps the test fast; acme-dns writes cost 10, checked end to end.
        let stored = bcrypt::hash(password.expose(), 4).unwrap();
        assert!(stored.starts_with("$2b$"));
        let h = SecretHash::imported(&stored).expect("a bcrypt hash is accepted");
        assert!(h.is_imported());
        assert!(!h.verify(password.expose()), "the fast check never runs bcrypt");
        assert_eq!(h.verify_imported(&"x".repeat(40)), None);
        let upgraded = h.verify_imported(password.expose()).expect("the right password");
        assert_eq!(upgraded, password.hash());
        assert!(!upgraded.is_imported() && upgraded.verify(password.expose()));
        assert_eq!(upgraded.verify_imported(password.expose()), None, "only imported hashes go through bcrypt");
        // Go's bcrypt writes $2a$; $2y$ comes from PHP-era tools.
        for prefix in ["$2a$", "$2y$"] {
            let other = stored.replacen("$2b$", prefix, 1);
            assert!(SecretHash::imported(&other).unwrap().verify_imported(password.expose()).is_some(), "{prefix}");
        }
        let too_costly = stored.replacen("$04$", "$15$", 1);
        for bad in
            [too_costly.as_str(), "", "$2x$04$abc", "sha256:00", "$2b$04$short", &stored[..59], &format!("{stored}x")]
        {
            assert!(SecretHash::imported(bad).is_none(), "{bad}");
        }
        assert!(!format!("{h:?}").contains("$2"));
    }
}
