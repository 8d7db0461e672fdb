//! Registrations bound to their domain, through the built binary: the acmeproxy
//! dialect is answered by the DNS at once, and lego's HTTP storage gives back
//! credentials sealed under the embedded default's generated key, across a restart.

use std::os::unix::fs::PermissionsExt;

use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::support::*;

/// A license key with storage access, made with the CLI; returns `KEYID:SECRET`.
fn storage_key(dir: &std::path::Path) -> String {
    let out = run_cli(dir, &["admin", "account", "create", "--email", "lego@example.com"], &[], None);
    assert!(out.success, "{}", out.stderr);
    let args = ["admin", "key", "create", "--account", "lego@example.com", "--name", "lego", "--storage-access"];
    let out = run_cli(dir, &args, &[("CERTDNS_PUBLIC_API_URL", "http://api.invalid")], None);
    assert!(out.success, "{}", out.stderr);
    let url = out.stdout.lines().find(|l| l.starts_with("http://")).expect("base URL printed");
    url.trim_start_matches("http://").split_once('@').unwrap().0.to_owned()
}

#[tokio::test]
async fn acmeproxy_is_served_at_once_and_storage_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let args = serve_on_loopback(&[]);
    let server = Certdns::start(dir.path(), &args, &[]).await;
    let creds = storage_key(dir.path());
    let base = server.http_url().replacen("http://", &format!("http://{creds}@"), 1);
    let http = reqwest::Client::new();

    let key_file = dir.path().join("credentials.key");
    let mode = std::fs::metadata(&key_file).expect("the generated credentials key").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the credentials key is private");

    let reg: Value = http
        .post(format!("{base}/register"))
        .body(r#"{"subject":"*.shop.example.com"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fulldomain = reg["fulldomain"].as_str().unwrap().to_owned();

    // acmeproxy: visible in the DNS when the call returns, gone after cleanup.
    let proxy = |action: &str, value: String| {
        http.post(format!("{base}/acmeproxy/{action}"))
            .json(&serde_json::json!({ "fqdn": "_acme-challenge.shop.example.com.", "value": value }))
            .send()
    };
    for c in ['a', 'b', 'c'] {
        assert_eq!(proxy("present", valid_txt(c)).await.unwrap().status(), 200);
    }
    let mut values = txt_values(&dns_query(server.dns_udp(), &fulldomain, RecordType::TXT).await);
    values.sort();
    assert_eq!(values, [valid_txt('a'), valid_txt('b'), valid_txt('c')], "three values at once, no polling");
    assert_eq!(proxy("cleanup", valid_txt('b')).await.unwrap().status(), 200);
    let mut values = txt_values(&dns_query(server.dns_udp(), &fulldomain, RecordType::TXT).await);
    values.sort();
    assert_eq!(values, [valid_txt('a'), valid_txt('c')], "exactly that value removed");

    let account = fetch(&base).await;
    assert_eq!(account["password"], reg["password"]);
    server.stop().await;

    // The key file is read back: what was sealed before the restart still opens.
    let server = Certdns::start(dir.path(), &args, &[]).await;
    let base = server.http_url().replacen("http://", &format!("http://{creds}@"), 1);
    let account = fetch(&base).await;
    assert_eq!(account["password"], reg["password"]);
    assert_eq!(account["fulldomain"], fulldomain.as_str());
    server.stop().await;
}

async fn fetch(base: &str) -> Value {
    let r = reqwest::get(format!("{base}/storage/shop.example.com")).await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The account API through the built binary: a token made with the CLI adds a
/// domain-bound registration on the portal, its credentials update at the API
/// and the DNS answers at once (no `/register`); the API's `/openapi.json`
/// documents the account API with the portal as its server.
#[tokio::test]
async fn account_api_token_from_the_cli_provisions_a_registration() {
    let dir = tempfile::tempdir().unwrap();
    let server = Certdns::start(dir.path(), &serve_on_loopback(&[]), &[]).await;
    let key = storage_key(dir.path());
    let key_id = key.split_once(':').unwrap().0;
    let args = ["admin", "token", "create", "--account", "lego@example.com", "--name", "ci", "--scope", "read-write"];
    let out = run_cli(dir.path(), &args, &[], None);
    assert!(out.success, "{}", out.stderr);
    let token = out.stdout.lines().find(|l| l.starts_with("cdpat_")).expect("token printed").to_owned();
    assert!(out.stdout.contains("expires "), "{}", out.stdout);

    let http = reqwest::Client::new();
    let made: Value = http
        .post(format!("{}/api/v1/registrations", server.portal_url()))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "key_id": key_id, "domain": "www.example.org" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let creds = &made["credentials"];
    let fulldomain = creds["fulldomain"].as_str().expect("credentials in the answer").to_owned();
    update(&server.http_url(), creds, &valid_txt('p')).await;
    let answer = dns_query(server.dns_udp(), &fulldomain, RecordType::TXT).await;
    assert_eq!(txt_values(&answer), [valid_txt('p')]);

    let doc: Value = reqwest::get(format!("{}/openapi.json", server.http_url())).await.unwrap().json().await.unwrap();
    assert!(doc["paths"]["/update"].is_object());
    let servers = &doc["paths"]["/api/v1/registrations"]["servers"];
    assert_eq!(servers[0]["url"].as_str(), Some(server.portal_url().trim_end_matches('/')), "{servers}");

    let id = &token[6..22];
    let revoke = ["admin", "token", "revoke", "--account", "lego@example.com", id];
    assert!(run_cli(dir.path(), &revoke, &[], None).success);
    let r = http.get(format!("{}/api/v1/keys", server.portal_url())).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    server.stop().await;
}
