//! Per-license-key update counts for the portal's usage view.
//!
//! The `/update` hot path only increments an in-memory counter per (username,
//! day). A background task flushes the counts every [`FLUSH_EVERY`]: it maps each
//! username to the license key its registration was made with (looked up once,
//! then cached; a registration's key never changes) and adds the sums with one
//! `add_usage` call. Counts of the last interval before a crash are lost; usage is
//! a chart, not billing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use certdns_core::{KeyId, Username};
use certdns_store::{PortalStore, Store};
use time::Date;

pub const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// Bound on the username → key memo; cleared when full.
const KEYS_MAX: usize = 200_000;

#[derive(Default)]
pub(crate) struct UsageRecorder {
    pending: Mutex<HashMap<(Username, Date), u32>>,
}

impl UsageRecorder {
    pub fn record(&self, username: Username) {
        let day = certdns_core::now().date();
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        *pending.entry((username, day)).or_default() += 1;
    }

    fn take(&self) -> HashMap<(Username, Date), u32> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Flushes `recorder` into `sink` until the recorder is dropped (with the router).
pub(crate) fn spawn_flusher(recorder: Weak<UsageRecorder>, store: Arc<dyn Store>, sink: Arc<dyn PortalStore>) {
    tokio::spawn(async move {
        let mut keys: HashMap<Username, Option<KeyId>> = HashMap::new();
        loop {
            tokio::time::sleep(FLUSH_EVERY).await;
            let Some(recorder) = recorder.upgrade() else { return };
            let counts = recorder.take();
            drop(recorder);
            if counts.is_empty() {
                continue;
            }
            if keys.len() > KEYS_MAX {
                keys.clear();
            }
            let mut by_key: HashMap<(KeyId, Date), u32> = HashMap::new();
            for ((username, day), n) in counts {
                let key = match keys.get(&username) {
                    Some(key) => key.clone(),
                    None => match store.registration_for_update(username).await {
                        Ok(found) => {
                            let key = found.and_then(|(reg, _)| reg.license_key_id);
                            keys.insert(username, key.clone());
                            key
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "usage: cannot look a registration up; its counts are dropped");
                            None
                        }
                    },
                };
                if let Some(key) = key {
                    *by_key.entry((key, day)).or_default() += n;
                }
            }
            let rows: Vec<(KeyId, Date, u32)> = by_key.into_iter().map(|((k, d), n)| (k, d, n)).collect();
            if let Err(e) = sink.add_usage(&rows).await {
                tracing::warn!(error = %e, rows = rows.len(), "usage: flush failed; these counts are dropped");
            }
        }
    });
}
