//! The text form of a subdomain's state, as stored in Redis.
//!
//! `"<version> <value> <value>…"` for a live subdomain (no values yet: just the
//! version) and `"<version> deleted"` for a removed one. TXT values are 43
//! characters of `[A-Za-z0-9_-]`, so neither a space nor the 7-letter word can be
//! confused with a value. Readable with `redis-cli`, parsed without allocation
//! beyond the values themselves.

use certdns_core::{Subdomain, TxtState, TxtValue};

use crate::{Change, DistError};

const TOMBSTONE: &str = "deleted";

pub(crate) fn encode(change: &Change) -> String {
    match change {
        Change::Upsert(state) => {
            let mut out = state.version.to_string();
            for v in &state.values {
                out.push(' ');
                out.push_str(v.as_str());
            }
            out
        }
        Change::Remove { version, .. } => format!("{version} {TOMBSTONE}"),
    }
}

pub(crate) fn decode(subdomain: &str, encoded: &str) -> Result<Change, DistError> {
    let corrupt = || DistError::Corrupt(format!("{subdomain} => {encoded:?}"));
    let subdomain: Subdomain = subdomain.parse().map_err(|_| corrupt())?;
    let mut parts = encoded.split(' ');
    let version: u64 = parts.next().and_then(|v| v.parse().ok()).ok_or_else(corrupt)?;
    let rest: Vec<&str> = parts.collect();
    if rest == [TOMBSTONE] {
        return Ok(Change::Remove { subdomain, version });
    }
    let values = rest.into_iter().map(TxtValue::parse).collect::<Result<Vec<_>, _>>().map_err(|_| corrupt())?;
    Ok(Change::Upsert(TxtState { subdomain, version, values }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(c: char) -> TxtValue {
        TxtValue::parse(&c.to_string().repeat(43)).unwrap()
    }

    #[test]
    fn round_trips() {
        let subdomain = Subdomain::generate();
        let s = subdomain.to_string();
        for change in [
            Change::Upsert(TxtState { subdomain, version: 0, values: vec![] }),
            Change::Upsert(TxtState { subdomain, version: 7, values: vec![value('a'), value('-')] }),
            Change::Remove { subdomain, version: 9 },
        ] {
            assert_eq!(decode(&s, &encode(&change)).unwrap(), change);
        }
        assert_eq!(encode(&Change::Remove { subdomain, version: 3 }), "3 deleted");
    }

    #[test]
    fn rejects_garbage() {
        let s = Subdomain::generate().to_string();
        for bad in ["", "x", "1 short", "-1", "1 deleted extra"] {
            assert!(decode(&s, bad).is_err(), "{bad:?}");
        }
        assert!(decode("not-a-uuid", "1").is_err());
    }
}
