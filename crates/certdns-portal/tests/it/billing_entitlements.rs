//! The entitlements end to end: plans and payment standing changed through the
//! signed webhook, enforced by the real acme-dns API (`/register`, `/update`).

use certdns_core::AccountId;
use certdns_testkit::Backend;
use serde_json::Value;

use crate::stripe_events::*;
use crate::support::{Env, create_key, register, signup};

certdns_testkit::both_backends!(
    the_quota_refuses_registrations_and_a_downgrade_only_blocks_growth,
    grace_keeps_everything_working_and_warns_by_mail,
    after_grace_growth_stops_then_updates_and_paying_brings_everything_back,
);

const TXT: &str = "___validation_token_from_the_ca_43_chars___";

/// Signs up, links a Stripe customer, makes the one key the free plan allows.
async fn customer(env: &Env, email: &str) -> (AccountId, String) {
    let c = signup(env, email).await;
    let account = env.store.core().account_by_email(email).await.unwrap().unwrap().id;
    env.store.core().billing().set_stripe_customer(account, "cus_certdns_1").await.unwrap();
    let (_, base_url) = create_key(env, &c, "ci").await;
    (account, base_url)
}

async fn update(env: &Env, registration: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/update", env.api))
        .header("X-Api-User", registration["username"].as_str().unwrap())
        .header("X-Api-Key", registration["password"].as_str().unwrap())
        .json(&serde_json::json!({ "subdomain": registration["subdomain"], "txt": TXT }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn the_quota_refuses_registrations_and_a_downgrade_only_blocks_growth(backend: Backend) {
    let (env, _stripe) = start_billing(backend, 14, 14).await;
    let (account, base_url) = customer(&env, "quota@example.com").await;
    let (first, second) = (register(&base_url, "a.example.com").await, register(&base_url, "b.example.com").await);
    assert_eq!((first.0, second.0), (201, 201));
    let (status, body) = register(&base_url, "c.example.com").await;
    assert_eq!((status, body["error"].as_str()), (403, Some("registrations_limit_reached")), "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.starts_with("2 of 2 registrations on the Free plan"), "{message}");
    // The account API refuses the same way: 403 and the limit's code, nothing made.
    let now_t = certdns_core::now();
    let scope = certdns_core::TokenScope::ReadWrite;
    let (token, text) = certdns_core::access_token::issue(account, "t", scope, None, now_t).unwrap();
    env.store.create_access_token(&token).await.unwrap();
    let key_id = base_url.split("//").nth(1).unwrap().split(':').next().unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/registrations", env.portal))
        .bearer_auth(&text)
        .json(&serde_json::json!({ "key_id": key_id, "domain": "d.example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let refused: Value = r.json().await.unwrap();
    assert_eq!(refused["error"], "registrations_limit_reached", "{refused}");
    assert!(refused["message"].as_str().unwrap().starts_with("2 of 2 registrations"), "{refused}");
    assert_eq!(env.store.core().list_registrations(account).await.unwrap().len(), 2, "nothing made");

    // Pro allows 50.
    let pro = event(
        "evt_pro",
        "customer.subscription.updated",
        now() - 10,
        subscription("cus_certdns_1", "active", PRO_PRICE),
    );
    assert_eq!(deliver(&env, &pro).await.0, 200);
    assert_eq!(register(&base_url, "c.example.com").await.0, 201);

    // Back to free with 3 of 2: nothing is deleted, existing names keep
    // renewing, only a fourth is refused.
    let ended =
        event("evt_end", "customer.subscription.deleted", now(), subscription("cus_certdns_1", "canceled", PRO_PRICE));
    assert_eq!(deliver(&env, &ended).await.0, 200);
    assert_eq!(env.store.core().list_registrations(account).await.unwrap().len(), 3);
    assert_eq!(update(&env, &first.1).await.0, 200);
    let (status, body) = register(&base_url, "d.example.com").await;
    assert_eq!(status, 403);
    assert!(body["message"].as_str().unwrap().starts_with("3 of 2 registrations"), "{body}");
}

async fn grace_keeps_everything_working_and_warns_by_mail(backend: Backend) {
    let (env, _stripe) = start_billing(backend, 14, 14).await;
    let (_, base_url) = customer(&env, "grace@example.com").await;
    let (_, registration) = register(&base_url, "a.example.com").await;
    let failed = event("evt_f", "invoice.payment_failed", now(), invoice("cus_certdns_1"));
    assert_eq!(deliver(&env, &failed).await.0, 200);
    assert!(env.outbox().contains("Everything keeps working for 14 days"), "{}", env.outbox());
    assert_eq!(register(&base_url, "b.example.com").await.0, 201, "registrations work in grace");
    assert_eq!(update(&env, &registration).await.0, 200, "renewals work in grace");
}

async fn after_grace_growth_stops_then_updates_and_paying_brings_everything_back(backend: Backend) {
    // No grace and no second period: what is left is the two-warnings rule.
    let (env, _stripe) = start_billing(backend, 0, 0).await;
    let (_, base_url) = customer(&env, "late@example.com").await;
    let (_, registration) = register(&base_url, "a.example.com").await;
    let t = now();
    let first = event("evt_f1", "invoice.payment_failed", t, invoice("cus_certdns_1"));
    assert_eq!(deliver(&env, &first).await.0, 200);
    let (status, body) = register(&base_url, "b.example.com").await;
    assert_eq!((status, body["error"].as_str()), (403, Some("payment_overdue")), "{body}");
    assert_eq!(update(&env, &registration).await.0, 200, "one warning is not enough to stop renewals");

    let second = event("evt_f2", "invoice.payment_failed", t + 1, invoice("cus_certdns_1"));
    assert_eq!(deliver(&env, &second).await.0, 200);
    let (status, body) = update(&env, &registration).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("payment_overdue_updates_stopped")), "{body}");

    let paid = event("evt_paid", "invoice.paid", t + 2, invoice("cus_certdns_1"));
    assert_eq!(deliver(&env, &paid).await.0, 200);
    assert_eq!(update(&env, &registration).await.0, 200);
    assert_eq!(register(&base_url, "b.example.com").await.0, 201);
}
