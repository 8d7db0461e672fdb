//! When to check a delegation next: a correct one at the regular interval
//! (jittered, so checks spread over time instead of marching in step); a broken
//! one sooner, backing off while it stays broken; a check that could not be
//! made (resolver trouble, ours) sooner still. Pure, so it is unit-tested.

/// Seconds until the next check of a delegation whose last `failures` checks in
/// a row did not find it correct; `jitter` in [-1, 1] spreads correct ones by
/// ±10 % of `interval`.
pub fn next_delay(status: &str, failures: u32, interval: u64, jitter: f64) -> u64 {
    let backoff = |first: u64| {
        let exponent = failures.saturating_sub(1).min(16);
        first.saturating_mul(1 << exponent).min(interval)
    };
    match status {
        "correct" => {
            let spread = (interval as f64 * 0.1 * jitter.clamp(-1.0, 1.0)) as i64;
            (interval as i64 + spread).max(1) as u64
        }
        "unknown" => backoff(60),
        _ => backoff(300),
    }
}

/// Whether a status means the customer's delegation is broken (a state worth
/// telling them about), as opposed to correct, not checked yet or unknown.
pub fn is_broken(status: &str) -> bool {
    matches!(status, "missing" | "elsewhere" | "shadowed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correct_ones_at_the_interval_spread_by_ten_percent() {
        assert_eq!(next_delay("correct", 0, 3600, 0.0), 3600);
        assert_eq!(next_delay("correct", 0, 3600, 1.0), 3960);
        assert_eq!(next_delay("correct", 0, 3600, -1.0), 3240);
        assert_eq!(next_delay("correct", 0, 3600, 7.0), 3960, "clamped");
    }

    #[test]
    fn broken_ones_back_off_up_to_the_interval() {
        let delays: Vec<u64> = (1..=6).map(|f| next_delay("missing", f, 3600, 0.0)).collect();
        assert_eq!(delays, [300, 600, 1200, 2400, 3600, 3600]);
        assert_eq!(next_delay("unknown", 1, 3600, 0.0), 60);
        assert_eq!(next_delay("unknown", 3, 3600, 0.0), 240);
        assert_eq!(next_delay("shadowed", u32::MAX, 3600, 0.0), 3600, "no overflow");
        assert_eq!(next_delay("missing", 1, 120, 0.0), 120, "never later than the interval");
    }

    #[test]
    fn broken_means_the_customer_must_act() {
        assert!(is_broken("missing") && is_broken("elsewhere") && is_broken("shadowed"));
        assert!(!is_broken("correct") && !is_broken("unknown") && !is_broken("pending"));
    }
}
