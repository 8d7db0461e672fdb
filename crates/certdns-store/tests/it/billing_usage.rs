//! What the plans' limits and the payment reminders keep in the store, on both
//! backends: each registration's updates of the UTC day, counted by every TXT
//! write and refused at the limit with nothing written; payment warnings
//! claimed once, marked sent once, counted only for the failure still open.

use std::sync::Arc;

use certdns_core::{AccountId, AuditKind, NewAuditEvent, Secret, now};
use certdns_store::{BillingChange, Store, TxtWrite};
use time::{Duration, OffsetDateTime};

use crate::fast_writes::{fast, fast_registration};
use crate::store::{account, open_store, registration, txt};

certdns_testkit::both_backends!(setup = open_store;
    every_write_counts_and_the_daily_limit_writes_nothing,
    the_fast_path_leaves_names_at_its_cap_to_the_checked_path,
    payment_warnings_are_claimed_once_and_counted_for_the_open_failure,
);

/// Noon (UTC) of some day, so `+ hours` stays on it.
fn noon() -> OffsetDateTime {
    let day = certdns_core::utc_day(now());
    OffsetDateTime::from_unix_timestamp(day * 86_400 + 12 * 3600).unwrap()
}

async fn every_write_counts_and_the_daily_limit_writes_nothing(store: Arc<dyn Store>) {
    let (a, b) = (account("a@example.com"), account("b@example.com"));
    store.create_account(&a).await.unwrap();
    store.create_account(&b).await.unwrap();
    let mut r = registration(a.id, None);
    r.domain = Some(certdns_core::Domain::parse("www.example.com").unwrap());
    store.create_registration(&r).await.unwrap();
    let quiet = registration(a.id, None);
    store.create_registration(&quiet).await.unwrap();
    let t = noon();
    // Unlimited writes count too: the limit applies to what came before it.
    store.put_txt(r.id, &txt(1), 2, t).await.unwrap();
    let within = |i, at| {
        let store = store.clone();
        async move { store.put_txt_within(r.id, &txt(i), 2, Some(3), at).await }
    };
    assert!(matches!(within(2, t).await.unwrap(), TxtWrite::Written(s) if s.version == 2));
    assert!(matches!(within(3, t + Duration::hours(1)).await.unwrap(), TxtWrite::Written(s) if s.version == 3));
    assert_eq!(within(4, t + Duration::hours(2)).await.unwrap(), TxtWrite::DailyLimitReached { used: 3 });
    let held = store.txt_state(r.subdomain, 10).await.unwrap().unwrap();
    assert_eq!((held.version, held.values), (3, vec![txt(3), txt(2)]), "nothing written, oldest rotated out");
    let billing = store.billing();
    let day = certdns_core::utc_day(t);
    let busiest = billing.updates_on_day(a.id, day, 3).await.unwrap();
    assert_eq!(busiest.len(), 1, "a name without updates today is not listed");
    assert_eq!(
        (busiest[0].subdomain, busiest[0].domain.as_deref(), busiest[0].updates),
        (r.subdomain, Some("www.example.com"), 3)
    );
    assert!(billing.updates_on_day(b.id, day, 3).await.unwrap().is_empty(), "another account sees none of it");
    // A new UTC day starts from zero.
    let tomorrow = t + Duration::hours(12);
    assert!(matches!(within(5, tomorrow).await.unwrap(), TxtWrite::Written(_)));
    assert_eq!(billing.updates_on_day(a.id, day + 1, 3).await.unwrap()[0].updates, 1);
    assert!(billing.updates_on_day(a.id, day, 3).await.unwrap().is_empty(), "yesterday's count is gone");
    // A registration that does not exist is not "at its limit".
    let gone = registration(a.id, None);
    assert!(matches!(
        store.put_txt_within(gone.id, &txt(1), 2, Some(3), t).await,
        Err(certdns_store::StoreError::NotFound)
    ));
}

async fn the_fast_path_leaves_names_at_its_cap_to_the_checked_path(store: Arc<dyn Store>) {
    let a = account("a@example.com");
    store.create_account(&a).await.unwrap();
    let secret = Secret::generate();
    let h = secret.hash();
    let r = fast_registration(store.as_ref(), a.id, None, &secret).await;
    let capped = |i| {
        let mut w = fast(r.username, &h, r.subdomain, None, i);
        w.daily_cap = Some(2);
        w
    };
    let t = noon();
    // Three writes in one batch: the third finds the cap reached.
    let states = store.put_txts_if_authorized(&[capped(1), capped(2), capped(3)], 2, t).await.unwrap();
    let versions: Vec<_> = states.iter().map(|s| s.as_ref().map(|s| s.version)).collect();
    assert_eq!(versions, [Some(1), Some(2), None]);
    assert_eq!(store.put_txts_if_authorized(&[capped(4)], 2, t).await.unwrap(), [None]);
    assert_eq!(store.txt_state(r.subdomain, 2).await.unwrap().unwrap().version, 2, "nothing written");
    // No cap, or the next day: written, and counted.
    let free = fast(r.username, &h, r.subdomain, None, 5);
    assert!(store.put_txts_if_authorized(&[free], 2, t).await.unwrap()[0].is_some());
    let day = certdns_core::utc_day(t);
    assert_eq!(store.billing().updates_on_day(a.id, day, 1).await.unwrap()[0].updates, 3);
    assert!(store.put_txts_if_authorized(&[capped(6)], 2, t + Duration::days(1)).await.unwrap()[0].is_some());
}

