//! The Alerts page and what it drives: e-mail choices that the dispatcher
//! obeys, webhook endpoints (refused when they cannot be safe, a signed test
//! event delivered to a real receiver, the delivery log), audit entries, and
//! tenancy (another account sees and touches none of it).

use certdns_core::AuditKind;
use certdns_monitor::{Alert, AlertKind};
use certdns_testkit::Backend;
use certdns_testkit::webhook::Receiver;
use certdns_webhooks::{Deliverer, DeliveryConfig, signature};

use crate::domains::{account_id, events_of, unescaped};
use crate::support::*;

certdns_testkit::both_backends!(tokio(flavor = "multi_thread", worker_threads = 2);
    settings_endpoints_test_events_and_the_log,
);

async fn alerts_csrf(env: &Env, c: &reqwest::Client) -> (String, String) {
    let (status, page, _) = get(c, &format!("{}/alerts", env.portal)).await;
    assert_eq!(status, 200, "{page}");
    (csrf(&page), page)
}

async fn settings_endpoints_test_events_and_the_log(backend: Backend) {
    let env = start_with(backend, |c| c.webhooks_allow_private = true).await;
    let c = signup(&env, "ada@example.com").await;
    let ada = account_id(&env, "ada@example.com").await;
    let (t, page) = alerts_csrf(&env, &c).await;
    assert!(page.contains("No endpoints yet") && page.contains("Nothing sent yet"), "{page}");
    assert_eq!(page.matches("name=\"email\"").count(), 5);
    assert_eq!(page.matches("name=\"email\" value=\"renewal.overdue\" checked").count(), 1, "mailed by default");

    // E-mail: only broken CNAMEs.
    let (status, _, location) =
        post(&c, &format!("{}/alerts/email", env.portal), &[("csrf", &t), ("email", "delegation.broken")]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/alerts?notice=alert_settings_saved")));
    let (_, page) = alerts_csrf(&env, &c).await;
    assert!(page.contains("name=\"email\" value=\"delegation.broken\" checked"));
    assert!(!page.contains("name=\"email\" value=\"renewal.overdue\" checked"));
    let settings = env.store.core().alerts().email_settings(ada).await.unwrap();
    assert_eq!(settings.len(), 4, "{settings:?}");
    assert_eq!(events_of(&env, ada, AuditKind::AlertSettingsChanged).await.len(), 1);

    // Endpoints that cannot be safe are refused, with the URL kept in the form.
    let add = |url: &'static str, events: &'static [&'static str]| {
        let mut form = vec![("csrf", t.as_str()), ("url", url)];
        form.extend(events.iter().map(|e| ("events", *e)));
        let c = c.clone();
        let to = format!("{}/alerts/webhooks", env.portal);
        async move {
            let pairs: Vec<(&str, &str)> = form;
            post(&c, &to, &pairs).await
        }
    };
    let (status, page, _) = add("https://user:pw@hooks.example.com/x", &["test"]).await;
    assert_eq!(status, 422);
    assert!(unescaped(&page).contains("must not carry a user name or password"), "{page}");
    assert!(page.contains("value=\"https://user:pw@hooks.example.com/x\""), "kept for correction");
    let (status, page, _) = add("ftp://hooks.example.com/x", &["delegation.broken"]).await;
    assert!(status == 422 && page.contains("https://"), "{page}");
    let (status, page, _) = add("https://hooks.example.com/x", &[]).await;
    assert!(status == 422 && page.contains("at least one event"), "{page}");
    assert!(env.store.core().alerts().webhooks(ada).await.unwrap().is_empty(), "nothing stored");

    let receiver = Receiver::start().await;
    let url: &'static str = Box::leak(receiver.url().into_boxed_str());
    let (status, _, location) = add(url, &["delegation.broken"]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/alerts?notice=webhook_added")));
    let endpoints = env.store.core().alerts().webhooks(ada).await.unwrap();
    assert_eq!(endpoints.len(), 1);
    let endpoint = endpoints[0].clone();
    assert_eq!(endpoint.events, ["delegation.broken"]);
    let (_, page) = alerts_csrf(&env, &c).await;
    assert!(page.contains(url) && page.contains(&endpoint.secret), "{page}");
    assert_eq!(events_of(&env, ada, AuditKind::WebhookCreated).await.len(), 1);

    // Send a test event: queued, delivered signed, shown in the log.
    let test_url = format!("{}/alerts/webhooks/{}/test", env.portal, endpoint.id);
    let (status, _, location) = post(&c, &test_url, &[("csrf", &t)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/alerts?notice=webhook_test_sent")));
    let (_, page) = alerts_csrf(&env, &c).await;
    assert!(page.contains("not tried yet"), "queued: {page}");
    let config = DeliveryConfig { allow_private: true, ..DeliveryConfig::default() };
    let deliverer = Deliverer::new(env.store.core().alerts(), config).unwrap();
    let now = certdns_core::now().unix_timestamp();
    assert_eq!(deliverer.round(now).await.unwrap().delivered, 1);
    {
        let seen = receiver.seen();
        let (headers, body) = &seen[0];
        let header = headers.get(signature::HEADER).unwrap().to_str().unwrap();
        assert_eq!(signature::verify(&endpoint.secret, header, body, now, 300), Ok(()));
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!((json["type"].as_str(), json["account"].as_str()), (Some("test"), Some(ada.to_string().as_str())));
    }
    let (_, page) = alerts_csrf(&env, &c).await;
    assert!(page.contains("tag-ok\">delivered") && page.contains("HTTP 200"), "{page}");

    // The dispatcher obeys the settings: renewal.overdue is neither mailed nor
    // sent (the endpoint did not ask for it); a broken CNAME is both.
    let notifier = certdns_portal::alert_notifier(&Default::default(), env.store.core(), env.data_dir.path()).unwrap();
    let alert = |kind| Alert {
        account: ada,
        registration: certdns_core::RegistrationId::generate(),
        domain: "www.example.com".into(),
        cname_name: "_acme-challenge.www.example.com".into(),
        target: format!("abc.{ZONE}"),
        kind,
    };
    notifier.alert(&alert(AlertKind::RenewalOverdue { last_renewal: 0, expected_by: 1 })).await;
    assert!(!env.outbox().contains("is overdue"), "turned off");
    notifier.alert(&alert(AlertKind::Broken { status: "missing".into(), detail: String::new() })).await;
    assert!(env.outbox().contains("is broken"));
    assert_eq!(deliverer.round(certdns_core::now().unix_timestamp()).await.unwrap().delivered, 1);
    assert_eq!(receiver.seen().len(), 2, "only the subscribed type was sent");
    let broken: serde_json::Value = serde_json::from_slice(&receiver.seen()[1].1).unwrap();
    assert_eq!(broken["type"], "delegation.broken");
    assert_eq!(broken["data"]["cname"]["name"], "_acme-challenge.www.example.com");

    // Another account sees none of it and cannot touch it.
    let bob = signup(&env, "bob@example.com").await;
    let (tb, page) = alerts_csrf(&env, &bob).await;
    assert!(!page.contains(url) && page.contains("Nothing sent yet"), "{page}");
    let (status, _, _) = post(&bob, &test_url, &[("csrf", &tb)]).await;
    assert_eq!(status, 404);
    let delete_url = format!("{}/alerts/webhooks/{}/delete", env.portal, endpoint.id);
    let (status, _, _) = post(&bob, &delete_url, &[("csrf", &tb)]).await;
    assert_eq!(status, 404);
    assert_eq!(env.store.core().alerts().webhooks(ada).await.unwrap().len(), 1);

    let (status, _, location) = post(&c, &delete_url, &[("csrf", &t)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/alerts?notice=webhook_removed")));
    assert!(env.store.core().alerts().webhooks(ada).await.unwrap().is_empty());
    assert_eq!(events_of(&env, ada, AuditKind::WebhookDeleted).await.len(), 1);
}
