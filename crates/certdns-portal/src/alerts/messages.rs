//! The words of each alert's mail: what happened, what it means for renewals,
//! and what to do.

use certdns_monitor::{Alert, AlertKind};

use crate::dates::when_unix as date;

/// Subject and body of the mail for `alert`.
pub(super) fn delegation(alert: &Alert, link: &str) -> (String, String) {
    let record = format!("{}. CNAME {}.", alert.cname_name, alert.target);
    match &alert.kind {
        AlertKind::Broken { status, detail } => {
            let found = match status.as_str() {
                "missing" => format!("{} has no record any more.", alert.cname_name),
                "elsewhere" => format!("{} {detail}, not at {}.", alert.cname_name, alert.target),
                "shadowed" => format!("{} has a TXT record ({detail}) that the CA reads instead.", alert.cname_name),
                _ => format!("{}: {status} {detail}", alert.cname_name),
            };
            (
                format!("certdns: the CNAME for {} is broken — the next renewal will fail", alert.domain),
                format!(
                    "Our monitor checked the delegation of {domain} and found a problem:\n\n  {found}\n\n\
                     Until it is fixed, certificate renewals for {domain} through certdns will fail.\n\
                     The record must read:\n\n  {record}\n\n\
                     Registration: {link}\n\nWe will write once more when it is correct again.\n",
                    domain = alert.domain
                ),
            )
        }
        AlertKind::RenewalOverdue { last_renewal, expected_by } => {
            let date = |t: i64| {
                time::OffsetDateTime::from_unix_timestamp(t)
                    .ok()
                    .and_then(|t| t.format(time::macros::format_description!("[year]-[month]-[day]")).ok())
                    .unwrap_or_default()
            };
            (
                format!("certdns: the certificate renewal for {} is overdue", alert.domain),
                format!(
                    "Your ACME client renewed {domain} through certdns until {last}, and from its usual rhythm the \
                     next renewal was due by {by}. None has come.\n\n\
                     The CNAME is checked separately (you would have heard if it were broken). Look at the client: \
                     its logs, its schedule (cron, systemd timer), and whether the server it runs on still exists.\n\n\
                     Registration: {link}\n",
                    domain = alert.domain,
                    last = date(*last_renewal),
                    by = date(*expected_by),
                ),
            )
        }
        AlertKind::Restored => (
            format!("certdns: the CNAME for {} is correct again", alert.domain),
            format!(
                "The delegation of {} is in place again:\n\n  {record}\n\nRenewals through certdns work.\n\
                 Registration: {link}\n",
                alert.domain
            ),
        ),
    }
}

/// A burst of failed authentications on `what` (a registration or key, named
/// for people).
pub(super) fn auth_failures(what: &str, failures: u64, first_at: i64, last_at: i64, link: &str) -> (String, String) {
    (
        format!("certdns: {failures} failed authentications on {what}"),
        format!(
            "Between {first} and {last}, {failures} requests to the certdns API named {what} with the wrong \
             secret (or from an address its allow-from list does not admit).\n\n\
             If it is your ACME client, its stored credentials are out of date and its renewals are failing: \
             compare them with the portal, or rotate and update the client.\n\
             If it is not yours, someone is guessing: the API slows them down, and the secrets are too long to guess, \
             but you may want to restrict the allow-from list.\n\n{link}\n\n\
             We write once per burst; the next notice comes only after a quiet quarter of an hour.\n",
            first = date(first_at),
            last = date(last_at),
        ),
    )
}

/// A rotated key's old secret still in use as its grace period ends.
pub(super) fn grace_ending(name: &str, key: &str, last_used_at: i64, until: i64, link: &str) -> (String, String) {
    (
        format!("certdns: the old secret of license key “{name}” stops working at {}", date(until)),
        format!(
            "The license key “{name}” ({key}) was rotated, and its previous secret was still used at {used}. \
             It stops working at {ends}.\n\n\
             Whatever still sends it — an ACME client's base URL, a hook script, a secret in a CI system — will \
             fail to renew after that. Put the new secret there before {ends}.\n\n{link}\n",
            used = date(last_used_at),
            ends = date(until),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mails_say_what_was_found_and_the_record_to_create() {
        let alert = |kind| Alert {
            account: certdns_core::AccountId::generate(),
            registration: certdns_core::RegistrationId::generate(),
            domain: "www.example.com".into(),
            cname_name: "_acme-challenge.www.example.com".into(),
            target: "abc.auth.example.net".into(),
            kind,
        };
        let broken = alert(AlertKind::Broken { status: "shadowed".into(), detail: "TXT manual".into() });
        let (subject, body) = delegation(&broken, "https://portal/registrations/abc");
        assert!(subject.contains("www.example.com") && subject.contains("broken"), "{subject}");
        assert!(body.contains("TXT record (TXT manual)"), "{body}");
        assert!(body.contains("_acme-challenge.www.example.com. CNAME abc.auth.example.net."), "{body}");
        let (subject, _) = delegation(&alert(AlertKind::Restored), "x");
        assert!(subject.ends_with("correct again"), "{subject}");
        let (subject, body) = auth_failures("registration abc (www.example.com)", 25, 0, 600, "L");
        assert!(subject.contains("25 failed") && body.contains("1970-01-01 00:10 UTC") && body.contains('L'), "{body}");
        let (subject, body) = grace_ending("web1", "k123", 0, 86_400, "L");
        assert!(subject.contains("“web1”") && subject.contains("1970-01-02 00:00 UTC"), "{subject}");
        assert!(body.contains("k123") && body.contains("before 1970-01-02"), "{body}");
    }
}
