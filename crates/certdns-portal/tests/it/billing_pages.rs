//! The Billing and pricing pages, Checkout and the customer portal against the
//! fake Stripe, and the operator's plan override.

use certdns_core::AuditKind;
use certdns_testkit::Backend;

use crate::stripe_events::*;
use crate::support::{client, create_operator, csrf, get, login, post, signup, start};

certdns_testkit::both_backends!(
    without_billing_there_is_no_billing_page_pricing_or_webhook,
    the_billing_page_shows_usage_and_checkout_creates_one_customer,
    the_success_page_trusts_stripe_not_the_browser,
    checkout_with_a_customer_another_account_holds_is_refused_and_changes_nothing,
    operators_override_a_plan_and_it_is_audited,
);

async fn without_billing_there_is_no_billing_page_pricing_or_webhook(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "self@example.com").await;
    for path in ["/billing", "/pricing"] {
        assert_eq!(get(&c, &format!("{}{path}", env.portal)).await.0, 404, "{path}");
    }
    let (_, keys, _) = get(&c, &format!("{}/keys", env.portal)).await;
    assert!(!keys.contains("href=\"/billing\""), "no Billing link");
    let r = reqwest::Client::new().post(format!("{}/billing/webhook", env.portal)).body("{}").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

async fn the_billing_page_shows_usage_and_checkout_creates_one_customer(backend: Backend) {
    let (env, stripe) = start_billing(backend, 14, 14).await;
    // Public pricing.
    let (status, pricing, _) = get(&client(), &format!("{}/pricing", env.portal)).await;
    assert_eq!(status, 200);
    assert!(pricing.contains("€9 / month") && pricing.contains("unlimited registrations"), "{pricing}");

    // Browsers apply form-action to redirects: Stripe's pages must be allowed.
    let r = client().get(format!("{}/pricing", env.portal)).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("form-action 'self' https://checkout.stripe.com https://billing.stripe.com"), "{csp}");
    let c = signup(&env, "fay@example.com").await;
    let account = env.store.core().account_by_email("fay@example.com").await.unwrap().unwrap().id;
    let (status, page, _) = get(&c, &format!("{}/billing", env.portal)).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"current-plan\">Free<") && page.contains("0 of 2 registrations"), "{page}");
    assert!(page.contains("0 of 1 license key<") && page.contains("Choose Pro"), "{page}");
    assert!(page.contains("0 of 4 updates today per name"), "{page}");
    assert!(page.contains("Up to 2 TXT values per name"), "{page}");
    // Counts agree with their number everywhere on the page.
    assert!(page.contains("<li>1 license key</li>") && page.contains("<li>5 license keys</li>"), "{page}");
    assert!(page.contains("<li>4 updates per name per day</li>"), "{page}");
    assert!(!page.contains("1 license keys") && !page.contains(" 1 registrations"), "{page}");
    assert!(!page.contains("action=\"/billing/portal\""), "no customer yet");

    let token = csrf(&page);
    let (status, _, location) =
        post(&c, &format!("{}/billing/checkout", env.portal), &[("csrf", &token), ("plan", "pro")]).await;
    assert_eq!(status, 303);
    assert!(
        location.as_deref().unwrap().starts_with("https://checkout.stripe.test/c/pay/cs_test_fake"),
        "{location:?}"
    );
    let requests = stripe.requests();
    let customers: Vec<_> = requests.iter().filter(|r| r.path == "/v1/customers").collect();
    assert_eq!(customers.len(), 1);
    assert_eq!(customers[0].field("email"), Some("fay@example.com"));
    assert_eq!(customers[0].authorization, "Bearer sk_test_certdns", "the key goes to Stripe only");
    let session = requests.iter().find(|r| r.path == "/v1/checkout/sessions").unwrap();
    assert_eq!(session.field("mode"), Some("subscription"));
    assert_eq!(session.field("line_items[0][price]"), Some(PRO_PRICE));
    assert_eq!(session.field("client_reference_id"), Some(account.to_string().as_str()));
    assert_eq!(session.field("customer"), Some("cus_fake1"));
    let stored = env.store.core().billing().billing(account).await.unwrap();
    assert_eq!(stored.stripe_customer_id.as_deref(), Some("cus_fake1"));

    // A second checkout reuses the customer; a plan that cannot be bought is refused.
    post(&c, &format!("{}/billing/checkout", env.portal), &[("csrf", &token), ("plan", "business")]).await;
    assert_eq!(stripe.requests().iter().filter(|r| r.path == "/v1/customers").count(), 1);
    let (status, _, _) =
        post(&c, &format!("{}/billing/checkout", env.portal), &[("csrf", &token), ("plan", "free")]).await;
    assert_eq!(status, 400);
    let (status, _, _) =
        post(&c, &format!("{}/billing/checkout", env.portal), &[("csrf", &token), ("plan", "<x>")]).await;
    assert_eq!(status, 400);

    // Now there is a customer: the portal link.
    let (_, page, _) = get(&c, &format!("{}/billing", env.portal)).await;
    assert!(page.contains("action=\"/billing/portal\""));
    let (status, _, location) = post(&c, &format!("{}/billing/portal", env.portal), &[("csrf", &token)]).await;
    assert_eq!(status, 303);
    assert!(location.unwrap().starts_with("https://billing.stripe.test/p/session/"));
    let portal = stripe.requests().into_iter().find(|r| r.path == "/v1/billing_portal/sessions").unwrap();
    assert_eq!(portal.field("customer"), Some("cus_fake1"));
}

