//! Alert settings, webhook endpoints and their delivery queue, bursts of failed
//! authentications and rotated keys still in use, on both backends.

use std::sync::Arc;

use certdns_core::{AccountId, now};
use certdns_store::{
    AttemptOutcome, AuthFailureCount, DeliveryState, NewDelivery, PortalStore, PreviousSecretUse, StoreError,
    WebhookEndpoint,
};
use uuid::Uuid;

use crate::portal_store::{account, key, open_store};

certdns_testkit::both_backends!(setup = open_store;
    email_settings_keep_only_opt_outs_per_account,
    endpoints_belong_to_their_account,
    deliveries_are_claimed_once_retried_and_logged,
    a_burst_is_told_once_and_a_quiet_spell_starts_a_new_one,
    a_grace_ending_while_the_old_secret_is_used_is_told_once,
);

fn endpoint(account: AccountId, url: &str) -> WebhookEndpoint {
    WebhookEndpoint {
        id: Uuid::new_v4(),
        account_id: account,
        url: url.into(),
        secret: "whsec_x".into(),
        events: vec!["delegation.broken".into(), "test".into()],
        created_at: 100,
    }
}

fn delivery(e: &WebhookEndpoint, event: &str, at: i64) -> NewDelivery {
    NewDelivery {
        id: Uuid::new_v4(),
        endpoint_id: e.id,
        account_id: e.account_id,
        event_id: format!("evt_{event}"),
        event_type: "test".into(),
        payload: format!("{{\"id\":\"evt_{event}\"}}"),
        created_at: at,
    }
}

async fn email_settings_keep_only_opt_outs_per_account(store: Arc<dyn PortalStore>) {
    let (a, b) = (account(&store, "a@example.com").await, account(&store, "b@example.com").await);
    let alerts = store.core().alerts();
    assert!(alerts.email_settings(a).await.unwrap().is_empty(), "every event is mailed by default");
    alerts.set_email_setting(a, "renewal.overdue", false).await.unwrap();
    alerts.set_email_setting(a, "renewal.overdue", false).await.unwrap();
    assert_eq!(alerts.email_settings(a).await.unwrap(), [("renewal.overdue".to_owned(), false)]);
    assert!(alerts.email_settings(b).await.unwrap().is_empty(), "another account's choice is its own");
    alerts.set_email_setting(a, "renewal.overdue", true).await.unwrap();
    assert!(alerts.email_settings(a).await.unwrap().is_empty());
}

async fn endpoints_belong_to_their_account(store: Arc<dyn PortalStore>) {
    let (a, b) = (account(&store, "a@example.com").await, account(&store, "b@example.com").await);
    let alerts = store.core().alerts();
    let e = endpoint(a, "https://hooks.example.com/a");
    alerts.create_webhook(&e).await.unwrap();
    assert_eq!(alerts.webhooks(a).await.unwrap(), std::slice::from_ref(&e));
    assert!(alerts.webhooks(b).await.unwrap().is_empty());
    assert!(matches!(alerts.delete_webhook(b, e.id).await, Err(StoreError::NotFound)), "not b's to delete");
    alerts.enqueue_deliveries(&[delivery(&e, "1", 100)]).await.unwrap();
    assert!(alerts.deliveries(b, 10).await.unwrap().is_empty(), "b sees none of a's deliveries");
    alerts.delete_webhook(a, e.id).await.unwrap();
    assert!(alerts.webhooks(a).await.unwrap().is_empty());
    assert!(alerts.deliveries(a, 10).await.unwrap().is_empty(), "its log goes with it");
}

