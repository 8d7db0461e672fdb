//! The audit log, usage charts, and the operator's account list.

use certdns_core::{AccountStatus, AuditKind, NewAuditEvent, TxtValue, now};
use certdns_testkit::Backend;

use crate::support::*;

certdns_testkit::both_backends!(tokio(flavor = "multi_thread", worker_threads = 2);
    audit_log_is_paginated_newest_first,
    usage_chart_counts_per_key,
    updates_through_the_api_are_counted,
    operator_pages_and_suspension,
);

async fn audit_log_is_paginated_newest_first(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "mia@example.com").await;
    let me = env.store.core().account_by_email("mia@example.com").await.unwrap().unwrap();
    for i in 0..30 {
        let e = NewAuditEvent {
            account_id: Some(me.id),
            kind: AuditKind::RegistrationCreated,
            client_addr: None,
            detail: serde_json::json!({ "subdomain": format!("marker-{i:02}") }),
        };
        env.store.core().append_audit(&e, now()).await.unwrap();
    }
    let (status, page, _) = get(&c, &format!("{}/audit", env.portal)).await;
    assert_eq!(status, 200);
    assert!(page.contains("marker-29") && page.contains("marker-05") && !page.contains("marker-04"));
    assert!(page.find("marker-29").unwrap() < page.find("marker-28").unwrap(), "newest first");
    let marker = "/audit?before=";
    let start = page.find(marker).unwrap();
    let end = page[start..].find('"').unwrap() + start;
    let (status, page2, _) = get(&c, &format!("{}{}", env.portal, &page[start..end])).await;
    assert_eq!(status, 200);
    assert!(page2.contains("marker-04") && page2.contains("marker-00") && !page2.contains("marker-05"));
    assert!(page2.contains("Account created"));
    assert!(!page2.contains(marker), "last page");
}

async fn usage_chart_counts_per_key(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "nina@example.com").await;
    let (_, page, _) = get(&c, &format!("{}/usage", env.portal)).await;
    assert!(page.contains("No keys yet"));
    let (k1, _) = create_key(&env, &c, "first <key>").await;
    let (k2, _) = create_key(&env, &c, "second").await;
    let today = now().date();
    env.store
        .add_usage(&[
            (k1.parse().unwrap(), today, 5),
            (k1.parse().unwrap(), today - time::Duration::days(3), 2),
            (k2.parse().unwrap(), today - time::Duration::days(40), 9),
        ])
        .await
        .unwrap();
    let (status, page, _) = get(&c, &format!("{}/usage", env.portal)).await;
    assert_eq!(status, 200);
    assert_eq!(page.matches("<svg").count(), 2);
    assert_eq!(page.matches("<rect").count(), 60, "30 days per key");
    assert!(page.contains("7 updates in 30 days"));
    assert!(page.contains("0 updates in 30 days"));
    assert!(page.contains("first &lt;key&gt;") || page.contains("first &#60;key&#62;"));
    assert!(!page.contains("first <key>"));
    let _ = TxtValue::try_from("a".repeat(43)).unwrap();
}

