//! dns-account-01 (draft-ietf-acme-dns-account-label): the challenge name is
//! `_<label>._acme-challenge.<domain>`, where the label is derived from the ACME
//! account URL, so several ACME accounts (teams, a CDN and the origin) can each
//! answer challenges for the same domain without overwriting each other's values.
//!
//! The derivation: `"_" || base32(SHA-256(ACCOUNT_URL)[0:10])`, base32 as in RFC
//! 4648 in lower case (10 bytes are exactly 16 characters, so no padding), the
//! account URL as the CA gave it (the `Location` of the new-account response).

use std::fmt;

use data_encoding::BASE32_NOPAD;
use sha2::{Digest, Sha256};

use crate::Domain;

/// An ACME account URL (RFC 8555 §7.3): `https://…`, as the CA returned it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AcmeAccountUrl(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAccountUrl {
    #[error("an ACME account URL starts with https:// (the CA's Location header for the account)")]
    NotHttps,
    #[error("an ACME account URL has no spaces or control characters")]
    BadCharacter,
    #[error("longer than {max} characters", max = AcmeAccountUrl::MAX_LEN)]
    TooLong,
}

impl AcmeAccountUrl {
    pub const MAX_LEN: usize = 1000;

    /// Accepts the URL as the CA gave it (surrounding spaces dropped). Not
    /// normalised in any other way: the label hashes its exact bytes.
    pub fn parse(input: &str) -> Result<Self, InvalidAccountUrl> {
        let url = input.trim();
        if url.len() > Self::MAX_LEN {
            return Err(InvalidAccountUrl::TooLong);
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidAccountUrl::BadCharacter);
        }
        let host = url.strip_prefix("https://").ok_or(InvalidAccountUrl::NotHttps)?;
        if host.is_empty() || host.starts_with('/') {
            return Err(InvalidAccountUrl::NotHttps);
        }
        Ok(Self(url.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The account's label, `_` and 16 characters of `[a-z2-7]`.
    pub fn label(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        format!("_{}", BASE32_NOPAD.encode(&digest[..10]).to_ascii_lowercase())
    }

    /// The name the CA asks for `domain`: `_<label>._acme-challenge.<domain>`.
    pub fn challenge_name(&self, domain: &Domain) -> String {
        format!("{}.{}", self.label(), domain.challenge_name())
    }
}

impl fmt::Display for AcmeAccountUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AcmeAccountUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AcmeAccountUrl({:?})", self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The example account of the draft (revision 03, unchanged since 02).
    #[test]
    fn label_of_the_drafts_example_account() {
        let url = AcmeAccountUrl::parse("https://example.com/acme/acct/ExampleAccount").unwrap();
        assert_eq!(url.label(), "_ujmmovf2vn55tgye");
        let domain = Domain::parse("example.org").unwrap();
        assert_eq!(url.challenge_name(&domain), "_ujmmovf2vn55tgye._acme-challenge.example.org");
    }

    #[test]
    fn labels_are_16_base32_characters_and_differ_per_account() {
        let a = AcmeAccountUrl::parse(" https://acme-v02.api.letsencrypt.org/acme/acct/1 ").unwrap();
        let b = AcmeAccountUrl::parse("https://acme-v02.api.letsencrypt.org/acme/acct/2").unwrap();
        assert_eq!(a.as_str(), "https://acme-v02.api.letsencrypt.org/acme/acct/1");
        for label in [a.label(), b.label()] {
            assert_eq!(label.len(), 17);
            assert!(label[1..].bytes().all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c)), "{label}");
        }
        assert_ne!(a.label(), b.label());
    }

    #[test]
    fn refuses_what_is_not_an_account_url() {
        assert_eq!(AcmeAccountUrl::parse("http://ca.example/acct/1"), Err(InvalidAccountUrl::NotHttps));
        assert_eq!(AcmeAccountUrl::parse("https://"), Err(InvalidAccountUrl::NotHttps));
        assert_eq!(AcmeAccountUrl::parse("https://ca.example/a b"), Err(InvalidAccountUrl::BadCharacter));
        let long = format!("https://ca.example/{}", "a".repeat(1000));
        assert_eq!(AcmeAccountUrl::parse(&long), Err(InvalidAccountUrl::TooLong));
    }
}
