//! The text form of a subdomain's state, as stored in Redis.
//!
//! `"<version> <value> <value>…"` for a live subdomain (no values yet: just the
//! version), `"<version> persist <record>"` for a persist registration's
//! dns-persist-01 record (the rest of the entry, spaces included) and
//! `"<version> deleted"` for a removed one. TXT values are 43 characters of
//! `[A-Za-z0-9_-]`, so neither a space nor the 7-letter words can be confused
//! with a value. Readable with `redis-cli`, parsed without allocation beyond the
//! values themselves.

use certdns_core::{PersistRecord, Subdomain, TxtState, TxtValue};

use crate::{Change, DistError};

const TOMBSTONE: &str = "deleted";
const PERSIST: &str = "persist";

pub(crate) fn encode(change: &Change) -> String {
    match change {
        Change::Upsert(TxtState { version, persist: Some(record), .. }) => {
            format!("{version} {PERSIST} {}", record.to_txt())
        }
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
    let (version, rest) = encoded.split_once(' ').unwrap_or((encoded, ""));
    let version: u64 = version.parse().map_err(|_| corrupt())?;
    if let Some(record) = rest.strip_prefix(PERSIST).and_then(|r| r.strip_prefix(' ')) {
        let record = PersistRecord::parse(record).map_err(|_| corrupt())?;
        return Ok(Change::Upsert(TxtState { subdomain, version, values: Vec::new(), persist: Some(record) }));
    }
    let rest: Vec<&str> = if rest.is_empty() { Vec::new() } else { rest.split(' ').collect() };
    if rest == [TOMBSTONE] {
        return Ok(Change::Remove { subdomain, version });
    }
    let values = rest.into_iter().map(TxtValue::parse).collect::<Result<Vec<_>, _>>().map_err(|_| corrupt())?;
    Ok(Change::Upsert(TxtState::values(subdomain, version, values)))
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
        let record = PersistRecord::parse(RECORD).unwrap();
        for change in [
            Change::Upsert(TxtState::values(subdomain, 0, vec![])),
            Change::Upsert(TxtState::values(subdomain, 7, vec![value('a'), value('-')])),
            Change::Upsert(TxtState { subdomain, version: 4, values: vec![], persist: Some(record) }),
            Change::Remove { subdomain, version: 9 },
        ] {
            assert_eq!(decode(&s, &encode(&change)).unwrap(), change);
        }
        assert_eq!(encode(&Change::Remove { subdomain, version: 3 }), "3 deleted");
    }

    const RECORD: &str = "letsencrypt.org; accounturi=https://ca.example/h/sha-256/\
                          5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw; policy=wildcard";

    #[test]
    fn a_persist_record_travels_whole() {
        let subdomain = Subdomain::generate();
        let change = Change::Upsert(TxtState {
            subdomain,
            version: 2,
            values: vec![],
            persist: Some(PersistRecord::parse(RECORD).unwrap()),
        });
        assert_eq!(encode(&change), format!("2 persist {RECORD}"));
        for bad in ["2 persist", "2 persist nonsense", "2 persist x.example; accounturi=https://a/acct/1"] {
            assert!(decode(&subdomain.to_string(), bad).is_err(), "{bad:?}");
        }
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
