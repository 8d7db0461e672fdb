//! How long the writes of this process took to reach every DNS responder, as
//! measured on the update path: from just before a TXT change is published to
//! the moment every live responder reported that it applied it (or the wait
//! gave up). The public status page shows these figures; they travel there in
//! the writer's heartbeat.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Served;

/// Measurements older than this are dropped.
pub const WINDOW_SECS: i64 = 3600;
/// At most this many measurements are kept (the newest).
const KEPT: usize = 512;

/// One measured write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// When it was measured (Unix seconds).
    pub at: i64,
    /// How long it took, in milliseconds.
    pub ms: u64,
    /// Every live responder (at least one) confirmed it; otherwise the wait
    /// ended first or no responder was live, and `ms` is how long it waited.
    pub confirmed: bool,
}

/// The recent measurements of this process.
#[derive(Default)]
pub struct PropagationLog {
    samples: Mutex<VecDeque<Sample>>,
}

impl PropagationLog {
    /// Notes one publish-and-wait that took `took` and ended with `served`.
    pub fn record(&self, took: Duration, served: &Served, now: i64) {
        let sample = Sample {
            at: now,
            ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            confirmed: matches!(served, Served::Everywhere { .. }),
        };
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.push_back(sample);
        while samples.len() > KEPT || samples.front().is_some_and(|s| s.at < now - WINDOW_SECS) {
            samples.pop_front();
        }
    }

    /// The measurements of the last [`WINDOW_SECS`] before `now`, oldest first.
    pub fn recent(&self, now: i64) -> Vec<Sample> {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.iter().filter(|s| s.at >= now - WINDOW_SECS).copied().collect()
    }
}

/// What a set of measurements (of one or several writers) says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PropagationFigures {
    /// Writes measured.
    pub samples: usize,
    /// Of those, confirmed by every live responder.
    pub confirmed: usize,
    /// Median and 95th percentile of the confirmed ones, in milliseconds.
    pub median_ms: u64,
    pub p95_ms: u64,
    pub max_ms: u64,
    /// The newest measurement (Unix seconds).
    pub newest_at: i64,
}

impl PropagationFigures {
    /// `None` when no write was confirmed: there is no propagation time to tell.
    pub fn of(samples: &[Sample]) -> Option<Self> {
        let mut confirmed: Vec<u64> = samples.iter().filter(|s| s.confirmed).map(|s| s.ms).collect();
        if confirmed.is_empty() {
            return None;
        }
        confirmed.sort_unstable();
        // Nearest rank: the smallest value at least `p` of the samples do not exceed.
        let rank = |p: usize| confirmed[(confirmed.len() * p).div_ceil(100).saturating_sub(1)];
        Some(Self {
            samples: samples.len(),
            confirmed: confirmed.len(),
            median_ms: rank(50),
            p95_ms: rank(95),
            max_ms: confirmed[confirmed.len() - 1],
            newest_at: samples.iter().map(|s| s.at).max().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERYWHERE: Served = Served::Everywhere { responders: 2 };

    #[test]
    fn keeps_the_last_hour_and_the_newest_only() {
        let log = PropagationLog::default();
        log.record(Duration::from_millis(5), &EVERYWHERE, 1_000);
        log.record(Duration::from_millis(7), &EVERYWHERE, 1_000 + WINDOW_SECS + 1);
        assert_eq!(log.recent(1_000 + WINDOW_SECS + 1).len(), 1, "the first is over an hour old");
        for i in 0..(KEPT as i64 + 10) {
            log.record(Duration::from_millis(1), &EVERYWHERE, 5_000 + i);
        }
        assert_eq!(log.recent(5_000 + KEPT as i64 + 10).len(), KEPT);
    }

    #[test]
    fn figures_count_confirmed_writes_only() {
        let unconfirmed = Served::NotConfirmed { live: 2, confirmed: 1 };
        let mut samples: Vec<Sample> = (1..=100).map(|ms| Sample { at: ms as i64, ms, confirmed: true }).collect();
        samples.push(Sample { at: 200, ms: 2_000, confirmed: false });
        let figures = PropagationFigures::of(&samples).unwrap();
        assert_eq!((figures.samples, figures.confirmed), (101, 100));
        assert_eq!((figures.median_ms, figures.p95_ms, figures.max_ms, figures.newest_at), (50, 95, 100, 200));
        let log = PropagationLog::default();
        log.record(Duration::from_secs(2), &unconfirmed, 10);
        assert_eq!(PropagationFigures::of(&log.recent(10)), None, "nothing confirmed: no figure");
        assert_eq!(PropagationFigures::of(&[]), None);
    }
}
