//! Where an account stands after a failed payment. Renewals are sacred: the
//! customer keeps everything through the grace period, then only growth stops,
//! and `/update` of existing names stops last — after a second period and only
//! once the customer has been warned at least twice.

use certdns_store::BillingRecord;
use time::{Duration, OffsetDateTime};

/// Warnings a customer must have had before their updates can stop.
pub const WARNINGS_BEFORE_UPDATES_STOP: u32 = 2;

/// The two periods after a failed payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracePeriods {
    /// Everything keeps working.
    pub grace: Duration,
    /// After `grace`: new registrations are refused, updates still work.
    pub updates: Duration,
}

impl GracePeriods {
    pub fn from_days(grace_days: u32, update_grace_days: u32) -> Self {
        Self { grace: Duration::days(grace_days.into()), updates: Duration::days(update_grace_days.into()) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Paid up (or never billed).
    Good,
    /// A payment failed; everything works until `until`.
    Grace { until: OffsetDateTime },
    /// Grace is over: no new registrations; updates work until `updates_until`
    /// (later still while fewer than two warnings were sent).
    GrowthStopped { updates_until: OffsetDateTime },
    /// Updates of existing registrations are refused too.
    UpdatesStopped,
}

impl Standing {
    pub fn of(record: &BillingRecord, periods: GracePeriods, now: OffsetDateTime) -> Standing {
        let Some(failed) = record.payment_failed_at else { return Standing::Good };
        let grace_end = failed + periods.grace;
        let updates_end = grace_end + periods.updates;
        if now < grace_end {
            Standing::Grace { until: grace_end }
        } else if now < updates_end || record.warnings_sent < WARNINGS_BEFORE_UPDATES_STOP {
            Standing::GrowthStopped { updates_until: updates_end }
        } else {
            Standing::UpdatesStopped
        }
    }

    pub fn allows_new_registrations(self) -> bool {
        matches!(self, Standing::Good | Standing::Grace { .. })
    }

    pub fn allows_updates(self) -> bool {
        !matches!(self, Standing::UpdatesStopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(failed_days_ago: Option<i64>, warnings: u32, now: OffsetDateTime) -> BillingRecord {
        BillingRecord {
            payment_failed_at: failed_days_ago.map(|d| now - Duration::days(d)),
            warnings_sent: warnings,
            ..BillingRecord::default()
        }
    }

    /// The table in docs/billing.md, day by day with 14 + 14 days.
    #[test]
    fn the_state_machine_day_by_day() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let periods = GracePeriods::from_days(14, 14);
        let at = |days: Option<i64>, warnings| Standing::of(&record(days, warnings, now), periods, now);
        assert_eq!(at(None, 0), Standing::Good);
        assert!(matches!(at(Some(0), 0), Standing::Grace { .. }));
        assert!(matches!(at(Some(13), 1), Standing::Grace { .. }));
        assert!(matches!(at(Some(14), 1), Standing::GrowthStopped { .. }));
        assert!(matches!(at(Some(27), 2), Standing::GrowthStopped { .. }));
        assert_eq!(at(Some(28), 2), Standing::UpdatesStopped);
        // Never without two warnings, however long it has been.
        assert!(matches!(at(Some(400), 1), Standing::GrowthStopped { .. }));
        let grace = at(Some(0), 0);
        assert!(grace.allows_new_registrations() && grace.allows_updates());
        let stopped = at(Some(14), 0);
        assert!(!stopped.allows_new_registrations() && stopped.allows_updates());
        let updates = at(Some(28), 2);
        assert!(!updates.allows_new_registrations() && !updates.allows_updates());
    }
}
