//! CAA records that let only the customer's ACME account, validating by DNS-01,
//! issue for their domain (RFC 8659 with the RFC 8657 `accounturi` and
//! `validationmethods` parameters).

/// The CA's CAA identifier for well-known ACME directories.
pub(crate) fn ca_for(uri: &url::Url) -> Option<&'static str> {
    let host = uri.host_str()?;
    [
        ("letsencrypt.org", "letsencrypt.org"),
        ("api.pki.goog", "pki.goog"),
        ("zerossl.com", "sectigo.com"),
        ("sectigo.com", "sectigo.com"),
        ("buypass.com", "buypass.com"),
        ("ssl.com", "ssl.com"),
        ("digicert.com", "digicert.com"),
    ]
    .iter()
    .find(|(suffix, _)| host == *suffix || host.ends_with(&format!(".{suffix}")))
    .map(|(_, ca)| *ca)
}

/// The `issue` and `issuewild` records for `domain` (a leading `*.` is the same
/// domain), and the CA identifier used: `ca` when given, else the one known for
/// the account URL's host. The error is a sentence for the form.
pub(crate) fn caa_records(domain: &str, account_uri: &str, ca: Option<&str>) -> Result<(Vec<String>, String), String> {
    let uri = url::Url::parse(account_uri.trim()).map_err(|_| {
        "Paste your ACME account URL, like https://acme-v02.api.letsencrypt.org/acme/acct/123456789.".to_owned()
    })?;
    if uri.scheme() != "https" || uri.as_str().contains(['"', ';', ' ']) {
        return Err("The account URL must be an https:// URL without quotes, spaces or semicolons.".into());
    }
    let ca = match ca.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) if c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '-') => c.to_ascii_lowercase(),
        Some(_) => return Err("The CA's domain name may only contain letters, digits, dots and dashes.".into()),
        None => ca_for(&uri)
            .map(str::to_owned)
            .ok_or("We do not know this CA. Enter its CAA domain (for example letsencrypt.org).")?,
    };
    let base = domain.trim_start_matches("*.").trim_end_matches('.');
    if base.is_empty() {
        return Err("Set the registration's domain first: CAA records name it.".into());
    }
    let value = format!("{ca}; accounturi={}; validationmethods=dns-01", uri.as_str());
    Ok((vec![format!("{base}. CAA 0 issue \"{value}\""), format!("{base}. CAA 0 issuewild \"{value}\"")], ca))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LE: &str = "https://acme-v02.api.letsencrypt.org/acme/acct/123456789";

    #[test]
    fn known_cas_are_recognised() {
        let ca = |u: &str| ca_for(&url::Url::parse(u).ok()?);
        assert_eq!(ca(LE), Some("letsencrypt.org"));
        assert_eq!(ca("https://acme-staging-v02.api.letsencrypt.org/acme/acct/1"), Some("letsencrypt.org"));
        assert_eq!(ca("https://dv.acme-v02.api.pki.goog/account/x"), Some("pki.goog"));
        assert_eq!(ca("https://acme.zerossl.com/v2/DV90/account/x"), Some("sectigo.com"));
        assert_eq!(ca("https://notletsencrypt.org/acct/1"), None, "suffix match is per label");
    }

    #[test]
    fn records_for_a_domain() {
        let (records, ca) = caa_records("*.example.com", LE, None).expect("valid");
        assert_eq!(ca, "letsencrypt.org");
        assert_eq!(
            records,
            [
                format!("example.com. CAA 0 issue \"letsencrypt.org; accounturi={LE}; validationmethods=dns-01\""),
                format!("example.com. CAA 0 issuewild \"letsencrypt.org; accounturi={LE}; validationmethods=dns-01\""),
            ]
        );
        let (_, ca) =
            caa_records("example.com.", "https://ca.internal/acct/7", Some(" Internal-CA.example ")).expect("valid");
        assert_eq!(ca, "internal-ca.example");
    }

    #[test]
    fn refusals_explain_themselves() {
        assert!(caa_records("example.com", "not a url", None).unwrap_err().contains("Paste your ACME account URL"));
        assert!(caa_records("example.com", "http://ca.example/acct/1", None).unwrap_err().contains("https://"));
        assert!(caa_records("example.com", "https://ca.example/a;b", None).unwrap_err().contains("semicolons"));
        assert!(
            caa_records("example.com", "https://ca.example/acct/1", None).unwrap_err().contains("do not know this CA")
        );
        assert!(caa_records("example.com", LE, Some("bad ca!")).unwrap_err().contains("letters, digits"));
        assert!(caa_records("", LE, None).unwrap_err().contains("domain first"), "no placeholder domain");
    }
}
