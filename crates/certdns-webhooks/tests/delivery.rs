//! The delivery worker against a real receiver on loopback: signatures verify,
//! failures are retried on schedule until delivered, slow receivers time out,
//! and private addresses are refused unless allowed. Both store backends.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use certdns_core::{Account, AccountId, AccountRole, AccountStatus, Email};
use certdns_store::{AlertStore, DeliveryState, NewDelivery, WebhookEndpoint};
use certdns_testkit::webhook::Receiver;
use certdns_testkit::{Backend, TestDatabase};
use certdns_webhooks::{Deliverer, DeliveryConfig, signature};
use uuid::Uuid;

certdns_testkit::both_backends!(
    failures_are_retried_until_delivered_and_every_attempt_is_signed,
    private_targets_are_refused_unless_allowed,
    a_receiver_that_never_answers_times_out_and_is_retried,
);

const SECRET: &str = "whsec_test_secret";

async fn queue(backend: Backend, url: &str) -> (Arc<dyn AlertStore>, AccountId, Uuid, TestDatabase) {
    let db = TestDatabase::new(backend).await;
    let store = certdns_store::open(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    let account = Account {
        id: AccountId::generate(),
        email: Email::parse("a@example.com").unwrap(),
        role: AccountRole::Customer,
        status: AccountStatus::Active,
        password_hash: None,
        created_at: certdns_core::now(),
    };
    store.create_account(&account).await.unwrap();
    let alerts = store.alerts();
    let endpoint = WebhookEndpoint {
        id: Uuid::new_v4(),
        account_id: account.id,
        url: url.into(),
        secret: SECRET.into(),
        events: vec!["test".into()],
        created_at: 0,
    };
    alerts.create_webhook(&endpoint).await.unwrap();
    let delivery = NewDelivery {
        id: Uuid::new_v4(),
        endpoint_id: endpoint.id,
        account_id: account.id,
        event_id: "evt_1".into(),
        event_type: "test".into(),
        payload: r#"{"id":"evt_1","type":"test"}"#.into(),
        created_at: 1_000,
    };
    alerts.enqueue_deliveries(std::slice::from_ref(&delivery)).await.unwrap();
    (alerts, account.id, delivery.id, db)
}

fn worker(alerts: &Arc<dyn AlertStore>, allow_private: bool, timeout: Duration) -> Deliverer {
    Deliverer::new(alerts.clone(), DeliveryConfig { allow_private, timeout, per_second: 10 }).unwrap()
}

async fn failures_are_retried_until_delivered_and_every_attempt_is_signed(backend: Backend) {
    let receiver = Receiver::answering(vec![503, 500], false).await;
    let (alerts, account, id, _db) = queue(backend, &receiver.url()).await;
    let worker = worker(&alerts, true, Duration::from_secs(5));
    let first = worker.round(1_000).await.unwrap();
    assert_eq!((first.retrying, first.delivered), (1, 0));
    assert_eq!(worker.round(1_020).await.unwrap(), Default::default(), "not before its back-off");
    assert_eq!(worker.round(1_040).await.unwrap().retrying, 1, "second attempt after ~30 s, fails again");
    assert_eq!(worker.round(1_040 + 140).await.unwrap().delivered, 1, "third after ~2 min, delivered");
    let log = alerts.deliveries(account, 10).await.unwrap();
    assert_eq!(
        (log[0].id, log[0].state, log[0].attempts, log[0].last_status),
        (id, DeliveryState::Delivered, 3, Some(200))
    );
    let seen = receiver.seen();
    assert_eq!(seen.len(), 3);
    for ((headers, body), at) in seen.iter().zip([1_000, 1_040, 1_180]) {
        let header = headers.get(signature::HEADER).unwrap().to_str().unwrap();
        assert_eq!(signature::verify(SECRET, header, body, at, 300), Ok(()), "{header}");
        assert_eq!(
            signature::verify("whsec_other", header, body, at, 300),
            Err(certdns_webhooks::VerifyError::Mismatch)
        );
        assert_eq!(headers.get("certdns-event-id").unwrap(), "evt_1", "one id across retries: receivers dedupe");
        assert_eq!(headers.get("content-type").unwrap(), "application/json");
        assert_eq!(&body[..], br#"{"id":"evt_1","type":"test"}"#);
    }
}

async fn private_targets_are_refused_unless_allowed(backend: Backend) {
    let receiver = Receiver::start().await;
    let port = receiver.port();
    for url in [format!("https://127.0.0.1:{port}/hook"), format!("https://localhost:{port}/hook")] {
        let (alerts, account, _, _db) = queue(backend, &url).await;
        let worker = worker(&alerts, false, Duration::from_secs(5));
        assert_eq!(worker.round(1_000).await.unwrap().retrying, 1);
        let log = alerts.deliveries(account, 10).await.unwrap();
        assert_eq!(log[0].last_status, None);
        assert!(
            log[0].last_error.contains("not a public address") || log[0].last_error.contains("no public address"),
            "{url}: {}",
            log[0].last_error
        );
    }
    assert!(receiver.seen().is_empty(), "nothing reached the private address");
}

async fn a_receiver_that_never_answers_times_out_and_is_retried(backend: Backend) {
    let receiver = Receiver::answering(vec![], true).await;
    let (alerts, account, _, _db) = queue(backend, &receiver.url()).await;
    let worker = worker(&alerts, true, Duration::from_secs(1));
    let started = std::time::Instant::now();
    assert_eq!(worker.round(1_000).await.unwrap().retrying, 1);
    assert!(started.elapsed() < Duration::from_secs(5), "the round is not held by a stalled receiver");
    let log = alerts.deliveries(account, 10).await.unwrap();
    assert_eq!((log[0].state, log[0].last_error.as_str()), (DeliveryState::Pending, "no answer within 1 s"));
    assert!(log[0].next_attempt_at > 1_000);
    assert_eq!(receiver.seen().len(), 1);
}
