//! A bounded pool for the CPU-expensive work a request may need: the portal's
//! argon2id logins and the API's first check of a password imported from
//! acme-dns (bcrypt). One such run costs tens of milliseconds of CPU; unbounded,
//! a few dozen requests a second would take every core the DNS responder in the
//! same process needs. So at most `threads` run at once on blocking threads and
//! the rest wait their turn, giving up after [`MAX_WAIT`] (answered as "busy").

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

/// How long a request waits for a free thread before it is told to retry.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// Every thread was busy for [`MAX_WAIT`] (or the work panicked).
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

/// The default pool size: half the cores, at least 1 and at most 4.
pub fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    (cores / 2).clamp(1, 4)
}

/// Runs expensive work at most `threads` at a time.
pub struct SlowWork {
    permits: Semaphore,
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl SlowWork {
    pub fn new(threads: usize) -> Self {
        Self { permits: Semaphore::new(threads.max(1)), running: AtomicUsize::new(0), peak: AtomicUsize::new(0) }
    }

    /// The most runs that were ever in progress at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Runs `work` on a blocking thread once one of the pool's is free.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        let Ok(Ok(permit)) = tokio::time::timeout(MAX_WAIT, self.permits.acquire()).await else {
            return Err(Busy);
        };
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let result = tokio::task::spawn_blocking(work).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        drop(permit);
        result.map_err(|_| Busy)
    }
}
