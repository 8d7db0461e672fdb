//! Billing in the built binary: with the two Stripe secrets set, the portal
//! role runs the payment reminders. A failed payment (a signed webhook) is
//! mailed by the first round after it — here the one at the next start — and
//! exactly once, however often the process restarts.

use certdns_billing::webhook::Webhook;
use serde_json::{Value, json};

use crate::support::*;

const WEBHOOK_SECRET: &str = "whsec_binary_tests_0123456789";

fn outbox(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("outbox.eml")).unwrap_or_default()
}

/// One of Stripe's example objects (the fixtures the portal tests use).
fn fixture(resource: &str) -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/stripe/fixtures3.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all["resources"][resource].clone()
}

/// Posts a Stripe event, signed now, to the portal's webhook.
async fn deliver(portal: &str, id: &str, kind: &str, object: Value) -> u16 {
    let created = certdns_core::now().unix_timestamp();
    let payload = json!({
        "id": id, "object": "event", "api_version": "2026-09-30.endive", "created": created,
        "data": { "object": object }, "livemode": false, "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null }, "type": kind,
    })
    .to_string();
    let signature = Webhook::generate_test_header(&payload, WEBHOOK_SECRET, None);
    let r = reqwest::Client::new()
        .post(format!("{portal}/billing/webhook"))
        .header("stripe-signature", signature)
        .body(payload)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

#[tokio::test]
async fn a_failed_payment_is_mailed_once_by_the_portal_role_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CERTDNS_BILLING__STRIPE__SECRET_KEY", "sk_test_binary"),
        ("CERTDNS_BILLING__STRIPE__WEBHOOK_SECRET", WEBHOOK_SECRET),
        // Nothing here calls Stripe; a closed port, should anything try.
        ("CERTDNS_BILLING__STRIPE__API_BASE", "http://127.0.0.1:9"),
    ];
    let args = serve_on_loopback(&[]);
    let server = Certdns::start(dir.path(), &args, &env).await;
    let out = run_cli(dir.path(), &["admin", "account", "create", "--email", "owner@example.com"], &[], None);
    assert!(out.success, "{}", out.stderr);
    let account = out.stdout.rsplit_once('(').unwrap().1.trim().trim_end_matches(')').to_owned();
    let mut session = fixture("checkout.session");
    session["id"] = json!("cs_test_binary");
    session["mode"] = json!("subscription");
    session["status"] = json!("complete");
    session["customer"] = json!("cus_binary");
    session["client_reference_id"] = json!(account);
    session["subscription"] = json!("sub_binary");
    let portal = server.portal_url();
    assert_eq!(deliver(&portal, "evt_checkout", "checkout.session.completed", session).await, 200);
    let mut invoice = fixture("invoice");
    invoice["id"] = json!("in_binary");
    invoice["customer"] = json!("cus_binary");
    assert_eq!(deliver(&portal, "evt_failed", "invoice.payment_failed", invoice).await, 200);
    // This process's first round ran before the failure; the next is a minute away.
    server.stop().await;

    let payment_mails = || outbox(dir.path()).matches("Subject: certdns: a payment failed").count();
    let server = Certdns::start(dir.path(), &args, &env).await;
    for _ in 0..100 {
        if payment_mails() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(payment_mails(), 1, "{}", outbox(dir.path()));
    assert!(outbox(dir.path()).contains("To: owner@example.com"));
    server.stop().await;

    // Restarted again: the warning is recorded as sent, nothing goes twice.
    let server = Certdns::start(dir.path(), &args, &env).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    server.stop().await;
    assert_eq!(payment_mails(), 1, "{}", outbox(dir.path()));
    let store =
        certdns_store::open(&format!("sqlite://{}", dir.path().join("certdns.sqlite3").display())).await.unwrap();
    let record = store.billing().billing(account.parse().unwrap()).await.unwrap();
    assert_eq!(record.warnings_sent, 1);
}
