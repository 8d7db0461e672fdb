//! The accounturi of a dns-persist-01 record (draft-ietf-acme-dns-persist-02
//! §4.1): a *hashed* URI, `<accountHashPrefix><hash-alg>/<base64url digest>`.
//! Since -02 it is the only form; the raw account URL of -00/-01 is refused,
//! because a CA following -02 rejects it and the customer would only find out
//! at issuance.
//!
//! A DNS operator may compute it from values the account holder can share
//! (§4.5, §9.5): the CA's `accountHashPrefix`, the domain (or the `*` opt-out),
//! the account key's JWK thumbprint and the ACME account URL. No private key.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::{AcmeAccountUrl, Domain};

/// Hash Name Strings of RFC 6920's registry with a digest of at least 256
/// bits (the draft excludes truncated ones), and their digest lengths.
/// `sha-256` is the one every CA must accept; the others are for CAs that
/// document them.
const ALGORITHMS: [(&str, usize); 6] =
    [("sha-256", 32), ("sha-384", 48), ("sha-512", 64), ("sha3-256", 32), ("sha3-384", 48), ("sha3-512", 64)];

/// The longest `accountHashPrefix` taken (the draft sets none; a CA keeps it
/// short, and the record must fit one DNS answer).
pub const MAX_PREFIX_LEN: usize = 512;

/// A hashed account URI, valid by construction.
#[derive(Clone, PartialEq, Eq)]
pub struct HashedAccountUri(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAccountUri {
    #[error(
        "the accounturi must be printable ASCII without spaces or ';' (RFC 8659's parameter value), starting with a URI scheme such as https:"
    )]
    Syntax,
    #[error(
        "the accounturi must be the hashed URI <accountHashPrefix>sha-256/<43 base64url characters> that draft-ietf-acme-dns-persist-02 requires; a plain ACME account URL is no longer accepted by CAs. Give the account URL, the account key's JWK thumbprint and the CA's accountHashPrefix instead, and the hashed URI is computed for you"
    )]
    NotHashed,
    #[error(
        "the hash algorithm {0:?} is not one a CA accepts (sha-256, or sha-384, sha-512, sha3-256, sha3-384, sha3-512)"
    )]
    Algorithm(String),
    #[error("the digest after {alg}/ must be {len} characters of unpadded base64url")]
    Digest { alg: &'static str, len: usize },
    #[error(
        "the accountHashPrefix must be a URI of printable ASCII without spaces or ';' (such as https://ca.example/account-hash/), at most 512 characters"
    )]
    Prefix,
    #[error(
        "the JWK thumbprint must be 43 characters of unpadded base64url (the SHA-256 thumbprint of the account key)"
    )]
    Thumbprint,
    #[error("the ACME account URL: {0}")]
    AccountUrl(String),
}

/// A character RFC 8659 allows in a parameter value (`%x21-3A / %x3C-7E`).
pub(crate) fn is_value_char(b: u8) -> bool {
    b.is_ascii_graphic() && b != b';'
}

