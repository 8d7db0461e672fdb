//! The alert sources outside the delegation monitor, read from what the API
//! instances flush into the store (`certdns_api`'s signals): bursts of failed
//! authentications, and rotated keys whose old secret is still in use as its
//! grace period ends. Each is claimed in one compare-and-set statement, so of
//! several portal instances exactly one tells.

use std::sync::Arc;
use std::time::Duration;

use certdns_core::{AuditKind, KeyId, Username};
use certdns_store::Store;
use tokio_util::sync::CancellationToken;

use super::{Dispatcher, Event, EventType, messages};

/// How long before a grace period ends its owner is warned (when the old
/// secret is still in use): time to update a client, even over a weekend.
pub const GRACE_WARNING_SECS: i64 = 2 * 86_400;
const EVERY: Duration = Duration::from_secs(10);

pub struct AlertWatch {
    store: Arc<dyn Store>,
    dispatcher: Arc<Dispatcher>,
    /// Failures in a burst before it is told.
    burst_threshold: u64,
}

impl AlertWatch {
    pub fn new(store: Arc<dyn Store>, dispatcher: Arc<Dispatcher>, burst_threshold: u32) -> Self {
        Self { store, dispatcher, burst_threshold: u64::from(burst_threshold) }
    }

    pub async fn run(self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.round(certdns_core::now().unix_timestamp()).await {
                tracing::warn!(error = %e, "alert watch round failed; retrying");
            }
        }
    }

    /// Tells every burst and grace ending due at `now`; how many were told.
    pub async fn round(&self, now: i64) -> Result<usize, certdns_store::StoreError> {
        let alerts = self.store.alerts();
        let bursts = alerts.claim_auth_failure_bursts(self.burst_threshold).await?;
        let graces = alerts.claim_grace_ending(now, GRACE_WARNING_SECS).await?;
        let told = bursts.len() + graces.len();
        for burst in bursts {
            let (what, data, link) = self.subject(&burst.subject).await;
            let mut data = data;
            data["failures"] = burst.failures.into();
            data["first_at"] = burst.first_at.into();
            data["last_at"] = burst.last_at.into();
            let mail = messages::auth_failures(&what, burst.failures, burst.first_at, burst.last_at, &link);
            let audit = data.clone();
            let event = Event {
                kind: EventType::AuthFailures,
                account: burst.account,
                data,
                audit: Some((AuditKind::AuthFailuresAlerted, audit)),
                mail: Some(mail),
            };
            self.dispatcher.dispatch(event).await;
        }
        for grace in graces {
            let link = self.dispatcher.link("/keys");
            let mail = messages::grace_ending(&grace.name, grace.key.as_str(), grace.last_used_at, grace.until, &link);
            let data = serde_json::json!({
                "key": grace.key.as_str(),
                "name": grace.name,
                "previous_secret_used_at": grace.last_used_at,
                "grace_until": grace.until,
            });
            let event = Event {
                kind: EventType::KeyGraceEnding,
                account: grace.account,
                audit: Some((AuditKind::LicenseKeyGraceEnding, data.clone())),
                data,
                mail: Some(mail),
            };
            self.dispatcher.dispatch(event).await;
        }
        Ok(told)
    }

    /// A burst's subject for people, for the payload, and the page to look at.
    async fn subject(&self, subject: &str) -> (String, serde_json::Value, String) {
        match subject.split_once(':') {
            Some(("registration", user)) => {
                let found = match user.parse::<Username>() {
                    Ok(u) => self.store.registration_for_update(u).await.ok().flatten().map(|(r, _)| r),
                    Err(_) => None,
                };
                let (subdomain, domain) = match &found {
                    Some(r) => (r.subdomain.to_string(), r.domain.as_ref().map(ToString::to_string)),
                    None => (String::new(), None),
                };
                let what = match &domain {
                    Some(d) => format!("the registration for {d} ({subdomain})"),
                    None => format!("registration {subdomain}"),
                };
                let data = serde_json::json!({
                    "subject": "registration", "username": user, "registration": subdomain, "domain": domain,
                });
                (what, data, self.dispatcher.link(&format!("/registrations/{subdomain}")))
            }
            Some(("key", id)) => {
                let name = match id.parse::<KeyId>() {
                    Ok(k) => self.store.license_key(&k).await.ok().flatten().map(|k| k.name),
                    Err(_) => None,
                };
                let what = match &name {
                    Some(n) => format!("license key “{n}” ({id})"),
                    None => format!("license key {id}"),
                };
                let data = serde_json::json!({ "subject": "key", "key": id, "name": name });
                (what, data, self.dispatcher.link("/keys"))
            }
            _ => (subject.to_owned(), serde_json::json!({ "subject": subject }), self.dispatcher.link("/audit")),
        }
    }
}
