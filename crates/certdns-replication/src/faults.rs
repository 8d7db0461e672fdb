//! For tests of the layers above: a distribution whose publishes fail on demand,
//! as a Redis outage makes them fail, and that counts writers' waits (feature
//! `testing`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::{Applied, Change, Cursor, DistError, Distribution, Generation, Member, ResponderId, Result, Snapshot};

/// Wraps a real distribution; while [`FailingPublishes::fail`] is on, every
/// publish fails as an unreachable Redis would. Everything else passes through.
pub struct FailingPublishes {
    pub inner: Arc<dyn Distribution>,
    failing: AtomicBool,
    waits: AtomicU64,
}

impl FailingPublishes {
    pub fn new(inner: Arc<dyn Distribution>) -> Self {
        Self { inner, failing: AtomicBool::new(false), waits: AtomicU64::new(0) }
    }

    /// How many times a writer waited for responders (`wait_applied`).
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::SeqCst)
    }

    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

#[async_trait]
impl Distribution for FailingPublishes {
    fn kind(&self) -> &'static str {
        "failing-publishes"
    }
    async fn publish(&self, changes: &[Change]) -> Result<Option<Cursor>> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(DistError::Unavailable("simulated outage".into()));
        }
        self.inner.publish(changes).await
    }
    async fn snapshot(&self) -> Result<Snapshot> {
        self.inner.snapshot().await
    }
    async fn changes(&self, cursor: &Cursor, wait: Duration) -> Result<(Vec<Change>, Cursor)> {
        self.inner.changes(cursor, wait).await
    }
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
    async fn generation(&self) -> Result<Generation> {
        self.inner.generation().await
    }
    async fn begin_generation(&self) -> Result<Generation> {
        self.inner.begin_generation().await
    }
    async fn restart_generation(&self) -> Result<Generation> {
        self.inner.restart_generation().await
    }
    async fn position(&self) -> Result<Cursor> {
        self.inner.position().await
    }
    async fn complete_generation(&self, id: &str) -> Result<bool> {
        self.inner.complete_generation(id).await
    }
    async fn report_applied(&self, responder: &ResponderId, position: &Cursor) -> Result<()> {
        self.inner.report_applied(responder, position).await
    }
    async fn wait_applied(&self, position: &Cursor, within: Duration) -> Result<Applied> {
        self.waits.fetch_add(1, Ordering::SeqCst);
        self.inner.wait_applied(position, within).await
    }
    async fn live_responders(&self) -> Result<Vec<Member>> {
        self.inner.live_responders().await
    }

    async fn responders(&self) -> Result<Vec<Member>> {
        self.inner.responders().await
    }
}
