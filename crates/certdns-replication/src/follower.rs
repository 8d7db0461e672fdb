//! Keeps a [`Replica`] current: snapshot, then follow the change stream; on any
//! stream error, back off and start over from a new snapshot. Reports how far it
//! has applied the stream, so writers can tell when every responder serves a
//! change.
//!
//! A snapshot replaces the replica only when it is of a complete generation and
//! not older than what the replica has already applied (stream positions only
//! grow). A distribution that lost its state (Redis restarted empty, or from an
//! old save) offers an empty, partial or stale snapshot: that is merged into the
//! replica instead (newest version wins, nothing is dropped), so the responder
//! keeps answering every name while a writer republishes the store; once the new
//! generation is complete, the follower loads it whole and is current again,
//! deletions included.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::membership::HEARTBEAT;
use crate::{Change, Cursor, DistError, Distribution, Generation, Replica, ResponderId};

/// How long one `changes` call may block waiting for news (also how often an
/// idle follower looks at the generation).
const POLL_WAIT: Duration = HEARTBEAT;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What a follower knows about its own health; shared with readiness endpoints.
#[derive(Default)]
pub struct FollowerHealth {
    /// Set once a complete generation is loaded; never cleared (the replica stays
    /// complete, if possibly stale, from then on).
    loaded: AtomicBool,
    /// Set while the distribution holds another generation than the one the
    /// replica was loaded from (lost, being rebuilt).
    rebuilding: AtomicBool,
    /// When the stream was last lost; `None` while connected.
    down_since: Mutex<Option<Instant>>,
    resyncs: AtomicU64,
    snapshots: AtomicU64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// A complete generation is loaded.
    pub ready: bool,
    /// The distribution lost its state and is being rebuilt; the replica serves
    /// the last complete generation plus every change since.
    pub rebuilding: bool,
    /// The stream is down and has been for longer than the allowed bound; the
    /// replica keeps answering from what it has.
    pub degraded: bool,
    pub down_for: Option<Duration>,
    pub resyncs: u64,
}

