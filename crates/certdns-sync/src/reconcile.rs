//! The repair: make the distribution answer what the store holds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use certdns_core::Subdomain;
use certdns_replication::{Change, DistError, Distribution};
use certdns_store::{Store, StoreError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Registrations read per store page.
const PAGE: u32 = 1_000;
/// Changes per publish call.
const CHUNK: usize = 500;
/// A full reconcile this often even without a failed publish (the binary's period).
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
        pending.push(crate::tombstone(subdomain, version));
    }
    for chunk in pending.chunks(CHUNK) {
        distribution.publish(chunk).await?;
    }
    Ok(report)
}

/// The reconciler task: one run per wake-up, each retried with back-off until it
/// succeeds. Ends when `cancel` fires or every sender is gone.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    distribution: Arc<dyn Distribution>,
    keep: usize,
    mut pokes: mpsc::Receiver<()>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            woke = pokes.recv() => if woke.is_none() { return },
        }
        let mut backoff = BACKOFF_MIN;
        loop {
            match reconcile(store.as_ref(), distribution.as_ref(), keep).await {
                Ok(report) => {
                    metrics::counter!("certdns_sync_reconcile_runs_total", "result" => "ok").increment(1);
                    metrics::counter!("certdns_sync_reconcile_changes_total")
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
                    metrics::counter!("certdns_sync_reconcile_runs_total", "result" => "error").increment(1);
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
