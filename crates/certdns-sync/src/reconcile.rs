//! The repair: make the distribution answer what the store holds.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use certdns_core::Subdomain;
use certdns_replication::{Change, DistError, Distribution, Generation};
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
    /// This run completed a new generation (the distribution had lost its state).
    pub completed_generation: bool,
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
/// A distribution that lost its state gets a new generation first; once
/// everything is republished, this run marks it complete, and responders load
/// it whole. The snapshot is taken after that and before the store is read: a
/// registration created after the snapshot is then either found in the store
/// (and published) or not yet committed (and published by its own request), and
/// one in the snapshot but missing from the store was really deleted.
pub async fn reconcile(
    store: &dyn Store,
    distribution: &dyn Distribution,
    keep: usize,
) -> Result<ReconcileReport, ReconcileError> {
    reconcile_into(store, distribution, keep, false).await
}

/// [`reconcile`], into a new generation whatever the distribution holds when
/// `new_generation` (its state went back in time, so its generation is stale).
pub(crate) async fn reconcile_into(
    store: &dyn Store,
    distribution: &dyn Distribution,
    keep: usize,
    new_generation: bool,
) -> Result<ReconcileReport, ReconcileError> {
    let generation =
        if new_generation { distribution.restart_generation().await? } else { distribution.begin_generation().await? };
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
    if let Generation::Building(id) = &generation
        && distribution.complete_generation(id).await?
    {
        report.completed_generation = true;
        metrics::counter!("certdns_sync_generations_completed_total").increment(1);
        tracing::info!(
            checked = report.checked,
            upserted = report.upserted,
            "the TXT distribution holds a complete generation again"
        );
    }
    Ok(report)
}

/// The reconciler task: one run per wake-up, each retried with back-off until it
/// succeeds (a wake-up during the back-off retries at once). Ends when `cancel`
/// fires or every sender is gone. `restart` asks for a new generation (taken
/// when the run starts).
pub(crate) async fn run(
    store: Arc<dyn Store>,
    distribution: Arc<dyn Distribution>,
    keep: usize,
    mut pokes: mpsc::Receiver<()>,
    restart: Arc<AtomicBool>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            woke = pokes.recv() => if woke.is_none() { return },
        }
        let mut backoff = BACKOFF_MIN;
        loop {
            let new_generation = restart.swap(false, Ordering::SeqCst);
            match reconcile_into(store.as_ref(), distribution.as_ref(), keep, new_generation).await {
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
                    if new_generation {
                        restart.store(true, Ordering::SeqCst);
                    }
                    metrics::counter!("certdns_sync_reconcile_runs_total", "result" => "error").increment(1);
                    tracing::warn!(error = %e, retry_in = ?backoff, "reconciling the TXT distribution failed");
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                        woke = pokes.recv() => if woke.is_none() { return },
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}
