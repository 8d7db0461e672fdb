//! What every portal handler shares.

use std::net::IpAddr;
use std::sync::Arc;

use certdns_core::{AccountId, AuditKind, NewAuditEvent};
use certdns_http::ClientAddrRule;
use certdns_store::{PortalStore, Store};
use certdns_sync::TxtSync;

use crate::config::PortalConfig;
use crate::limits::Limits;
use crate::passwords::PasswordHasher;
use crate::{mail, session};

pub(crate) struct AppState {
    pub store: Arc<dyn PortalStore>,
    pub core: Arc<dyn Store>,
    /// Deletes that change what the DNS answers go through here.
    pub sync: Arc<TxtSync>,
    pub config: PortalConfig,
    pub api_url: url::Url,
    pub zone_domain: String,
    pub base_url: String,
    pub mailer: mail::Mailer,
    /// Seals passwords for lego's HTTP storage (`PortalDeps::credentials_key`).
    pub sealer: Option<certdns_core::CredentialSealer>,
    pub keys: session::Keys,
    pub client_addr: ClientAddrRule,
    /// Every argon2id run goes through it (bounded).
    pub passwords: PasswordHasher,
    /// Budgets and back-off of the anonymous forms.
    pub limits: Limits,
    /// Plans and Stripe; `None` when billing is off.
    pub billing: Option<crate::billing::PortalBilling>,
    /// The API reference page, read from the OpenAPI document at start.
    pub api_reference: crate::api_reference::ApiReference,
    /// The status page's last gathering.
    pub status: crate::status::StatusCache,
}

impl AppState {
    /// Appends an audit event; a failure is logged, never shown to the user.
    pub async fn audit(
        &self,
        account: Option<AccountId>,
        kind: AuditKind,
        ip: Option<IpAddr>,
        detail: serde_json::Value,
    ) {
        let event = NewAuditEvent { account_id: account, kind, client_addr: ip, detail };
        if let Err(e) = self.core.append_audit(&event, certdns_core::now()).await {
            tracing::warn!(error = %e, kind = kind.as_str(), "cannot write audit event");
        }
    }

    /// `<subdomain>.<zone>`: the CNAME target of a registration.
    pub fn fulldomain(&self, subdomain: certdns_core::Subdomain) -> String {
        format!("{subdomain}.{}", self.zone_domain)
    }
}
