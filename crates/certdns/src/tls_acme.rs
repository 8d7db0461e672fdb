//! `tls.acme` over the store and the TXT sync: the [`certdns_tls::AcmeStore`]
//! certdns-tls orders with.
//!
//! Each name of the certificate has an internal registration (account
//! `tls-acme@<zone>`, bound to the name, never given out): inside the zone its
//! subdomain is derived from the name, so every responder answers
//! `_acme-challenge.<name>` without being told; outside it the subdomain is random
//! and the operator adds `_acme-challenge.<name> CNAME <subdomain>.<zone>` once.
//! The registration persists, so the CNAME does too. Challenge values take the
//! update path (store, then TxtSync, then the wait until every responder serves
//! them); the ACME account and the certificate's key are sealed with
//! `api.credentials_key` before they reach the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use certdns_core::{
    Account, AccountId, AccountRole, AccountStatus, AllowFrom, CredentialSealer, Domain, Email, Registration,
    RegistrationId, Secret, Subdomain, TxtValue, Username,
};
use certdns_store::{AcmeValue, Store, StoreError};
use certdns_sync::{Served, TxtSync};
use certdns_tls::{AcmeError, AcmeStore, Delegation, StoredCertificate};

/// How long a challenge publication waits for every responder to serve it.
const SERVED_WITHIN: Duration = Duration::from_secs(10);

pub struct StoreBackedAcme {
    store: Arc<dyn Store>,
    sync: Arc<TxtSync>,
    sealer: CredentialSealer,
    /// The zone, lower case, no final dot.
    zone: String,
    /// The ACME directory: what the lease and the stored values belong to.
    scope: String,
    /// This process, as the lease's holder.
    holder: String,
    registrations: Mutex<HashMap<String, RegistrationId>>,
}

fn store_error(what: &str) -> impl Fn(StoreError) -> AcmeError + '_ {
    move |e| AcmeError(format!("{what}: {e}"))
}

impl StoreBackedAcme {
    pub fn new(
        store: Arc<dyn Store>,
        sync: Arc<TxtSync>,
        credentials_key: &str,
        zone: &str,
        directory_url: &str,
    ) -> anyhow::Result<Self> {
        let sealer = CredentialSealer::for_tls_keys(credentials_key)
            .map_err(|e| anyhow::anyhow!("api.credentials_key (seals tls.acme's keys): {e}"))?;
        Ok(Self {
            store,
            sync,
            sealer,
            zone: zone.trim_end_matches('.').to_ascii_lowercase(),
            scope: directory_url.to_owned(),
            holder: format!("{} {}", hostname(), uuid::Uuid::new_v4()),
            registrations: Mutex::default(),
        })
    }

    fn in_zone(&self, name: &str) -> bool {
        name == self.zone || name.ends_with(&format!(".{}", self.zone))
    }

    /// The internal account owning the challenge registrations (made once).
    async fn account(&self) -> Result<AccountId, AcmeError> {
        let email = format!("tls-acme@{}", self.zone);
        let error = store_error("the tls.acme account");
        if let Some(account) = self.store.account_by_email(&email).await.map_err(&error)? {
            return Ok(account.id);
        }
        let account = Account {
            id: AccountId::generate(),
            email: Email::parse(&email).map_err(|e| AcmeError(format!("{email}: {e}")))?,
            role: AccountRole::Customer,
            status: AccountStatus::Active,
            // Cannot sign in to the portal.
            password_hash: None,
            created_at: certdns_core::now(),
        };
        match self.store.create_account(&account).await {
            Ok(()) => Ok(account.id),
            // Another instance made it at the same moment.
            Err(StoreError::Conflict(_)) => {
                let found = self.store.account_by_email(&email).await.map_err(&error)?;
                found.map(|a| a.id).ok_or_else(|| AcmeError("the tls.acme account vanished".into()))
            }
            Err(e) => Err(error(e)),
        }
    }