async fn deliveries_are_claimed_once_retried_and_logged(store: Arc<dyn PortalStore>) {
    let a = account(&store, "a@example.com").await;
    let alerts = store.core().alerts();
    let e = endpoint(a, "https://hooks.example.com/a");
    alerts.create_webhook(&e).await.unwrap();
    let (first, second) = (delivery(&e, "1", 100), delivery(&e, "2", 101));
    alerts.enqueue_deliveries(&[first.clone(), second.clone()]).await.unwrap();
    assert!(alerts.claim_due_deliveries(99, 120, 10).await.unwrap().is_empty(), "not due before it was made");
    let claimed = alerts.claim_due_deliveries(200, 120, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!((claimed[0].url.as_str(), claimed[0].secret.as_str()), ("https://hooks.example.com/a", "whsec_x"));
    assert_eq!(claimed[0].delivery.payload, "{\"id\":\"evt_1\"}");
    assert!(alerts.claim_due_deliveries(200, 120, 10).await.unwrap().is_empty(), "a claim holds for its lease");
    let outcome = |id, state, status, at, next| AttemptOutcome {
        id,
        at,
        state,
        status,
        error: if status == Some(200) { String::new() } else { "HTTP 500".into() },
        next_attempt_at: next,
    };
    alerts.record_attempt(&outcome(first.id, DeliveryState::Delivered, Some(200), 200, 200)).await.unwrap();
    alerts.record_attempt(&outcome(second.id, DeliveryState::Pending, Some(500), 200, 230)).await.unwrap();
    assert!(alerts.claim_due_deliveries(229, 120, 10).await.unwrap().is_empty());
    let again = alerts.claim_due_deliveries(230, 120, 10).await.unwrap();
    assert_eq!(again.len(), 1, "only the failed one comes back, at its time");
    assert_eq!((again[0].delivery.id, again[0].delivery.attempts), (second.id, 1));
    alerts.record_attempt(&outcome(second.id, DeliveryState::Failed, None, 230, 230)).await.unwrap();
    let log = alerts.deliveries(a, 10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0].id, log[0].state, log[0].attempts, log[0].last_status),
        (second.id, DeliveryState::Failed, 2, None)
    );
    assert_eq!(
        (log[1].state, log[1].last_status, log[1].last_attempt_at),
        (DeliveryState::Delivered, Some(200), Some(200))
    );
    assert_eq!(alerts.prune_alerts(101).await.unwrap(), 1, "finished deliveries older than the cut go");
    assert_eq!(alerts.deliveries(a, 10).await.unwrap().len(), 1);
}

async fn a_burst_is_told_once_and_a_quiet_spell_starts_a_new_one(store: Arc<dyn PortalStore>) {
    let a = account(&store, "a@example.com").await;
    let alerts = store.core().alerts();
    let count = |n| AuthFailureCount { subject: "registration:u1".into(), account: a, failures: n };
    alerts.add_auth_failures(&[count(4)], 1000, 900).await.unwrap();
    assert!(alerts.claim_auth_failure_bursts(10).await.unwrap().is_empty(), "4 is no burst");
    alerts.add_auth_failures(&[count(7)], 1005, 900).await.unwrap();
    let told = alerts.claim_auth_failure_bursts(10).await.unwrap();
    assert_eq!(told.len(), 1);
    assert_eq!((told[0].failures, told[0].first_at, told[0].last_at, told[0].account), (11, 1000, 1005, a));
    alerts.add_auth_failures(&[count(50)], 1100, 900).await.unwrap();
    assert!(alerts.claim_auth_failure_bursts(10).await.unwrap().is_empty(), "the same burst is told once");
    // Quiet for longer than 900 s: the next failures are a new burst.
    alerts.add_auth_failures(&[count(12)], 3000, 900).await.unwrap();
    let again = alerts.claim_auth_failure_bursts(10).await.unwrap();
    assert_eq!((again.len(), again[0].failures, again[0].first_at), (1, 12, 3000));
    assert_eq!(alerts.prune_alerts(3001).await.unwrap(), 1);
}

async fn a_grace_ending_while_the_old_secret_is_used_is_told_once(store: Arc<dyn PortalStore>) {
    let a = account(&store, "a@example.com").await;
    let (id, _) = key(&store, a).await;
    let alerts = store.core().alerts();
    let t = now().unix_timestamp();
    let until = t + 7 * 86_400;
    alerts.note_previous_secret_use(&[PreviousSecretUse { key: id.clone(), at: t, until }]).await.unwrap();
    assert!(alerts.claim_grace_ending(t, 86_400).await.unwrap().is_empty(), "a week left: not yet");
    let soon = until - 3_600;
    let told = alerts.claim_grace_ending(soon, 86_400).await.unwrap();
    assert_eq!(told.len(), 1);
    assert_eq!((&told[0].key, told[0].account, told[0].last_used_at, told[0].until), (&id, a, t, until));
    assert!(alerts.claim_grace_ending(soon, 86_400).await.unwrap().is_empty(), "told once");
    // A later rotation's grace, its old secret used too: told again.
    let later = until + 30 * 86_400;
    alerts.note_previous_secret_use(&[PreviousSecretUse { key: id.clone(), at: until, until: later }]).await.unwrap();
    assert_eq!(alerts.claim_grace_ending(later - 10, 86_400).await.unwrap().len(), 1);
    // Revoked keys are not warned about.
    let (other, _) = key(&store, a).await;
    alerts.note_previous_secret_use(&[PreviousSecretUse { key: other.clone(), at: t, until }]).await.unwrap();
    store.core().revoke_license_key(a, &other, now()).await.unwrap();
    assert!(alerts.claim_grace_ending(soon, 86_400).await.unwrap().is_empty());
}
