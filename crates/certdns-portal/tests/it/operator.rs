//! The operator's search and account page over HTTP: operators only, each
//! search field finds its account and nothing else, an account's page shows
//! that account's things only, and a suspension needs a reason, which the
//! customer is then shown.

use certdns_core::{AccountStatus, AuditKind};
use certdns_testkit::Backend;

use crate::support::*;

certdns_testkit::both_backends!(tokio(flavor = "multi_thread", worker_threads = 2);
    operator_pages_are_for_operators_only,
    search_finds_each_field_and_pages_keep_tenants_apart,
    a_suspension_needs_a_reason_and_the_customer_sees_it,
);

async fn operator_pages_are_for_operators_only(backend: Backend) {
    let env = start(backend).await;
    let customer = signup(&env, "c@example.com").await;
    let id = env.store.core().account_by_email("c@example.com").await.unwrap().unwrap().id;
    for path in [format!("/admin/accounts/{id}"), "/admin/accounts?q=c%40example.com".to_owned()] {
        let (status, page, _) = get(&customer, &format!("{}{path}", env.portal)).await;
        assert_eq!(status, 403, "{path}");
        assert!(page.contains("Operators only") && !page.contains("id=\"account-status\""), "{path}");
        let (status, _, location) = get(&client(), &format!("{}{path}", env.portal)).await;
        assert_eq!((status, location.as_deref()), (303, Some("/login")), "signed out: {path}");
    }
    let t = token(&env, &customer).await;
    let (status, _, _) =
        post(&customer, &format!("{}/admin/accounts/{id}/suspend", env.portal), &[("csrf", &t), ("reason", "x")]).await;
    assert_eq!(status, 403);
    assert_eq!(env.store.core().account(id).await.unwrap().unwrap().status, AccountStatus::Active);
}

async fn search_finds_each_field_and_pages_keep_tenants_apart(backend: Backend) {
    let env = start(backend).await;
    let alice = signup(&env, "alice@alpha.example").await;
    let bob = signup(&env, "bob@beta.example").await;
    let (alice_key, alice_url) = create_key(&env, &alice, "a").await;
    let (bob_key, bob_url) = create_key(&env, &bob, "b").await;
    let (_, alice_reg) = register(&alice_url, "www.alpha.example").await;
    let (_, bob_reg) = register(&bob_url, "shop.beta.example").await;
    create_operator(&env, "ops@example.com").await;
    let ops = login(&env, "ops@example.com", PASSWORD).await.unwrap();
    let alice_id = env.store.core().account_by_email("alice@alpha.example").await.unwrap().unwrap().id;
    let bob_id = env.store.core().account_by_email("bob@beta.example").await.unwrap().unwrap().id;

    let search = |q: String| {
        let ops = ops.clone();
        let url = format!("{}/admin/accounts", env.portal);
        async move {
            let r = ops.get(url).query(&[("q", q.as_str())]).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            r.text().await.unwrap()
        }
    };
    let alice_sub = alice_reg["subdomain"].as_str().unwrap().to_owned();
    let bob_full = bob_reg["fulldomain"].as_str().unwrap().to_owned();
    let cases = [
        ("ALICE@alpha", "alice@alpha.example", "e-mail: alice@alpha.example"),
        ("www.alpha.example", "alice@alpha.example", "domain: www.alpha.example"),
        (alice_sub.as_str(), "alice@alpha.example", "registration: www.alpha.example"),
        (alice_key.as_str(), "alice@alpha.example", "license key: "),
        (bob_full.as_str(), "bob@beta.example", "registration: shop.beta.example"),
        (bob_key.as_str(), "bob@beta.example", "license key: "),
    ];
    for (q, found, matched) in cases {
        let page = search(q.to_owned()).await;
        assert!(page.contains(&format!(">{found}</a>")) && page.contains(matched), "{q}: {page}");
        let other = if found.starts_with("alice") { "bob@beta.example" } else { "alice@alpha.example" };
        assert!(!page.contains(other), "{q} finds one account only");
    }
    let page = search("nobody.example".into()).await;
    assert!(page.contains("No account matches") && !page.contains("alice@") && !page.contains("bob@"), "{page}");
    // Bad input: long, odd, or LIKE's wildcards, answers a page, never an error.
    for q in ["%", "_", "'; DROP TABLE accounts; --", &"x".repeat(5000)] {
        let page = search(q.to_owned()).await;
        assert!(!page.contains("alice@alpha") && !page.contains("bob@beta"), "{q:.20}");
    }

    // Alice's page shows her key and registration, none of Bob's.
    let (status, page, _) = get(&ops, &format!("{}/admin/accounts/{alice_id}", env.portal)).await;
    assert_eq!(status, 200);
    assert!(page.contains(&alice_key) && page.contains(&alice_sub) && page.contains("www.alpha.example"));
    assert!(!page.contains(&bob_key) && !page.contains("shop.beta.example") && !page.contains("bob@"));
    assert!(page.contains("License key created") && page.contains("Registration created"), "its audit log");
    let (_, page, _) = get(&ops, &format!("{}/admin/accounts/{bob_id}", env.portal)).await;
    assert!(page.contains(&bob_key) && !page.contains(&alice_key));
    // Unknown or malformed ids are the 404 page.
    for id in ["5f2f6b1c-1c7e-4a39-8f7c-0d1e2f3a4b5c", "not-an-id"] {
        let (status, _, _) = get(&ops, &format!("{}/admin/accounts/{id}", env.portal)).await;
        assert_eq!(status, 404, "{id}");
    }
}

