//! dns-persist-01 (draft-ietf-acme-dns-persist-02, the CA/B Forum's method
//! 3.2.2.4.22 from ballot SC-088): the long-lived TXT record at
//! `_validation-persist.<domain>` that authorises one CA (its issuer domain
//! name) to issue for one ACME account, optionally for the domain's subdomains
//! and wildcards (`policy=wildcard`) and until a time (`persistUntil`).
//!
//! The record is CAA's issue-value syntax (RFC 8659 §4.2):
//! `<issuer-domain-name>; accounturi=<hashed URI>[; policy=wildcard][; persistUntil=<unix>]`,
//! the accounturi a [`HashedAccountUri`]. certdns publishes exactly what it
//! can explain to the customer, so [`PersistRecord::parse`] reads back only
//! that canonical form (a CA, by contrast, ignores unknown parameters).
//!
//! Length: the draft bounds no total (RDATA may reach 65,535 octets, in
//! character-strings of 255); the issuer is at most 253 octets and the digest
//! 86, the CA's prefix is the open end. [`PersistRecord::MAX_LEN`] keeps a
//! record inside one EDNS answer of 1,232 octets; over 255 octets the
//! responders split it into several character-strings (RFC 1035 §3.3.14).

use std::fmt;

use crate::hashed_uri::{InvalidAccountUri, is_value_char};
use crate::{Domain, HashedAccountUri};

/// The label in front of the validated name.
pub const PERSIST_LABEL: &str = "_validation-persist";

/// The latest `persistUntil` taken: 9999-12-31T23:59:59Z.
pub const MAX_PERSIST_UNTIL: i64 = 253_402_300_799;

