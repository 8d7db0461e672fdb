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
mod follower;
mod in_process;
mod redis_backend;
mod replica;

use std::time::Duration;

use async_trait::async_trait;
use certdns_core::{Subdomain, TxtState};

pub use follower::{Follower, FollowerHealth, HealthReport};
pub use in_process::InProcess;
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

/// A position in a backend's change stream. Opaque to callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub(crate) String);

/// The full current state and the stream position it reflects: every change after
/// `cursor` is newer than (or equal to) what `states` holds.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub states: Vec<TxtState>,
    pub cursor: Cursor,
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
    async fn publish(&self, changes: &[Change]) -> Result<()>;

    /// The current state of every existing subdomain, and the cursor to follow from.
    async fn snapshot(&self) -> Result<Snapshot>;

    /// Changes after `cursor`, waiting up to `wait` for the first one. Returns the
    /// changes (possibly none, after the wait) and the cursor to continue from.
    async fn changes(&self, cursor: &Cursor, wait: Duration) -> Result<(Vec<Change>, Cursor)>;

    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<()>;
}
