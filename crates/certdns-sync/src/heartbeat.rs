//! A writer's heartbeat: every [`EVERY`], an instance of the api role writes to
//! the store that it is alive, whether it reaches the TXT distribution, and the
//! propagation times it measured (see [`crate::propagation`]). The write itself
//! proves the store takes its writes. The public status page reads these rows;
//! an instance whose row is older than [`STALE_AFTER`] is no longer up.

use std::sync::Arc;
use std::time::Duration;

use certdns_store::Heartbeat;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::TxtSync;

/// How often an instance writes its heartbeat.
pub const EVERY: Duration = Duration::from_secs(10);
/// A heartbeat older than this (three missed) means the instance is not up.
pub const STALE_AFTER_SECS: i64 = 35;
/// Rows of instances gone for longer than this are deleted.
pub const FORGET_AFTER_SECS: i64 = 7 * 24 * 3600;
/// Each check of the distribution gives up after this long.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// The newest measurements carried in a heartbeat.
const SAMPLES_SENT: usize = 200;

/// Who is beating: the role and a name for people.
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub role: &'static str,
    pub name: String,
    pub started_at: i64,
}

impl Instance {
    /// A fresh identity for this process's `role`.
    pub fn new(role: &'static str, name: impl Into<String>) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self { id, role, name: name.into(), started_at: certdns_core::now().unix_timestamp() }
    }
}

impl TxtSync {
    /// Writes `instance`'s heartbeat now and every [`EVERY`] until `cancel`,
    /// then removes it (a clean stop). A failed write is logged once per outage; the status page then shows the
    /// instance as not up, which is the truth for its writes.
    pub fn spawn_heartbeat(self: &Arc<Self>, instance: Instance, cancel: CancellationToken) -> JoinHandle<()> {
        let sync = self.clone();
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                match sync.beat(&instance).await {
                    Ok(()) if failing => {
                        tracing::info!("writing the heartbeat works again");
                        failing = false;
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        tracing::warn!(error = %e, "cannot write this instance's heartbeat to the store");
                        failing = true;
                    }
                    Err(_) => {}
                }
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(EVERY) => {}
                }
            }
            // A clean stop is not an outage: the status page stops counting it.
            let fleet = sync.store.fleet();
            if let Ok(Err(e)) = tokio::time::timeout(CHECK_TIMEOUT, fleet.remove_heartbeat(&instance.id)).await {
                tracing::warn!(error = %e, "cannot remove this instance's heartbeat");
            }
        })
    }

    /// One heartbeat of `instance`.
    pub async fn beat(&self, instance: &Instance) -> Result<(), certdns_store::StoreError> {
        let now = certdns_core::now().unix_timestamp();
        let reachable = matches!(tokio::time::timeout(CHECK_TIMEOUT, self.distribution.ping()).await, Ok(Ok(())));
        let recent = self.propagation().recent(now);
        let sent = &recent[recent.len().saturating_sub(SAMPLES_SENT)..];
        let detail = serde_json::json!({
            "distribution": if reachable { "ok" } else { "unavailable" },
            "propagation": sent,
        });
        let beat = Heartbeat {
            instance_id: instance.id.clone(),
            role: instance.role.to_owned(),
            name: instance.name.clone(),
            started_at: instance.started_at,
            seen_at: now,
            detail,
        };
        let fleet = self.store.fleet();
        match tokio::time::timeout(CHECK_TIMEOUT * 2, fleet.put_heartbeat(&beat, now - FORGET_AFTER_SECS)).await {
            Ok(result) => result,
            Err(_) => Err(certdns_store::StoreError::Unavailable("the heartbeat write timed out".into())),
        }
    }
}
