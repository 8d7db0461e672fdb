//! What the API notices for alerting: failed authentications that name a known
//! registration or license key (a client with a stale password, or someone
//! guessing), and uses of a rotated key's previous secret during its grace
//! period. Counted in memory on the request path and flushed to the store
//! every [`FLUSH_EVERY`]; the portal's alert loop reads them from there, so any
//! number of API instances add up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use certdns_core::{AccountId, KeyId, Username};
use certdns_store::{AlertStore, AuthFailureCount, PreviousSecretUse};

pub const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// A subject with no failure for this long starts a new burst.
pub const BURST_QUIET_SECS: i64 = 900;
/// Bound on subjects held between flushes (a flood of distinct ones is dropped,
/// not allowed to grow memory; the rate limits refuse it anyway).
const MAX_PENDING: usize = 50_000;

#[derive(Default)]
pub struct AlertSignals {
    failures: Mutex<HashMap<(String, AccountId), u32>>,
    previous: Mutex<HashMap<KeyId, (i64, i64)>>,
}

impl AlertSignals {
    pub fn registration_failure(&self, user: Username, account: AccountId) {
        self.failure(format!("registration:{user}"), account);
    }

    pub fn key_failure(&self, key: &KeyId, account: AccountId) {
        self.failure(format!("key:{key}"), account);
    }

    fn failure(&self, subject: String, account: AccountId) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() < MAX_PENDING || failures.contains_key(&(subject.clone(), account)) {
            *failures.entry((subject, account)).or_default() += 1;
        }
    }

    /// The key's previous secret, valid until `until`, was accepted at `at`.
    pub fn previous_secret_used(&self, key: &KeyId, at: time::OffsetDateTime, until: time::OffsetDateTime) {
        let mut previous = self.previous.lock().unwrap_or_else(|p| p.into_inner());
        if previous.len() < MAX_PENDING || previous.contains_key(key) {
            previous.insert(key.clone(), (at.unix_timestamp(), until.unix_timestamp()));
        }
    }

    /// Writes what was noticed since the last flush.
    pub async fn flush(&self, store: &dyn AlertStore) -> Result<(), certdns_store::StoreError> {
        let failures = std::mem::take(&mut *self.failures.lock().unwrap_or_else(|p| p.into_inner()));
        let previous = std::mem::take(&mut *self.previous.lock().unwrap_or_else(|p| p.into_inner()));
        if !failures.is_empty() {
            let counts: Vec<AuthFailureCount> = failures
                .into_iter()
                .map(|((subject, account), failures)| AuthFailureCount { subject, account, failures })
                .collect();
            store.add_auth_failures(&counts, certdns_core::now().unix_timestamp(), BURST_QUIET_SECS).await?;
        }
        if !previous.is_empty() {
            let uses: Vec<PreviousSecretUse> =
                previous.into_iter().map(|(key, (at, until))| PreviousSecretUse { key, at, until }).collect();
            store.note_previous_secret_use(&uses).await?;
        }
        Ok(())
    }
}

/// Flushes `signals` into `store` until the signals are dropped (with the router).
pub(crate) fn spawn_flusher(signals: Weak<AlertSignals>, store: Arc<dyn AlertStore>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(FLUSH_EVERY).await;
            let Some(signals) = signals.upgrade() else { return };
            if let Err(e) = signals.flush(store.as_ref()).await {
                tracing::warn!(error = %e, "alert signals: flush failed; these counts are dropped");
            }
        }
    });
}