fn warned(account: AccountId) -> NewAuditEvent {
    NewAuditEvent {
        account_id: Some(account),
        kind: AuditKind::BillingPaymentWarningSent,
        client_addr: None,
        detail: serde_json::json!({ "warning": "payment_failed" }),
    }
}

async fn payment_warnings_are_claimed_once_and_counted_for_the_open_failure(store: Arc<dyn Store>) {
    let (a, b) = (account("a@example.com"), account("b@example.com"));
    store.create_account(&a).await.unwrap();
    store.create_account(&b).await.unwrap();
    let billing = store.billing();
    let t = OffsetDateTime::from_unix_timestamp(now().unix_timestamp()).unwrap();
    assert!(billing.accounts_with_failed_payment().await.unwrap().is_empty());
    let failed = BillingChange::PaymentFailed { at: t };
    billing.apply_stripe_event("evt_f", "invoice.payment_failed", a.id, &failed, None, t).await.unwrap();
    assert_eq!(billing.accounts_with_failed_payment().await.unwrap(), [a.id]);

    let lease = |now: OffsetDateTime| now - Duration::minutes(10);
    assert!(billing.claim_payment_warning(a.id, t, "payment_failed", t, lease(t)).await.unwrap());
    assert!(!billing.claim_payment_warning(a.id, t, "payment_failed", t, lease(t)).await.unwrap(), "claimed");
    // Given back after a failed send: the next round takes it again.
    billing.release_payment_warning(a.id, t, "payment_failed").await.unwrap();
    assert!(billing.claim_payment_warning(a.id, t, "payment_failed", t, lease(t)).await.unwrap());
    // Its sender died: taken again once the lease is over, not before.
    let later = t + Duration::minutes(5);
    assert!(!billing.claim_payment_warning(a.id, t, "payment_failed", later, lease(later)).await.unwrap());
    let much_later = t + Duration::minutes(11);
    assert!(billing.claim_payment_warning(a.id, t, "payment_failed", much_later, lease(much_later)).await.unwrap());
    assert!(billing.payment_warnings_sent(a.id, t).await.unwrap().is_empty(), "claimed is not sent");

    assert_eq!(
        billing.payment_warning_sent(a.id, t, "payment_failed", &warned(a.id), much_later).await.unwrap(),
        Some(1)
    );
    assert_eq!(billing.payment_warning_sent(a.id, t, "payment_failed", &warned(a.id), much_later).await.unwrap(), None);
    let far = much_later + Duration::days(30);
    assert!(
        !billing.claim_payment_warning(a.id, t, "payment_failed", far, lease(far)).await.unwrap(),
        "sent stays sent"
    );
    assert_eq!(billing.payment_warnings_sent(a.id, t).await.unwrap(), ["payment_failed"]);
    let record = billing.billing(a.id).await.unwrap();
    assert_eq!((record.warnings_sent, record.last_warning_at), (1, Some(much_later)));
    let audited = store.audit_events(a.id, None, 10).await.unwrap();
    assert_eq!(audited.iter().filter(|e| e.kind == AuditKind::BillingPaymentWarningSent).count(), 1);
    assert!(billing.payment_warnings_sent(b.id, t).await.unwrap().is_empty(), "per account");

    // Paid: the failure is over. A warning of it marked late is not counted.
    assert!(billing.claim_payment_warning(a.id, t, "grace_ending", t, lease(t)).await.unwrap());
    let paid = BillingChange::InvoicePaid { at: t + Duration::seconds(1) };
    billing.apply_stripe_event("evt_p", "invoice.paid", a.id, &paid, None, t).await.unwrap();
    assert_eq!(billing.payment_warning_sent(a.id, t, "grace_ending", &warned(a.id), t).await.unwrap(), None);
    assert_eq!(billing.billing(a.id).await.unwrap().warnings_sent, 0);
    assert!(billing.accounts_with_failed_payment().await.unwrap().is_empty());
    // A later failure starts its own warnings.
    let again = t + Duration::days(40);
    let failed = BillingChange::PaymentFailed { at: again };
    billing.apply_stripe_event("evt_f2", "invoice.payment_failed", a.id, &failed, None, again).await.unwrap();
    assert!(billing.payment_warnings_sent(a.id, again).await.unwrap().is_empty());
    assert!(billing.claim_payment_warning(a.id, again, "payment_failed", again, lease(again)).await.unwrap());
}
