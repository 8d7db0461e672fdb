//! The in-process backend: for the single binary, where the API and the DNS
//! responder share one process. Same contract as Redis, no network. It lives
//! and dies with the process (which fills it from the store before answering),
//! so its generation is always complete.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use certdns_core::Subdomain;
use tokio::sync::watch;

use crate::membership::Membership;
use crate::{Applied, Change, Cursor, DistError, Distribution, Generation, Member, ResponderId, Result, Snapshot};

const GENERATION: &str = "in-process";

/// How many changes the log keeps for followers that fall behind. A follower
/// further behind than this takes a new snapshot.
const LOG_CAPACITY: usize = 65_536;
/// Most changes handed out by one `changes` call.
const BATCH: usize = 1_024;

pub struct InProcess {
    state: Mutex<State>,
    /// The sequence number of the newest change; followers wait on it.
    newest: watch::Sender<u64>,
    responders: Membership,
}

#[derive(Default)]
struct State {
    /// The newest change per subdomain (tombstones included, so an older upsert
    /// cannot bring a removed subdomain back).
    current: HashMap<Subdomain, Change>,
    /// (sequence, change), contiguous sequences, oldest first.
    log: VecDeque<(u64, Change)>,
    seq: u64,
}

impl Default for InProcess {
    fn default() -> Self {
        Self { state: Mutex::default(), newest: watch::Sender::new(0), responders: Membership::default() }
    }
}

impl InProcess {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-updated in a way
        // that matters (each step is a single insert/push), so keep serving.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn parse_cursor(c: &Cursor) -> Result<u64> {
    c.0.parse().map_err(|_| DistError::Corrupt(format!("not an in-process cursor: {:?}", c.0)))
}

impl State {
    /// Changes after sequence `from`, or `None` if there are none yet.
    fn after(&self, from: u64) -> Result<Option<(Vec<Change>, u64)>> {
        if from >= self.seq {
            return Ok(None);
        }
        let oldest = self.log.front().map_or(self.seq + 1, |(s, _)| *s);
        if from + 1 < oldest {
            return Err(DistError::CursorLost);
        }
        let skip = usize::try_from(from + 1 - oldest).map_err(|_| DistError::CursorLost)?;
        let batch: Vec<(u64, Change)> = self.log.iter().skip(skip).take(BATCH).cloned().collect();
        let last = batch.last().map_or(from, |(s, _)| *s);
        Ok(Some((batch.into_iter().map(|(_, c)| c).collect(), last)))
    }
}

#[async_trait]
impl Distribution for InProcess {
    fn kind(&self) -> &'static str {
        "in-process"
    }

    async fn publish(&self, changes: &[Change]) -> Result<Option<Cursor>> {
        let mut st = self.lock();
        let mut published = false;
        for change in changes {
            let newer = st.current.get(&change.subdomain()).is_none_or(|held| held.version() < change.version());
            if !newer {
                continue;
            }
            st.current.insert(change.subdomain(), change.clone());
            st.seq += 1;
            let seq = st.seq;
            st.log.push_back((seq, change.clone()));
            if st.log.len() > LOG_CAPACITY {
                st.log.pop_front();
            }
            published = true;
        }
        if !published {
            return Ok(None);
        }
        self.newest.send_replace(st.seq);
        Ok(Some(Cursor(st.seq.to_string())))
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        let st = self.lock();
        let states = st
            .current
            .values()
            .filter_map(|c| match c {
                Change::Upsert(s) => Some(s.clone()),
                Change::Remove { .. } => None,
            })
            .collect();
        Ok(Snapshot {
            states,
            cursor: Cursor(st.seq.to_string()),
            generation: Generation::Complete(GENERATION.to_owned()),
        })
    }

    async fn changes(&self, cursor: &Cursor, wait: Duration) -> Result<(Vec<Change>, Cursor)> {
        let from = parse_cursor(cursor)?;
        // Subscribe before looking, so a change published in between still wakes us.
        let mut newest = self.newest.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some((changes, last)) = self.lock().after(from)? {
                return Ok((changes, Cursor(last.to_string())));
            }
            match tokio::time::timeout_at(deadline, newest.changed()).await {
                Ok(Ok(())) => continue,
                // Timed out (or the sender is gone, which cannot happen while `self` lives).
                _ => return Ok((Vec::new(), cursor.clone())),
            }
        }
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn generation(&self) -> Result<Generation> {
        Ok(Generation::Complete(GENERATION.to_owned()))
    }

    async fn begin_generation(&self) -> Result<Generation> {
        self.generation().await
    }

    async fn restart_generation(&self) -> Result<Generation> {
        self.generation().await
    }

    async fn position(&self) -> Result<Cursor> {
        Ok(Cursor(self.lock().seq.to_string()))
    }

    async fn complete_generation(&self, _id: &str) -> Result<bool> {
        Ok(false)
    }

    async fn report_applied(&self, responder: &ResponderId, position: &Cursor) -> Result<()> {
        self.responders.report(responder, position.clone(), std::time::Instant::now());
        Ok(())
    }

    async fn wait_applied(&self, position: &Cursor, within: Duration) -> Result<Applied> {
        Ok(self.responders.wait_applied(position, within).await)
    }

    async fn live_responders(&self) -> Result<Vec<Member>> {
        Ok(self.responders.live())
    }

    async fn responders(&self) -> Result<Vec<Member>> {
        Ok(self.responders.known())
    }
}
