//! Identifiers. Each is a newtype so a subdomain can never be passed where a
//! username is expected, although both are UUIDs on the wire.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct InvalidId {
    pub(crate) kind: &'static str,
    pub(crate) reason: &'static str,
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($kind, "({})"), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Uuid::try_parse(s)
                    .map(Self)
                    .map_err(|_| InvalidId { kind: $kind, reason: "not a UUID" })
            }
        }
    };
}

uuid_id!(
    /// An account (tenant). UUIDv7, so ids sort by creation time.
    AccountId,
    "account id"
);
uuid_id!(
    /// A registration's internal id (never shown to ACME clients).
    RegistrationId,
    "registration id"
);
uuid_id!(
    /// The `X-Api-User` of a registration: a random UUIDv4.
    ///
    /// Parsing accepts every form acme-dns accepts (hyphenated, braced, `urn:uuid:`,
    /// 32 hex digits, any case) because clients echo back what they were given and
    /// acme-dns normalises before the lookup.
    Username,
    "username"
);
uuid_id!(
    /// The DNS label a registration answers at: `<subdomain>.<zone>`. A random UUIDv4,
    /// independent of the username.
    Subdomain,
    "subdomain"
);

impl AccountId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

impl RegistrationId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Username {
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Subdomain {
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    /// Parses a DNS label as a subdomain. Only the canonical 36-character hyphenated
    /// form matches (in any case), so exactly one owner name answers per registration.
    pub fn from_label(label: &[u8]) -> Option<Self> {
        if label.len() != 36 {
            return None;
        }
        Uuid::try_parse_ascii(label).ok().map(Self)
    }

    /// The key a replica stores; 16 bytes instead of a 36-byte string.
    pub const fn as_u128(&self) -> u128 {
        self.0.as_u128()
    }

    pub const fn from_u128(v: u128) -> Self {
        Self(Uuid::from_u128(v))
    }

    /// The subdomain whose values answer at `_acme-challenge.<name>` when `name`
    /// lies inside the served zone (certdns's own certificate, `tls.acme`). Derived
    /// from the name alone, so every responder finds it without configuration.
    /// A UUIDv8 (hash-based), so it never equals a random v4 subdomain.
    /// `name`: lower case, no final dot.
    pub fn for_acme_challenge(name: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new().chain_update(b"certdns acme-challenge v1\0").chain_update(name).finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }
}

/// The public half of a license key (`KEYID` in `KEYID:SECRET`).
///
/// 16 characters of `[a-z0-9]` (82 bits): unguessable enough that knowing one key id
/// says nothing about another, and free of `:`, `@` and `%` so it survives being
/// embedded in a URL's userinfo by every client.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(String);

impl KeyId {
    pub const LEN: usize = 16;
    const ALPHABET: &'static [u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

    pub fn generate() -> Self {
        use rand::Rng;
        let mut rng = rand::rng();
        let id =
            (0..Self::LEN).map(|_| char::from(Self::ALPHABET[rng.random_range(0..Self::ALPHABET.len())])).collect();
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for KeyId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, InvalidId> {
        let ok = s.len() == Self::LEN && s.bytes().all(|b| Self::ALPHABET.contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId { kind: "license key id", reason: "expected 16 characters of a-z and 0-9" })
        }
    }
}

impl TryFrom<String> for KeyId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        s.parse()
    }
}

impl From<KeyId> for String {
    fn from(k: KeyId) -> String {
        k.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_accepts_every_form_acme_dns_accepts() {
        let canonical = "a097455b-52cc-4569-90c8-7a4b97c6eba8";
        for form in [
            canonical,
            "A097455B-52CC-4569-90C8-7A4B97C6EBA8",
            "{a097455b-52cc-4569-90c8-7a4b97c6eba8}",
            "urn:uuid:a097455b-52cc-4569-90c8-7a4b97c6eba8",
            "a097455b52cc456990c87a4b97c6eba8",
        ] {
            let u: Username = form.parse().unwrap();
            assert_eq!(u.to_string(), canonical, "{form}");
        }
        for bad in ["", "a-97455b-52cc-4569-90c8-7a4b97c6eba8", "&!#!25123!%!'%", "non-uuid-user"] {
            assert!(bad.parse::<Username>().is_err(), "{bad}");
        }
    }

    #[test]
    fn challenge_subdomains_are_derived_from_the_name() {
        let derived = Subdomain::for_acme_challenge("api.auth.example.net");
        assert_eq!(derived, Subdomain::for_acme_challenge("api.auth.example.net"));
        assert_ne!(derived, Subdomain::for_acme_challenge("www.auth.example.net"));
        assert_eq!(derived.as_uuid().get_version_num(), 8);
    }

    #[test]
    fn subdomain_label_must_be_hyphenated() {
        let s = Subdomain::generate();
        let label = s.to_string();
        assert_eq!(Subdomain::from_label(label.as_bytes()), Some(s));
        assert_eq!(Subdomain::from_label(label.to_uppercase().as_bytes()), Some(s));
        let simple = s.as_uuid().simple().to_string();
        assert_eq!(Subdomain::from_label(simple.as_bytes()), None);
        assert_eq!(Subdomain::from_label(b"www"), None);
        assert_eq!(Subdomain::from_u128(s.as_u128()), s);
    }

    #[test]
    fn key_ids_are_url_safe_and_validated() {
        let k = KeyId::generate();
        assert_eq!(k.as_str().len(), KeyId::LEN);
        assert_eq!(k.as_str().parse::<KeyId>().unwrap(), k);
        assert!("short".parse::<KeyId>().is_err());
        assert!("ABCDEFGHIJKLMNOP".parse::<KeyId>().is_err());
        assert!("abcdefghijklmno:".parse::<KeyId>().is_err());
    }
}
