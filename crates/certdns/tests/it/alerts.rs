//! Alerts in the built binary, as a customer's systems receive them: a webhook
//! endpoint gets `delegation.broken` when the CNAME goes and
//! `delegation.restored` when it is back (checked through `portal.resolver`, a
//! resolver on loopback), and `auth.failures` when a client keeps sending a
//! wrong password — each signed, each once per change, and mailed too.

use certdns_testkit::resolver::{Zone, cname, spawn_dns};
use certdns_testkit::webhook::Receiver;
use certdns_webhooks::signature;
use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::support::*;

/// The events received so far, each checked against the signing secret.
fn received(seen: &Receiver, secret: &str) -> Vec<Value> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    seen.seen()
        .iter()
        .map(|(headers, body)| {
            let header = headers.get(signature::HEADER).expect("signed").to_str().unwrap();
            assert_eq!(signature::verify(secret, header, body, now, 300), Ok(()), "{header}");
            serde_json::from_slice(body).unwrap()
        })
        .collect()
}

fn of_type(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

/// Waits (bounded: 40 s) until `f` holds.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..400 {
        if f() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_receives_signed_alerts_once_per_change() {
    let zone = Zone::default();
    let resolver = spawn_dns(zone.clone()).await.to_string();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CERTDNS_PORTAL__RESOLVER", resolver.as_str()),
        ("CERTDNS_PORTAL__WEBHOOKS_ALLOW_PRIVATE", "true"),
        ("CERTDNS_PORTAL__ALERT_AUTH_FAILURES", "5"),
    ];
    let server = Certdns::start(dir.path(), &serve_on_loopback(&[]), &env).await;
    let out = run_cli(dir.path(), &["admin", "account", "create", "--email", "owner@example.com"], &[], None);
    assert!(out.success, "{}", out.stderr);
    let out = run_cli(dir.path(), &["admin", "key", "create", "--account", "owner@example.com"], &[], None);
    let base = out.stdout.lines().find(|l| l.starts_with("http://")).expect("base URL").trim().to_owned();
    let base =
        base.replace(&format!("@{}", base.rsplit('@').next().unwrap()), &format!("@{}", &server.http_url()[7..]));

    // The customer's endpoint, as the Alerts page stores it.
    let seen = Receiver::start().await;
    let store =
        certdns_store::open(&format!("sqlite://{}", dir.path().join("certdns.sqlite3").display())).await.unwrap();
    let owner = store.account_by_email("owner@example.com").await.unwrap().unwrap();
    let secret = certdns_webhooks::new_secret();
    let all = ["delegation.broken", "delegation.restored", "renewal.overdue", "auth.failures", "key.grace_ending"];
    let endpoint = certdns_store::WebhookEndpoint {
        id: uuid::Uuid::new_v4(),
        account_id: owner.id,
        url: seen.url(),
        secret: secret.clone(),
        events: all.iter().map(|s| (*s).to_owned()).collect(),
        created_at: 0,
    };
    store.alerts().create_webhook(&endpoint).await.unwrap();

    let reg: Value = reqwest::Client::new()
        .post(format!("{base}/register"))
        .body(r#"{"subject":"www.example.org"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fulldomain = reg["fulldomain"].as_str().unwrap().to_owned();
    let name = "_acme-challenge.www.example.org".to_owned();
    zone.lock().unwrap().insert((name.clone(), RecordType::CNAME), vec![cname(&fulldomain)]);
    update(&server.http_url(), &reg, &valid_txt('a')).await;
    // Working for the first time is not news: let the monitor see it correct.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(received(&seen, &secret).is_empty());

    // The CNAME goes: broken, once.
    zone.lock().unwrap().remove(&(name.clone(), RecordType::CNAME));
    update(&server.http_url(), &reg, &valid_txt('b')).await;
    eventually("delegation.broken", || of_type(&received(&seen, &secret), "delegation.broken") == 1).await;
    let broken = received(&seen, &secret).into_iter().find(|e| e["type"] == "delegation.broken").unwrap();
    assert_eq!(broken["data"]["domain"], "www.example.org");
    assert_eq!(broken["data"]["status"], "missing");
    assert_eq!(broken["data"]["cname"]["target"], fulldomain.as_str());
    assert_eq!(broken["account"], owner.id.to_string());

    // A client with a stale password: one auth.failures, however many more fail.
    let bad = || async {
        let r = reqwest::Client::new()
            .post(format!("{}/update", server.http_url()))
            .header("X-Api-User", reg["username"].as_str().unwrap())
            .header("X-Api-Key", "x".repeat(40))
            .json(&serde_json::json!({ "subdomain": reg["subdomain"], "txt": valid_txt('c') }))
            .send()
            .await
            .unwrap();
        assert!([401, 429].contains(&r.status().as_u16()), "{}", r.status());
    };
    for _ in 0..8 {
        bad().await;
    }
    eventually("auth.failures", || of_type(&received(&seen, &secret), "auth.failures") == 1).await;
    for _ in 0..3 {
        bad().await;
    }
    let failures = received(&seen, &secret).into_iter().find(|e| e["type"] == "auth.failures").unwrap();
    assert_eq!(failures["data"]["subject"], "registration");
    assert_eq!(failures["data"]["domain"], "www.example.org");
    assert!(failures["data"]["failures"].as_u64().unwrap() >= 5, "{failures}");

    // Fixed: restored, once.
    zone.lock().unwrap().insert((name.clone(), RecordType::CNAME), vec![cname(&fulldomain)]);
    update(&server.http_url(), &reg, &valid_txt('d')).await;
    eventually("delegation.restored", || of_type(&received(&seen, &secret), "delegation.restored") == 1).await;
    // Long enough for another flush and watch round: still one of each.
    tokio::time::sleep(std::time::Duration::from_secs(12)).await;
    let events = received(&seen, &secret);
    let counts: Vec<usize> =
        ["delegation.broken", "auth.failures", "delegation.restored"].iter().map(|t| of_type(&events, t)).collect();
    assert_eq!(counts, [1, 1, 1], "{events:?}");
    let ids: std::collections::HashSet<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), events.len(), "every event has its own id");

    // Mailed as well, and in the owner's audit log.
    let outbox = std::fs::read_to_string(dir.path().join("outbox.eml")).unwrap_or_default();
    assert!(outbox.contains("failed authentications on the registration for www.example.org"), "{outbox}");
    let audit = store.audit_events(owner.id, None, 100).await.unwrap();
    assert!(audit.iter().any(|e| e.kind == certdns_core::AuditKind::AuthFailuresAlerted));
    server.stop().await;
}
