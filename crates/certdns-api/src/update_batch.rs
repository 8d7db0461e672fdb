//! The `/update` fast path's batching: concurrent writes share one store statement
//! and one publish, then every waiting request gets its answer.
//!
//! Under light load nothing waits: a write goes out alone, at once. Under load,
//! the writes that arrive while a batch is written form the next batch (up to
//! [`MAX_BATCH`]), so the per-statement and per-round-trip costs of the store and
//! the distribution are paid once per batch instead of once per request — and so
//! is the wait until every live responder serves the batch ([`confirm`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use certdns_core::TxtState;

use certdns_store::{AuthorizedWrite, Store, StoreError};
use certdns_sync::{Cursor, Served, TxtSync};
use tokio::sync::{mpsc, oneshot};

/// Writes per batch.
const MAX_BATCH: usize = 32;

/// The new version of the registration's TXT state, `None` if not authorized,
/// and whether every live responder serves it.
type Outcome = Result<(Option<u64>, bool), String>;

/// What bounds a batch: values kept per registration, the wait for the
/// responders, the write's deadline.
struct Limits {
    keep: usize,
    wait: Duration,
    write_deadline: Duration,
}

struct Job {
    write: AuthorizedWrite,
    reply: oneshot::Sender<Outcome>,
}

/// Handle to the batching task; the task ends when every handle is dropped.
pub struct UpdateBatcher {
    tx: mpsc::Sender<Job>,
}

impl UpdateBatcher {
    /// `wait` bounds how long a batch waits for the responders (zero: not at all);
    /// `request_deadline` is the whole request's.
    ///
    /// A batch's write may take half of what the deadline leaves after the wait:
    /// a request queued behind a batch that hangs then still gets 503
    /// `store_unavailable` (after its own batch hung too) before the deadline's
    /// 408, so a database that hangs instead of failing — frozen, or cut off by
    /// the network, where a connection waits for TCP to give up — answers like
    /// one that is down, and the writes behind it are not stuck for as long.
    pub fn spawn(
        store: Arc<dyn Store>,
        sync: Arc<TxtSync>,
        keep: usize,
        wait: Duration,
        request_deadline: Duration,
    ) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        let write_deadline = request_deadline.saturating_sub(wait) / 2;
        tokio::spawn(dispatch(store, sync, Limits { keep, wait, write_deadline }, rx));
        Self { tx }
    }

    /// Writes and publishes `write` if it is authorized, answering the new
    /// version (`None` if it is not authorized) and whether every live
    /// responder serves it.
    pub async fn submit(&self, write: AuthorizedWrite) -> Result<(Option<u64>, bool), StoreError> {
        let gone = || StoreError::Unavailable("the /update batcher stopped".into());
        let (reply, outcome) = oneshot::channel();
        self.tx.send(Job { write, reply }).await.map_err(|_| gone())?;
        outcome.await.map_err(|_| gone())?.map_err(StoreError::Unavailable)
    }
}

/// One batch writes at a time: on SQLite there is one writer anyway, and writes to
/// a registration then apply in arrival order; on Postgres one batch at a time was
/// faster here than two (bigger batches, one WAL flush each), and several API
/// instances still write at once. A batch publishes and answers in a task of its
/// own while the next batch writes.
async fn dispatch(store: Arc<dyn Store>, sync: Arc<TxtSync>, limits: Limits, mut rx: mpsc::Receiver<Job>) {
    let Limits { keep, wait, write_deadline } = limits;
    while let Some(first) = rx.recv().await {
        // The writes that queued up while the previous batch was written.
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // A request that gave up while queued (its client was told 408) is not
        // written later behind its back.
        batch.retain(|job| !job.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        metrics::histogram!("certdns_api_update_batch_writes").record(batch.len() as f64);
        let (writes, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|j| (j.write, j.reply)).unzip();
        let writing = store.put_txts_if_authorized(&writes, keep, certdns_core::now());
        // Given up, the write is dropped mid-statement: its transaction rolls back
        // unless the commit was already on its way, and either way the client,
        // told 503, sends it again.
        let written = match tokio::time::timeout(write_deadline, writing).await {
            Ok(written) => written,
            Err(_) => {
                metrics::counter!("certdns_api_update_batch_timeouts_total").increment(1);
                Err(StoreError::Unavailable(format!("the store did not answer within {write_deadline:?}")))
            }
        };
        tokio::spawn(publish_and_answer(sync.clone(), wait, written, replies));
    }
}

async fn publish_and_answer(
    sync: Arc<TxtSync>,
    wait: Duration,
    written: Result<Vec<Option<TxtState>>, StoreError>,
    replies: Vec<oneshot::Sender<Outcome>>,
) {
    let states = match written {
        Ok(states) => states,
        Err(e) => {
            let message = e.to_string();
            for reply in replies {
                let _ = reply.send(Err(message.clone()));
            }
            return;
        }
    };
    let versions: Vec<Option<u64>> = states.iter().map(|s| s.as_ref().map(|s| s.version)).collect();
    let states: Vec<TxtState> = states.into_iter().flatten().collect();
    let everywhere = if states.is_empty() {
        false
    } else {
        let started = Instant::now();
        let position = sync.publish_states(states).await;
        confirm(&sync, position.as_ref(), wait, started).await
    };
    for (reply, version) in replies.into_iter().zip(versions) {
        let _ = reply.send(Ok((version, everywhere)));
    }
}

/// Waits, at most `wait`, until every live responder serves the change at
/// `position`; whether they all do. Counted by outcome, timed; the time since
/// `published` (taken just before the publish) is the write's propagation time,
/// which the status page shows (`TxtSync::propagation`).
pub async fn confirm(sync: &TxtSync, position: Option<&Cursor>, wait: Duration, published: Instant) -> bool {
    if wait.is_zero() {
        metrics::counter!("certdns_api_propagation_waits_total", "result" => "off").increment(1);
        return false;
    }
    let started = Instant::now();
    let served = sync.wait_until_served(position, wait).await;
    metrics::histogram!("certdns_api_propagation_wait_seconds").record(started.elapsed().as_secs_f64());
    if position.is_some() {
        sync.propagation().record(published.elapsed(), &served, certdns_core::now().unix_timestamp());
    }
    let (result, everywhere) = match served {
        Served::Everywhere { .. } => ("everywhere", true),
        Served::NotConfirmed { live: 0, .. } => ("no_responders", false),
        Served::NotConfirmed { .. } => ("timeout", false),
    };
    metrics::counter!("certdns_api_propagation_waits_total", "result" => result).increment(1);
    everywhere
}
