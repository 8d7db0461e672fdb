//! TXT values published for DNS-01.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a TXT value must be exactly 43 characters of A-Z, a-z, 0-9, '-' and '_'")]
pub struct InvalidTxt;

/// A DNS-01 TXT value: the unpadded base64url SHA-256 digest of a key
/// authorisation, so exactly 43 characters of `[A-Za-z0-9_-]` (the rule acme-dns
/// enforces; anything else can never validate at a CA).
///
/// Because the alphabet excludes spaces, quotes and separators, a value can be
/// embedded in simple wire formats (Redis entries, DNS character-strings) without
/// escaping.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TxtValue(String);

impl TxtValue {
    pub const LEN: usize = 43;

    pub fn parse(s: &str) -> Result<Self, InvalidTxt> {
        if is_valid(s.as_bytes()) { Ok(Self(s.to_owned())) } else { Err(InvalidTxt) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_valid(b: &[u8]) -> bool {
    b.len() == TxtValue::LEN && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

impl TryFrom<String> for TxtValue {
    type Error = InvalidTxt;
    fn try_from(s: String) -> Result<Self, InvalidTxt> {
        if is_valid(s.as_bytes()) { Ok(Self(s)) } else { Err(InvalidTxt) }
    }
}

impl From<TxtValue> for String {
    fn from(t: TxtValue) -> String {
        t.0
    }
}

/// TXT values are short-lived secrets of a pending order; `Debug` shows only a prefix
/// so they do not end up in logs whole.
impl fmt::Debug for TxtValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxtValue({}…)", &self.0[..4])
    }
}

impl fmt::Display for TxtValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_exactly_43_base64url_chars() {
        assert!(TxtValue::parse(&"a".repeat(43)).is_ok());
        assert!(TxtValue::parse("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234").is_ok());
        for bad in [
            "".to_owned(),
            "a".repeat(42),
            "a".repeat(44),
            format!("{}#", "a".repeat(42)),
            format!("{}=", "a".repeat(42)),
            format!("{} ", "a".repeat(42)),
            "idk m8 bbl lmao".to_owned(),
        ] {
            assert_eq!(TxtValue::parse(&bad), Err(InvalidTxt), "{bad:?}");
        }
    }

    #[test]
    fn debug_does_not_print_the_value() {
        let v = TxtValue::parse(&"b".repeat(43)).unwrap();
        assert_eq!(format!("{v:?}"), "TxtValue(bbbb…)");
    }
}
