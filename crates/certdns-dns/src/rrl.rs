//! Response-rate limiting: a GCRA limiter (governor) per client prefix, for UDP.
//!
//! A spoofed-source flood asks us to send answers to a victim; capping answers per
//! destination network makes that pointless. Over the limit, answers are dropped,
//! except every `slip`-th which goes out as an empty TC reply: tiny (no
//! amplification), yet a real resolver behind a busy prefix retries over TCP and
//! still gets its answer.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RrlConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Answer,
    /// Send an empty truncated reply instead of the answer.
    Slip,
    Drop,
}

pub(crate) struct Rrl {
    limiter: DefaultKeyedRateLimiter<u128>,
    v4_mask: u32,
    v6_mask: u128,
    slip: u64,
    limited: AtomicU64,
}

impl Rrl {
    pub fn new(cfg: &RrlConfig) -> Option<Self> {
        if !cfg.enabled {
            return None;
        }
        let rate = NonZeroU32::new(cfg.responses_per_second)?;
        let burst = NonZeroU32::new(cfg.burst)?;
        Some(Self {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            v4_mask: u32::MAX.checked_shl(32 - u32::from(cfg.ipv4_prefix.min(32))).unwrap_or(0),
            v6_mask: u128::MAX.checked_shl(128 - u32::from(cfg.ipv6_prefix.min(128))).unwrap_or(0),
            slip: u64::from(cfg.slip),
            limited: AtomicU64::new(0),
        })
    }

    /// Whether an answer to `client` may go out.
    pub fn check(&self, client: IpAddr) -> Verdict {
        if self.limiter.check_key(&self.prefix(client)).is_ok() {
            return Verdict::Answer;
        }
        let n = self.limited.fetch_add(1, Ordering::Relaxed) + 1;
        if self.slip != 0 && n.is_multiple_of(self.slip) { Verdict::Slip } else { Verdict::Drop }
    }

    /// The client's network, as a key. IPv4 keys are IPv4-mapped so the two
    /// families never collide.
    fn prefix(&self, client: IpAddr) -> u128 {
        match client {
            IpAddr::V4(v4) => u128::from((v4.to_bits() & self.v4_mask) as u64 | 0xffff_0000_0000),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.prefix(IpAddr::V4(v4)),
                None => v6.to_bits() & self.v6_mask,
            },
        }
    }

    /// Forgets prefixes that are back under their limit, so the table stays as
    /// small as the set of currently busy clients.
    pub fn housekeeping(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrl(slip: u32) -> Rrl {
        Rrl::new(&RrlConfig { enabled: true, responses_per_second: 1, burst: 3, slip, ..RrlConfig::default() }).unwrap()
    }

    #[test]
    fn limits_per_prefix_and_slips() {
        let r = rrl(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let same_net: IpAddr = "192.0.2.200".parse().unwrap();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(r.check(a), Verdict::Answer);
        }
        let over: Vec<_> = (0..4).map(|_| r.check(same_net)).collect();
        assert_eq!(over, [Verdict::Drop, Verdict::Slip, Verdict::Drop, Verdict::Slip]);
        assert_eq!(r.check(other), Verdict::Answer, "another prefix has its own budget");
    }

    #[test]
    fn slip_zero_drops_everything_and_disabled_is_none() {
        let r = rrl(0);
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let verdicts: Vec<_> = (0..10).map(|_| r.check(a)).collect();
        assert!(verdicts[3..].iter().all(|v| *v == Verdict::Drop));
        assert!(Rrl::new(&RrlConfig::default()).is_none());
    }

    #[test]
    fn ipv6_prefix_groups_and_mapped_v4_is_v4() {
        let r = rrl(0);
        assert_eq!(r.prefix("2001:db8:0:1::1".parse().unwrap()), r.prefix("2001:db8:0:1:ffff::2".parse().unwrap()));
        assert_ne!(r.prefix("2001:db8:0:1::1".parse().unwrap()), r.prefix("2001:db8:1:1::1".parse().unwrap()));
        assert_eq!(r.prefix("::ffff:192.0.2.9".parse().unwrap()), r.prefix("192.0.2.1".parse().unwrap()));
    }
}
