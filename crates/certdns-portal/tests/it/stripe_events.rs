//! Stripe webhook events for the tests: Stripe's example objects with the
//! fields that matter set, wrapped in an event and signed with the SDK's own
//! test helper, and the portal configured for billing against the fake.

use certdns_billing::webhook::Webhook;
use certdns_billing::{BillingConfig, Limits, PlanConfig, StripeConfig};
use certdns_core::AccountId;
use certdns_testkit::Backend;
use serde_json::{Value, json};

use crate::fake_stripe::{FakeStripe, fixture};
use crate::support::{Env, start_full};

pub const WEBHOOK_SECRET: &str = "whsec_certdns_tests_0123456789";
pub const PRO_PRICE: &str = "price_pro_monthly";
pub const BUSINESS_PRICE: &str = "price_business_monthly";

/// Updates per name and day on the free plan of the tests.
pub const FREE_UPDATES_PER_DAY: u64 = 4;

/// Free: 2 registrations, 1 key, 2 TXT values and 4 updates per name and
/// day; Pro: 50, 5, 2 and 1000; Business: no limit.
pub fn billing_config(stripe: &FakeStripe, grace_days: u32, update_grace_days: u32) -> BillingConfig {
    let plan = |id: &str, name: &str, price: &str, stripe: Option<&str>, limits: [Option<u64>; 4]| PlanConfig {
        id: id.into(),
        name: name.into(),
        price: price.into(),
        stripe_price_id: stripe.map(str::to_owned),
        limits: Limits {
            registrations: limits[0],
            license_keys: limits[1],
            txt_values: limits[2],
            updates_per_day: limits[3],
        },
    };
    BillingConfig {
        stripe: StripeConfig {
            secret_key: Some("sk_test_certdns".into()),
            webhook_secret: Some(WEBHOOK_SECRET.into()),
            api_base: Some(stripe.base.clone()),
        },
        plans: vec![
            plan("free", "Free", "€0", None, [Some(2), Some(1), Some(2), Some(FREE_UPDATES_PER_DAY)]),
            plan("pro", "Pro", "€9 / month", Some(PRO_PRICE), [Some(50), Some(5), Some(2), Some(1000)]),
            plan("business", "Business", "€49 / month", Some(BUSINESS_PRICE), [None; 4]),
        ],
        grace_days,
        update_grace_days,
    }
}

/// A portal and API with billing on, and the fake Stripe they call.
pub async fn start_billing(backend: Backend, grace_days: u32, update_grace_days: u32) -> (Env, FakeStripe) {
    let stripe = FakeStripe::start().await;
    let env = start_full(backend, |_| {}, billing_config(&stripe, grace_days, update_grace_days)).await;
    (env, stripe)
}

/// An event as Stripe sends it.
pub fn event(id: &str, kind: &str, created: i64, object: Value) -> String {
    json!({
        "id": id,
        "object": "event",
        "api_version": "2026-09-30.endive",
        "created": created,
        "data": { "object": object },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": kind,
    })
    .to_string()
}

pub fn subscription(customer: &str, status: &str, price: &str) -> Value {
    let mut sub = fixture("subscription");
    sub["id"] = json!("sub_certdns_1");
    sub["customer"] = json!(customer);
    sub["status"] = json!(status);
    sub["items"]["data"][0]["price"]["id"] = json!(price);
    sub
}

pub fn invoice(customer: &str) -> Value {
    let mut invoice = fixture("invoice");
    invoice["id"] = json!("in_certdns_1");
    invoice["customer"] = json!(customer);
    invoice
}

pub fn checkout_session(account: AccountId, customer: &str) -> Value {
    let mut session = fixture("checkout.session");
    session["id"] = json!("cs_test_done");
    session["mode"] = json!("subscription");
    session["status"] = json!("complete");
    session["customer"] = json!(customer);
    session["client_reference_id"] = json!(account.to_string());
    session["subscription"] = json!("sub_certdns_1");
    session
}

/// Posts `payload` to the webhook signed now with the right secret.
pub async fn deliver(env: &Env, payload: &str) -> (u16, Value) {
    let signature = Webhook::generate_test_header(payload, WEBHOOK_SECRET, None);
    deliver_signed(env, payload, Some(&signature)).await
}

pub async fn deliver_signed(env: &Env, payload: &str, signature: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(format!("{}/billing/webhook", env.portal)).body(payload.to_owned());
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub fn now() -> i64 {
    certdns_core::now().unix_timestamp()
}
