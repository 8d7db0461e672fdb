//! Stripe's webhook: the raw body's signature checked with the endpoint's
//! secret, each event applied once (its id is stored with the change) and only
//! when newer than the state held, since Stripe retries and reorders.

use certdns_core::{AccountId, AuditKind, NewAuditEvent};
use certdns_store::{BillingChange, BillingStore, EventOutcome, StoreError};
/// Re-exported for tests, which sign events with its `generate_test_header`.
pub use stripe_webhook::Webhook;
use stripe_webhook::{Event, EventObject};
use time::OffsetDateTime;

use crate::plans::Catalogue;

/// What the endpoint answers: 400 for `Rejected`, 409 for
/// `CustomerOfAnotherAccount`, 500/503 for `Store`.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Missing or bad signature, a timestamp outside Stripe's 5-minute window,
    /// or a body that is no event. Nothing changed.
    #[error("rejected: {0}")]
    Rejected(String),
    /// A finished Checkout names a Stripe customer another account already
    /// holds (a session made outside certdns, or ids mixed up at Stripe): not
    /// applied, not recorded, so a retry applies once an operator sorts it out.
    #[error("Stripe customer {customer} already belongs to another account; checkout for {account} not applied")]
    CustomerOfAnotherAccount { customer: String, account: AccountId },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an accepted event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    pub event_id: String,
    pub outcome: Outcome,
    /// The account it changed, if it changed one.
    pub account: Option<AccountId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// A payment failure was applied: the caller warns the customer.
    PaymentFailed,
    Replay,
    /// Older than the state already held.
    Stale,
    /// A type not handled, or a customer that is no account's.
    Ignored,
}

/// Checks a webhook request and parses its event. `now` is Unix seconds.
pub fn verify(payload: &str, signature: Option<&str>, secret: &str, now: i64) -> Result<Event, WebhookError> {
    let signature = signature.ok_or_else(|| WebhookError::Rejected("no Stripe-Signature header".into()))?;
    Webhook::construct_event_with_timestamp(payload, signature, secret, now)
        .map_err(|e| WebhookError::Rejected(e.to_string()))
}

/// Applies a verified event.
pub async fn process(store: &dyn BillingStore, plans: &Catalogue, event: &Event) -> Result<Processed, WebhookError> {
    let event_id = event.id.as_str().to_owned();
    let event_type = event.type_.as_str();
    let now = certdns_core::now();
    let at = OffsetDateTime::from_unix_timestamp(event.created)
        .map_err(|_| WebhookError::Rejected("event time out of range".into()))?;
    let done = |outcome, account| Processed { event_id: event_id.clone(), outcome, account };
    let Some((account, change, audit)) = interpret(store, plans, &event.data.object, at).await? else {
        let fresh = store.note_stripe_event(&event_id, event_type, now).await?;
        return Ok(done(if fresh { Outcome::Ignored } else { Outcome::Replay }, None));
    };
    let event_audit = NewAuditEvent { account_id: Some(account), kind: audit.0, client_addr: None, detail: audit.1 };
    let applied = match store.apply_stripe_event(&event_id, event_type, account, &change, Some(&event_audit), now).await
    {
        Ok(applied) => applied,
        // The only unique value a change writes is the Checkout's customer id.
        Err(StoreError::Conflict(what)) => {
            return Err(match &change {
                BillingChange::CheckoutCompleted { customer_id, .. } => {
                    WebhookError::CustomerOfAnotherAccount { customer: customer_id.clone(), account }
                }
                _ => StoreError::Conflict(what).into(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let outcome = match applied {
        EventOutcome::Applied if matches!(change, BillingChange::PaymentFailed { .. }) => Outcome::PaymentFailed,
        EventOutcome::Applied => Outcome::Applied,
        EventOutcome::Replay => Outcome::Replay,
        EventOutcome::Stale => Outcome::Stale,
    };
    Ok(done(outcome, Some(account)))
}

type Interpreted = (AccountId, BillingChange, (AuditKind, serde_json::Value));

/// The account an event is about, the change and its audit entry; `None` for
/// events that change nothing here.
async fn interpret(
    store: &dyn BillingStore,
    plans: &Catalogue,
    object: &EventObject,
    at: OffsetDateTime,
) -> Result<Option<Interpreted>, StoreError> {
    let by_customer = |id: String| async move { store.account_by_stripe_customer(&id).await };
    Ok(match object {
        EventObject::CheckoutSessionCompleted(session) => {
            // client_reference_id is the account id the server put on the session
            // it created; it reaches us signed by Stripe, not from the browser.
            let account = session.client_reference_id.as_deref().and_then(|s| s.parse::<AccountId>().ok());
            let customer = session.customer.as_ref().map(|c| c.id().as_str().to_owned());
            match (account, customer) {
                (Some(account), Some(customer_id)) => {
                    let subscription_id = session.subscription.as_ref().map(|s| s.id().as_str().to_owned());
                    let detail = serde_json::json!({ "subscription": subscription_id });
                    let change = BillingChange::CheckoutCompleted { customer_id, subscription_id };
                    Some((account, change, (AuditKind::BillingCheckoutCompleted, detail)))
                }
                _ => None,
            }
        }
        EventObject::CustomerSubscriptionCreated(sub) | EventObject::CustomerSubscriptionUpdated(sub) => {
            let Some(account) = by_customer(sub.customer.id().as_str().to_owned()).await? else { return Ok(None) };
            let status = sub.status.as_str().to_owned();
            let price = sub.items.data.first().map(|item| item.price.id.as_str().to_owned());
            let paid_for = matches!(status.as_str(), "active" | "trialing" | "past_due");
            let plan = price.as_deref().and_then(|p| plans.by_price(p)).filter(|_| paid_for).map(|p| p.id.clone());
            let detail = serde_json::json!({ "plan": plan, "status": status, "subscription": sub.id.as_str() });
            let change = BillingChange::Subscription { subscription_id: sub.id.as_str().to_owned(), status, plan, at };
            Some((account, change, (AuditKind::BillingPlanChanged, detail)))
        }
        EventObject::CustomerSubscriptionDeleted(sub) => {
            let Some(account) = by_customer(sub.customer.id().as_str().to_owned()).await? else { return Ok(None) };
            let detail = serde_json::json!({ "subscription": sub.id.as_str() });
            let change = BillingChange::SubscriptionEnded { subscription_id: sub.id.as_str().to_owned(), at };
            Some((account, change, (AuditKind::BillingSubscriptionEnded, detail)))
        }
        EventObject::InvoicePaid(invoice) | EventObject::InvoicePaymentFailed(invoice) => {
            let Some(customer) = invoice.customer.as_ref() else { return Ok(None) };
            let Some(account) = by_customer(customer.id().as_str().to_owned()).await? else { return Ok(None) };
            let detail = serde_json::json!({
                "invoice": invoice.id.as_ref().map(|i| i.as_str()),
                "amount_due": invoice.amount_due,
                "currency": invoice.currency.to_string(),
            });
            if matches!(object, EventObject::InvoicePaid(_)) {
                Some((account, BillingChange::InvoicePaid { at }, (AuditKind::BillingPaymentSucceeded, detail)))
            } else {
                Some((account, BillingChange::PaymentFailed { at }, (AuditKind::BillingPaymentFailed, detail)))
            }
        }
        _ => None,
    })
}
