//! From acme-dns's rows to registrations certdns can store: every field checked
//! the way certdns checks its own, and a row that does not pass skipped whole,
//! with the reason (never a registration with some of its data).

use std::collections::{HashMap, HashSet};

use certdns_core::{AllowFrom, SecretHash, Subdomain, TxtValue, Username};
use certdns_store::acme_dns::{AcmeDnsDump, AcmeDnsRecord};
use time::OffsetDateTime;

/// A registration as it will be imported.
#[derive(Debug)]
pub struct Candidate {
    pub username: Username,
    pub subdomain: Subdomain,
    /// acme-dns's bcrypt hash, replaced by certdns's own on first use.
    pub password_hash: SecretHash,
    pub allow_from: AllowFrom,
    /// The current values, newest first, at most the number certdns serves.
    pub values: Vec<TxtValue>,
    pub last_update: Option<OffsetDateTime>,
}

/// A row left out, and why. `row` names it for the operator without secrets:
/// the username when it has one, else its position in `records`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub row: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub candidates: Vec<Candidate>,
    pub skipped: Vec<Skipped>,
    /// `txt` rows whose subdomain has no record (acme-dns never serves them).
    pub orphan_txt_rows: usize,
}

/// Checks every record of `dump`, keeping at most `keep` TXT values each.
pub fn plan(dump: &AcmeDnsDump, keep: usize) -> Plan {
    let mut txt: HashMap<String, Vec<(i64, &str)>> = HashMap::new();
    for row in &dump.txt {
        let (Some(subdomain), Some(value)) = (&row.subdomain, &row.value) else { continue };
        txt.entry(subdomain.to_ascii_lowercase()).or_default().push((row.last_update, value.as_str()));
    }
    let mut plan = Plan::default();
    let mut seen_users = HashSet::new();
    let mut seen_subdomains = HashSet::new();
    for (index, record) in dump.records.iter().enumerate() {
        let row = record.username.clone().unwrap_or_else(|| format!("records row {}", index + 1));
        match candidate(record, &txt, keep) {
            Ok(c) if !seen_users.insert(c.username) => {
                plan.skipped.push(Skipped { row, reason: "the username appears twice in the source".into() })
            }
            Ok(c) if !seen_subdomains.insert(c.subdomain) => {
                plan.skipped.push(Skipped { row, reason: "the subdomain appears twice in the source".into() })
            }
            Ok(c) => plan.candidates.push(c),
            Err(reason) => plan.skipped.push(Skipped { row, reason }),
        }
    }
    let known: HashSet<String> = plan.candidates.iter().map(|c| c.subdomain.to_string()).collect();
    let skipped_subdomains: HashSet<String> =
        dump.records.iter().filter_map(|r| r.subdomain.as_ref()).map(|s| s.to_ascii_lowercase()).collect();
    plan.orphan_txt_rows = txt
        .iter()
        .filter(|(s, _)| !known.contains(*s) && !skipped_subdomains.contains(*s))
        .map(|(_, rows)| rows.len())
        .sum();
    plan
}

fn candidate(r: &AcmeDnsRecord, txt: &HashMap<String, Vec<(i64, &str)>>, keep: usize) -> Result<Candidate, String> {
    let username: Username =
        required(&r.username, "Username")?.trim().parse().map_err(|_| "Username is not a UUID".to_owned())?;
    let password_hash = SecretHash::imported(required(&r.password, "Password")?).ok_or_else(|| {
        format!(
            "Password is not a bcrypt hash acme-dns writes ($2a$/$2b$/$2y$, cost at most {})",
            certdns_core::secret::MAX_IMPORTED_COST
        )
    })?;
    let subdomain_text = required(&r.subdomain, "Subdomain")?.to_ascii_lowercase();
    let subdomain = Subdomain::from_label(subdomain_text.as_bytes())
        .ok_or_else(|| "Subdomain is not a UUID in its 36-character form".to_owned())?;
    // acme-dns cannot read a record without an AllowFrom list either; an empty
    // or unreadable one is refused rather than imported as "from anywhere".
    let allow_from = AllowFrom::from_json(required(&r.allow_from, "AllowFrom")?)
        .map_err(|e| format!("AllowFrom is not a JSON list of CIDR networks ({e})"))?;

    let mut written: Vec<(i64, &str)> =
        txt.get(&subdomain_text).into_iter().flatten().filter(|(_, v)| !v.is_empty()).copied().collect();
    written.sort_by_key(|w| std::cmp::Reverse(w.0));
    let values = written
        .iter()
        .take(keep.max(1))
        .map(|(_, v)| TxtValue::parse(v))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "a current TXT value is not 43 characters of [A-Za-z0-9_-]".to_owned())?;
    let last_update =
        written.first().filter(|(t, _)| *t > 0).and_then(|(t, _)| OffsetDateTime::from_unix_timestamp(*t).ok());
    Ok(Candidate { username, subdomain, password_hash, allow_from, values, last_update })
}

