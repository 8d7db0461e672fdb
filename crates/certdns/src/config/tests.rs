//! The configuration's unit tests (kept apart so config.rs stays readable).
use super::*;

/// Every key path of `value` (`api.rate_limits.register_per_key.burst`); keys
/// whose default is unset appear too (JSON keeps them as `null`).
fn key_paths(value: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    let Some(object) = value.as_object() else { return };
    for (key, child) in object {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        key_paths(child, &path, out);
        out.push(path);
    }
}

fn documented() -> Vec<String> {
    sections()
        .iter()
        .flat_map(|(section, docs)| {
            docs.iter()
                .map(move |(key, _)| if section.is_empty() { (*key).to_owned() } else { format!("{section}.{key}") })
        })
        .collect()
}

/// Every key is documented (itself, or a table above it whose docs name its
/// keys), and every documented key exists.
#[test]
fn every_key_is_documented() {
    // Unset by default and skipped when unset: give them values to see them.
    let mut config = Config {
        database_url: Some("sqlite://x".into()),
        redis_url: Some("redis://x".into()),
        redis_read_url: Some("redis://y".into()),
        public_api_url: Some("https://x".into()),
        ..Config::default()
    };
    config.api.client_ip_header = Some("x-forwarded-for".parse().unwrap());
    config.api.credentials_key = Some("k".repeat(32));
    config.tls.cert_file = Some("cert.pem".into());
    config.tls.key_file = Some("key.pem".into());
    config.tls.redirect_listen = Some("127.0.0.1:80".parse().unwrap());
    config.billing.stripe.secret_key = Some("sk_test_x".into());
    config.billing.stripe.webhook_secret = Some("whsec_x".into());
    config.billing.stripe.api_base = Some("http://127.0.0.1:1".into());
    let mut paths = Vec::new();
    // tls.acme excludes the files: walked in a copy of its own.
    let mut acme = config.clone();
    acme.tls.cert_file = None;
    acme.tls.key_file = None;
    acme.tls.acme = Some(certdns_tls::AcmeConfig {
        directory_url: "https://ca.example/dir".into(),
        contact: vec!["ops@example.net".into()],
        names: vec!["api.example.net".into()],
        eab_kid: Some("kid".into()),
        eab_hmac_key: Some("key".into()),
        directory_ca_file: Some("ca.pem".into()),
    });
    key_paths(&serde_json::to_value(&acme).unwrap(), "", &mut paths);
    key_paths(&serde_json::to_value(&config).unwrap(), "", &mut paths);
    let docs = documented();
    let tables: Vec<&str> = sections().iter().map(|(section, _)| *section).collect();
    for path in &paths {
        let covered =
            tables.contains(&path.as_str()) || docs.iter().any(|d| path == d || path.starts_with(&format!("{d}.")));
        assert!(covered, "{path} is missing from the key docs");
    }
    for doc in &docs {
        assert!(paths.contains(doc), "{doc} is documented but is not a key");
    }
    let help = env_help();
    for key in [
        "CERTDNS_ZONE__DOMAIN",
        "CERTDNS_DATABASE_URL",
        "CERTDNS_DNS__LISTEN",
        "CERTDNS_API__REGISTRATION",
        "CERTDNS_PORTAL__LISTEN",
        "CERTDNS_PORTAL__SMTP",
        "CERTDNS_TLS__CERT_FILE",
        "CERTDNS_TLS__KEY_FILE",
        "CERTDNS_BILLING__STRIPE__SECRET_KEY_FILE",
        "CERTDNS_BILLING__STRIPE__WEBHOOK_SECRET",
        "CERTDNS_TLS__ACME__DIRECTORY_URL",
        "CERTDNS_TLS__ACME__NAMES",
        "CERTDNS_TLS__ACME__EAB_HMAC_KEY_FILE",
    ] {
        assert!(help.contains(key), "{key} missing from --help");
    }
}

#[test]
fn base_urls() {
    assert_eq!(base_url_with_credentials("https://api.example.net", "k", "s"), "https://k:s@api.example.net");
    assert_eq!(base_url_with_credentials("http://127.0.0.1:8080/", "k", "s"), "http://k:s@127.0.0.1:8080");
    assert!(validate_public_url("https://api.example.net").is_ok());
    assert!(validate_public_url("https://api.example.net/").is_ok());
    assert!(validate_public_url("https://api.example.net/acme").is_err());
    assert!(validate_public_url("https://u:p@api.example.net").is_err());
    assert!(validate_public_url("ftp://api.example.net").is_err());
    // With tls.acme the default is the certificate's first name, not the listener.
    let mut config = Config::default();
    config.tls.acme = Some(certdns_tls::AcmeConfig {
        directory_url: "https://ca.example/dir".into(),
        contact: vec![],
        names: vec!["*.auth.example.net".into(), "API.example.net".into()],
        eab_kid: None,
        eab_hmac_key: None,
        directory_ca_file: None,
    });
    assert_eq!(config.public_api_url("0.0.0.0:443".parse().unwrap()), "https://api.example.net");
    assert_eq!(config.public_api_url("0.0.0.0:8443".parse().unwrap()), "https://api.example.net:8443");
    config.roles = vec![Role::Dns];
    assert_eq!(config.public_api_url("0.0.0.0:8080".parse().unwrap()), "http://0.0.0.0:8080");
}