async fn a_suspension_needs_a_reason_and_the_customer_sees_it(backend: Backend) {
    let env = start(backend).await;
    let customer = signup(&env, "c@example.com").await;
    let id = env.store.core().account_by_email("c@example.com").await.unwrap().unwrap().id;
    create_operator(&env, "ops@example.com").await;
    let ops = login(&env, "ops@example.com", PASSWORD).await.unwrap();
    let t = token(&env, &ops).await;
    let url = format!("{}/admin/accounts/{id}/suspend", env.portal);
    for reason in ["", "   ", &"x".repeat(501)] {
        let (status, page, _) = post(&ops, &url, &[("csrf", &t), ("reason", reason)]).await;
        assert_eq!(status, 422, "{reason:.10}");
        assert!(page.contains("A reason is needed"), "{page}");
    }
    assert_eq!(env.store.core().account(id).await.unwrap().unwrap().status, AccountStatus::Active, "nothing changed");
    assert!(get(&customer, &format!("{}/keys", env.portal)).await.0 == 200, "the session still works");

    let reason = "Phishing reported on 2026-05-01 <script>";
    let (status, _, location) = post(&ops, &url, &[("csrf", &t), ("reason", reason)]).await;
    assert_eq!((status, location), (303, Some(format!("/admin/accounts/{id}?notice=suspended"))));
    let (_, page, _) = get(&ops, &format!("{}/admin/accounts/{id}", env.portal)).await;
    assert!(page.contains("Phishing reported on 2026-05-01 &#60;script&#62;"), "shown, escaped: {page}");
    let events = env.store.core().audit_events(id, None, 10).await.unwrap();
    let suspended = events.iter().find(|e| e.kind == AuditKind::AccountSuspended).unwrap();
    assert_eq!(
        (suspended.detail["reason"].as_str(), suspended.detail["by"].as_str()),
        (Some(reason), Some("ops@example.com"))
    );
    // The customer's session ended; signing in says why (to the owner only).
    let (status, _, location) = get(&customer, &format!("{}/keys", env.portal)).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
    let (status, page) = try_login(&env, "c@example.com", PASSWORD).await;
    assert_eq!(status, 403);
    assert!(page.contains("Reason: Phishing reported on 2026-05-01 &#60;script&#62;."), "{page}");
    let (status, page) = try_login(&env, "c@example.com", "wrong password!!").await;
    assert!(status == 401 && !page.contains("Phishing"), "not told to whoever lacks the password");

    // Reactivated: the reason goes with the suspension.
    let (status, _, _) = post(&ops, &format!("{}/admin/accounts/{id}/unsuspend", env.portal), &[("csrf", &t)]).await;
    assert_eq!(status, 303);
    assert_eq!(env.store.suspension_reason(id).await.unwrap(), None);
    assert!(login(&env, "c@example.com", PASSWORD).await.is_some());
}
