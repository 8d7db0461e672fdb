//! dns-persist-01 (draft-ietf-acme-dns-persist-02): the long-lived TXT record at
//! `_validation-persist.<domain>` that authorises one CA (its issuer domain
//! name) to issue for one ACME account, optionally for the domain's subdomains
//! and wildcards (`policy=wildcard`) and until a time (`persistUntil`).
//!
//! The record is CAA's issue-value syntax (RFC 8659 §4.2):
//! `<issuer-domain-name>; accounturi=<hashed URI>[; policy=wildcard][; persistUntil=<unix>]`.
//! The accounturi is a *hashed* URI since draft -02:
//! `<accountHashPrefix>sha-256/<base64url(SHA-256(len(domain) || domain || key || account URL))>`,
//! `key` being the 43-character base64url JWK thumbprint of the account key. A
//! DNS operator can compute it from those shareable values (the draft's §4.5);
//! no private key is involved.
//!
//! Groundwork only: the value type and its checks. Serving it needs a
//! registration kind whose value is longer than a dns-01 `TxtValue`.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::Domain;

/// The label in front of the validated name.
pub const PERSIST_LABEL: &str = "_validation-persist";

/// One `_validation-persist` record, valid by construction.
#[derive(Clone, PartialEq, Eq)]
pub struct PersistRecord {
    issuer: String,
    account_uri: String,
    wildcard: bool,
    persist_until: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPersistRecord {
    #[error(
        "the issuer domain name must be a lower-case domain name without a final dot (the CA's, e.g. letsencrypt.org)"
    )]
    Issuer,
    #[error(
        "the accounturi must be a URI of printable characters without spaces or ';' (the hashed URI your client computes)"
    )]
    AccountUri,
    #[error("persistUntil must be a whole number of seconds since 1970 (a Unix time)")]
    PersistUntil,
    #[error("the record needs an accounturi parameter")]
    MissingAccountUri,
    #[error("the record is longer than {max} characters", max = PersistRecord::MAX_LEN)]
    TooLong,
}

impl PersistRecord {
    /// Several TXT strings' worth, and still far inside one UDP answer.
    pub const MAX_LEN: usize = 1024;

    pub fn new(
        issuer: &str,
        account_uri: &str,
        wildcard: bool,
        persist_until: Option<i64>,
    ) -> Result<Self, InvalidPersistRecord> {
        let issuer = issuer.trim();
        let domain = Domain::parse(issuer).map_err(|_| InvalidPersistRecord::Issuer)?;
        // Already the A-label form the draft asks for: no case folding, no dot, no `*.`.
        if domain.as_str() != issuer {
            return Err(InvalidPersistRecord::Issuer);
        }
        let account_uri = account_uri.trim();
        let printable = account_uri.bytes().all(|b| b.is_ascii_graphic() && b != b';');
        if account_uri.is_empty() || !printable || !account_uri.contains(':') {
            return Err(InvalidPersistRecord::AccountUri);
        }
        if persist_until.is_some_and(|t| t < 0) {
            return Err(InvalidPersistRecord::PersistUntil);
        }
        let record = Self { issuer: issuer.to_owned(), account_uri: account_uri.to_owned(), wildcard, persist_until };
        if record.to_txt().len() > Self::MAX_LEN {
            return Err(InvalidPersistRecord::TooLong);
        }
        Ok(record)
    }

    /// Reads a record's TXT value (parameters in any order and case of the
    /// policy value; unknown parameters are refused here, since certdns only
    /// publishes what it can explain to the customer).
    pub fn parse(txt: &str) -> Result<Self, InvalidPersistRecord> {
        let mut parts = txt.split(';');
        let issuer = parts.next().unwrap_or_default();
        let (mut account_uri, mut wildcard, mut until) = (None, false, None);
        for part in parts {
            let (tag, value) = part.trim().split_once('=').ok_or(InvalidPersistRecord::AccountUri)?;
            match tag {
                "accounturi" => account_uri = Some(value),
                "policy" => wildcard = value.eq_ignore_ascii_case("wildcard"),
                "persistUntil" => {
                    until = Some(value.parse::<i64>().map_err(|_| InvalidPersistRecord::PersistUntil)?);
                }
                _ => return Err(InvalidPersistRecord::AccountUri),
            }
        }
        let account_uri = account_uri.ok_or(InvalidPersistRecord::MissingAccountUri)?;
        Self::new(issuer, account_uri, wildcard, until)
    }

