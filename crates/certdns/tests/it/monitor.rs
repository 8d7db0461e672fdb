//! The delegation monitor in the built binary: the portal role checks each
//! domain-bound registration through `portal.resolver` (here a stand-in
//! resolver on loopback), again after every update; a CNAME that breaks is
//! mailed once to the owner, and so is its fix; the portal's API shows it.

use certdns_testkit::resolver::{Zone, cname, spawn_dns};
use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::support::*;

fn outbox(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("outbox.eml")).unwrap_or_default()
}

/// Waits (bounded) until `f` holds.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test]
async fn a_broken_cname_is_mailed_once_and_so_is_its_fix() {
    let zone = Zone::default();
    let resolver = spawn_dns(zone.clone()).await.to_string();
    let dir = tempfile::tempdir().unwrap();
    let env = [("CERTDNS_PORTAL__RESOLVER", resolver.as_str())];
    let server = Certdns::start(dir.path(), &serve_on_loopback(&[]), &env).await;
    let out = run_cli(dir.path(), &["admin", "account", "create", "--email", "owner@example.com"], &[], None);
    assert!(out.success, "{}", out.stderr);
    let out = run_cli(dir.path(), &["admin", "key", "create", "--account", "owner@example.com"], &[], None);
    let base = out.stdout.lines().find(|l| l.starts_with("http://")).expect("base URL").trim().to_owned();
    let out = run_cli(
        dir.path(),
        &["admin", "token", "create", "--account", "owner@example.com", "--name", "t", "--scope", "read"],
        &[],
        None,
    );
    let token = out.stdout.lines().find(|l| l.starts_with("cdpat_")).expect("token").to_owned();
    let base =
        base.replace(&format!("@{}", base.rsplit('@').next().unwrap()), &format!("@{}", &server.http_url()[7..]));
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
    let sub = reg["subdomain"].as_str().unwrap().to_owned();
    let name = "_acme-challenge.www.example.org".to_owned();
    zone.lock().unwrap().insert((name.clone(), RecordType::CNAME), vec![cname(&fulldomain)]);

    let delegation = || async {
        let r: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/registrations/{sub}", server.portal_url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["delegation"]["status"].as_str().unwrap_or_default().to_owned()
    };
    // Checked within seconds of being registered: correct, nothing mailed.
    for _ in 0..100 {
        if delegation().await == "correct" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(delegation().await, "correct");

    // The CNAME goes; the next update makes the monitor look again.
    zone.lock().unwrap().remove(&(name.clone(), RecordType::CNAME));
    update(&server.http_url(), &reg, &valid_txt('a')).await;
    eventually("the broken-CNAME mail", || outbox(dir.path()).contains("is broken")).await;
    assert_eq!(delegation().await, "missing");
    update(&server.http_url(), &reg, &valid_txt('b')).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let mails = outbox(dir.path());
    assert_eq!(mails.matches("Subject: certdns: the CNAME for www.example.org is broken").count(), 1, "{mails}");
    assert!(mails.contains("To: owner@example.com"), "{mails}");
    assert!(mails.contains(&format!("{name}. CNAME {fulldomain}.")), "the record to create: {mails}");

    // Fixed: one more mail, and the portal's history says both.
    zone.lock().unwrap().insert((name.clone(), RecordType::CNAME), vec![cname(&fulldomain)]);
    update(&server.http_url(), &reg, &valid_txt('c')).await;
    eventually("the restored mail", || {
        outbox(dir.path()).contains("Subject: certdns: the CNAME for www.example.org is correct again")
    })
    .await;
    assert_eq!(delegation().await, "correct");
    server.stop().await;
}
