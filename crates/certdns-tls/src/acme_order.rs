//! One ACME order with instant-acme: the account (restored from the store or
//! made once), the DNS-01 challenges published through [`AcmeStore`], the CSR
//! and the certificate; and the CA's renewal information (ARI, RFC 9773).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, CertificateIdentifier, ChallengeType, ExternalAccountKey,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::acme::{AcmeError, AcmeStore, StoredCertificate};
use crate::acme_http::AcmeHttp;
use crate::certs::{self, Loaded};
use crate::config::AcmeConfig;

/// How long the CA may take to validate, and then to issue.
const VALIDATION: Duration = Duration::from_secs(180);

pub(crate) struct Client {
    config: AcmeConfig,
    store: Arc<dyn AcmeStore>,
    account: Option<Account>,
}

impl Client {
    pub(crate) fn new(config: AcmeConfig, store: Arc<dyn AcmeStore>) -> Self {
        Self { config, store, account: None }
    }

    /// The account: this process's, the store's, or a new one (stored at once).
    async fn account(&mut self) -> Result<Account, AcmeError> {
        if let Some(account) = &self.account {
            return Ok(account.clone());
        }
        let http = || AcmeHttp::new(self.config.directory_ca_file.as_deref()).map(Box::new);
        let account = match self.store.account().await? {
            Some(json) => {
                let credentials: AccountCredentials = serde_json::from_str(&json)
                    .map_err(|e| AcmeError(format!("the stored ACME account does not parse: {e}")))?;
                Account::builder_with_http(http()?).from_credentials(credentials).await?
            }
            None => {
                let contact: Vec<String> = self
                    .config
                    .contact
                    .iter()
                    .map(|c| if c.contains(':') { c.clone() } else { format!("mailto:{c}") })
                    .collect();
                let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
                let eab = match (&self.config.eab_kid, &self.config.eab_hmac_key) {
                    (Some(kid), Some(key)) => {
                        let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .decode(key.trim_end_matches('='))
                            .map_err(|_| AcmeError("tls.acme.eab_hmac_key: not base64url".into()))?;
                        Some(ExternalAccountKey::new(kid.clone(), &key))
                    }
                    _ => None,
                };
                let new = NewAccount { contact: &contact, terms_of_service_agreed: true, only_return_existing: false };
                let (account, credentials) = Account::builder_with_http(http()?)
                    .create(&new, self.config.directory_url.clone(), eab.as_ref())
                    .await?;
                let json = serde_json::to_string(&credentials)
                    .map_err(|e| AcmeError(format!("serialising the ACME account: {e}")))?;
                self.store.save_account(&json).await?;
                tracing::info!(account = account.id(), "tls.acme: ACME account created");
                account
            }
        };
        self.account = Some(account.clone());
        Ok(account)
    }

    /// Orders a certificate for `names`; the chain and key, checked.
    pub(crate) async fn order(&mut self, names: &[String]) -> Result<(StoredCertificate, Loaded), AcmeError> {
        let account = self.account().await?;
        let identifiers: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
        let mut published = Vec::new();
        let solved = self.solve(&mut order, &mut published).await;
        // The values are useless once validated (or failed): withdrawn either way.
        for (name, value) in &published {
            if let Err(e) = self.store.remove_challenge(name, value).await {
                tracing::warn!(error = %e, name, "tls.acme: cannot withdraw a challenge value");
            }
        }
        solved?;
        let key_pem = order.finalize().await?;
        let retries = RetryPolicy::new().timeout(VALIDATION);
        let chain_pem = order.poll_certificate(&retries).await?;
        let loaded = certs::from_pem(chain_pem.as_bytes(), key_pem.as_bytes())?;
        Ok((StoredCertificate { chain_pem, key_pem }, loaded))
    }

    /// Publishes every pending DNS-01 challenge and waits for the order to be
    /// ready; the challenge names and values published, for withdrawal.
    async fn solve(
        &self,
        order: &mut instant_acme::Order,
        published: &mut Vec<(String, String)>,
    ) -> Result<(), AcmeError> {
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => return Err(AcmeError(format!("an authorization is {other:?}"))),
            }
            let mut challenge = authorization
                .challenge(ChallengeType::Dns01)
                .ok_or_else(|| AcmeError("the CA offers no dns-01 challenge".into()))?;
            // The name without its wildcard: `*.x` is proven at `_acme-challenge.x`.
            let Identifier::Dns(name) = challenge.identifier().identifier else {
                return Err(AcmeError("the CA asks about an identifier that is not a DNS name".into()));
            };
            let name = name.to_ascii_lowercase();
            let value = challenge.key_authorization().dns_value();
            self.store.publish_challenge(&name, &value).await?;
            published.push((name, value));
            challenge.set_ready().await?;
        }
        let retries = RetryPolicy::new().timeout(VALIDATION);
        match order.poll_ready(&retries).await? {
            OrderStatus::Ready => Ok(()),
            status => Err(AcmeError(format!("the order is {status:?}: {}", why_invalid(order).await))),
        }
    }

    /// When the CA's renewal information (ARI) suggests renewing, if it offers
    /// any and this process has an account: the middle of the suggested window.
    pub(crate) async fn renewal_hint(&mut self, chain_pem: &str) -> Option<i64> {
        let account = self.account.clone()?;
        let leaf = CertificateDer::pem_slice_iter(chain_pem.as_bytes()).next()?.ok()?;
        let id = CertificateIdentifier::try_from(&leaf).ok()?;
        match account.renewal_info(&id).await {
            Ok((info, _)) => {
                let window = info.suggested_window;
                Some(window.start.unix_timestamp() + (window.end - window.start).whole_seconds() / 2)
            }
            Err(instant_acme::Error::Unsupported(_)) => None,
            Err(e) => {
                tracing::info!(error = %e, "tls.acme: no renewal information; renewing at two thirds");
                None
            }
        }
    }
}

/// The CA's reasons for an invalid order, from its challenges.
async fn why_invalid(order: &mut instant_acme::Order) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authorization)) = authorizations.next().await {
        let Ok(state) = authorization.refresh().await else { continue };
        for challenge in &state.challenges {
            if let Some(problem) = &challenge.error {
                reasons.push(problem.to_string());
            }
        }
    }
    if reasons.is_empty() { "no reason given".into() } else { reasons.join("; ") }
}
