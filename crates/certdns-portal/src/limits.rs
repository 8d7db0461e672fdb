//! Who may try what how often, on the anonymous pages.
//!
//! * Sign-in: only *failed* sign-ins count. Each client address has a budget of
//!   failures per minute; and each (account, address) pair backs off
//!   exponentially after a few failures. An attacker hammering one account from
//!   one address is slowed to a crawl, while the owner, from another address,
//!   still gets in with the right password: nobody can lock an account out.
//! * Sign-up, forgotten password and reset each have a budget per address of
//!   their own, and reset mails are capped per account per hour, so the forms
//!   cannot be used to mail-bomb an account or to burn CPU.
//!
//! All of it is in memory, per portal instance, and pruned as it goes.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use certdns_core::AccountId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// Failures of one (account, address) pair allowed before the back-off starts.
const FREE_FAILURES: u32 = 3;
/// Reset mails one account may be sent per hour.
const RESET_MAILS_PER_HOUR: usize = 3;
/// Housekeeping (dropping idle entries) every this many checks.
const PRUNE_EVERY: u64 = 1_024;

/// Where a request comes from, for limits: an unknown address (a proxy that
/// could not tell) shares one bucket with every other unknown one.
fn address(ip: Option<IpAddr>) -> IpAddr {
    ip.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

fn per_hour(n: u32) -> Quota {
    Quota::per_hour(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

/// A per-key budget that remembers when a key ran out, so an exhausted key is
/// refused without spending anything (`blocked`) and only failures spend (`spend`).
struct Budget<K: Hash + Eq + Clone> {
    bucket: DefaultKeyedRateLimiter<K>,
    blocked: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone> Budget<K> {
    fn new(quota: Quota) -> Self {
        Self { bucket: DefaultKeyedRateLimiter::keyed(quota), blocked: Mutex::default() }
    }

    /// How long `key` must still wait, if it is out of budget.
    fn blocked(&self, key: &K) -> Option<Duration> {
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        blocked.get(key).and_then(|until| until.checked_duration_since(Instant::now()))
    }

    /// Spends one unit; `Err(wait)` when the budget is gone.
    fn spend(&self, key: &K) -> Result<(), Duration> {
        match self.bucket.check_key(key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
                blocked.insert(key.clone(), Instant::now() + wait);
                Err(wait)
            }
        }
    }

    /// Checks and spends in one go (for forms where every request counts).
    fn take(&self, key: &K) -> Result<(), Duration> {
        match self.blocked(key) {
            Some(wait) => Err(wait),
            None => self.spend(key),
        }
    }

    fn prune(&self) {
        self.bucket.retain_recent();
        let now = Instant::now();
        self.blocked.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, until| *until > now);
    }
}

/// Failures of one account from one address, and when the next try is allowed.
struct Backoff {
    failures: u32,
    next_try: Instant,
}

pub(crate) struct Limits {
    failures_by_address: Budget<IpAddr>,
    /// Account API requests with a bad token, per address (its own budget, so
    /// a broken script does not lock its owner out of the sign-in form).
    token_failures_by_address: Budget<IpAddr>,
    backoff: Mutex<HashMap<(AccountId, IpAddr), Backoff>>,
    backoff_max: Duration,
    signups_by_address: Budget<IpAddr>,
    forgot_by_address: Budget<IpAddr>,
    resets_by_address: Budget<IpAddr>,
    wrong_current_password: Budget<AccountId>,
    reset_mails: Mutex<HashMap<AccountId, VecDeque<Instant>>>,
    checks: AtomicU64,
}

impl Limits {
    pub fn new(failures_per_minute_per_address: u32, backoff_max: Duration) -> Self {
        Self {
            failures_by_address: Budget::new(per_minute(failures_per_minute_per_address)),
            token_failures_by_address: Budget::new(per_minute(failures_per_minute_per_address)),
            backoff: Mutex::default(),
            backoff_max,
            signups_by_address: Budget::new(per_hour(20).allow_burst(NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN))),
            forgot_by_address: Budget::new(per_minute(5)),
            resets_by_address: Budget::new(per_minute(10)),
            wrong_current_password: Budget::new(per_minute(5)),
            reset_mails: Mutex::default(),
            checks: AtomicU64::new(0),
        }
    }

    fn housekeeping(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY != PRUNE_EVERY - 1 {
            return;
        }
        for budget in [
            &self.failures_by_address,
            &self.token_failures_by_address,
            &self.signups_by_address,
            &self.forgot_by_address,
            &self.resets_by_address,
        ] {
            budget.prune();
        }
        self.wrong_current_password.prune();
        let now = Instant::now();
        let forget_after = self.backoff_max * 2;
        self.backoff.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, b| now < b.next_try + forget_after);
        self.reset_mails
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, sent| sent.back().is_some_and(|last| now.duration_since(*last) < Duration::from_secs(3600)));
    }

    /// Before verifying a sign-in: `Err(wait)` when this address has used up its
    /// failures, or this address must still back off from this account.
    pub fn sign_in_allowed(&self, ip: Option<IpAddr>, account: Option<AccountId>) -> Result<(), Duration> {
        self.housekeeping();
        let ip = address(ip);
        if let Some(wait) = self.failures_by_address.blocked(&ip) {
            return Err(wait);
        }
        let Some(account) = account else { return Ok(()) };
        let backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        match backoff.get(&(account, ip)).and_then(|b| b.next_try.checked_duration_since(Instant::now())) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// A sign-in failed (unknown e-mail or wrong password). `Err(wait)` when that
    /// failure used up the address's budget.
    pub fn sign_in_failed(&self, ip: Option<IpAddr>, account: Option<AccountId>) -> Result<(), Duration> {
        let ip = address(ip);
        let budget = self.failures_by_address.spend(&ip);
        let Some(account) = account else { return budget };
        let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let entry = backoff.entry((account, ip)).or_insert(Backoff { failures: 0, next_try: Instant::now() });
        entry.failures += 1;
        if entry.failures > FREE_FAILURES {
            let exponent = (entry.failures - FREE_FAILURES).min(20);
            let wait = Duration::from_secs(1u64 << exponent).min(self.backoff_max);
            entry.next_try = Instant::now() + wait;
        }
        budget
    }

    /// A sign-in succeeded: this address starts afresh with this account.
    pub fn sign_in_succeeded(&self, ip: Option<IpAddr>, account: AccountId) {
        self.backoff.lock().unwrap_or_else(|p| p.into_inner()).remove(&(account, address(ip)));
    }

    /// Before looking up an account API token: `Err(wait)` while this address
    /// is out of its budget of bad tokens (refused without any store work).
    pub fn token_allowed(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        self.housekeeping();
        match self.token_failures_by_address.blocked(&address(ip)) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// A request came with a missing or bad token.
    pub fn token_failed(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        self.token_failures_by_address.spend(&address(ip))
    }

    pub fn sign_up(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        self.housekeeping();
        self.signups_by_address.take(&address(ip))
    }

    pub fn forgot_password(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        self.housekeeping();
        self.forgot_by_address.take(&address(ip))
    }

    pub fn reset_password(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        self.housekeeping();
        self.resets_by_address.take(&address(ip))
    }

    /// Whether another reset mail may go to `account` now (and counts it if so).
    pub fn reset_mail(&self, account: AccountId) -> bool {
        let now = Instant::now();
        let mut mails = self.reset_mails.lock().unwrap_or_else(|p| p.into_inner());
        let sent = mails.entry(account).or_default();
        while sent.front().is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(3600)) {
            sent.pop_front();
        }
        if sent.len() >= RESET_MAILS_PER_HOUR {
            return false;
        }
        sent.push_back(now);
        true
    }

    /// A signed-in user may get their current password wrong a few times a minute
    /// (password change, account deletion); `Err(wait)` once they are out.
    pub fn current_password_allowed(&self, account: AccountId) -> Result<(), Duration> {
        match self.wrong_current_password.blocked(&account) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn current_password_wrong(&self, account: AccountId) {
        let _ = self.wrong_current_password.spend(&account);
    }
}

/// "Wait a minute", in words.
pub(crate) fn wait_words(wait: Duration) -> String {
    match wait.as_secs() {
        0..=1 => "a second".into(),
        n @ 2..=89 => format!("{n} seconds"),
        n => format!("{} minutes", n.div_ceil(60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn failures_back_off_per_address_without_locking_the_owner_out() {
        let limits = Limits::new(100, Duration::from_secs(900));
        let account = AccountId::generate();
        let (attacker, owner) = (ip("203.0.113.9"), ip("198.51.100.7"));
        for _ in 0..FREE_FAILURES {
            assert!(limits.sign_in_allowed(attacker, Some(account)).is_ok());
            limits.sign_in_failed(attacker, Some(account)).unwrap();
        }
        limits.sign_in_failed(attacker, Some(account)).unwrap();
        let wait = limits.sign_in_allowed(attacker, Some(account)).unwrap_err();
        assert!(wait > Duration::from_secs(1) && wait <= Duration::from_secs(2), "{wait:?}");
        for _ in 0..10 {
            limits.sign_in_failed(attacker, Some(account)).unwrap();
        }
        let wait = limits.sign_in_allowed(attacker, Some(account)).unwrap_err();
        assert!(wait > Duration::from_secs(890), "capped at the maximum: {wait:?}");
        assert!(limits.sign_in_allowed(owner, Some(account)).is_ok(), "the owner, elsewhere, is not locked out");
        assert!(limits.sign_in_allowed(attacker, Some(AccountId::generate())).is_ok(), "other accounts unaffected");
        limits.sign_in_succeeded(attacker, account);
        assert!(limits.sign_in_allowed(attacker, Some(account)).is_ok());
    }

    #[test]
    fn an_address_has_a_failure_budget_across_accounts() {
        let limits = Limits::new(5, Duration::from_secs(900));
        let attacker = ip("203.0.113.9");
        for _ in 0..5 {
            limits.sign_in_failed(attacker, None).unwrap();
        }
        assert!(limits.sign_in_failed(attacker, None).is_err(), "the sixth failure is over the budget");
        assert!(limits.sign_in_allowed(attacker, Some(AccountId::generate())).is_err());
        assert!(limits.sign_in_allowed(ip("203.0.113.10"), None).is_ok());
        assert!(limits.sign_in_allowed(None, None).is_ok(), "unknown addresses share a bucket of their own");
    }

    /// Memory follows the addresses seen lately, not every address ever tried.
    #[test]
    fn idle_entries_are_pruned() {
        let quota = Quota::per_second(NonZeroU32::new(1000).unwrap()).allow_burst(NonZeroU32::new(1).unwrap());
        let budget: Budget<IpAddr> = Budget::new(quota);
        for i in 0..5_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            let _ = budget.spend(&ip);
            let _ = budget.spend(&ip); // over the burst: remembered as exhausted
        }
        assert_eq!(budget.bucket.len(), 5_000);
        std::thread::sleep(Duration::from_millis(20));
        budget.prune();
        assert_eq!(budget.bucket.len(), 0, "idle buckets dropped");
        assert!(budget.blocked.lock().unwrap().is_empty(), "expired blocks dropped");

        let limits = Limits::new(10, Duration::from_millis(10));
        for i in 0..100u32 {
            let _ = limits.sign_in_failed(Some(IpAddr::from(i.to_be_bytes())), Some(AccountId::generate()));
        }
        std::thread::sleep(Duration::from_millis(30));
        limits.checks.store(PRUNE_EVERY - 1, Ordering::Relaxed);
        limits.housekeeping();
        assert!(limits.backoff.lock().unwrap().is_empty(), "back-off entries forgotten once they expire");
    }

    #[test]
    fn reset_mails_are_capped_per_account() {
        let limits = Limits::new(5, Duration::from_secs(900));
        let account = AccountId::generate();
        assert_eq!((0..5).filter(|_| limits.reset_mail(account)).count(), RESET_MAILS_PER_HOUR);
        assert!(limits.reset_mail(AccountId::generate()));
        assert_eq!(wait_words(Duration::from_secs(30)), "30 seconds");
        assert_eq!(wait_words(Duration::from_secs(600)), "10 minutes");
    }
}