fn required<'a>(field: &'a Option<String>, name: &str) -> Result<&'a str, String> {
    field.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| format!("{name} is empty"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use certdns_store::acme_dns::AcmeDnsTxt;

    use super::*;

    const USER: &str = "c36f50e8-4632-44f0-83fe-e070fef28a10";
    const SUB: &str = "8e5700ea-a4bf-41c7-8a77-e990661dcc6a";

    fn record(user: &str, password: &str, sub: &str, allow: Option<&str>) -> AcmeDnsRecord {
        AcmeDnsRecord {
            username: Some(user.into()),
            password: Some(password.into()),
            subdomain: Some(sub.into()),
            allow_from: allow.map(Into::into),
        }
    }

    fn txt(sub: &str, value: &str, at: i64) -> AcmeDnsTxt {
        AcmeDnsTxt { subdomain: Some(sub.into()), value: Some(value.into()), last_update: at }
    }

    #[test]
    fn good_rows_become_candidates_with_their_newest_values() {
        let hash = bcrypt::hash("x".repeat(40), 4).unwrap();
        let (a, b, c) = ("a".repeat(43), "b".repeat(43), "c".repeat(43));
        let dump = AcmeDnsDump {
            records: vec![record(USER, &hash, &SUB.to_uppercase(), Some(r#"["192.0.2.0/24"]"#))],
            txt: vec![txt(SUB, &a, 100), txt(SUB, &c, 300), txt(SUB, &b, 200), txt(SUB, "", 0)],
        };
        let plan = plan(&dump, 2);
        assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
        let c0 = &plan.candidates[0];
        assert_eq!(c0.subdomain.to_string(), SUB);
        assert_eq!(c0.values.iter().map(TxtValue::as_str).collect::<Vec<_>>(), [c.as_str(), b.as_str()]);
        assert_eq!(c0.last_update.unwrap().unix_timestamp(), 300);
        assert!(!c0.allow_from.is_unrestricted());
        assert!(c0.password_hash.is_imported());

        let fresh = AcmeDnsDump { records: dump.records.clone(), txt: vec![txt(SUB, "", 0), txt(SUB, "", 0)] };
        let plan = super::plan(&fresh, 2);
        assert!(plan.candidates[0].values.is_empty() && plan.candidates[0].last_update.is_none());
    }

    #[test]
    fn malformed_rows_are_skipped_with_a_reason() {
        let hash = bcrypt::hash("x".repeat(40), 4).unwrap();
        let other = "0f4f3a0e-51d9-4b8a-9f3c-7d1f0b1e2a33";
        let dump = AcmeDnsDump {
            records: vec![
                record("not-a-uuid", &hash, SUB, Some("[]")),
                record(USER, "plaintext", SUB, Some("[]")),
                record(USER, &hash, "short", Some("[]")),
                record(USER, &hash, SUB, None),
                record(USER, &hash, SUB, Some(r#"["nonsense"]"#)),
                record(USER, &hash, other, Some("[]")),
                record(USER, &hash, SUB, Some("[]")),
            ],
            txt: vec![txt(other, "too short", 5), txt("ab5d8b8e-0000-4000-8000-000000000000", &"a".repeat(43), 1)],
        };
        let plan = plan(&dump, 2);
        let reasons: Vec<&str> = plan.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(plan.candidates.len(), 1, "{reasons:?}");
        assert_eq!(plan.skipped.len(), 6);
        for (reason, expected) in reasons.iter().zip([
            "Username is not a UUID",
            "Password is not a bcrypt hash",
            "Subdomain is not a UUID",
            "AllowFrom is empty",
            "AllowFrom is not a JSON list",
            "a current TXT value",
        ]) {
            assert!(reason.starts_with(expected), "{reason} vs {expected}");
        }
        assert_eq!(plan.orphan_txt_rows, 1);
        assert!(!format!("{plan:?}").contains(&hash), "no password hash in anything printed");
    }

    #[test]
    fn duplicates_in_the_source_are_skipped() {
        let hash = bcrypt::hash("x".repeat(40), 4).unwrap();
        let dump = AcmeDnsDump {
            records: vec![record(USER, &hash, SUB, Some("[]")), record(USER, &hash, SUB, Some("[]"))],
            txt: vec![],
        };
        let plan = plan(&dump, 2);
        assert_eq!(plan.candidates.len(), 1);
        assert_eq!(plan.skipped[0].reason, "the username appears twice in the source");
    }
}
