//! The Stripe calls certdns makes: a customer on the first Checkout, a
//! Checkout session in subscription mode, reading a finished session back
//! (the success page never trusts ids from the browser), and the customer
//! portal for invoices and payment methods.

use std::time::Duration;

use certdns_core::AccountId;
use stripe::{Client, ClientBuilder, StripeError};
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_checkout::CheckoutSessionMode;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, RetrieveCheckoutSession,
};
use stripe_core::customer::CreateCustomer;

use crate::config::StripeConfig;

/// A Stripe request that failed; the message never holds the secret key.
#[derive(Debug, thiserror::Error)]
#[error("stripe: {message}")]
pub struct StripeCallError {
    message: String,
    /// Stripe answered 404: no such object (for this key).
    pub not_found: bool,
}

impl From<StripeError> for StripeCallError {
    fn from(e: StripeError) -> Self {
        let not_found = matches!(e, StripeError::Stripe(_, 404));
        StripeCallError { message: e.to_string(), not_found }
    }
}

/// A finished Checkout session as Stripe reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutResult {
    /// The account the server put on the session when it created it.
    pub account: Option<AccountId>,
    pub customer_id: Option<String>,
    pub subscription_id: Option<String>,
    pub complete: bool,
}

pub struct StripeApi {
    client: Client,
}

impl std::fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StripeApi")
    }
}

impl StripeApi {
    /// `None` when billing is off (no secret key).
    pub fn new(config: &StripeConfig) -> Result<Option<StripeApi>, StripeCallError> {
        let Some(secret) = &config.secret_key else { return Ok(None) };
        let mut builder = ClientBuilder::new(secret.as_str()).timeout(Duration::from_secs(20));
        if let Some(base) = &config.api_base {
            // The SDK appends `v1/…` to the base as written.
            builder = builder.url(format!("{}/", base.trim_end_matches('/')));
        }
        Ok(Some(StripeApi { client: builder.build()? }))
    }

    pub async fn create_customer(&self, email: &str, account: AccountId) -> Result<String, StripeCallError> {
        let customer = CreateCustomer::new()
            .email(email)
            .metadata(
                [("certdns_account".to_owned(), account.to_string())]
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            )
            .send(&self.client)
            .await?;
        Ok(customer.id.as_str().to_owned())
    }

    /// A hosted Checkout page for one plan; returns its URL.
    pub async fn checkout(
        &self,
        customer_id: &str,
        price_id: &str,
        account: AccountId,
        success_url: &str,
        cancel_url: &str,
    ) -> Result<String, StripeCallError> {
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price = Some(price_id.to_owned());
        item.quantity = Some(1);
        let session = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Subscription)
            .customer(customer_id)
            .client_reference_id(account.to_string())
            .line_items(vec![item])
            .success_url(success_url)
            .cancel_url(cancel_url)
            .send(&self.client)
            .await?;
        session
            .url
            .ok_or_else(|| StripeCallError { message: "checkout session without a url".into(), not_found: false })
    }

    pub async fn checkout_result(&self, session_id: &str) -> Result<CheckoutResult, StripeCallError> {
        let session = RetrieveCheckoutSession::new(session_id).send(&self.client).await?;
        Ok(CheckoutResult {
            account: session.client_reference_id.as_deref().and_then(|s| s.parse().ok()),
            customer_id: session.customer.as_ref().map(|c| c.id().as_str().to_owned()),
            subscription_id: session.subscription.as_ref().map(|s| s.id().as_str().to_owned()),
            complete: session.status.as_ref().is_some_and(|s| s.as_str() == "complete"),
        })
    }

    /// The customer portal (invoices, payment methods, cancel); returns its URL.
    pub async fn customer_portal(&self, customer_id: &str, return_url: &str) -> Result<String, StripeCallError> {
        let session =
            CreateBillingPortalSession::new().customer(customer_id).return_url(return_url).send(&self.client).await?;
        Ok(session.url)
    }
}
