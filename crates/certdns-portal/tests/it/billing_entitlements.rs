//! The entitlements end to end: plans and payment standing changed through the
//! signed webhook, enforced by the real acme-dns API (`/register`, `/update`).

use certdns_core::AccountId;
use certdns_testkit::Backend;
use serde_json::Value;

use crate::stripe_events::*;
use crate::support::{Env, create_key, register, signup};

certdns_testkit::both_backends!(
    the_quota_refuses_registrations_and_a_downgrade_only_blocks_growth,
    grace_keeps_everything_working,
    after_grace_growth_stops_then_updates_only_after_the_second_period_and_two_warnings,
    updates_per_day_are_limited_per_name_and_the_refusal_names_the_limit,
    a_name_keeps_the_newest_values_its_plan_allows_in_both_dialects,
    without_billing_nothing_limits_updates,
);

const TXT: &str = "___validation_token_from_the_ca_43_chars___";
const DAY: i64 = 86_400;

/// Signs up, links a Stripe customer, makes the one key the free plan allows.
async fn customer(env: &Env, email: &str) -> (AccountId, String) {
    let (account, base_url, _) = customer_of(env, email, "cus_certdns_1").await;
    (account, base_url)
}

/// [`customer`] with the Stripe customer `cus`; also the signed-in browser.
async fn customer_of(env: &Env, email: &str, cus: &str) -> (AccountId, String, reqwest::Client) {
    let c = signup(env, email).await;
    let account = env.store.core().account_by_email(email).await.unwrap().unwrap().id;
    env.store.core().billing().set_stripe_customer(account, cus).await.unwrap();
    let (_, base_url) = create_key(env, &c, "ci").await;
    (account, base_url, c)
}

async fn update(env: &Env, registration: &Value) -> (u16, Value) {
    update_with(env, registration, TXT).await
}

