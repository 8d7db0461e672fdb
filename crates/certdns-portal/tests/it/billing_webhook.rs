//! `POST /billing/webhook`: Stripe's signature, each event once, the newest
//! state winning, and what each handled type changes (on both backends).

use certdns_billing::webhook::Webhook;
use certdns_core::{AccountId, AuditKind};
use certdns_store::BillingRecord;
use certdns_testkit::Backend;

use crate::stripe_events::*;
use crate::support::{Env, signup};

certdns_testkit::both_backends!(
    bad_missing_and_stale_signatures_are_refused_and_change_nothing,
    checkout_then_subscription_sets_the_plan_and_a_replay_changes_nothing,
    an_older_subscription_event_does_not_undo_a_newer_one,
    unknown_types_and_unknown_customers_are_acknowledged_and_ignored,
    a_failed_payment_warns_the_customer_and_a_paid_invoice_ends_it,
    a_checkout_naming_a_customer_of_another_account_is_refused_and_changes_nothing,
);

async fn customer(env: &Env, email: &str) -> AccountId {
    signup(env, email).await;
    let account = env.store.core().account_by_email(email).await.unwrap().unwrap().id;
    env.store.core().billing().set_stripe_customer(account, "cus_certdns_1").await.unwrap();
    account
}

async fn record(env: &Env, account: AccountId) -> BillingRecord {
    env.store.core().billing().billing(account).await.unwrap()
}

async fn audited(env: &Env, account: AccountId, kind: AuditKind) -> usize {
    let events = env.store.core().audit_events(account, None, 100).await.unwrap();
    events.iter().filter(|e| e.kind == kind).count()
}

async fn bad_missing_and_stale_signatures_are_refused_and_change_nothing(backend: Backend) {
    let (env, _stripe) = start_billing(backend, 14, 14).await;
    let account = customer(&env, "ann@example.com").await;
    let before = record(&env, account).await;
    let payload =
        event("evt_sig", "customer.subscription.updated", now(), subscription("cus_certdns_1", "active", PRO_PRICE));
    let wrong_secret = Webhook::generate_test_header(&payload, "whsec_not_ours", None);
    let stale = Webhook::generate_test_header(&payload, WEBHOOK_SECRET, Some(now() - 301));
    let tampered = Webhook::generate_test_header(&payload, WEBHOOK_SECRET, None);
    let other_body = payload.replace(PRO_PRICE, BUSINESS_PRICE);
    for (body, signature) in [
        (payload.as_str(), None),
        (payload.as_str(), Some(wrong_secret.as_str())),
        (payload.as_str(), Some(stale.as_str())),
        (payload.as_str(), Some("t=abc,v1=00")),
        (other_body.as_str(), Some(tampered.as_str())),
    ] {
        let (status, body) = deliver_signed(&env, body, signature).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("bad_signature")), "{signature:?}");
    }
    assert_eq!(record(&env, account).await, before, "nothing changed");
    // The id was not spent either: the genuine event still applies.
    assert_eq!(deliver(&env, &payload).await.0, 200);
    assert_eq!(record(&env, account).await.plan.as_deref(), Some("pro"));
}

async fn checkout_then_subscription_sets_the_plan_and_a_replay_changes_nothing(backend: Backend) {
    let (env, _stripe) = start_billing(backend, 14, 14).await;
    signup(&env, "bo@example.com").await;
    let account = env.store.core().account_by_email("bo@example.com").await.unwrap().unwrap().id;
    let checkout = event("evt_co", "checkout.session.completed", now(), checkout_session(account, "cus_bo"));
    let (status, body) = deliver(&env, &checkout).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("Applied")), "{body}");
    assert_eq!(env.store.core().billing().account_by_stripe_customer("cus_bo").await.unwrap(), Some(account));

    let created = event("evt_sub", "customer.subscription.created", now(), subscription("cus_bo", "active", PRO_PRICE));
    assert_eq!(deliver(&env, &created).await.0, 200);
    let after = record(&env, account).await;
    assert_eq!((after.plan.as_deref(), after.subscription_status.as_deref()), (Some("pro"), Some("active")));
    assert_eq!(audited(&env, account, AuditKind::BillingPlanChanged).await, 1);

    // Stripe delivers again (a retry, or an attacker replaying a captured body
    // with a fresh signature): 200, nothing changes, nothing is audited twice.
    let (status, body) = deliver(&env, &created).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("Replay")));
    assert_eq!(record(&env, account).await, after);
    assert_eq!(audited(&env, account, AuditKind::BillingPlanChanged).await, 1);
    assert_eq!(audited(&env, account, AuditKind::BillingCheckoutCompleted).await, 1);
}

async fn an_older_subscription_event_does_not_undo_a_newer_one(backend: Backend) {
    let (env, _stripe) = start_billing(backend, 14, 14).await;
    let account = customer(&env, "cy@example.com").await;
    let t = now();
    let upgrade =
        event("evt_up", "customer.subscription.updated", t, subscription("cus_certdns_1", "active", BUSINESS_PRICE));
    let earlier =
        event("evt_early", "customer.subscription.updated", t - 60, subscription("cus_certdns_1", "active", PRO_PRICE));
    assert_eq!(deliver(&env, &upgrade).await.0, 200);
    let (status, body) = deliver(&env, &earlier).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("Stale")));
    assert_eq!(record(&env, account).await.plan.as_deref(), Some("business"));
    // Deleted, then a late "updated" from before the deletion: stays free.
    let deleted = event(
        "evt_del",
        "customer.subscription.deleted",
        t + 5,
        subscription("cus_certdns_1", "canceled", BUSINESS_PRICE),
    );
    assert_eq!(deliver(&env, &deleted).await.0, 200);
    let late = event(
        "evt_late",
        "customer.subscription.updated",
        t + 1,
        subscription("cus_certdns_1", "active", BUSINESS_PRICE),
    );
    assert_eq!(deliver(&env, &late).await.1["outcome"], "Stale");
    let after = record(&env, account).await;
    assert_eq!((after.plan, after.subscription_status.as_deref()), (None, Some("canceled")));
    assert_eq!(audited(&env, account, AuditKind::BillingSubscriptionEnded).await, 1);
}

