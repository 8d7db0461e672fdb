//! What certdns tells an account's owner, and where. Every alert is an
//! [`Event`] of one [`EventType`]; the [`Dispatcher`] writes it to the audit
//! log, mails it unless the owner turned that type off, and queues a signed
//! delivery for each webhook endpoint subscribed to it (sent by
//! `certdns_webhooks::Deliverer`). Sources: the delegation monitor (broken,
//! restored, renewal overdue, through [`Notifier`]) and [`watch`] (bursts of
//! failed authentications, a rotated key's old secret still in use as its
//! grace ends). Each source tells once per change, so there are no storms.

mod messages;
pub mod watch;

use std::sync::Arc;

use async_trait::async_trait;
use certdns_core::{AccountId, AuditKind, NewAuditEvent};
use certdns_monitor::{Alert, AlertKind, Notifier};
use certdns_store::{NewDelivery, Store, WebhookEndpoint};

use crate::mail::Mailer;

/// The kinds of alert, as named in webhook payloads and settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    DelegationBroken,
    DelegationRestored,
    RenewalOverdue,
    AuthFailures,
    KeyGraceEnding,
    /// Sent on request to one endpoint; never mailed.
    Test,
}

impl EventType {
    /// Every type a customer can choose (not `test`).
    pub const CHOOSABLE: [EventType; 5] = [
        EventType::DelegationBroken,
        EventType::DelegationRestored,
        EventType::RenewalOverdue,
        EventType::AuthFailures,
        EventType::KeyGraceEnding,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            EventType::DelegationBroken => "delegation.broken",
            EventType::DelegationRestored => "delegation.restored",
            EventType::RenewalOverdue => "renewal.overdue",
            EventType::AuthFailures => "auth.failures",
            EventType::KeyGraceEnding => "key.grace_ending",
            EventType::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::CHOOSABLE.into_iter().chain([EventType::Test]).find(|t| t.as_str() == s)
    }

    /// One line for the settings page.
    pub fn describe(&self) -> &'static str {
        match self {
            EventType::DelegationBroken => "A CNAME stops pointing here (missing, elsewhere, or shadowed by a TXT)",
            EventType::DelegationRestored => "A broken CNAME is correct again",
            EventType::RenewalOverdue => "A client's renewal did not come when its rhythm said it would",
            EventType::AuthFailures => "A burst of failed authentications on a registration or license key",
            EventType::KeyGraceEnding => "A rotated key's old secret is still in use and its grace period ends soon",
            EventType::Test => "A test event sent from the Alerts page",
        }
    }
}

/// One alert for one account.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventType,
    pub account: AccountId,
    /// The webhook payload's `data`.
    pub data: serde_json::Value,
    /// The audit log entry, if this kind is audited.
    pub audit: Option<(AuditKind, serde_json::Value)>,
    /// Subject and body of the mail; `None`: never mailed.
    pub mail: Option<(String, String)>,
}

/// Audits, mails and queues webhook deliveries for events.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    mailer: Mailer,
    /// The portal's base URL, for links in mails.
    base_url: String,
}

/// One event's deliveries: its body, made once, for every endpoint that asked
/// for `kind` (a `test` event goes to the endpoints it is given).
pub fn deliveries(
    endpoints: &[WebhookEndpoint],
    kind: EventType,
    account: AccountId,
    data: &serde_json::Value,
    created: i64,
) -> Vec<NewDelivery> {
    let event_id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    let body = payload(&event_id, kind, account, created, data);
    endpoints
        .iter()
        .filter(|e| kind == EventType::Test || e.events.iter().any(|t| t == kind.as_str()))
        .map(|e| NewDelivery {
            id: uuid::Uuid::new_v4(),
            endpoint_id: e.id,
            account_id: account,
            event_id: event_id.clone(),
            event_type: kind.as_str().to_owned(),
            payload: body.clone(),
            created_at: created,
        })
        .collect()
}

/// The exact body of a webhook delivery.
fn payload(event_id: &str, kind: EventType, account: AccountId, created: i64, data: &serde_json::Value) -> String {
    serde_json::json!({
        "id": event_id,
        "type": kind.as_str(),
        "created": created,
        "account": account.to_string(),
        "data": data,
    })
    .to_string()
}

impl Dispatcher {
    pub fn new(
        config: &crate::PortalConfig,
        store: Arc<dyn Store>,
        data_dir: &std::path::Path,
    ) -> Result<Self, crate::PortalError> {
        let mailer =
            Mailer::new(config.smtp.as_ref().map(|s| s.url.as_str()), &config.mail_from, data_dir.join("outbox.eml"))?;
        Ok(Self { store, mailer, base_url: config.base_url().trim_end_matches('/').to_owned() })
    }