    /// The registration answering `name`'s challenge; whether it was made now.
    async fn registration_for(&self, account: AccountId, name: &str) -> Result<(Registration, bool), AcmeError> {
        let domain = Domain::parse(name).map_err(|e| AcmeError(format!("tls.acme.names: {name}: {e}")))?;
        let error = store_error("a tls.acme registration");
        if let Some(found) = self.store.registration_by_domain(account, &domain).await.map_err(&error)? {
            return Ok((found, false));
        }
        let subdomain = if self.in_zone(name) { Subdomain::for_acme_challenge(name) } else { Subdomain::generate() };
        let registration = Registration {
            id: RegistrationId::generate(),
            account_id: account,
            license_key_id: None,
            username: Username::generate(),
            // Nobody updates it through the API: a password never shown.
            password_hash: Secret::generate().hash(),
            subdomain,
            allow_from: AllowFrom::default(),
            subject: Some("tls.acme".into()),
            domain: Some(domain.clone()),
            password_sealed: None,
            acme_account_url: None,
            kind: certdns_core::RegistrationKind::Challenge,
            created_at: certdns_core::now(),
            last_update_at: None,
        };
        match self.store.create_registration(&registration).await {
            Ok(()) => {
                self.sync.registration_created(subdomain).await;
                Ok((registration, true))
            }
            Err(StoreError::Conflict(_)) => {
                let found = self.store.registration_by_domain(account, &domain).await.map_err(&error)?;
                Ok((found.ok_or_else(|| AcmeError(format!("the registration for {name} vanished")))?, false))
            }
            Err(e) => Err(error(e)),
        }
    }

    fn registration(&self, name: &str) -> Result<RegistrationId, AcmeError> {
        let known = self.registrations.lock().unwrap_or_else(|p| p.into_inner());
        known
            .get(name)
            .copied()
            .ok_or_else(|| AcmeError(format!("the CA asks about {name}, which is not in tls.acme.names")))
    }

    fn context(&self, which: AcmeValue) -> Vec<u8> {
        format!("{which:?} {}", self.scope).into_bytes()
    }

    async fn sealed_value(&self, which: AcmeValue) -> Result<Option<String>, AcmeError> {
        self.store.acme_value(&self.scope, which).await.map_err(store_error("reading tls.acme's state"))
    }

    async fn set_value(&self, which: AcmeValue, value: &str) -> Result<(), AcmeError> {
        let now = certdns_core::now().unix_timestamp();
        self.store.acme_set_value(&self.scope, which, value, now).await.map_err(store_error("storing tls.acme's state"))
    }

    /// Publishes a registration's new state and waits until it is served.
    async fn publish(&self, state: certdns_core::TxtState, name: &str) {
        let position = self.sync.publish_states(vec![state]).await;
        match self.sync.wait_until_served(position.as_ref(), SERVED_WITHIN).await {
            Served::Everywhere { .. } => {}
            // Starting: no responder has reported yet (the CA may still find it).
            Served::NotConfirmed { live: 0, .. } => tracing::info!(name, "tls.acme: no responder reports yet"),
            Served::NotConfirmed { live, confirmed } => {
                tracing::warn!(name, live, confirmed, "tls.acme: not every responder confirmed the challenge value");
            }
        }
    }
}

