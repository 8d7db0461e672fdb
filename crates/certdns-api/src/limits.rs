//! Rate limits (governor's GCRA, one bucket per key), and the bookkeeping that
//! turns a run of failed authentications into one audit event.
//!
//! Failure budgets remember when a key ran out, so a client that is over its
//! budget is refused before any work (no store read or write) until it may
//! try again.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use certdns_core::{KeyId, Username};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::{Rate, RateLimits};

/// Buckets idle long enough to be full again are dropped every this many checks,
/// so memory follows the set of recently active keys.
const HOUSEKEEPING_EVERY: u64 = 8_192;
/// At most one failed-auth-burst audit event per address per this long.
const BURST_AUDIT_EVERY: Duration = Duration::from_secs(60);

fn quota(rate: Rate) -> Quota {
    let per_minute = NonZeroU32::new(rate.per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

struct Limiter<K: Hash + Eq + Clone> {
    inner: DefaultKeyedRateLimiter<K>,
    /// Keys that ran out, and until when.
    exhausted: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(rate: Rate) -> Self {
        Self { inner: DefaultKeyedRateLimiter::keyed(quota(rate)), exhausted: Mutex::default() }
    }

    /// Spends one unit; `Err(wait)` when `key` is over its limit.
    fn check(&self, key: &K) -> Result<(), Duration> {
        self.inner.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            self.exhausted.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), Instant::now() + wait);
            wait
        })
    }

    /// How long `key` must still wait after running out, without spending.
    fn blocked(&self, key: &K) -> Option<Duration> {
        let exhausted = self.exhausted.lock().unwrap_or_else(|p| p.into_inner());
        exhausted.get(key).and_then(|until| until.checked_duration_since(Instant::now()))
    }

    fn prune(&self) {
        self.inner.retain_recent();
        let now = Instant::now();
        self.exhausted.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, until| *until > now);
    }
}

/// Unknown client addresses (a proxy that could not tell) share one bucket.
fn address(ip: Option<IpAddr>) -> IpAddr {
    ip.unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED))
}

pub struct Limits {
    register_per_key: Limiter<KeyId>,
    register_unauthenticated: Limiter<IpAddr>,
    failures_per_address: Limiter<IpAddr>,
    failures_per_user: Limiter<Username>,
    checks: AtomicU64,
    burst_audited: Mutex<HashMap<IpAddr, Instant>>,
}

impl Limits {
    pub fn new(config: &RateLimits) -> Self {
        Self {
            register_per_key: Limiter::new(config.register_per_key),
            register_unauthenticated: Limiter::new(config.register_unauthenticated_per_address),
            failures_per_address: Limiter::new(config.auth_failures_per_address),
            failures_per_user: Limiter::new(config.auth_failures_per_user),
            checks: AtomicU64::new(0),
            burst_audited: Mutex::default(),
        }
    }

    fn housekeeping(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % HOUSEKEEPING_EVERY == HOUSEKEEPING_EVERY - 1 {
            self.register_per_key.prune();
            self.register_unauthenticated.prune();
            self.failures_per_address.prune();
            self.failures_per_user.prune();
            let mut audited = self.burst_audited.lock().unwrap_or_else(|p| p.into_inner());
            audited.retain(|_, at| at.elapsed() < BURST_AUDIT_EVERY);
        }
    }

    /// Before looking at a /register call's credentials: refused at once when
    /// this address is out of its unauthenticated budget and sent none.
    pub fn register_unauthenticated_blocked(&self, ip: Option<IpAddr>) -> Result<(), (&'static str, Duration)> {
        self.housekeeping();
        match self.register_unauthenticated.blocked(&address(ip)) {
            Some(wait) => Err(("register_unauthenticated_per_address", wait)),
            None => Ok(()),
        }
    }

    /// A /register call without a valid license key.
    pub fn register_unauthenticated(&self, ip: Option<IpAddr>) -> Result<(), (&'static str, Duration)> {
        self.housekeeping();
        self.register_unauthenticated.check(&address(ip)).map_err(|d| ("register_unauthenticated_per_address", d))
    }

    pub fn register_key(&self, key: &KeyId) -> Result<(), (&'static str, Duration)> {
        self.register_per_key.check(key).map_err(|d| ("register_per_key", d))
    }

    /// Before any work on an /update or /deregister: `Err` when the address or
    /// user already ran out of failed authentications.
    pub fn auth_blocked(&self, ip: Option<IpAddr>, user: Option<Username>) -> Result<(), (&'static str, Duration)> {
        self.housekeeping();
        if let Some(wait) = self.failures_per_address.blocked(&address(ip)) {
            return Err(("auth_failures_per_address", wait));
        }
        match user.and_then(|u| self.failures_per_user.blocked(&u)) {
            Some(wait) => Err(("auth_failures_per_user", wait)),
            None => Ok(()),
        }
    }

    /// Counts one failed authentication. `Err` once the address or user is over
    /// its budget: the caller answers 429 instead of 401.
    pub fn auth_failure(&self, ip: Option<IpAddr>, user: Option<Username>) -> Result<(), (&'static str, Duration)> {
        self.housekeeping();
        let by_address = self.failures_per_address.check(&address(ip));
        let by_user = user.map_or(Ok(()), |u| self.failures_per_user.check(&u));
        by_address.map_err(|d| ("auth_failures_per_address", d))?;
        by_user.map_err(|d| ("auth_failures_per_user", d))
    }

    /// Whether a burst from `ip` should be audited now (at most once a minute).
    pub fn should_audit_burst(&self, ip: Option<IpAddr>) -> bool {
        let Some(ip) = ip else { return false };
        let mut audited = self.burst_audited.lock().unwrap_or_else(|p| p.into_inner());
        match audited.get(&ip) {
            Some(at) if at.elapsed() < BURST_AUDIT_EVERY => false,
            _ => {
                audited.insert(ip, Instant::now());
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_limited_after_the_burst() {
        let limits = Limits::new(&RateLimits {
            auth_failures_per_address: Rate::new(1, 3),
            auth_failures_per_user: Rate::new(1000, 1000),
            ..RateLimits::default()
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.auth_failure(Some(ip), None).is_ok());
        }
        let (which, wait) = limits.auth_failure(Some(ip), None).unwrap_err();
        assert_eq!(which, "auth_failures_per_address");
        assert!(wait > Duration::from_secs(1), "{wait:?}");
        assert!(limits.auth_failure(Some("192.0.2.2".parse().unwrap()), None).is_ok(), "other addresses unaffected");
        assert!(limits.auth_blocked(Some(ip), None).is_err(), "refused before any work now");
        assert!(limits.auth_blocked(Some("192.0.2.2".parse().unwrap()), None).is_ok());
        assert!(limits.should_audit_burst(Some(ip)));
        assert!(!limits.should_audit_burst(Some(ip)), "once a minute");
    }
}
