//! What a CNAME check result means for the customer, in words: a headline, what
//! was found, and the fix.

use std::net::SocketAddr;

use certdns_delegation::CnameStatus;

/// A check result as the registration page shows it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Advice {
    pub code: String,
    pub headline: String,
    pub detail: String,
    pub fix: String,
}

/// Advice for `status`, found at `cname_name` (`_acme-challenge.www.example.com`)
/// when it should point at `fulldomain`, as asked of `resolver`.
pub(crate) fn advise(status: &CnameStatus, cname_name: &str, fulldomain: &str, resolver: SocketAddr) -> Advice {
    let record = format!("{cname_name}. CNAME {fulldomain}.");
    let (headline, detail, fix) = match status {
        CnameStatus::Correct => (
            "CNAME present and correct".to_owned(),
            format!("{cname_name} points at {fulldomain}."),
            "Nothing to do: certificates can be issued.".to_owned(),
        ),
        CnameStatus::Missing => (
            "CNAME missing".to_owned(),
            format!("The resolver finds no record at {cname_name}."),
            format!(
                "Create this record in your DNS zone: {record} Changes can take a while to reach resolvers (the record's TTL)."
            ),
        ),
        CnameStatus::PointsElsewhere { target } => (
            "CNAME points elsewhere".to_owned(),
            format!("{cname_name} points at {target}, not at {fulldomain}."),
            format!("Change the CNAME's target so the record reads: {record}"),
        ),
        CnameStatus::ShadowedByTxt { values } => (
            "Shadowed by a TXT record".to_owned(),
            format!(
                "{cname_name} has a TXT record ({}) instead of the CNAME; the CA reads that and never reaches us.",
                values.join(", ")
            ),
            format!("Delete the TXT record(s) at {cname_name} and create: {record}"),
        ),
        CnameStatus::Unknown { reason } => (
            "Could not check".to_owned(),
            format!("Asking the resolver {resolver} failed: {reason}."),
            "Try again in a minute. If it keeps failing, check the record with dig.".to_owned(),
        ),
    };
    Advice { code: status.code().to_owned(), headline, detail, fix }
}

/// What to show when the registration has no domain to check.
pub(crate) fn no_domain() -> Advice {
    Advice {
        code: "unknown".into(),
        headline: "No domain to check".into(),
        detail: "This registration has no domain yet, so we do not know which name's CNAME to look up.".into(),
        fix: "Set its domain above; the page then shows the exact CNAME to create and checks it.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "_acme-challenge.www.example.com";
    const TARGET: &str = "0b6c2f5e-7d3a-4f1e-9c8b-2a1d3e4f5a6b.auth.example.net";

    fn advice(status: CnameStatus) -> Advice {
        advise(&status, NAME, TARGET, "192.0.2.53:53".parse().expect("address"))
    }

    #[test]
    fn every_status_names_the_record_to_fix() {
        let record = format!("{NAME}. CNAME {TARGET}.");
        let ok = advice(CnameStatus::Correct);
        assert_eq!((ok.code.as_str(), ok.headline.as_str()), ("correct", "CNAME present and correct"));
        assert!(advice(CnameStatus::Missing).fix.contains(&record));
        let elsewhere = advice(CnameStatus::PointsElsewhere { target: "old.example.net".into() });
        assert!(elsewhere.detail.contains("old.example.net") && elsewhere.fix.contains(&record));
        let shadowed = advice(CnameStatus::ShadowedByTxt { values: vec!["a".into(), "b".into()] });
        assert!(shadowed.detail.contains("(a, b)") && shadowed.fix.starts_with("Delete the TXT record(s)"));
        let unknown = advice(CnameStatus::Unknown { reason: "timed out".into() });
        assert!(unknown.detail.contains("192.0.2.53:53") && unknown.detail.contains("timed out"));
        assert_eq!(no_domain().code, "unknown");
    }
}