    /// A link into the portal.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Tells the event's account everywhere it asked to be told. Failures are
    /// logged: an alert that cannot be mailed still goes to the webhooks.
    pub async fn dispatch(&self, event: Event) {
        let now = certdns_core::now();
        if let Some((kind, detail)) = &event.audit {
            let entry = NewAuditEvent {
                account_id: Some(event.account),
                kind: *kind,
                client_addr: None,
                detail: detail.clone(),
            };
            if let Err(e) = self.store.append_audit(&entry, now).await {
                tracing::warn!(error = %e, "cannot write an alert's audit event");
            }
        }
        metrics::counter!("certdns_alerts_total", "type" => event.kind.as_str()).increment(1);
        let alerts = self.store.alerts();
        if let Some((subject, body)) = &event.mail {
            self.mail(&event, subject, body).await;
        }
        let endpoints = match alerts.webhooks(event.account).await {
            Ok(endpoints) => endpoints,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read webhook endpoints; this alert is not sent to them");
                return;
            }
        };
        let deliveries = deliveries(&endpoints, event.kind, event.account, &event.data, now.unix_timestamp());
        if !deliveries.is_empty()
            && let Err(e) = alerts.enqueue_deliveries(&deliveries).await
        {
            tracing::warn!(error = %e, "cannot queue webhook deliveries");
        }
    }

    async fn mail(&self, event: &Event, subject: &str, body: &str) {
        match self.store.alerts().email_settings(event.account).await {
            Ok(settings) if settings.iter().any(|(t, on)| t == event.kind.as_str() && !on) => return,
            Ok(_) => {}
            // Unknown choice: mail, since a missed alert costs more than an unwanted one.
            Err(e) => tracing::warn!(error = %e, "cannot read alert settings; mailing"),
        }
        let owner = match self.store.account(event.account).await {
            Ok(Some(account)) => account,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot find whom to mail an alert to");
                return;
            }
        };
        if let Err(e) = self.mailer.send(owner.email.as_str(), subject, body.to_owned()).await {
            tracing::warn!(error = %e, kind = event.kind.as_str(), "cannot mail an alert");
        }
    }
}

/// The delegation monitor's alerts, as events.
struct MonitorAlerts(Arc<Dispatcher>);

#[async_trait]
impl Notifier for MonitorAlerts {
    async fn alert(&self, alert: &Alert) {
        let subdomain = alert.target.split('.').next().unwrap_or_default();
        let link = self.0.link(&format!("/registrations/{subdomain}"));
        let (kind, audit_kind, status) = match &alert.kind {
            AlertKind::Broken { status, .. } => {
                (EventType::DelegationBroken, AuditKind::DelegationBroken, status.as_str())
            }
            AlertKind::Restored => (EventType::DelegationRestored, AuditKind::DelegationRestored, "correct"),
            AlertKind::RenewalOverdue { .. } => (EventType::RenewalOverdue, AuditKind::RenewalOverdue, "overdue"),
        };
        let mut data = serde_json::json!({
            "domain": alert.domain,
            "registration": subdomain,
            "cname": { "name": alert.cname_name, "target": alert.target },
            "status": status,
        });
        match &alert.kind {
            AlertKind::Broken { detail, .. } => data["detail"] = detail.clone().into(),
            AlertKind::RenewalOverdue { last_renewal, expected_by } => {
                data["last_renewal_at"] = (*last_renewal).into();
                data["expected_by"] = (*expected_by).into();
            }
            AlertKind::Restored => {}
        }
        let audit = serde_json::json!({ "domain": alert.domain, "subdomain": subdomain, "status": status });
        let event = Event {
            kind,
            account: alert.account,
            data,
            audit: Some((audit_kind, audit)),
            mail: Some(messages::delegation(alert, &link)),
        };
        self.0.dispatch(event).await;
    }
}

/// A notifier for the delegation monitor: the portal's e-mail (per the
/// account's settings), audit log and webhooks.
pub fn alert_notifier(
    config: &crate::PortalConfig,
    store: Arc<dyn Store>,
    data_dir: &std::path::Path,
) -> Result<Arc<dyn Notifier>, crate::PortalError> {
    Ok(Arc::new(MonitorAlerts(Arc::new(Dispatcher::new(config, store, data_dir)?))))
}

/// Everything alerting runs in the portal role: the monitor's notifier, the
/// watch over failed authentications and grace periods, and the webhook
/// delivery worker.
pub struct AlertWorkers {
    pub notifier: Arc<dyn Notifier>,
    pub watch: watch::AlertWatch,
    pub deliverer: certdns_webhooks::Deliverer,
}

pub fn alert_workers(
    config: &crate::PortalConfig,
    store: Arc<dyn Store>,
    data_dir: &std::path::Path,
) -> Result<AlertWorkers, crate::PortalError> {
    let dispatcher = Arc::new(Dispatcher::new(config, store.clone(), data_dir)?);
    let delivery = certdns_webhooks::DeliveryConfig {
        allow_private: config.webhooks_allow_private,
        ..certdns_webhooks::DeliveryConfig::default()
    };
    let deliverer = certdns_webhooks::Deliverer::new(store.alerts(), delivery)
        .map_err(|e| crate::PortalError::Config(format!("webhook client: {e}")))?;
    Ok(AlertWorkers {
        notifier: Arc::new(MonitorAlerts(dispatcher.clone())),
        watch: watch::AlertWatch::new(store, dispatcher, config.alert_auth_failures),
        deliverer,
    })
}
