//! The public status page's facts, gathered from what each role reports: the
//! API instances' heartbeats in the store (alive, reaching the TXT
//! distribution, and how long their writes took to reach every responder),
//! every DNS responder's own reports through the distribution (heartbeat and
//! how far it has applied the change stream), and the store as this portal
//! sees it. Nothing is assumed: what nobody reported is `unknown`.
//!
//! Gathered at most every [`FRESH_FOR`] however many people look (the page is
//! public), and never for longer than a few seconds.

use std::time::{Duration, Instant};

use certdns_store::Heartbeat;
use certdns_sync::heartbeat::STALE_AFTER_SECS;
use certdns_sync::propagation::{PropagationFigures, Sample, WINDOW_SECS};
use serde::Serialize;

use crate::state::AppState;

/// A status is reused for this long.
pub const FRESH_FOR: Duration = Duration::from_secs(5);
/// Each source gets this long to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// A responder behind the newest change gets this long to catch up before it
/// counts as behind (reports travel a round trip after each change).
const CATCH_UP: Duration = Duration::from_secs(1);
/// API instances not heard from for longer than this are left off the page.
const SHOWN_FOR_SECS: i64 = 3600;

/// How a part is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Operational,
    /// Nobody reported: we cannot say.
    Unknown,
    Degraded,
    Down,
}