#[async_trait]
impl AcmeStore for StoreBackedAcme {
    async fn prepare(&self, names: &[String]) -> Result<Vec<Delegation>, AcmeError> {
        let account = self.account().await?;
        let mut delegations = Vec::new();
        for name in names {
            let name = name.strip_prefix("*.").unwrap_or(name);
            if self.registration(name).is_ok() {
                continue;
            }
            let (registration, new) = self.registration_for(account, name).await?;
            if !self.in_zone(name) {
                delegations.push(Delegation {
                    cname: format!("_acme-challenge.{name}"),
                    target: format!("{}.{}", registration.subdomain, self.zone),
                    new,
                });
            }
            self.registrations.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_owned(), registration.id);
        }
        Ok(delegations)
    }

    async fn publish_challenge(&self, name: &str, value: &str) -> Result<(), AcmeError> {
        let id = self.registration(name)?;
        let value = TxtValue::parse(value).map_err(|e| AcmeError(format!("the CA's challenge value: {e}")))?;
        let state = self
            .store
            .put_txt(id, &value, self.sync.keep(), certdns_core::now())
            .await
            .map_err(store_error("writing a challenge value"))?;
        self.publish(state, name).await;
        Ok(())
    }

    async fn remove_challenge(&self, name: &str, value: &str) -> Result<(), AcmeError> {
        let id = self.registration(name)?;
        let value = TxtValue::parse(value).map_err(|e| AcmeError(format!("a challenge value: {e}")))?;
        let removed = self
            .store
            .remove_txt(id, &value, self.sync.keep(), certdns_core::now())
            .await
            .map_err(store_error("removing a challenge value"))?;
        if let Some(state) = removed {
            self.publish(state, name).await;
        }
        Ok(())
    }

    async fn take_lease(&self, lease: Duration) -> Result<bool, AcmeError> {
        let now = certdns_core::now().unix_timestamp();
        let until = now + i64::try_from(lease.as_secs()).unwrap_or(i64::MAX / 2);
        self.store
            .acme_take_lease(&self.scope, &self.holder, until, now)
            .await
            .map_err(store_error("the ordering lease"))
    }

    async fn release_lease(&self) -> Result<(), AcmeError> {
        self.store.acme_release_lease(&self.scope, &self.holder).await.map_err(store_error("the ordering lease"))
    }

    async fn account(&self) -> Result<Option<String>, AcmeError> {
        let Some(sealed) = self.sealed_value(AcmeValue::Account).await? else { return Ok(None) };
        let opened = self.sealer.open_bound(&self.context(AcmeValue::Account), &sealed);
        // A key changed since: a new ACME account is made (the old one is only unused).
        Ok(opened.inspect_err(|e| tracing::warn!(error = %e, "tls.acme: the stored ACME account does not open")).ok())
    }

    async fn save_account(&self, credentials: &str) -> Result<(), AcmeError> {
        let sealed = self
            .sealer
            .seal_bound(&self.context(AcmeValue::Account), credentials)
            .map_err(|e| AcmeError(e.to_string()))?;
        self.set_value(AcmeValue::Account, &sealed).await
    }

    async fn certificate(&self) -> Result<Option<StoredCertificate>, AcmeError> {
        let Some(stored) = self.sealed_value(AcmeValue::Certificate).await? else { return Ok(None) };
        let parsed: StoredJson =
            serde_json::from_str(&stored).map_err(|e| AcmeError(format!("the stored certificate: {e}")))?;
        let key_pem = self
            .sealer
            .open_bound(&self.context(AcmeValue::Certificate), &parsed.key_sealed)
            .map_err(|e| AcmeError(format!("the stored certificate's key: {e}")))?;
        Ok(Some(StoredCertificate { chain_pem: parsed.chain_pem, key_pem }))
    }

    async fn save_certificate(&self, certificate: &StoredCertificate) -> Result<(), AcmeError> {
        let key_sealed = self
            .sealer
            .seal_bound(&self.context(AcmeValue::Certificate), &certificate.key_pem)
            .map_err(|e| AcmeError(e.to_string()))?;
        let json = serde_json::to_string(&StoredJson { chain_pem: certificate.chain_pem.clone(), key_sealed })
            .map_err(|e| AcmeError(e.to_string()))?;
        self.set_value(AcmeValue::Certificate, &json).await
    }
}

/// The certificate column: the chain in clear (it is public), the key sealed.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredJson {
    chain_pem: String,
    key_sealed: String,
}

fn hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}
