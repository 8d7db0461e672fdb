//! The TXT distribution follows the durable store.
//!
//! The store (SQLite or Postgres) is the truth; the TXT distribution (in-process or
//! Redis) is the copy every DNS responder's replica follows. Whatever changes a
//! registration's answer — the API's `/register`, `/update` and `/deregister`, the
//! portal's deletes — writes the store first and then goes through [`TxtSync`],
//! which publishes the change. A publish that fails never fails the request (the
//! write is durable): it is logged, counted, and repaired by a reconcile started at
//! once, the same wherever it was called from.
//!
//! [`reconcile`] is the repair: it compares the store with the distribution and
//! republishes what differs, newest version wins, so republishing what is already
//! there is harmless. It runs on demand (a failed publish), at start and
//! periodically ([`TxtSync::spawn_periodic`]).

pub mod heartbeat;
pub mod propagation;
mod reconcile;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certdns_core::{AccountId, RegistrationId, Subdomain, TxtState};
use certdns_replication::{Change, Distribution, Generation};
use certdns_store::{PortalStore, Store, StoreError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A position in the change stream (what a publish returns, what responders report).
pub use certdns_replication::Cursor;
pub use reconcile::{PERIODIC, ReconcileError, ReconcileReport, reconcile};

/// How often the distribution's generation is checked for a loss of state.
const GENERATION_CHECK: Duration = Duration::from_secs(1);

/// The one way changes reach the TXT distribution. Cheap to share (`Arc`).
pub struct TxtSync {
    store: Arc<dyn Store>,
    distribution: Arc<dyn Distribution>,
    keep: usize,
    /// Wakes the reconciler; pokes that arrive while a run is pending merge into it.
    pokes: mpsc::Sender<()>,
    /// The furthest stream position this writer's publishes reached: if the
    /// distribution's newest is ever behind it, the distribution went back in time.
    furthest: Arc<Mutex<Option<Cursor>>>,
    /// Stops the reconciler when the last handle goes.
    stop: CancellationToken,
    /// How long this process's writes took to reach every responder.
    propagation: propagation::PropagationLog,
}

impl TxtSync {
    /// Starts the sync layer and its reconciler task, which runs when asked to (a
    /// failed publish, [`TxtSync::request_reconcile`], the periodic ticker) and ends
    /// when this value is dropped. Call inside a Tokio runtime. `keep` is how many
    /// TXT values a name serves (`api.txt_values`).
    pub fn new(store: Arc<dyn Store>, distribution: Arc<dyn Distribution>, keep: usize) -> Arc<Self> {
        let (pokes, rx) = mpsc::channel(1);
        let stop = CancellationToken::new();
        let restart = Arc::new(AtomicBool::new(false));
        let furthest = Arc::new(Mutex::new(None));
        tokio::spawn(reconcile::run(store.clone(), distribution.clone(), keep, rx, restart.clone(), stop.clone()));
        let watch =
            Watch { distribution: distribution.clone(), pokes: pokes.clone(), restart, furthest: furthest.clone() };
        tokio::spawn(watch.run(stop.clone()));
        // Start hearing responders' reports now, so the first /update after a start
        // already knows who must confirm it.
        let listen = distribution.clone();
        tokio::spawn(async move {
            if let Err(e) = listen.live_responders().await {
                tracing::debug!(error = %e, "responders' reports not read yet");
            }
        });
        Arc::new(Self { store, distribution, keep, pokes, furthest, stop, propagation: Default::default() })
    }

    /// The distribution changes go to (for readiness checks).
    pub fn distribution(&self) -> &Arc<dyn Distribution> {
        &self.distribution
    }

    /// The propagation times measured by this process's writers (the api role
    /// records each `/update`'s; its heartbeat carries them to the status page).
    pub fn propagation(&self) -> &propagation::PropagationLog {
        &self.propagation
    }

    /// How many TXT values a name serves.
    pub fn keep(&self) -> usize {
        self.keep
    }

    /// Publishes changes that are already durable. Never fails the caller: a
    /// failure is logged, counted, and repaired by a reconcile started at once.
    /// Returns the stream position of the changes, when they went out.
    pub async fn publish(&self, changes: &[Change]) -> Option<Cursor> {
        if changes.is_empty() {
            return None;
        }
        match self.distribution.publish(changes).await {
            Ok(position) => {
                if let Some(p) = &position {
                    let mut furthest = self.furthest.lock().unwrap_or_else(|e| e.into_inner());
                    if furthest.as_ref().is_none_or(|f| p.is_at_or_after(f)) {
                        *furthest = Some(p.clone());
                    }
                }
                position
            }
            Err(e) => {
                metrics::counter!("certdns_sync_publish_failures_total").increment(1);
                let subdomains: Vec<String> = changes.iter().map(|c| c.subdomain().to_string()).collect();
                tracing::warn!(error = %e, subdomains = ?subdomains, "publishing TXT changes failed; a reconcile will republish them");
                self.request_reconcile();
                None
            }
        }
    }

    /// New TXT states written to the store; see [`TxtSync::publish`].
    pub async fn publish_states(&self, states: Vec<TxtState>) -> Option<Cursor> {
        let changes: Vec<Change> = states.into_iter().map(Change::Upsert).collect();
        self.publish(&changes).await
    }

    /// Waits, at most `within`, until every live responder has applied
    /// `position` (a publish's result; `None`, a failed publish, is never served).
    pub async fn wait_until_served(&self, position: Option<&Cursor>, within: Duration) -> Served {
        let Some(position) = position else { return Served::NotConfirmed { live: 0, confirmed: 0 } };
        match self.distribution.wait_applied(position, within).await {
            Ok(applied) if applied.everywhere() => Served::Everywhere { responders: applied.live },
            Ok(applied) => Served::NotConfirmed { live: applied.live, confirmed: applied.confirmed },
            Err(e) => {
                tracing::warn!(error = %e, "cannot learn which responders serve a change");
                Served::NotConfirmed { live: 0, confirmed: 0 }
            }
        }
    }

    /// A registration was created: its name answers NODATA (not NXDOMAIN) at once.
    pub async fn registration_created(&self, subdomain: Subdomain) {
        self.publish(&[Change::Upsert(TxtState::values(subdomain, 0, Vec::new()))]).await;
    }

    /// Deletes registration `id` of `account` and stops the DNS answering for it.
    /// [`StoreError::NotFound`] if `account` has no such registration.
    pub async fn delete_registration(&self, account: AccountId, id: RegistrationId) -> Result<Subdomain, StoreError> {
        let (subdomain, version) = self.store.delete_registration_versioned(account, id).await?;
        self.publish(&[tombstone(subdomain, version)]).await;
        Ok(subdomain)
    }

    /// Deletes `account` with its keys and registrations (through the portal's
    /// store, which shares this one's database) and stops the DNS answering for
    /// every one of them. Returns how many registrations went.
    pub async fn delete_account(&self, store: &dyn PortalStore, account: AccountId) -> Result<usize, StoreError> {
        let removed = store.delete_account(account).await?;
        let changes: Vec<Change> = removed.iter().map(|r| tombstone(r.subdomain, r.version)).collect();
        self.publish(&changes).await;
        Ok(removed.len())
    }

    /// Reconciles now and reports what changed (at start, to fill an empty
    /// in-process distribution before DNS answers).
    pub async fn reconcile_now(&self) -> Result<ReconcileReport, ReconcileError> {
        reconcile(self.store.as_ref(), self.distribution.as_ref(), self.keep).await
    }

    /// Asks the reconciler for a run soon. Cheap and non-blocking.
    pub fn request_reconcile(&self) {
        let _ = self.pokes.try_send(());
    }

    /// Asks for a reconcile at once and then every `every`, until `cancel` fires.
    pub fn spawn_periodic(&self, every: Duration, cancel: CancellationToken) -> JoinHandle<()> {
        let pokes = self.pokes.clone();
        tokio::spawn(async move {
            loop {
                let _ = pokes.try_send(());
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
            }
        })
    }
}

/// Notices at once when the distribution lost its state — no generation (a
/// Redis restarted empty) or a newest change older than one this writer
/// published (a Redis restarted from an old save) — rather than at the next
/// failed publish or periodic run, and asks the reconciler to republish the
/// store into a new generation.
struct Watch {
    distribution: Arc<dyn Distribution>,
    pokes: mpsc::Sender<()>,
    restart: Arc<AtomicBool>,
    furthest: Arc<Mutex<Option<Cursor>>>,
}

impl Watch {
    async fn run(self, stop: CancellationToken) {
        let mut lost = false;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(GENERATION_CHECK) => {}
            }
            // Unreachable backends are left to failed publishes and the next check.
            let Ok(generation) = self.distribution.generation().await else { continue };
            let furthest = self.furthest.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let behind = match (furthest, generation.id()) {
                (Some(furthest), Some(_)) => match self.distribution.position().await {
                    Ok(newest) => !newest.is_at_or_after(&furthest),
                    Err(_) => continue,
                },
                _ => false,
            };
            if generation == Generation::Missing || behind {
                if !lost {
                    let why = if behind { "went back in time" } else { "lost its state" };
                    tracing::warn!("the TXT distribution {why}; republishing the store into a new generation");
                    metrics::counter!("certdns_sync_distribution_losses_total").increment(1);
                }
                lost = true;
                if behind {
                    self.restart.store(true, Ordering::SeqCst);
                    // Positions start over from what the distribution holds now.
                    *self.furthest.lock().unwrap_or_else(|e| e.into_inner()) = None;
                }
                let _ = self.pokes.try_send(());
            } else {
                lost = false;
            }
        }
    }
}

impl Drop for TxtSync {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Whether every live responder serves a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// All of them (at least one) answer the new value.
    Everywhere { responders: usize },
    /// The wait ended first: `confirmed` of `live` responders answer it.
    NotConfirmed { live: usize, confirmed: usize },
}

/// The removal of a deleted registration whose TXT state had `stored_version`:
/// one version newer than any upsert published before it, so a late or
/// republished upsert can never bring the name back.
pub fn tombstone(subdomain: Subdomain, stored_version: u64) -> Change {
    Change::Remove { subdomain, version: stored_version + 1 }
}