impl Health {
    pub fn as_str(&self) -> &'static str {
        match self {
            Health::Operational => "operational",
            Health::Unknown => "unknown",
            Health::Degraded => "degraded",
            Health::Down => "down",
        }
    }

    /// The page's headline for the overall health.
    pub fn headline(&self) -> &'static str {
        match self {
            Health::Operational => "All systems operational",
            Health::Unknown => "Status partly unknown",
            Health::Degraded => "Some parts are degraded",
            Health::Down => "Outage",
        }
    }

    pub fn words(&self) -> &'static str {
        match self {
            Health::Operational => "Operational",
            Health::Unknown => "Unknown",
            Health::Degraded => "Degraded",
            Health::Down => "Down",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// When it was gathered (Unix seconds).
    pub checked_at: i64,
    /// The worst of the API, the DNS responders and the database (the
    /// propagation time is a measurement, not a part that can be down).
    pub overall: Health,
    pub api: ApiStatus,
    pub dns: DnsStatus,
    pub database: Health,
    pub propagation: PropagationStatus,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiStatus {
    pub health: Health,
    pub note: String,
    pub instances: Vec<ApiInstance>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiInstance {
    pub name: String,
    pub up: bool,
    /// Seconds since its last heartbeat.
    pub heartbeat_age_secs: i64,
    /// Whether it reached the TXT distribution at its last heartbeat.
    pub distribution: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DnsStatus {
    pub health: Health,
    pub note: String,
    pub responders: Vec<Responder>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Responder {
    pub name: String,
    /// Reported within the liveness bound.
    pub live: bool,
    pub heartbeat_age_secs: u64,
    /// `current` (serves every change published), `behind`, or `unknown` (not live).
    pub replica: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PropagationStatus {
    pub health: Health,
    pub note: String,
    /// Over the last hour, from the API instances' measurements.
    pub figures: Option<PropagationFigures>,
    pub window_secs: i64,
}

/// The last status gathered, shared by every request.
#[derive(Default)]
pub struct StatusCache {
    last: tokio::sync::Mutex<Option<(Instant, std::sync::Arc<Status>)>>,
}

impl StatusCache {
    pub async fn get(&self, state: &AppState) -> std::sync::Arc<Status> {
        // One gathering at a time; the others wait for it and share it.
        let mut last = self.last.lock().await;
        if let Some((at, status)) = last.as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return status.clone();
        }
        let status = std::sync::Arc::new(gather(state).await);
        *last = Some((Instant::now(), status.clone()));
        status
    }
}

async fn gather(state: &AppState) -> Status {
    let now = certdns_core::now().unix_timestamp();
    let database = match tokio::time::timeout(ASK_TIMEOUT, state.core.ping()).await {
        Ok(Ok(())) => Health::Operational,
        _ => Health::Down,
    };
    let beats = match tokio::time::timeout(ASK_TIMEOUT, state.core.fleet().heartbeats(now - SHOWN_FOR_SECS)).await {
        Ok(Ok(beats)) => Some(beats.into_iter().filter(|b| b.role == "api").collect::<Vec<_>>()),
        _ => None,
    };
    let api = api_status(beats.as_deref(), now);
    let propagation = propagation_status(beats.as_deref(), now);
    let dns = dns_status(state).await;
    let overall = [api.health, dns.health, database].into_iter().max().unwrap_or(Health::Unknown);
    Status { checked_at: now, overall, api, dns, database, propagation }
}

fn api_status(beats: Option<&[Heartbeat]>, now: i64) -> ApiStatus {
    let Some(beats) = beats else {
        let note = "The database did not answer, so the API instances' heartbeats cannot be read.".into();
        return ApiStatus { health: Health::Unknown, note, instances: Vec::new() };
    };
    let instances: Vec<ApiInstance> = beats
        .iter()
        .map(|b| {
            let distribution = b.detail.get("distribution").and_then(|d| d.as_str()).unwrap_or("unknown").to_owned();
            let age = (now - b.seen_at).max(0);
            ApiInstance {
                name: b.name.clone(),
                up: age <= STALE_AFTER_SECS && distribution == "ok",
                heartbeat_age_secs: age,
                distribution,
            }
        })
        .collect();
    let up = instances.iter().filter(|i| i.up).count();
    let (health, note) = match (instances.len(), up) {
        (0, _) => (Health::Unknown, "No API instance has reported in the last hour.".to_owned()),
        (n, up) if up == n => (Health::Operational, format!("{n} of {n} instances up.")),
        (n, 0) => (Health::Down, format!("None of the {n} instances seen in the last hour is up.")),
        (n, up) => (
            Health::Degraded,
            format!("{up} of {n} instances up; the others stopped reporting or cannot reach the DNS distribution."),
        ),
    };
    ApiStatus { health, note, instances }
}

fn propagation_status(beats: Option<&[Heartbeat]>, now: i64) -> PropagationStatus {
    let samples: Vec<Sample> = beats
        .into_iter()
        .flatten()
        .filter_map(|b| b.detail.get("propagation").cloned())
        .filter_map(|p| serde_json::from_value::<Vec<Sample>>(p).ok())
        .flatten()
        .filter(|s| s.at >= now - WINDOW_SECS)
        .collect();
    let figures = PropagationFigures::of(&samples);
    let unconfirmed = samples.iter().filter(|s| !s.confirmed).count();
    let (health, note) = match &figures {
        None if samples.is_empty() => {
            (Health::Unknown, "No update was measured in the last hour, so there is no current figure.".to_owned())
        }
        None => (
            Health::Degraded,
            format!("None of the {} updates of the last hour was confirmed by every responder.", samples.len()),
        ),
        Some(f) if unconfirmed == 0 => (
            Health::Operational,
            format!("Every one of the {} updates of the last hour reached every responder.", f.samples),
        ),
        Some(f) => (
            Health::Degraded,
            format!(
                "{unconfirmed} of the {} updates of the last hour were not confirmed by every responder in time.",
                f.samples
            ),
        ),
    };
    PropagationStatus { health, note, figures, window_secs: WINDOW_SECS }
}

async fn dns_status(state: &AppState) -> DnsStatus {
    let distribution = state.sync.distribution();
    let unknown = |note: &str| DnsStatus { health: Health::Unknown, note: note.to_owned(), responders: Vec::new() };
    let Ok(Ok(newest)) = tokio::time::timeout(ASK_TIMEOUT, distribution.position()).await else {
        return unknown("The DNS distribution did not answer, so the responders' reports cannot be read.");
    };
    let Ok(Ok(mut members)) = tokio::time::timeout(ASK_TIMEOUT, distribution.responders()).await else {
        return unknown("The DNS distribution did not answer, so the responders' reports cannot be read.");
    };
    let live = |m: &certdns_replication::Member| m.last_seen.elapsed() < certdns_replication::membership::LIVENESS;
    if members.iter().any(|m| live(m) && !m.position.is_at_or_after(&newest)) {
        // Give a responder that is applying the newest change the moment it needs.
        let _ = tokio::time::timeout(ASK_TIMEOUT, distribution.wait_applied(&newest, CATCH_UP)).await;
        if let Ok(Ok(again)) = tokio::time::timeout(ASK_TIMEOUT, distribution.responders()).await {
            members = again;
        }
    }
    let live_names: Vec<String> = members.iter().filter(|m| live(m)).map(|m| m.name.clone()).collect();
    let mut responders: Vec<Responder> = members
        .iter()
        // A responder that restarted reports under a new id with the same name.
        .filter(|m| live(m) || !live_names.contains(&m.name))
        .map(|m| Responder {
            name: m.name.clone(),
            live: live(m),
            heartbeat_age_secs: m.last_seen.elapsed().as_secs(),
            replica: match (live(m), m.position.is_at_or_after(&newest)) {
                (false, _) => "unknown",
                (true, true) => "current",
                (true, false) => "behind",
            }
            .to_owned(),
        })
        .collect();
    responders.sort_by(|a, b| a.name.cmp(&b.name));
    let total = responders.len();
    let serving = responders.iter().filter(|r| r.live && r.replica == "current").count();
    let (health, note) = match (total, serving) {
        (0, _) => (Health::Unknown, "No DNS responder has reported to this portal in the last hour.".to_owned()),
        (n, s) if s == n => (Health::Operational, format!("{n} of {n} responders up and current.")),
        (_, 0) if responders.iter().all(|r| !r.live) => (Health::Down, "No responder is reporting.".to_owned()),
        (n, s) => (Health::Degraded, format!("{s} of {n} responders up and current.")),
    };
    DnsStatus { health, note, responders }
}
