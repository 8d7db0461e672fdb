//! Each account's plan and Stripe state, and Stripe's event ids, on both backends.

use std::sync::Arc;

use certdns_core::{AuditKind, NewAuditEvent, now};
use certdns_store::{BillingChange, BillingRecord, EventOutcome, PortalStore, StoreError};
use time::Duration;

use crate::portal_store::{account, open_store};

certdns_testkit::both_backends!(setup = open_store;
    an_account_without_a_row_is_free_and_never_billed,
    a_replayed_event_changes_nothing,
    an_older_subscription_event_loses_to_a_newer_one,
    payment_failure_keeps_its_first_time_until_an_invoice_is_paid,
    customers_belong_to_one_account_and_overrides_are_audited,
);

fn audit(account: certdns_core::AccountId, kind: AuditKind) -> NewAuditEvent {
    NewAuditEvent { account_id: Some(account), kind, client_addr: None, detail: serde_json::json!({"plan": "pro"}) }
}

fn subscription(status: &str, plan: Option<&str>, at: time::OffsetDateTime) -> BillingChange {
    BillingChange::Subscription {
        subscription_id: "sub_1".into(),
        status: status.into(),
        plan: plan.map(str::to_owned),
        at,
    }
}

async fn an_account_without_a_row_is_free_and_never_billed(store: Arc<dyn PortalStore>) {
    let a = account(&store, "a@example.com").await;
    let billing = store.core().billing();
    assert_eq!(billing.billing(a).await.unwrap(), BillingRecord::default());
    assert_eq!(billing.count_registrations(a).await.unwrap(), 0);
    assert_eq!(billing.count_active_license_keys(a).await.unwrap(), 0);
    assert!(billing.accounts_with_failed_payment().await.unwrap().is_empty(), "no failure: nothing to warn of");
}

async fn a_replayed_event_changes_nothing(store: Arc<dyn PortalStore>) {
    let a = account(&store, "a@example.com").await;
    let billing = store.core().billing();
    let t = now();
    let event = audit(a, AuditKind::BillingPlanChanged);
    let first = billing
        .apply_stripe_event(
            "evt_1",
            "customer.subscription.updated",
            a,
            &subscription("active", Some("pro"), t),
            Some(&event),
            t,
        )
        .await
        .unwrap();
    assert_eq!(first, EventOutcome::Applied);
    // The same id again, even carrying another change: nothing happens.
    let replay = billing
        .apply_stripe_event(
            "evt_1",
            "customer.subscription.updated",
            a,
            &subscription("past_due", None, t),
            Some(&event),
            t,
        )
        .await
        .unwrap();
    assert_eq!(replay, EventOutcome::Replay);
    let record = billing.billing(a).await.unwrap();
    assert_eq!((record.plan.as_deref(), record.subscription_status.as_deref()), (Some("pro"), Some("active")));
    let audited = store.core().audit_events(a, None, 10).await.unwrap();
    assert_eq!(audited.iter().filter(|e| e.kind == AuditKind::BillingPlanChanged).count(), 1);
    assert!(billing.note_stripe_event("evt_2", "product.created", t).await.unwrap());
    assert!(!billing.note_stripe_event("evt_2", "product.created", t).await.unwrap());
    assert!(!billing.note_stripe_event("evt_1", "customer.subscription.updated", t).await.unwrap());
}