/// The API counts each successful /update against the license key the
/// registration was made with, and the usage page shows it.
async fn updates_through_the_api_are_counted(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "olga@example.com").await;
    let (_, url) = create_key(&env, &c, "counted").await;
    let (status, reg) = register(&url, "count.example.com").await;
    assert_eq!(status, 201);
    for i in 0..3 {
        let r = client()
            .post(format!("{}/update", env.api))
            .header("X-Api-User", reg["username"].as_str().unwrap())
            .header("X-Api-Key", reg["password"].as_str().unwrap())
            .body(format!(
                r#"{{"subdomain":"{}","txt":"{}"}}"#,
                reg["subdomain"].as_str().unwrap(),
                format!("{i}").repeat(43)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let deadline = std::time::Instant::now() + certdns_api::USAGE_FLUSH_EVERY * 4;
    loop {
        let (_, page, _) = get(&c, &format!("{}/usage", env.portal)).await;
        if page.contains("3 updates in 30 days") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "usage never showed the 3 updates");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

async fn operator_pages_and_suspension(backend: Backend) {
    let env = start(backend).await;
    let customer = signup(&env, "lena@example.com").await;
    let (_, url) = create_key(&env, &customer, "k").await;
    let (status, _) = register(&url, "a.lena.example").await;
    assert_eq!(status, 201);
    let operator_id = create_operator(&env, "ops@example.com").await;
    let ops = login(&env, "ops@example.com", PASSWORD).await.unwrap();
    let (status, page, _) = get(&ops, &format!("{}/admin/accounts", env.portal)).await;
    assert_eq!(status, 200);
    assert!(page.contains("lena@example.com") && page.contains("ops@example.com"));
    let lena = env.store.core().account_by_email("lena@example.com").await.unwrap().unwrap();
    assert!(page.contains(&format!("/admin/accounts/{}\"", lena.id)), "each account links to its page");
    let (_, own, _) = get(&ops, &format!("{}/admin/accounts/{operator_id}", env.portal)).await;
    assert!(!own.contains("/suspend\""), "no self-suspension form");
    let (_, lena_page, _) = get(&ops, &format!("{}/admin/accounts/{}", env.portal, lena.id)).await;
    assert!(lena_page.contains(&format!("/admin/accounts/{}/suspend", lena.id)));
    let t = csrf(&page);
    let reason = ("reason", "Unpaid invoice");
    let (status, _, location) =
        post(&ops, &format!("{}/admin/accounts/{}/suspend", env.portal, lena.id), &[("csrf", &t), reason]).await;
    assert_eq!((status, location), (303, Some(format!("/admin/accounts/{}?notice=suspended", lena.id))));
    // The API's key cache lives a few seconds; a fresh registration must be refused after it.
    let mut refused = false;
    for _ in 0..40 {
        let (status, _) = register(&url, "b.lena.example").await;
        if status == 401 || status == 403 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(refused, "a suspended account's key is refused at the API");
    // Suspension ended the customer's session, and sign-in says why.
    let (status, _, location) = get(&customer, &format!("{}/keys", env.portal)).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
    let (status, page) = try_login(&env, "lena@example.com", PASSWORD).await;
    assert_eq!(status, 403);
    assert!(page.contains("This account is suspended") && page.contains("Reason: Unpaid invoice."), "{page}");
    // A suspended operator loses the admin pages at once.
    let other_ops = create_operator(&env, "ops2@example.com").await;
    let ops2 = login(&env, "ops2@example.com", PASSWORD).await.unwrap();
    let (status, _, _) =
        post(&ops, &format!("{}/admin/accounts/{other_ops}/suspend", env.portal), &[("csrf", &t), reason]).await;
    assert_eq!(status, 303);
    let (status, _, location) = get(&ops2, &format!("{}/admin/accounts", env.portal)).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
    assert_eq!(try_login(&env, "ops2@example.com", PASSWORD).await.0, 403);
    let (status, _, _) =
        post(&ops, &format!("{}/admin/accounts/{operator_id}/suspend", env.portal), &[("csrf", &t), reason]).await;
    assert_eq!(status, 422);
    let (status, _, _) =
        post(&ops, &format!("{}/admin/accounts/{}/unsuspend", env.portal, lena.id), &[("csrf", &t)]).await;
    assert_eq!(status, 303);
    assert_eq!(env.store.core().account(lena.id).await.unwrap().unwrap().status, AccountStatus::Active);
    assert!(login(&env, "lena@example.com", PASSWORD).await.is_some(), "reactivated: signs in again");
    let events = env.store.core().audit_events(lena.id, None, 50).await.unwrap();
    assert!(events.iter().any(|e| e.kind == AuditKind::AccountSuspended));
    assert!(events.iter().any(|e| e.kind == AuditKind::AccountReactivated));
}