/// One `_validation-persist` record, valid by construction.
#[derive(Clone, PartialEq, Eq)]
pub struct PersistRecord {
    issuer: String,
    account_uri: HashedAccountUri,
    wildcard: bool,
    persist_until: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPersistRecord {
    #[error("the issuer domain name must be the CA's domain name (such as letsencrypt.org), without a wildcard: {0}")]
    Issuer(String),
    #[error("{0}")]
    AccountUri(#[from] InvalidAccountUri),
    #[error("persistUntil must be a whole number of seconds since 1970 (a Unix time) up to the year 9999")]
    PersistUntil,
    #[error("the record needs an accounturi parameter")]
    MissingAccountUri,
    #[error("the parameter {0} appears twice")]
    Duplicate(String),
    #[error("the parameter {0:?} is not one certdns publishes (accounturi, policy, persistUntil)")]
    UnknownParameter(String),
    #[error("policy may only be wildcard")]
    Policy,
    #[error("not in the issue-value syntax: <issuer>; accounturi=<uri>[; policy=wildcard][; persistUntil=<time>]")]
    Syntax,
    #[error("the record is longer than {max} characters", max = PersistRecord::MAX_LEN)]
    TooLong,
}

impl PersistRecord {
    /// Fits one EDNS answer (1,232 octets) with the owner name and headers.
    pub const MAX_LEN: usize = 1024;

    /// A record from the customer's fields. The issuer is normalised as the
    /// draft's §9.2 says (case folded, IDNs as A-labels, no final dot).
    pub fn new(
        issuer: &str,
        account_uri: HashedAccountUri,
        wildcard: bool,
        persist_until: Option<i64>,
    ) -> Result<Self, InvalidPersistRecord> {
        if issuer.contains('*') {
            return Err(InvalidPersistRecord::Issuer("a wildcard is not a domain name".into()));
        }
        let issuer = Domain::parse(issuer).map_err(|e| InvalidPersistRecord::Issuer(e.to_string()))?;
        if persist_until.is_some_and(|t| !(0..=MAX_PERSIST_UNTIL).contains(&t)) {
            return Err(InvalidPersistRecord::PersistUntil);
        }
        let record = Self { issuer: issuer.as_str().to_owned(), account_uri, wildcard, persist_until };
        if record.to_txt().len() > Self::MAX_LEN {
            return Err(InvalidPersistRecord::TooLong);
        }
        Ok(record)
    }

    /// Reads back a record as [`to_txt`](Self::to_txt) writes it (whitespace
    /// around `;` and `=` as RFC 8659 allows; parameters in any order; no
    /// parameter twice, none unknown; the issuer already normalised).
    pub fn parse(txt: &str) -> Result<Self, InvalidPersistRecord> {
        let mut parts = txt.split(';');
        let issuer = parts.next().unwrap_or_default().trim_matches(is_wsp);
        let (mut account_uri, mut wildcard, mut until) = (None, None, None);
        for part in parts {
            let (tag, value) = part.split_once('=').ok_or(InvalidPersistRecord::Syntax)?;
            let (tag, value) = (tag.trim_matches(is_wsp), value.trim_matches(is_wsp));
            if value.is_empty() || !value.bytes().all(is_value_char) {
                return Err(InvalidPersistRecord::Syntax);
            }
            let slot = match tag {
                "accounturi" => &mut account_uri,
                "policy" => &mut wildcard,
                "persistUntil" => &mut until,
                other => return Err(InvalidPersistRecord::UnknownParameter(other.to_owned())),
            };
            if slot.replace(value).is_some() {
                return Err(InvalidPersistRecord::Duplicate(tag.to_owned()));
            }
        }
        let account_uri = HashedAccountUri::parse(account_uri.ok_or(InvalidPersistRecord::MissingAccountUri)?)?;
        let wildcard = match wildcard {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("wildcard") => true,
            Some(_) => return Err(InvalidPersistRecord::Policy),
        };
        // Base-10 digits only: `+5` or `0x10` would parse elsewhere but are not the draft's integer.
        let until = match until {
            Some(t) if t.bytes().all(|b| b.is_ascii_digit()) => {
                Some(t.parse::<i64>().map_err(|_| InvalidPersistRecord::PersistUntil)?)
            }
            Some(_) => return Err(InvalidPersistRecord::PersistUntil),
            None => None,
        };
        let record = Self::new(issuer, account_uri, wildcard, until)?;
        if record.issuer != issuer {
            return Err(InvalidPersistRecord::Issuer("not in its normalised form".into()));
        }
        Ok(record)
    }

    /// The TXT value as published (one string; a responder splits it into
    /// character-strings of 255 octets).
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

    pub fn account_uri(&self) -> &HashedAccountUri {
        &self.account_uri
    }

    pub fn wildcard(&self) -> bool {
        self.wildcard
    }

    pub fn persist_until(&self) -> Option<i64> {
        self.persist_until
    }

    /// Whether the record no longer authorises anything at `now` (Unix seconds).
    pub fn expired_at(&self, now: i64) -> bool {
        self.persist_until.is_some_and(|t| t < now)
    }

    /// Where the record lives for `domain`: `_validation-persist.<domain>`.
    pub fn validation_name(domain: &Domain) -> String {
        format!("{PERSIST_LABEL}.{}", domain.as_str())
    }
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

impl fmt::Debug for PersistRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersistRecord({:?})", self.to_txt())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const URI: &str = "https://ca.example/account-hash/sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw";

    fn uri() -> HashedAccountUri {
        HashedAccountUri::parse(URI).unwrap()
    }

    /// The draft's §10 records, written and read back exactly.
    #[test]
    fn records_are_written_in_the_drafts_syntax() {
        let basic = PersistRecord::new("authority.example", uri(), false, None).unwrap();
        assert_eq!(basic.to_txt(), format!("authority.example; accounturi={URI}"));
        let full = PersistRecord::new("authority.example", uri(), true, Some(1_721_952_000)).unwrap();
        let txt = format!("authority.example; accounturi={URI}; policy=wildcard; persistUntil=1721952000");
        assert_eq!(full.to_txt(), txt);
        assert_eq!(PersistRecord::parse(&txt).unwrap(), full);
        assert_eq!(PersistRecord::parse(&txt.replace("wildcard", "WILDCARD")).unwrap(), full);
        let spaced = format!("authority.example ;accounturi = {URI};persistUntil=1721952000 ;policy=wildcard");
        assert_eq!(PersistRecord::parse(&spaced).unwrap(), full);
        assert_eq!(
            PersistRecord::validation_name(&Domain::parse("example.org").unwrap()),
            "_validation-persist.example.org"
        );
        assert!(full.expired_at(1_721_952_001) && !full.expired_at(1_721_952_000) && !basic.expired_at(i64::MAX));
    }

    #[test]
    fn issuers_are_normalised_as_the_draft_says() {
        let r = PersistRecord::new(" LetsEncrypt.ORG. ", uri(), false, None).unwrap();
        assert_eq!(r.issuer(), "letsencrypt.org");
        let idn = PersistRecord::new("bücher.example", uri(), false, None).unwrap();
        assert_eq!(idn.issuer(), "xn--bcher-kva.example");
        // Stored values are read back only in that form.
        let upper = format!("Authority.Example; accounturi={URI}");
        assert!(matches!(PersistRecord::parse(&upper), Err(InvalidPersistRecord::Issuer(_))));
    }

    #[test]
    fn bad_records_are_refused_with_the_reason() {
        let issuer = |i: &str| PersistRecord::new(i, uri(), false, None).unwrap_err();
        assert!(matches!(issuer("*.authority.example"), InvalidPersistRecord::Issuer(_)));
        assert!(matches!(issuer("authority"), InvalidPersistRecord::Issuer(_)));
        assert!(matches!(issuer("auth_ority.example"), InvalidPersistRecord::Issuer(_)));
        assert_eq!(PersistRecord::new("a.example", uri(), false, Some(-1)), Err(InvalidPersistRecord::PersistUntil));
        let too_late = Some(MAX_PERSIST_UNTIL + 1);
        assert_eq!(PersistRecord::new("a.example", uri(), false, too_late), Err(InvalidPersistRecord::PersistUntil));
        let parse = |t: &str| PersistRecord::parse(t).unwrap_err();
        assert_eq!(parse("authority.example"), InvalidPersistRecord::MissingAccountUri);
        assert_eq!(
            parse(&format!("a.example; accounturi={URI}; persistUntil=soon")),
            InvalidPersistRecord::PersistUntil
        );
        assert_eq!(parse(&format!("a.example; accounturi={URI}; persistUntil=+5")), InvalidPersistRecord::PersistUntil);
        assert_eq!(
            parse(&format!("a.example; accounturi={URI}; accounturi={URI}")),
            InvalidPersistRecord::Duplicate("accounturi".into())
        );
        assert_eq!(parse(&format!("a.example; accounturi={URI}; policy=all")), InvalidPersistRecord::Policy);
        assert_eq!(
            parse(&format!("a.example; accounturi={URI}; note=x")),
            InvalidPersistRecord::UnknownParameter("note".into())
        );
        assert_eq!(parse(&format!("a.example; accounturi={URI}; policy")), InvalidPersistRecord::Syntax);
        assert_eq!(
            parse("a.example; accounturi=https://ca.example/acct/1"),
            InvalidPersistRecord::AccountUri(InvalidAccountUri::NotHashed)
        );
        let long_prefix = format!("https://ca.example/{}/sha-256/{}", "p".repeat(1000), &URI[URI.len() - 43..]);
        let long = HashedAccountUri::parse(&long_prefix).unwrap();
        assert_eq!(PersistRecord::new("a.example", long, false, None), Err(InvalidPersistRecord::TooLong));
    }
}
