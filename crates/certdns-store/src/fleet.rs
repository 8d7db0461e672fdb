//! Heartbeats of the running instances of each role, for the public status page:
//! an instance notes that it is alive and what it measured; readers decide from
//! `seen_at` whether it still is. Times are Unix seconds.

use async_trait::async_trait;

use crate::Result;

/// One instance's last heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// Unique to the process (a new one at every start).
    pub instance_id: String,
    /// `api` or `portal`.
    pub role: String,
    /// For people: the host (and listener) it runs on.
    pub name: String,
    pub started_at: i64,
    pub seen_at: i64,
    /// What the instance measured, as a JSON object (its own format per role).
    pub detail: serde_json::Value,
}

#[async_trait]
pub trait FleetStore: Send + Sync {
    /// Writes (or replaces) the instance's heartbeat, and deletes the rows of
    /// instances not seen since `forget_before` (stopped long ago).
    async fn put_heartbeat(&self, beat: &Heartbeat, forget_before: i64) -> Result<()>;
    /// Deletes the instance's heartbeat (it stops cleanly: not an outage).
    async fn remove_heartbeat(&self, instance_id: &str) -> Result<()>;
    /// The heartbeats of every instance seen at `since` or later, by role then name.
    async fn heartbeats(&self, since: i64) -> Result<Vec<Heartbeat>>;
}
