//! TXT distribution: how a TXT change written by the API reaches every DNS responder.
//!
//! A [`Distribution`] keeps the current state of every subdomain and a stream of
//! changes, each carrying the subdomain's version. Two backends:
//! * [`InProcess`]: for the single binary; a map and a bounded change log in memory.
//! * [`RedisDistribution`]: for split deployments; a Redis hash of states and a Redis
//!   stream of changes, written together by one Lua script.
//!
//! The consumer side is a [`Replica`] (an in-memory map the DNS hot path reads
//! without locks) kept current by a [`Follower`]: it loads a snapshot, then applies
//! changes from the snapshot's cursor on, and starts over from a fresh snapshot
//! whenever the stream fails. Versions make every step idempotent: applying a change
//! older than what a replica holds does nothing, so overlaps and out-of-order
//! delivery are harmless.

mod encoding;
#[cfg(feature = "testing")]
pub mod faults;
mod follower;
mod in_process;
pub mod membership;
mod redis_backend;
mod replica;

use std::time::Duration;

use async_trait::async_trait;
use certdns_core::{Subdomain, TxtState};

pub use follower::{Follower, FollowerHealth, HealthReport};
pub use in_process::InProcess;
pub use membership::{Applied, Member, ResponderId};
pub use redis_backend::RedisDistribution;
pub use replica::{Replica, TxtLookup};

/// One change to one subdomain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The subdomain exists and answers these values (possibly none yet).
    Upsert(TxtState),
    /// The registration was deleted; nothing answers at the subdomain any more.
    Remove { subdomain: Subdomain, version: u64 },
}

impl Change {
    pub fn subdomain(&self) -> Subdomain {
        match self {
            Change::Upsert(s) => s.subdomain,
            Change::Remove { subdomain, .. } => *subdomain,
        }
    }

    pub fn version(&self) -> u64 {
        match self {
            Change::Upsert(s) => s.version,
            Change::Remove { version, .. } => *version,
        }
    }
}

/// A position in a backend's change stream. Opaque to callers, but ordered:
/// both backends' positions read as `<major>[-<minor>]` numbers (a sequence
/// number in process, a stream entry id in Redis).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub(crate) String);

impl Cursor {
    fn key(&self) -> (u64, u64) {
        let (major, minor) = self.0.split_once('-').unwrap_or((&self.0, "0"));
        (major.parse().unwrap_or(0), minor.parse().unwrap_or(0))
    }

    /// Whether this position is `other` or later in the stream.
    pub fn is_at_or_after(&self, other: &Cursor) -> bool {
        self.key() >= other.key()
    }

    /// The position as text (for logs and reports).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whose copy of the store the distribution holds. A writer that finds it
/// `Missing` (the distribution lost its state: a Redis restarted empty, a
/// failover to an empty replica) claims a new generation, republishes the
/// durable store into it, then marks it complete. A responder only ever swaps
/// its replica for a snapshot of a complete generation; anything else is merged
/// into what it has, so it keeps answering every name it knew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Generation {
    /// No writer has claimed the distribution since it was (re)created empty.
    Missing,
    /// A writer is republishing the store into it.
    Building(String),
    /// Everything in the store was published into it.
    Complete(String),
}

impl Generation {
    pub fn is_complete(&self) -> bool {
        matches!(self, Generation::Complete(_))
    }

    /// The generation's id, if a writer claimed it.
    pub fn id(&self) -> Option<&str> {
        match self {
            Generation::Missing => None,
            Generation::Building(id) | Generation::Complete(id) => Some(id),
        }
    }

    /// For reports: `complete`, `building` or `missing`.
    pub fn status(&self) -> &'static str {
        match self {
            Generation::Missing => "missing",
            Generation::Building(_) => "building",
            Generation::Complete(_) => "complete",
        }
    }
}

/// The full current state and the stream position it reflects: every change after
/// `cursor` is newer than (or equal to) what `states` holds.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub states: Vec<TxtState>,
    pub cursor: Cursor,
    /// The generation the states belong to (`Missing` if it changed during the scan).
    pub generation: Generation,
}

#[derive(Debug, thiserror::Error)]
pub enum DistError {
    #[error("TXT distribution unavailable: {0}")]
    Unavailable(String),
    /// The stream no longer holds the changes after this cursor; take a new snapshot.
    #[error("change stream position lost; a new snapshot is needed")]
    CursorLost,
    #[error("corrupt entry in the TXT distribution: {0}")]
    Corrupt(String),
}

impl From<redis::RedisError> for DistError {
    fn from(e: redis::RedisError) -> Self {
        DistError::Unavailable(e.to_string())
    }
}

pub type Result<T, E = DistError> = std::result::Result<T, E>;

#[async_trait]
pub trait Distribution: Send + Sync + 'static {
    /// Which backend (for logs).
    fn kind(&self) -> &'static str;

    /// Publishes changes. Per subdomain the newest version wins: a change older than
    /// (or as old as) the stored one is dropped, so republishing is always safe.
    /// Returns the stream position after the last change written, if any was.
    async fn publish(&self, changes: &[Change]) -> Result<Option<Cursor>>;

    /// The current state of every existing subdomain, and the cursor to follow from.
    async fn snapshot(&self) -> Result<Snapshot>;

    /// Changes after `cursor`, waiting up to `wait` for the first one. Returns the
    /// changes (possibly none, after the wait) and the cursor to continue from.
    async fn changes(&self, cursor: &Cursor, wait: Duration) -> Result<(Vec<Change>, Cursor)>;

    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<()>;

    /// The generation the distribution holds now.
    async fn generation(&self) -> Result<Generation>;

    /// Claims a new generation if the distribution has none (`Missing` →
    /// `Building`); returns the generation it holds afterwards.
    async fn begin_generation(&self) -> Result<Generation>;

    /// Claims a new generation whatever the distribution holds: its state went
    /// back in time (a Redis restarted from an old save), so the generation it
    /// claims to hold cannot be trusted.
    async fn restart_generation(&self) -> Result<Generation>;

    /// The position of the newest change in the stream (`0` for none).
    async fn position(&self) -> Result<Cursor>;

    /// Marks generation `id` complete if it is still the one being built.
    /// Returns whether it did.
    async fn complete_generation(&self, id: &str) -> Result<bool>;

    /// A responder reports that it has applied everything up to `position`
    /// (and that it is alive).
    async fn report_applied(&self, responder: &ResponderId, position: &Cursor) -> Result<()>;

    /// Waits until every live responder has applied `position`, or `within`
    /// passes.
    async fn wait_applied(&self, position: &Cursor, within: Duration) -> Result<Applied>;

    /// The live responders (heard from recently), as this process sees them.
    async fn live_responders(&self) -> Result<Vec<Member>>;

    /// Every responder this process heard from in the last hour
    /// ([`membership::FORGET_AFTER`]), live or stopped (the status page).
    async fn responders(&self) -> Result<Vec<Member>> {
        self.live_responders().await
    }
}