async fn an_older_subscription_event_loses_to_a_newer_one(store: Arc<dyn PortalStore>) {
    let a = account(&store, "a@example.com").await;
    let billing = store.core().billing();
    let t = now();
    let kind = "customer.subscription.updated";
    let newer = subscription("active", Some("business"), t);
    let older = subscription("active", Some("pro"), t - Duration::minutes(5));
    assert_eq!(billing.apply_stripe_event("evt_new", kind, a, &newer, None, t).await.unwrap(), EventOutcome::Applied);
    assert_eq!(billing.apply_stripe_event("evt_old", kind, a, &older, None, t).await.unwrap(), EventOutcome::Stale);
    assert_eq!(billing.billing(a).await.unwrap().plan.as_deref(), Some("business"));
    // The end of the subscription is newer still: back to free, nothing else lost.
    let ended = BillingChange::SubscriptionEnded { subscription_id: "sub_1".into(), at: t + Duration::minutes(1) };
    assert_eq!(billing.apply_stripe_event("evt_end", kind, a, &ended, None, t).await.unwrap(), EventOutcome::Applied);
    let record = billing.billing(a).await.unwrap();
    assert_eq!((record.plan, record.subscription_status.as_deref()), (None, Some("canceled")));
    // A late "updated" from before the end does not bring the plan back.
    assert_eq!(billing.apply_stripe_event("evt_late", kind, a, &newer, None, t).await.unwrap(), EventOutcome::Stale);
    assert_eq!(billing.billing(a).await.unwrap().plan, None);
}

async fn payment_failure_keeps_its_first_time_until_an_invoice_is_paid(store: Arc<dyn PortalStore>) {
    let a = account(&store, "a@example.com").await;
    let billing = store.core().billing();
    let t = time::OffsetDateTime::from_unix_timestamp(now().unix_timestamp()).unwrap();
    let failed = |at| BillingChange::PaymentFailed { at };
    let kind = "invoice.payment_failed";
    billing.apply_stripe_event("evt_f1", kind, a, &failed(t), None, t).await.unwrap();
    billing.apply_stripe_event("evt_f2", kind, a, &failed(t + Duration::days(3)), None, t).await.unwrap();
    assert_eq!(billing.billing(a).await.unwrap().payment_failed_at, Some(t), "grace counts from the first");
    let warned = audit(a, AuditKind::BillingPaymentWarningSent);
    for (n, kind) in [(1, "payment_failed"), (2, "grace_ending")] {
        assert!(billing.claim_payment_warning(a, t, kind, t, t - Duration::minutes(10)).await.unwrap());
        assert_eq!(billing.payment_warning_sent(a, t, kind, &warned, t).await.unwrap(), Some(n));
    }
    // A failure older than the last payment event is out of order: ignored.
    let paid = BillingChange::InvoicePaid { at: t + Duration::days(4) };
    billing.apply_stripe_event("evt_p", "invoice.paid", a, &paid, None, t).await.unwrap();
    let stale = billing.apply_stripe_event("evt_f0", kind, a, &failed(t + Duration::days(1)), None, t).await.unwrap();
    assert_eq!(stale, EventOutcome::Stale);
    let record = billing.billing(a).await.unwrap();
    assert_eq!((record.payment_failed_at, record.warnings_sent, record.last_warning_at), (None, 0, None));
}

async fn customers_belong_to_one_account_and_overrides_are_audited(store: Arc<dyn PortalStore>) {
    let (a, b) = (account(&store, "a@example.com").await, account(&store, "b@example.com").await);
    let billing = store.core().billing();
    billing.set_stripe_customer(a, "cus_a").await.unwrap();
    assert_eq!(billing.account_by_stripe_customer("cus_a").await.unwrap(), Some(a));
    assert_eq!(billing.account_by_stripe_customer("cus_x").await.unwrap(), None);
    assert!(matches!(billing.set_stripe_customer(b, "cus_a").await, Err(StoreError::Conflict(_))));
    assert_eq!(billing.billing(b).await.unwrap().stripe_customer_id, None);

    billing.set_plan_override(b, Some("business"), &audit(b, AuditKind::BillingPlanOverridden)).await.unwrap();
    let record = billing.billing(b).await.unwrap();
    assert_eq!(record.effective_plan(), Some("business"));
    billing.set_plan_override(b, None, &audit(b, AuditKind::BillingPlanOverridden)).await.unwrap();
    assert_eq!(billing.billing(b).await.unwrap().effective_plan(), None);
    let audited = store.core().audit_events(b, None, 10).await.unwrap();
    assert_eq!(audited.iter().filter(|e| e.kind == AuditKind::BillingPlanOverridden).count(), 2);
    // Billing rows go with their account.
    store.delete_account(a).await.unwrap();
    assert_eq!(billing.account_by_stripe_customer("cus_a").await.unwrap(), None);
}
