//! Which responders are alive and how far each has applied the change stream,
//! as a writer sees it: the basis of "`/update` answers when every live
//! responder serves the value".
//!
//! Every responder reports the stream position it has applied, after each batch
//! and at least every [`HEARTBEAT`] when idle. A responder not heard from for
//! [`LIVENESS`] is no longer live: it drops out and cannot stall writes (a
//! paused or partitioned responder costs one bounded wait, not every write).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::Cursor;

/// How often an idle responder reports that it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A responder not heard from for this long has left.
pub const LIVENESS: Duration = Duration::from_secs(3);
/// A responder not heard from for this long is forgotten (until then the
/// status page shows it as stopped).
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// While waiting, membership is re-read at least this often (to notice a
/// responder leaving, which sends nothing).
const RECHECK: Duration = Duration::from_millis(50);

/// A responder as it names itself: an id unique to the process, and a name for
/// people (host and address).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResponderId {
    pub id: String,
    pub name: String,
}

impl ResponderId {
    /// A fresh identity for this process.
    pub fn generate(name: impl Into<String>) -> Self {
        Self { id: uuid::Uuid::new_v4().simple().to_string(), name: name.into() }
    }
}

/// What a writer knows of one responder.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub position: Cursor,
    pub last_seen: Instant,
}

/// The outcome of waiting for responders to apply a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Live responders when the wait ended.
    pub live: usize,
    /// Of those, how many had applied the position.
    pub confirmed: usize,
}

impl Applied {
    /// Every live responder serves it (and there is at least one).
    pub fn everywhere(&self) -> bool {
        self.live > 0 && self.confirmed == self.live
    }
}

/// The responders a writer has heard from.
pub struct Membership {
    members: Mutex<HashMap<String, Member>>,
    /// Bumped on every report, to wake waiters.
    changed: watch::Sender<u64>,
}

impl Default for Membership {
    fn default() -> Self {
        Self { members: Mutex::default(), changed: watch::Sender::new(0) }
    }
}

impl Membership {
    /// Records a report: `responder` has applied everything up to `position`.
    pub fn report(&self, responder: &ResponderId, position: Cursor, seen: Instant) {
        let mut members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        let member = members.entry(responder.id.clone()).or_insert_with(|| Member {
            name: responder.name.clone(),
            position: position.clone(),
            last_seen: seen,
        });
        // Reports may arrive out of order; positions only move forward.
        if position.is_at_or_after(&member.position) {
            member.position = position;
        }
        member.last_seen = member.last_seen.max(seen);
        drop(members);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The responders heard from within [`LIVENESS`].
    pub fn live(&self) -> Vec<Member> {
        self.known().into_iter().filter(|m| m.last_seen.elapsed() < LIVENESS).collect()
    }

    /// Every responder heard from within [`FORGET_AFTER`], live or not; forgets
    /// the others.
    pub fn known(&self) -> Vec<Member> {
        let mut members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        members.retain(|_, m| m.last_seen.elapsed() < FORGET_AFTER);
        members.values().cloned().collect()
    }

    fn count(&self, position: &Cursor) -> Applied {
        let live = self.live();
        Applied { live: live.len(), confirmed: live.iter().filter(|m| m.position.is_at_or_after(position)).count() }
    }

    /// Waits until every live responder has applied `position`, or `within`
    /// passes, whichever is first. With no live responder at all there is
    /// nobody to wait for: it returns at once (unconfirmed).
    pub async fn wait_applied(&self, position: &Cursor, within: Duration) -> Applied {
        let deadline = tokio::time::Instant::now() + within;
        let mut changed = self.changed.subscribe();
        loop {
            let applied = self.count(position);
            if applied.live == 0 || applied.everywhere() || tokio::time::Instant::now() >= deadline {
                return applied;
            }
            let tick = (tokio::time::Instant::now() + RECHECK).min(deadline);
            let _ = tokio::time::timeout_at(tick, changed.changed()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(n: u64) -> Cursor {
        Cursor(n.to_string())
    }

    #[tokio::test]
    async fn waits_for_every_live_responder_and_drops_silent_ones() {
        let m = Membership::default();
        let (a, b) = (ResponderId::generate("a"), ResponderId::generate("b"));
        let started = Instant::now();
        assert!(!m.wait_applied(&at(1), Duration::from_secs(5)).await.everywhere(), "no responder: unconfirmed");
        assert!(started.elapsed() < Duration::from_millis(100), "and nobody to wait for");
        m.report(&a, at(5), Instant::now());
        m.report(&b, at(3), Instant::now());
        assert_eq!(m.wait_applied(&at(3), Duration::ZERO).await, Applied { live: 2, confirmed: 2 });
        let late = m.wait_applied(&at(5), Duration::from_millis(200)).await;
        assert_eq!(late, Applied { live: 2, confirmed: 1 }, "b lags: the bound ends the wait");
        m.report(&b, at(2), Instant::now());
        assert_eq!(m.count(&at(3)).confirmed, 2, "positions never move back");
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn silent_responders_leave() {
        let m = Membership::default();
        let gone = Instant::now().checked_sub(LIVENESS + Duration::from_secs(1)).unwrap_or_else(Instant::now);
        m.report(&ResponderId::generate("stopped"), at(1), gone);
        m.report(&ResponderId::generate("alive"), at(1), Instant::now());
        assert_eq!(m.live().len(), 1);
        assert_eq!(m.known().len(), 2, "a stopped responder is still known");
        let forgotten = Instant::now().checked_sub(FORGET_AFTER).unwrap_or_else(Instant::now);
        m.report(&ResponderId::generate("long gone"), at(1), forgotten);
        assert_eq!(m.known().len(), 2, "until it has been gone for an hour");
    }
}