async fn unknown_types_and_unknown_customers_are_acknowledged_and_ignored(backend: Backend) {
    let (env, _stripe) = start_billing(backend, 14, 14).await;
    let account = customer(&env, "di@example.com").await;
    let product = event("evt_prod", "product.created", now(), crate::fake_stripe::fixture("product"));
    let (status, body) = deliver(&env, &product).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("Ignored")), "{body}");
    assert_eq!(deliver(&env, &product).await.1["outcome"], "Replay");
    let stranger =
        event("evt_str", "customer.subscription.updated", now(), subscription("cus_nobody", "active", PRO_PRICE));
    assert_eq!(deliver(&env, &stranger).await.1["outcome"], "Ignored");
    assert_eq!(
        record(&env, account).await,
        BillingRecord { stripe_customer_id: Some("cus_certdns_1".into()), ..Default::default() }
    );
}

async fn a_failed_payment_warns_the_customer_and_a_paid_invoice_ends_it(backend: Backend) {
    let (env, _stripe) = start_billing(backend, 14, 14).await;
    let account = customer(&env, "ed@example.com").await;
    let t = now();
    let failed = event("evt_fail", "invoice.payment_failed", t, invoice("cus_certdns_1"));
    let (status, body) = deliver(&env, &failed).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("PaymentFailed")), "{body}");
    let after = record(&env, account).await;
    assert_eq!(after.payment_failed_at.map(|t| t.unix_timestamp()), Some(t));
    assert_eq!(audited(&env, account, AuditKind::BillingPaymentFailed).await, 1);
    // The warning is the reminders' (within a minute in the portal role).
    let reminders = env.reminders();
    assert_eq!(reminders.round(certdns_core::now()).await.unwrap(), 1);
    assert_eq!(record(&env, account).await.warnings_sent, 1);
    let outbox = env.outbox();
    assert!(outbox.contains("a payment failed") && outbox.contains("Everything keeps working until"), "{outbox}");
    assert!(outbox.contains(&format!("{}/billing", env.portal)), "{outbox}");
    assert_eq!(audited(&env, account, AuditKind::BillingPaymentWarningSent).await, 1);
    // A replay, a retry of the payment that fails again, another round: nobody is warned again.
    deliver(&env, &failed).await;
    let retry = event("evt_fail2", "invoice.payment_failed", t + 60, invoice("cus_certdns_1"));
    assert_eq!(deliver(&env, &retry).await.0, 200);
    assert_eq!(reminders.round(certdns_core::now()).await.unwrap(), 0);
    assert_eq!(record(&env, account).await.warnings_sent, 1);

    let paid = event("evt_paid", "invoice.paid", t + 61, invoice("cus_certdns_1"));
    assert_eq!(deliver(&env, &paid).await.0, 200);
    let after = record(&env, account).await;
    assert_eq!((after.payment_failed_at, after.warnings_sent), (None, 0));
    assert_eq!(audited(&env, account, AuditKind::BillingPaymentSucceeded).await, 1);
    assert_eq!(reminders.round(certdns_core::now() + time::Duration::days(30)).await.unwrap(), 0, "paid: no more");
}

/// A Checkout finished for one account with the Stripe customer of another
/// (a session made outside certdns, or ids mixed up at Stripe) used to answer
/// 500, which Stripe retries for days: now 409 naming the problem, nothing
/// changed and nothing recorded, so a retry applies once it is sorted out.
async fn a_checkout_naming_a_customer_of_another_account_is_refused_and_changes_nothing(backend: Backend) {
    let (env, _stripe) = start_billing(backend, 14, 14).await;
    let owner = customer(&env, "owner@example.com").await;
    signup(&env, "other@example.com").await;
    let other = env.store.core().account_by_email("other@example.com").await.unwrap().unwrap().id;
    let (before_owner, before_other) = (record(&env, owner).await, record(&env, other).await);
    let checkout = event("evt_co_x", "checkout.session.completed", now(), checkout_session(other, "cus_certdns_1"));
    let (status, body) = deliver(&env, &checkout).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("customer_of_another_account")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("cus_certdns_1"), "{body}");
    assert_eq!((record(&env, owner).await, record(&env, other).await), (before_owner, before_other));
    assert_eq!(audited(&env, other, AuditKind::BillingCheckoutCompleted).await, 0);
    // Not recorded as seen: Stripe's retry is judged again (and refused again).
    assert_eq!(deliver(&env, &checkout).await.0, 409);
    // Once the other account no longer holds the customer, the retry applies.
    env.store.delete_account(owner).await.unwrap();
    let (status, body) = deliver(&env, &checkout).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("Applied")), "{body}");
    assert_eq!(record(&env, other).await.stripe_customer_id.as_deref(), Some("cus_certdns_1"));
}
