//! The embedded default: `certdns serve` with no configuration, as a newcomer runs it.

use crate::support::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::Value;

/// The embedded default: no configuration file, SQLite in the working directory,
/// in-process distribution, all roles, first-start credentials printed once.
#[tokio::test]
async fn embedded_default_serves_api_and_dns_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let args =
        ["serve", "--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--portal-listen", "127.0.0.1:0"];
    let server = Certdns::start(dir.path(), &args, &[]).await;
    assert!(server.banner.contains("serving roles: api, dns, portal"), "{}", server.banner);
    assert!(server.banner.contains("TXT distribution: in-process"), "{}", server.banner);
    assert!(dir.path().join("certdns.sqlite3").exists(), "SQLite file in the working directory");
    let base_url = server.first_start_base_url().expect("first start prints a base URL");
    assert!(base_url.starts_with("http://") && base_url.contains('@'), "{base_url}");

    let http = server.http_url();
    let ready: Value = reqwest::get(format!("{http}/ready")).await.unwrap().json().await.unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    // Metrics only on the operator's listener (loopback by default), not on the public one.
    assert_eq!(reqwest::get(format!("{http}/metrics")).await.unwrap().status(), 404);
    let ops = server.ops_url();
    assert!(ops.starts_with("http://127.0.0.1:"), "{ops}");
    let metrics = reqwest::get(format!("{ops}/metrics")).await.unwrap().text().await.unwrap();
    for series in
        ["certdns_replica_entries", "certdns_replica_stream_up 1", "certdns_replica_snapshot_timestamp_seconds"]
    {
        assert!(metrics.contains(series), "{series} missing from /metrics:\n{metrics}");
    }

    let portal = server.portal_url();
    let login = reqwest::get(format!("{portal}/login")).await.unwrap();
    assert_eq!(login.status(), 200, "the portal serves its login page");

    let soa = dns_query(server.dns_udp(), ZONE, RecordType::SOA).await;
    assert_eq!(soa.metadata.response_code, ResponseCode::NoError);
    assert!(soa.metadata.authoritative);
    assert_eq!(soa.answers.len(), 1);

    let reg = register(&base_url).await;
    let fulldomain = reg["fulldomain"].as_str().unwrap().to_owned();
    assert!(fulldomain.ends_with(ZONE), "{fulldomain}");
    update(&http, &reg, &valid_txt('a')).await;
    update(&http, &reg, &valid_txt('b')).await;
    let answer = crate::support::wait_for_txt(server.dns_udp(), &fulldomain, 2).await;
    assert_eq!(txt_values(&answer), [valid_txt('b'), valid_txt('a')]);
    let metrics = reqwest::get(format!("{ops}/metrics")).await.unwrap().text().await.unwrap();
    for series in ["certdns_api_updates_total 2", "certdns_api_update_batch_writes_bucket{le=\"1\"} 2"] {
        assert!(metrics.contains(series), "{series} missing from /metrics:\n{metrics}");
    }

    server.stop().await;

    // Second start: no new credentials, and the stored values are answered at once.
    let server = Certdns::start(dir.path(), &args, &[]).await;
    assert!(server.first_start_base_url().is_none(), "credentials are printed only once");
    let answer = dns_query(server.dns_udp(), &fulldomain, RecordType::TXT).await;
    let mut values = txt_values(&answer);
    values.sort();
    assert_eq!(values, [valid_txt('a'), valid_txt('b')]);
    server.stop().await;
}

/// An operator changing only the zone's domain gets a valid configuration: the
/// name server defaults follow the domain.
#[tokio::test]
async fn changing_only_the_zone_domain_is_enough() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("CERTDNS_ZONE__DOMAIN", "auth.example.net")];
    let out = run_cli(dir.path(), &["config"], &env, None);
    assert!(out.success, "{}", out.stderr);
    assert!(out.stdout.contains("domain = \"auth.example.net\""), "{}", out.stdout);

    let args =
        ["serve", "--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--portal-listen", "127.0.0.1:0"];
    let server = Certdns::start(dir.path(), &args, &env).await;
    let ns = dns_query(server.dns_udp(), "auth.example.net", RecordType::NS).await;
    assert_eq!(ns.metadata.response_code, ResponseCode::NoError);
    let names: Vec<String> = ns.answers.iter().map(|r| r.data.to_string()).collect();
    assert_eq!(names, ["ns1.auth.example.net."]);
    server.stop().await;
}

/// Everything certdns writes is private to its user: a local user must not read
/// the session signing key (in the database), reset links (in the outbox) or the
/// operator's password (in the first-start file).
#[tokio::test]
async fn files_are_private_to_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Relative to the working directory, as an operator would type it.
    let args = serve_on_loopback(&["--data-dir", "data"]);
    let server = Certdns::start(dir.path(), &args, &[]).await;
    assert_eq!(mode(&data), 0o700, "the data directory it created");
    let creds = server.first_start_file().expect("credentials in a file, stdout is not a terminal");
    // Named by its absolute path: the banner is read from logs, not from the data directory.
    assert!(creds.is_absolute(), "{}", creds.display());
    assert_eq!(creds.parent().unwrap().canonicalize().unwrap(), data.canonicalize().unwrap());
    assert_eq!(mode(&creds), 0o600);
    let password = std::fs::read_to_string(&creds).unwrap();
    let password = password.lines().find_map(|l| l.trim().strip_prefix("operator password")).unwrap().trim().to_owned();
    assert!(!server.banner.contains(&password), "the password is not on stdout:\n{}", server.banner);

    // A reset mail for the operator lands in the outbox.
    let login = format!("operator@{ZONE}");
    assert_eq!(submit_portal_form(&server.portal_url(), "/forgot-password", &[("email", &login)]).await, 303);
    for file in ["certdns.sqlite3", "certdns.sqlite3-wal", "certdns.sqlite3-shm", "outbox.eml"] {
        let path = data.join(file);
        assert!(path.exists(), "{file}");
        assert_eq!(mode(&path), 0o600, "{file}");
    }
    server.stop().await;

    // A file an older version left readable is made private at the next start.
    let db = data.join("certdns.sqlite3");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = Certdns::start(dir.path(), &args, &[]).await;
    assert_eq!(mode(&db), 0o600);
    server.stop().await;
}