/// `scheme ":"` per RFC 3986 at the start.
fn has_scheme(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once(':') else { return false };
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

impl HashedAccountUri {
    /// Checks a hashed URI as given (surrounding spaces dropped, nothing else).
    pub fn parse(input: &str) -> Result<Self, InvalidAccountUri> {
        let uri = input.trim();
        if uri.is_empty() || !uri.bytes().all(is_value_char) || !has_scheme(uri) {
            return Err(InvalidAccountUri::Syntax);
        }
        let mut tail = uri.rsplitn(3, '/');
        let (Some(digest), Some(alg), Some(prefix)) = (tail.next(), tail.next(), tail.next()) else {
            return Err(InvalidAccountUri::NotHashed);
        };
        let Some(&(alg, len)) = ALGORITHMS.iter().find(|(name, _)| *name == alg) else {
            // Most often a plain account URL (`…/acme/acct/123`): say that, not "unknown algorithm".
            return Err(if alg.starts_with("sha") || alg.starts_with("blake") {
                InvalidAccountUri::Algorithm(alg.to_owned())
            } else {
                InvalidAccountUri::NotHashed
            });
        };
        let decoded =
            URL_SAFE_NO_PAD.decode(digest).map_err(|_| InvalidAccountUri::Digest { alg, len: b64_len(len) })?;
        if decoded.len() != len || prefix.is_empty() {
            return Err(InvalidAccountUri::Digest { alg, len: b64_len(len) });
        }
        Ok(Self(uri.to_owned()))
    }

    /// The hashed URI with SHA-256 (§4.1): `prefix || "sha-256/" ||
    /// base64url(SHA-256(len(domain) || domain || thumbprint || account URL))`,
    /// the domain being the validated FQDN or, with `None`, the `*` opt-out
    /// that makes the value reusable across domains.
    pub fn compute(
        prefix: &str,
        domain: Option<&Domain>,
        thumbprint: &str,
        account_url: &str,
    ) -> Result<Self, InvalidAccountUri> {
        let prefix = prefix.trim();
        if prefix.len() > MAX_PREFIX_LEN || !prefix.bytes().all(is_value_char) || !has_scheme(prefix) {
            return Err(InvalidAccountUri::Prefix);
        }
        let thumbprint = thumbprint.trim();
        let key_ok = thumbprint.len() == 43 && URL_SAFE_NO_PAD.decode(thumbprint).is_ok_and(|k| k.len() == 32);
        if !key_ok {
            return Err(InvalidAccountUri::Thumbprint);
        }
        let url = AcmeAccountUrl::parse(account_url).map_err(|e| InvalidAccountUri::AccountUrl(e.to_string()))?;
        Self::parse(&hashed_account_uri(prefix, domain, thumbprint, url.as_str()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn b64_len(bytes: usize) -> usize {
    (bytes * 4).div_ceil(3)
}

impl fmt::Debug for HashedAccountUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HashedAccountUri({:?})", self.0)
    }
}

impl fmt::Display for HashedAccountUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The hashed accounturi's text from already-checked inputs (see
/// [`HashedAccountUri::compute`]).
pub fn hashed_account_uri(prefix: &str, domain: Option<&Domain>, thumbprint: &str, account_url: &str) -> String {
    let name = domain.map_or("*", Domain::as_str);
    let mut hash = Sha256::new();
    // A domain name is at most 253 octets, so its length fits the one octet.
    hash.update([u8::try_from(name.len()).unwrap_or(u8::MAX)]);
    hash.update(name.as_bytes());
    hash.update(thumbprint.as_bytes());
    hash.update(account_url.as_bytes());
    format!("{prefix}sha-256/{}", URL_SAFE_NO_PAD.encode(hash.finalize()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const THUMBPRINT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
    const PREFIX: &str = "https://ca.example/account-hash/";

    /// The draft's §10.2 test vectors, with and without the domain.
    #[test]
    fn computes_the_drafts_vectors() {
        let example = Domain::parse("example.com").unwrap();
        let uri = HashedAccountUri::compute(PREFIX, Some(&example), THUMBPRINT, "https://ca.example/acct/123").unwrap();
        assert_eq!(uri.as_str(), "https://ca.example/account-hash/sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw");
        let any = HashedAccountUri::compute(PREFIX, None, THUMBPRINT, "https://ca.example/acct/123").unwrap();
        assert_eq!(any.as_str(), "https://ca.example/account-hash/sha-256/NpDnSwUthQK8zCgFdefYxAdAVPnygMLbs9US6oO-5ug");
    }

    #[test]
    fn hashed_uris_are_checked() {
        let good = "https://ca.example/account-hash/sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw";
        assert_eq!(HashedAccountUri::parse(&format!(" {good} ")).unwrap().as_str(), good);
        let sha512 = format!("https://ca.example/h/sha-512/{}", "A".repeat(86));
        assert!(HashedAccountUri::parse(&sha512).is_ok());
        let refused = |s: &str| HashedAccountUri::parse(s).unwrap_err();
        assert_eq!(refused("https://acme-v02.api.letsencrypt.org/acme/acct/123"), InvalidAccountUri::NotHashed);
        assert_eq!(
            refused("https://ca.example/h/sha-256-128/AAAAAAAAAAAAAAAAAAAAAA"),
            InvalidAccountUri::Algorithm("sha-256-128".into())
        );
        assert_eq!(
            refused("https://ca.example/h/sha-256/short"),
            InvalidAccountUri::Digest { alg: "sha-256", len: 43 }
        );
        assert_eq!(refused(&format!("{good}=")), InvalidAccountUri::Digest { alg: "sha-256", len: 43 });
        assert_eq!(refused("ca.example/sha-256/x"), InvalidAccountUri::Syntax);
        assert_eq!(refused("https://ca.example/a b/sha-256/x"), InvalidAccountUri::Syntax);
        assert_eq!(refused("https://ca.example/a;b/sha-256/x"), InvalidAccountUri::Syntax);
        assert_eq!(refused(""), InvalidAccountUri::Syntax);
    }

    #[test]
    fn computing_checks_its_inputs() {
        let url = "https://ca.example/acct/123";
        assert_eq!(HashedAccountUri::compute("ca.example/", None, THUMBPRINT, url), Err(InvalidAccountUri::Prefix));
        assert_eq!(HashedAccountUri::compute(PREFIX, None, "abc", url), Err(InvalidAccountUri::Thumbprint));
        assert!(matches!(
            HashedAccountUri::compute(PREFIX, None, THUMBPRINT, "http://ca.example/acct/1"),
            Err(InvalidAccountUri::AccountUrl(_))
        ));
    }
}
