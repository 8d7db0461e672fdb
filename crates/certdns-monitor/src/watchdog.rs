//! The renewal watchdog: from when a registration's updates came, when the next
//! renewal is due, and whether it is overdue. A renewal is a burst of updates
//! (apex and wildcard, retries): updates within [`SESSION_GAP`] of the last
//! renewal's first update belong to it. Pure, so it is unit-tested.

/// Updates closer than this to the previous renewal belong to it.
pub const SESSION_GAP: i64 = 3600;
/// Renewals remembered per registration.
pub const KEPT: usize = 6;
/// Slack on top of the usual interval before a renewal counts as overdue: a
/// client that renews at two thirds of a lifetime may wait a day more.
const SLACK: i64 = 86_400;

/// The renewals after an update at `update_at` (`renewals` oldest first).
pub fn note_update(renewals: &[i64], update_at: i64) -> Vec<i64> {
    let mut out = renewals.to_vec();
    match out.last() {
        Some(&last) if update_at < last + SESSION_GAP => {}
        _ => out.push(update_at),
    }
    let drop = out.len().saturating_sub(KEPT);
    out.drain(..drop);
    out
}

/// When the next renewal is expected at the latest: the last one plus the
/// usual (median) interval between renewals, a quarter more and a day. `None`
/// until two renewals have been seen.
pub fn expected_by(renewals: &[i64]) -> Option<i64> {
    let mut gaps: Vec<i64> = renewals.windows(2).map(|w| w[1] - w[0]).filter(|g| *g > 0).collect();
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_unstable();
    let usual = gaps[gaps.len() / 2];
    Some(renewals.last()? + usual + usual / 4 + SLACK)
}

pub fn is_overdue(renewals: &[i64], now: i64) -> bool {
    expected_by(renewals).is_some_and(|t| now > t)
}

/// The stored form: Unix seconds separated by spaces.
pub fn encode(renewals: &[i64]) -> String {
    renewals.iter().map(i64::to_string).collect::<Vec<_>>().join(" ")
}

/// Reads the stored form; anything that does not parse is dropped.
pub fn decode(text: &str) -> Vec<i64> {
    text.split(' ').filter_map(|t| t.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn a_burst_of_updates_is_one_renewal() {
        let r = note_update(&[], 1000);
        let r = note_update(&r, 1010);
        let r = note_update(&r, 1000 + SESSION_GAP - 1);
        assert_eq!(r, [1000]);
        let r = note_update(&r, 1000 + SESSION_GAP);
        assert_eq!(r, [1000, 1000 + SESSION_GAP]);
        let many = (0..10).fold(Vec::new(), |r, i| note_update(&r, i * 60 * DAY));
        assert_eq!(many.len(), KEPT);
        assert_eq!(many[0], 4 * 60 * DAY, "the oldest go");
    }

    #[test]
    fn overdue_after_the_usual_interval_and_some_slack() {
        assert_eq!(expected_by(&[]), None);
        assert_eq!(expected_by(&[5]), None, "one renewal says nothing about the next");
        let every_60_days = [0, 60 * DAY, 120 * DAY];
        assert_eq!(expected_by(&every_60_days), Some(120 * DAY + 60 * DAY + 15 * DAY + DAY));
        assert!(!is_overdue(&every_60_days, 195 * DAY));
        assert!(is_overdue(&every_60_days, 197 * DAY));
        // Six-day certificates: overdue within days, not months.
        let short = [0, 4 * DAY, 8 * DAY];
        assert!(is_overdue(&short, 8 * DAY + 7 * DAY));
        // One odd gap does not move the median.
        assert_eq!(expected_by(&[0, 60 * DAY, 61 * DAY, 121 * DAY]), Some(121 * DAY + 60 * DAY + 15 * DAY + DAY));
    }

    #[test]
    fn stored_form_round_trips() {
        assert_eq!(decode(&encode(&[1, 22, 333])), [1, 22, 333]);
        assert_eq!(decode(""), Vec::<i64>::new());
        assert_eq!(decode("1 x 3"), [1, 3]);
    }
}
