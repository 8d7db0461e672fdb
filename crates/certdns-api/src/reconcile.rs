//! Keeping the TXT distribution in step with the store.
//!
//! The store is the truth; the distribution is a copy that DNS responders read. A
//! write that reached the store but whose publish failed (Redis down) is repaired
//! by [`reconcile`], which the reconciler runs at start (seeding an empty
//! in-process distribution after a restart), when poked after a failed publish,
//! and periodically. Publishing is idempotent (the newest version wins), so
//! republishing what is already there is harmless.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use certdns_core::Subdomain;
use certdns_distribution::{Change, DistError, Distribution};
use certdns_store::{Store, StoreError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Registrations read per store page.
const PAGE: u32 = 1_000;
/// Changes per publish call.
const CHUNK: usize = 500;
/// A full reconcile this often even without pokes.
pub const PERIODIC: Duration = Duration::from_secs(300);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Registrations in the store.
    pub checked: usize,
    /// Upserts published (missing from, or older in, the distribution).
    pub upserted: usize,
    /// Removals published (in the distribution, gone from the store).
    pub removed: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Distribution(#[from] DistError),
}

/// Makes the distribution answer what the store holds.
///
/// The snapshot is taken before the store is read: a registration created after
/// the snapshot is then either found in the store (and published) or not yet
/// committed (and published by its own request), and one in the snapshot but
/// missing from the store was really deleted.
pub async fn reconcile(
    store: &dyn Store,
    distribution: &dyn Distribution,
    keep: usize,
) -> Result<ReconcileReport, ReconcileError> {
    let snapshot = distribution.snapshot().await?;
    let mut published: HashMap<Subdomain, u64> =
        snapshot.states.into_iter().map(|s| (s.subdomain, s.version)).collect();
    let mut report = ReconcileReport::default();
    let mut pending = Vec::new();
    let mut after = None;
    loop {
        let page = store.txt_states_page(after, PAGE, keep).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.subdomain);
        report.checked += page.len();
        for state in page {
            let held = published.remove(&state.subdomain);
            if held.is_none_or(|v| v < state.version) {
                pending.push(Change::Upsert(state));
            }
        }
        if pending.len() >= CHUNK {
            report.upserted += pending.len();
            distribution.publish(&std::mem::take(&mut pending)).await?;
        }
    }
    report.upserted += pending.len();
    // Whatever is left was published but no longer exists in the store.
    for (subdomain, version) in published {
        report.removed += 1;
        pending.push(Change::Remove { subdomain, version: version + 1 });
    }
    for chunk in pending.chunks(CHUNK) {
        distribution.publish(chunk).await?;
    }
    Ok(report)
}

/// Asks a reconciler for a run soon. Cheap and non-blocking; pokes that arrive
/// while a run is pending are merged into it.
#[derive(Debug, Clone)]
pub struct ReconcileHandle {
    tx: mpsc::Sender<()>,
}

impl ReconcileHandle {
    pub fn poke(&self) {
        let _ = self.tx.try_send(());
    }
}

/// Starts a reconciler: one run at start (retried with backoff until it
/// succeeds), then one after every poke and every [`PERIODIC`]. Stops when
/// `cancel` fires.
pub fn spawn_reconciler(
    store: Arc<dyn Store>,
    distribution: Arc<dyn Distribution>,
    keep: usize,
    cancel: CancellationToken,
) -> (ReconcileHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(1);
    let _ = tx.try_send(());
    let task = tokio::spawn(run(store, distribution, keep, rx, cancel, Some(PERIODIC)));
    (ReconcileHandle { tx }, task)
}

/// A reconciler that only runs when poked; it ends when every handle is dropped.
/// The router keeps one of its own so failed publishes are repaired even when the
/// embedding process runs no other reconciler.
pub(crate) fn on_demand(store: Arc<dyn Store>, distribution: Arc<dyn Distribution>, keep: usize) -> ReconcileHandle {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(run(store, distribution, keep, rx, CancellationToken::new(), None));
    ReconcileHandle { tx }
}

async fn run(
    store: Arc<dyn Store>,
    distribution: Arc<dyn Distribution>,
    keep: usize,
    mut pokes: mpsc::Receiver<()>,
    cancel: CancellationToken,
    periodic: Option<Duration>,
) {
    loop {
        let wake = async {
            match periodic {
                Some(every) => tokio::time::timeout(every, pokes.recv()).await.unwrap_or(Some(())),
                None => pokes.recv().await,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            woke = wake => if woke.is_none() { return },
        }
        let mut backoff = BACKOFF_MIN;
        loop {
            match reconcile(store.as_ref(), distribution.as_ref(), keep).await {
                Ok(report) => {
                    metrics::counter!("certdns_api_reconcile_runs_total", "result" => "ok").increment(1);
                    metrics::counter!("certdns_api_reconcile_changes_total")
                        .increment((report.upserted + report.removed) as u64);
                    if report.upserted + report.removed > 0 {
                        tracing::info!(
                            checked = report.checked,
                            upserted = report.upserted,
                            removed = report.removed,
                            "reconciled the TXT distribution with the store"
                        );
                    }
                    break;
                }
                Err(e) => {
                    metrics::counter!("certdns_api_reconcile_runs_total", "result" => "error").increment(1);
                    tracing::warn!(error = %e, retry_in = ?backoff, "reconciling the TXT distribution failed");
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}