    /// The TXT value as published.
    pub fn to_txt(&self) -> String {
        let mut txt = format!("{}; accounturi={}", self.issuer, self.account_uri);
        if self.wildcard {
            txt.push_str("; policy=wildcard");
        }
        if let Some(t) = self.persist_until {
            txt.push_str(&format!("; persistUntil={t}"));
        }
        txt
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn account_uri(&self) -> &str {
        &self.account_uri
    }

    pub fn wildcard(&self) -> bool {
        self.wildcard
    }

    pub fn persist_until(&self) -> Option<i64> {
        self.persist_until
    }

    /// Where the record lives for `domain`: `_validation-persist.<domain>`.
    pub fn validation_name(domain: &Domain) -> String {
        format!("{PERSIST_LABEL}.{}", domain.as_str())
    }
}

impl fmt::Debug for PersistRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersistRecord({:?})", self.to_txt())
    }
}

/// The hashed accounturi (draft -02 §4.1) from the values a DNS operator is
/// given: the CA's `accountHashPrefix`, the domain (`None`: the `*` opt-out,
/// reusable across domains), the account key's JWK thumbprint (43 characters of
/// base64url) and the ACME account URL.
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
    fn hashed_account_uri_matches_the_drafts_vectors() {
        let example = Domain::parse("example.com").unwrap();
        let uri = hashed_account_uri(PREFIX, Some(&example), THUMBPRINT, "https://ca.example/acct/123");
        assert_eq!(uri, "https://ca.example/account-hash/sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw");
        let any = hashed_account_uri(PREFIX, None, THUMBPRINT, "https://ca.example/acct/123");
        assert_eq!(any, "https://ca.example/account-hash/sha-256/NpDnSwUthQK8zCgFdefYxAdAVPnygMLbs9US6oO-5ug");
    }

    /// The draft's §10 records, written and read back exactly.
    #[test]
    fn records_are_written_in_the_drafts_syntax() {
        let uri = "https://ca.example/account-hash/sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw";
        let basic = PersistRecord::new("authority.example", uri, false, None).unwrap();
        assert_eq!(basic.to_txt(), format!("authority.example; accounturi={uri}"));
        let full = PersistRecord::new("authority.example", uri, true, Some(1_721_952_000)).unwrap();
        let txt = format!("authority.example; accounturi={uri}; policy=wildcard; persistUntil=1721952000");
        assert_eq!(full.to_txt(), txt);
        assert_eq!(PersistRecord::parse(&txt).unwrap(), full);
        assert_eq!(PersistRecord::parse(&txt.replace("wildcard", "WILDCARD")).unwrap(), full);
        assert_eq!(
            PersistRecord::validation_name(&Domain::parse("example.org").unwrap()),
            "_validation-persist.example.org"
        );
    }

    #[test]
    fn bad_records_are_refused_with_the_reason() {
        let uri = "https://ca.example/account-hash/sha-256/x";
        assert_eq!(PersistRecord::new("Authority.Example", uri, false, None), Err(InvalidPersistRecord::Issuer));
        assert_eq!(PersistRecord::new("authority.example.", uri, false, None), Err(InvalidPersistRecord::Issuer));
        assert_eq!(
            PersistRecord::new("authority.example", "a b:c", false, None),
            Err(InvalidPersistRecord::AccountUri)
        );
        assert_eq!(
            PersistRecord::new("authority.example", "x:y;z", false, None),
            Err(InvalidPersistRecord::AccountUri)
        );
        assert_eq!(
            PersistRecord::new("authority.example", uri, false, Some(-1)),
            Err(InvalidPersistRecord::PersistUntil)
        );
        assert_eq!(PersistRecord::parse("authority.example"), Err(InvalidPersistRecord::MissingAccountUri));
        let bad_time = format!("authority.example; accounturi={uri}; persistUntil=soon");
        assert_eq!(PersistRecord::parse(&bad_time), Err(InvalidPersistRecord::PersistUntil));
        let long = format!("https://ca.example/{}", "a".repeat(1100));
        assert_eq!(PersistRecord::new("authority.example", &long, false, None), Err(InvalidPersistRecord::TooLong));
    }
}