async fn the_success_page_trusts_stripe_not_the_browser(backend: Backend) {
    let (env, stripe) = start_billing(backend, 14, 14).await;
    let c = signup(&env, "gus@example.com").await;
    let (_, page, _) = get(&c, &format!("{}/billing", env.portal)).await;
    let token = csrf(&page);
    let (_, _, location) =
        post(&c, &format!("{}/billing/checkout", env.portal), &[("csrf", &token), ("plan", "pro")]).await;
    let session = location.unwrap().rsplit('/').next().unwrap().to_owned();
    let success = |id: &str| format!("{}/billing/success?session_id={id}", env.portal);
    // Not paid yet, unknown to Stripe, or not even an id: nothing to celebrate.
    for id in [session.as_str(), "cs_test_nobody", "../../v1/customers"] {
        let (status, _, location) = get(&c, &success(id)).await;
        assert_eq!((status, location.as_deref()), (303, Some("/billing?notice=checkout_unknown")), "{id}");
    }
    stripe.complete_session(&session, "sub_fake");
    // Someone else's browser holding the id learns nothing and changes nothing.
    let other = signup(&env, "hal@example.com").await;
    let (_, _, location) = get(&other, &success(&session)).await;
    assert_eq!(location.as_deref(), Some("/billing?notice=checkout_unknown"));
    let (_, _, location) = get(&c, &success(&session)).await;
    assert_eq!(location.as_deref(), Some("/billing?notice=checkout_done"));
    let read = format!("/v1/checkout/sessions/{session}");
    assert!(stripe.requests().iter().any(|r| r.method == "GET" && r.path == read), "read from Stripe");
    // The plan itself only changes when Stripe's signed event arrives.
    let account = env.store.core().account_by_email("gus@example.com").await.unwrap().unwrap().id;
    assert_eq!(env.store.core().billing().billing(account).await.unwrap().plan, None);
}

/// Stripe handing back a customer that another account already holds used to
/// answer 500; now the page says what happened (409), and nothing is stored
/// or started at Stripe.
async fn checkout_with_a_customer_another_account_holds_is_refused_and_changes_nothing(backend: Backend) {
    let (env, stripe) = start_billing(backend, 14, 14).await;
    signup(&env, "first@example.com").await;
    let first = env.store.core().account_by_email("first@example.com").await.unwrap().unwrap().id;
    // The fake's first customer will be cus_fake1: already this account's.
    env.store.core().billing().set_stripe_customer(first, "cus_fake1").await.unwrap();
    let c = signup(&env, "second@example.com").await;
    let second = env.store.core().account_by_email("second@example.com").await.unwrap().unwrap().id;
    let (_, page, _) = get(&c, &format!("{}/billing", env.portal)).await;
    let token = csrf(&page);
    let (status, page, location) =
        post(&c, &format!("{}/billing/checkout", env.portal), &[("csrf", &token), ("plan", "pro")]).await;
    assert_eq!((status, location), (409, None), "{page}");
    assert!(page.contains("belongs to another certdns account") && page.contains("nothing was changed"), "{page}");
    let record = env.store.core().billing().billing(second).await.unwrap();
    assert_eq!(record.stripe_customer_id, None, "nothing stored");
    assert_eq!(env.store.core().billing().account_by_stripe_customer("cus_fake1").await.unwrap(), Some(first));
    assert!(!stripe.requests().iter().any(|r| r.path == "/v1/checkout/sessions"), "no Checkout started");
}

async fn operators_override_a_plan_and_it_is_audited(backend: Backend) {
    let (env, _stripe) = start_billing(backend, 14, 14).await;
    signup(&env, "ida@example.com").await;
    let customer = env.store.core().account_by_email("ida@example.com").await.unwrap().unwrap().id;
    create_operator(&env, "ops@example.com").await;
    let ops = login(&env, "ops@example.com", crate::support::PASSWORD).await.unwrap();
    let (_, account, _) = get(&ops, &format!("{}/admin/accounts/{customer}", env.portal)).await;
    assert!(account.contains(&format!("/admin/accounts/{customer}/plan")), "the account's page links its plan");
    let url = format!("{}/admin/accounts/{customer}/plan", env.portal);
    let (status, page, _) = get(&ops, &url).await;
    assert_eq!(status, 200, "{page}");
    let token = csrf(&page);
    let (status, _, _) = post(&ops, &url, &[("csrf", &token), ("plan", "platinum")]).await;
    assert_eq!(status, 400);
    let (status, _, location) = post(&ops, &url, &[("csrf", &token), ("plan", "business")]).await;
    assert_eq!((status, location), (303, Some(format!("/admin/accounts/{customer}/plan?notice=plan_set"))));
    let record = env.store.core().billing().billing(customer).await.unwrap();
    assert_eq!(record.effective_plan(), Some("business"));
    let events = env.store.core().audit_events(customer, None, 50).await.unwrap();
    let event = events.iter().find(|e| e.kind == AuditKind::BillingPlanOverridden).unwrap();
    assert_eq!(event.detail["by"], "ops@example.com");
    // Customers cannot.
    let c = login(&env, "ida@example.com", crate::support::PASSWORD).await.unwrap();
    let own = crate::support::token(&env, &c).await;
    let (status, page, _) = post(&c, &url, &[("csrf", &own), ("plan", "free")]).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("Operators only"));
}
