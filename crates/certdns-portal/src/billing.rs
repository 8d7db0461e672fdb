//! Billing in the portal: the Stripe client and webhook secret the pages and
//! the webhook use, and `POST /billing/webhook`, which Stripe calls (signed,
//! so outside the session guard and its CSRF check).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use certdns_billing::stripe_api::StripeApi;
use certdns_billing::webhook::{self, WebhookError};
use certdns_billing::{BillingConfig, CheckError, Entitlements};
use certdns_core::AccountId;

use crate::actions::ActionError;
use crate::state::AppState;

/// What billing needs at run time; exists only when billing is on.
pub(crate) struct PortalBilling {
    pub entitlements: Entitlements,
    pub stripe: StripeApi,
    webhook_secret: String,
}

impl PortalBilling {
    pub fn new(config: &BillingConfig) -> Result<Option<PortalBilling>, String> {
        config.validate()?;
        let (Some(entitlements), Some(webhook_secret)) =
            (Entitlements::from_config(config), config.stripe.webhook_secret.clone())
        else {
            return Ok(None);
        };
        let stripe = StripeApi::new(&config.stripe).map_err(|e| e.to_string())?;
        Ok(stripe.map(|stripe| PortalBilling { entitlements, stripe, webhook_secret }))
    }
}

/// What an action is about to add.
pub(crate) enum Growth {
    Registration,
    LicenseKey,
}

/// Refuses growth beyond the plan (or while a payment is overdue) with the same
/// words the API uses; nothing is limited when billing is off.
pub(crate) async fn may_add(state: &AppState, account: AccountId, growth: Growth) -> Result<(), ActionError> {
    let Some(billing) = &state.billing else { return Ok(()) };
    let store = state.core.billing();
    let checked = match growth {
        Growth::Registration => billing.entitlements.check_new_registration(store.as_ref(), account).await,
        Growth::LicenseKey => billing.entitlements.check_new_license_key(store.as_ref(), account).await,
    };
    match checked {
        Ok(()) => Ok(()),
        Err(CheckError::Refused(refusal)) => {
            Err(ActionError::Refused { code: refusal.code(), message: refusal.to_string() })
        }
        Err(CheckError::Store(e)) => Err(e.into()),
    }
}

pub(crate) fn webhook_routes() -> Router<Arc<AppState>> {
    Router::new().route("/billing/webhook", post(stripe_webhook))
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// 200 for every event Stripe need not send again (applied, replayed, stale,
/// ignored); 400 when the request is not Stripe's; 500/503 when the store
/// fails, so Stripe retries.
async fn stripe_webhook(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(billing) = &state.billing else {
        return json(StatusCode::NOT_FOUND, serde_json::json!({ "error": "billing_off" }));
    };
    let Ok(payload) = std::str::from_utf8(&body) else {
        return json(StatusCode::BAD_REQUEST, serde_json::json!({ "error": "bad_payload" }));
    };
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    let now = certdns_core::now().unix_timestamp();
    let event = match webhook::verify(payload, signature, &billing.webhook_secret, now) {
        Ok(event) => event,
        Err(e) => {
            tracing::warn!(error = %e, "stripe webhook refused");
            return json(StatusCode::BAD_REQUEST, serde_json::json!({ "error": "bad_signature" }));
        }
    };
    let processed = match webhook::process(state.core.billing().as_ref(), &billing.entitlements.catalogue, &event).await
    {
        Ok(p) => p,
        Err(WebhookError::Store(e)) => {
            tracing::error!(error = %e, event = event.id.as_str(), "stripe webhook: store failed");
            let status = match e {
                certdns_store::StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            return json(status, serde_json::json!({ "error": "store_error" }));
        }
        Err(WebhookError::Rejected(e)) => {
            tracing::warn!(error = %e, "stripe webhook refused");
            return json(StatusCode::BAD_REQUEST, serde_json::json!({ "error": "bad_event" }));
        }
        Err(e @ WebhookError::CustomerOfAnotherAccount { .. }) => {
            // Stripe shows the answer in its dashboard and retries; nothing changed here.
            tracing::warn!(error = %e, event = event.id.as_str(), "stripe webhook: checkout not applied");
            let body = serde_json::json!({ "error": "customer_of_another_account", "message": e.to_string() });
            return json(StatusCode::CONFLICT, body);
        }
    };
    // A failed payment is told by the payment reminders (crate::payment_reminders)
    // within a minute, on their schedule.
    tracing::info!(event = %processed.event_id, kind = event.type_.as_str(), outcome = ?processed.outcome, "stripe webhook");
    json(StatusCode::OK, serde_json::json!({ "received": true, "outcome": format!("{:?}", processed.outcome) }))
}
