//! Keeps a [`Replica`] current: snapshot, then follow the change stream; on any
//! stream error, back off and start over from a new snapshot.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::{Distribution, Replica};

/// How long one `changes` call may block waiting for news.
const POLL_WAIT: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What a follower knows about its own health; shared with readiness endpoints.
#[derive(Default)]
pub struct FollowerHealth {
    /// Set once the first full snapshot is loaded; never cleared (the replica stays
    /// usable, if possibly stale, from then on).
    loaded: AtomicBool,
    /// When the stream was last lost; `None` while connected.
    down_since: Mutex<Option<Instant>>,
    resyncs: AtomicU64,
    snapshots: AtomicU64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// The first full snapshot is loaded.
    pub ready: bool,
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
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

pub struct Follower {
    distribution: Arc<dyn Distribution>,
    replica: Arc<Replica>,
    health: Arc<FollowerHealth>,
}

impl Follower {
    pub fn new(distribution: Arc<dyn Distribution>, replica: Arc<Replica>) -> Self {
        Self { distribution, replica, health: Arc::default() }
    }

    pub fn health(&self) -> Arc<FollowerHealth> {
        self.health.clone()
    }

    /// Runs until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        let mut backoff = BACKOFF_MIN;
        while !cancel.is_cancelled() {
            match self.follow(&cancel).await {
                Ok(()) => return,
                Err(e) => {
                    self.health.set_down(true);
                    tracing::warn!(error = %e, retry_in = ?backoff, "TXT change stream lost; will resync from a snapshot");
                    metrics::counter!("certdns_replica_resyncs_total").increment(1);
                    self.health.resyncs.fetch_add(1, Ordering::Relaxed);
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// One snapshot followed by changes, until an error (or cancellation: `Ok`).
    async fn follow(&self, cancel: &CancellationToken) -> crate::Result<()> {
        let started = Instant::now();
        let snapshot = self.distribution.snapshot().await?;
        let entries = snapshot.states.len();
        self.replica.reset_owned(snapshot.states);
        self.health.loaded.store(true, Ordering::Release);
        self.health.snapshots.fetch_add(1, Ordering::Relaxed);
        self.health.set_down(false);
        metrics::gauge!("certdns_replica_entries").set(self.replica.len() as f64);
        metrics::gauge!("certdns_replica_snapshot_timestamp_seconds").set(unix_now());
        tracing::info!(
            entries,
            took_ms = started.elapsed().as_millis() as u64,
            backend = self.distribution.kind(),
            "TXT replica loaded from snapshot"
        );
        let mut cursor = snapshot.cursor;
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
        }
    }
}