async fn update_with(env: &Env, registration: &Value, txt: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/update", env.api))
        .header("X-Api-User", registration["username"].as_str().unwrap())
        .header("X-Api-Key", registration["password"].as_str().unwrap())
        .json(&serde_json::json!({ "subdomain": registration["subdomain"], "txt": txt }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The i-th distinct valid TXT value.
fn value(i: usize) -> String {
    format!("{i:_>43}")
}

/// What the registration's row keeps (newest first): what the DNS serves.
async fn kept(env: &Env, registration: &Value) -> (u64, Vec<String>) {
    let subdomain = registration["subdomain"].as_str().unwrap().parse().unwrap();
    let state = env.store.core().txt_state(subdomain, 10).await.unwrap().unwrap();
    (state.version, state.values.iter().map(|v| v.as_str().to_owned()).collect())
}

/// An instant `days` (may be fractional) from `t` (Unix seconds).
fn at(t: i64, days: f64) -> time::OffsetDateTime {
    #[allow(clippy::cast_possible_truncation)]
    let secs = t + (days * DAY as f64) as i64;
    time::OffsetDateTime::from_unix_timestamp(secs).unwrap()
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

async fn grace_keeps_everything_working(backend: Backend) {
    let (env, _stripe) = start_billing(backend, 14, 14).await;
    let (_, base_url) = customer(&env, "grace@example.com").await;
    let (_, registration) = register(&base_url, "a.example.com").await;
    let failed = event("evt_f", "invoice.payment_failed", now(), invoice("cus_certdns_1"));
    assert_eq!(deliver(&env, &failed).await.0, 200);
    assert_eq!(env.reminders().round(certdns_core::now()).await.unwrap(), 1);
    assert!(env.outbox().contains("Everything keeps working until"), "{}", env.outbox());
    assert_eq!(register(&base_url, "b.example.com").await.0, 201, "registrations work in grace");
    assert_eq!(update(&env, &registration).await.0, 200, "renewals work in grace");
}

/// 14 + 14 days, driven by the failure's own time (Stripe's event time, in the
/// past) and the reminders' rounds at chosen instants; the API judges at the
/// real now.
async fn after_grace_growth_stops_then_updates_only_after_the_second_period_and_two_warnings(backend: Backend) {
    let (env, _stripe) = start_billing(backend, 14, 14).await;
    let reminders = env.reminders();
    let (late, base_url) = customer(&env, "late@example.com").await;
    let (_, registration) = register(&base_url, "a.example.com").await;
    let t0 = now() - 40 * DAY;
    let failed = event("evt_f1", "invoice.payment_failed", t0, invoice("cus_certdns_1"));
    assert_eq!(deliver(&env, &failed).await.0, 200);
    let (status, body) = register(&base_url, "b.example.com").await;
    assert_eq!((status, body["error"].as_str()), (403, Some("payment_overdue")), "{body}");
    assert_eq!(update(&env, &registration).await.0, 200, "no warning sent: renewals go on");

    // The first warning, when the payment failed.
    assert_eq!(reminders.round(at(t0, 0.01)).await.unwrap(), 1);
    assert_eq!(reminders.round(at(t0, 5.0)).await.unwrap(), 0, "nothing due until three days before grace ends");
    assert_eq!(update(&env, &registration).await.0, 200, "one warning is not enough to stop renewals");
    // The reminder three days before grace ends, and the final notice three
    // days before the second period ends.
    assert_eq!(reminders.round(at(t0, 11.01)).await.unwrap(), 1);
    assert_eq!(reminders.round(at(t0, 25.01)).await.unwrap(), 1);
    let before = kept(&env, &registration).await;
    let (status, body) = update_with(&env, &registration, &value(1)).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("payment_overdue_updates_stopped")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("paid"), "{body}");
    assert_eq!(kept(&env, &registration).await, before, "nothing stored");
    assert_eq!(reminders.round(certdns_core::now()).await.unwrap(), 0, "stopped: no more warnings");
    let outbox = env.outbox();
    for subject in ["a payment failed", "reminder — new registrations pause on", "final notice — certificate renewals"]
    {
        assert_eq!(outbox.matches(subject).count(), 1, "{subject}: {outbox}");
    }
    let events = env.store.core().audit_events(late, None, 50).await.unwrap();
    let warnings: Vec<_> = events
        .iter()
        .filter(|e| e.kind == certdns_core::AuditKind::BillingPaymentWarningSent)
        .map(|e| e.detail["warning"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(warnings, ["updates_stopping", "grace_ending", "payment_failed"], "newest first");

    // Another account, two warnings but still in the second period: renewals go on.
    let (_, other_url, _) = customer_of(&env, "second@example.com", "cus_certdns_2").await;
    let (_, other) = register(&other_url, "c.example.com").await;
    let t1 = now() - 20 * DAY;
    let failed = event("evt_f2", "invoice.payment_failed", t1, invoice("cus_certdns_2"));
    assert_eq!(deliver(&env, &failed).await.0, 200);
    assert_eq!(reminders.round(at(t1, 0.01)).await.unwrap(), 1);
    assert_eq!(reminders.round(at(t1, 11.01)).await.unwrap(), 1);
    assert_eq!(update(&env, &other).await.0, 200, "the second period is not over");

    // Paid again: everything back at once.
    let paid = event("evt_paid", "invoice.paid", now(), invoice("cus_certdns_1"));
    assert_eq!(deliver(&env, &paid).await.0, 200);
    assert_eq!(update_with(&env, &registration, &value(1)).await.0, 200);
    assert_eq!(register(&base_url, "b.example.com").await.0, 201);
}

/// A client stuck in a loop on one name meets the limit; the account's other
/// names renew on. The refusal names the limit like the registration quota's.
async fn updates_per_day_are_limited_per_name_and_the_refusal_names_the_limit(backend: Backend) {
    let (env, _stripe) = start_billing(backend, 14, 14).await;
    let (_, base_url, browser) = customer_of(&env, "loop@example.com", "cus_certdns_1").await;
    let (_, looping) = register(&base_url, "a.example.com").await;
    let (_, renewing) = register(&base_url, "b.example.com").await;
    for i in 0..FREE_UPDATES_PER_DAY {
        let (status, body) = update_with(&env, &looping, &value(usize::try_from(i).unwrap())).await;
        assert_eq!(status, 200, "{body}");
    }
    let before = kept(&env, &looping).await;
    let (status, body) = update_with(&env, &looping, &value(99)).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("updates_per_day_limit_reached")), "{body}");
    assert_eq!(
        body["message"],
        "4 of 4 updates of this name today on the Free plan: updates resume at 00:00 UTC, or upgrade"
    );
    assert_eq!(kept(&env, &looping).await, before, "nothing stored");
    assert_eq!(update(&env, &renewing).await.0, 200, "another name is not held up");

    let (status, page, _) = crate::support::get(&browser, &format!("{}/billing", env.portal)).await;
    assert_eq!(status, 200);
    assert!(page.contains("4 of 4 updates today on your busiest name, a.example.com"), "{page}");
    assert!(page.contains("limit reached"), "{page}");

    // Pro allows 1000 a day: the same name goes on at once.
    let pro =
        event("evt_pro", "customer.subscription.updated", now(), subscription("cus_certdns_1", "active", PRO_PRICE));
    assert_eq!(deliver(&env, &pro).await.0, 200);
    assert_eq!(update_with(&env, &looping, &value(99)).await.0, 200);
    assert_eq!(kept(&env, &looping).await.0, before.0 + 1);
}

/// acme-dns keeps two values per name and rotates; a plan caps what a name
/// keeps in either dialect (acmeproxy keeps ten otherwise), never below two:
/// a certificate for a name and its wildcard needs two at once.
async fn a_name_keeps_the_newest_values_its_plan_allows_in_both_dialects(backend: Backend) {
    let (env, _stripe) = start_billing(backend, 14, 14).await;
    let (_, base_url) = customer(&env, "values@example.com").await;
    let (_, acme_dns) = register(&base_url, "a.example.com").await;
    let (_, proxied) = register(&base_url, "b.example.com").await;
    for i in 1..=3 {
        assert_eq!(update_with(&env, &acme_dns, &value(i)).await.0, 200);
    }
    assert_eq!(kept(&env, &acme_dns).await, (3, vec![value(3), value(2)]), "the oldest rotated out");
    let client = reqwest::Client::new();
    for i in 1..=3 {
        let body = serde_json::json!({ "fqdn": "_acme-challenge.b.example.com", "value": value(10 + i) });
        let r = client.post(format!("{base_url}/acmeproxy/present")).json(&body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    }
    assert_eq!(kept(&env, &proxied).await, (3, vec![value(13), value(12)]), "capped by the free plan");
}

/// Self-hosting (billing off): no plan, no limit, as before.
async fn without_billing_nothing_limits_updates(backend: Backend) {
    let env = crate::support::start(backend).await;
    let c = signup(&env, "self@example.com").await;
    let (_, base_url) = create_key(&env, &c, "ci").await;
    let (_, registration) = register(&base_url, "a.example.com").await;
    for i in 0..60 {
        let (status, body) = update_with(&env, &registration, &value(i)).await;
        assert_eq!(status, 200, "update {i}: {body}");
    }
    assert_eq!(kept(&env, &registration).await, (60, vec![value(59), value(58)]));
}