impl FollowerHealth {
    pub fn report(&self, degraded_after: Duration) -> HealthReport {
        let down_for = self.down_since.lock().unwrap_or_else(|p| p.into_inner()).map(|t| t.elapsed());
        HealthReport {
            ready: self.loaded.load(Ordering::Acquire),
            rebuilding: self.rebuilding.load(Ordering::Acquire),
            degraded: down_for.is_some_and(|d| d > degraded_after),
            down_for,
            resyncs: self.resyncs.load(Ordering::Relaxed),
        }
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Snapshots loaded since start.
    pub fn snapshots(&self) -> u64 {
        self.snapshots.load(Ordering::Relaxed)
    }

    fn set_down(&self, down: bool) {
        // 1 while the change stream answers; 0 while the replica may be going stale.
        metrics::gauge!("certdns_replica_stream_up").set(if down { 0.0 } else { 1.0 });
        let mut since = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        match (down, since.is_some()) {
            (true, false) => *since = Some(Instant::now()),
            (false, true) => *since = None,
            _ => {}
        }
    }

    fn set_rebuilding(&self, rebuilding: bool) {
        metrics::gauge!("certdns_replica_distribution_rebuilding").set(if rebuilding { 1.0 } else { 0.0 });
        self.rebuilding.store(rebuilding, Ordering::Release);
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Why one round of following ended.
enum Stop {
    Cancelled,
    /// A complete generation appeared that the replica does not hold: load it.
    NewGeneration,
    Failed(DistError),
}

impl From<DistError> for Stop {
    fn from(e: DistError) -> Self {
        Stop::Failed(e)
    }
}

pub struct Follower {
    distribution: Arc<dyn Distribution>,
    replica: Arc<Replica>,
    health: Arc<FollowerHealth>,
    me: ResponderId,
    /// The complete generation the replica was last loaded from.
    held: Mutex<Option<String>>,
    /// The furthest stream position the replica has applied.
    furthest: Mutex<Option<Cursor>>,
    /// The position applied, for the reporting task.
    applied: watch::Sender<Option<Cursor>>,
}

impl Follower {
    /// A follower that reports, as responder `me`, how far it has applied.
    pub fn new(distribution: Arc<dyn Distribution>, replica: Arc<Replica>, me: ResponderId) -> Self {
        Self {
            distribution,
            replica,
            health: Arc::default(),
            me,
            held: Mutex::default(),
            furthest: Mutex::default(),
            applied: watch::Sender::new(None),
        }
    }

    pub fn health(&self) -> Arc<FollowerHealth> {
        self.health.clone()
    }

    /// Runs until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        let reporter = tokio::spawn(report_applied(
            self.distribution.clone(),
            self.me.clone(),
            self.applied.subscribe(),
            cancel.clone(),
        ));
        let mut backoff = BACKOFF_MIN;
        while !cancel.is_cancelled() {
            match self.follow(&cancel).await {
                Stop::Cancelled => break,
                Stop::NewGeneration => {
                    backoff = BACKOFF_MIN;
                    continue;
                }
                Stop::Failed(e) => {
                    self.health.set_down(true);
                    tracing::warn!(error = %e, retry_in = ?backoff, "TXT change stream lost; will resync from a snapshot");
                    metrics::counter!("certdns_replica_resyncs_total").increment(1);
                    self.health.resyncs.fetch_add(1, Ordering::Relaxed);
                }
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        let _ = reporter.await;
    }

    fn held(&self) -> Option<String> {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn furthest(&self) -> Option<Cursor> {
        self.furthest.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Notes that the replica has applied the stream up to `position`.
    fn applied_up_to(&self, position: &Cursor) {
        let mut furthest = self.furthest.lock().unwrap_or_else(|p| p.into_inner());
        if furthest.as_ref().is_none_or(|f| position.is_at_or_after(f)) {
            *furthest = Some(position.clone());
        }
        drop(furthest);
        self.applied.send_replace(Some(position.clone()));
    }

    /// Loads a snapshot: replaces the replica if it is of a complete generation,
    /// merges it in otherwise.
    async fn load(&self) -> Result<Cursor, Stop> {
        let started = Instant::now();
        let snapshot = self.distribution.snapshot().await?;
        let entries = snapshot.states.len();
        // Older than what the replica applied: the distribution went back in time.
        let stale = self.furthest().is_some_and(|applied| !snapshot.cursor.is_at_or_after(&applied));
        match &snapshot.generation {
            Generation::Complete(id) if !stale => {
                self.replica.reset_owned(snapshot.states);
                *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(id.clone());
                self.health.loaded.store(true, Ordering::Release);
                self.health.set_rebuilding(false);
                tracing::info!(
                    entries,
                    took_ms = started.elapsed().as_millis() as u64,
                    backend = self.distribution.kind(),
                    "TXT replica loaded from snapshot"
                );
            }
            incomplete => {
                for state in snapshot.states {
                    self.replica.apply(&Change::Upsert(state));
                }
                self.health.set_rebuilding(true);
                tracing::warn!(
                    entries,
                    generation = incomplete.status(),
                    stale,
                    "the TXT distribution holds no complete, current generation (its state was lost?); \
                     merged what it has and kept every name already known"
                );
            }
        }
        self.health.snapshots.fetch_add(1, Ordering::Relaxed);
        self.health.set_down(false);
        metrics::gauge!("certdns_replica_entries").set(self.replica.len() as f64);
        metrics::gauge!("certdns_replica_snapshot_timestamp_seconds").set(unix_now());
        Ok(snapshot.cursor)
    }

    /// Whether the distribution now holds a complete generation the replica does
    /// not (time to load it whole); notes a lost one meanwhile.
    async fn generation_moved(&self) -> Result<bool, Stop> {
        let current = self.distribution.generation().await?;
        let held = self.held();
        match &current {
            Generation::Complete(id) if held.as_deref() != Some(id) => Ok(true),
            Generation::Complete(_) => Ok(false),
            Generation::Missing | Generation::Building(_) => {
                if !self.health.rebuilding.load(Ordering::Acquire) {
                    tracing::warn!(
                        generation = current.status(),
                        "the TXT distribution lost its state; keeping the replica"
                    );
                }
                self.health.set_rebuilding(true);
                Ok(false)
            }
        }
    }

    /// One snapshot followed by changes, until the stream fails, a new complete
    /// generation appears, or `cancel` fires.
    async fn follow(&self, cancel: &CancellationToken) -> Stop {
        match self.follow_inner(cancel).await {
            Ok(()) => Stop::Cancelled,
            Err(stop) => stop,
        }
    }

    async fn follow_inner(&self, cancel: &CancellationToken) -> Result<(), Stop> {
        let mut cursor = self.load().await?;
        self.applied_up_to(&cursor);
        let mut checked = Instant::now();
        loop {
            let (changes, next) = tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                got = self.distribution.changes(&cursor, POLL_WAIT) => got?,
            };
            for change in &changes {
                self.replica.apply(change);
            }
            if !changes.is_empty() {
                metrics::counter!("certdns_replica_changes_total").increment(changes.len() as u64);
                metrics::gauge!("certdns_replica_entries").set(self.replica.len() as f64);
                // When this replica last applied a change: compare across responders to spot a laggard.
                metrics::gauge!("certdns_replica_last_change_timestamp_seconds").set(unix_now());
            }
            self.health.set_down(false);
            cursor = next;
            self.applied_up_to(&cursor);
            if checked.elapsed() >= POLL_WAIT {
                checked = Instant::now();
                if self.generation_moved().await? {
                    tracing::info!("the TXT distribution holds a new complete generation; loading it");
                    return Err(Stop::NewGeneration);
                }
            }
        }
    }
}

/// Tells the writers how far this responder has applied the stream: after each
/// change (reports that pile up during a round trip go out as one) and at least
/// every heartbeat, which is also how writers know it is alive.
async fn report_applied(
    distribution: Arc<dyn Distribution>,
    me: ResponderId,
    mut applied: watch::Receiver<Option<Cursor>>,
    cancel: CancellationToken,
) {
    let mut failing_since: Option<Instant> = None;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = tokio::time::timeout(HEARTBEAT, applied.changed()) => {
                if let Ok(Err(_)) = changed {
                    return; // the follower is gone
                }
            }
        }
        let Some(position) = applied.borrow_and_update().clone() else { continue };
        match distribution.report_applied(&me, &position).await {
            Ok(()) => {
                if failing_since.take().is_some() {
                    tracing::info!("reporting applied positions works again");
                }
            }
            Err(e) => {
                // Once per outage, not once per heartbeat.
                if failing_since.is_none() {
                    tracing::warn!(error = %e, "cannot report the applied position; writers will not wait for this responder");
                    failing_since = Some(Instant::now());
                }
            }
        }
    }
}
