//! Where an account stands after a failed payment, and when it is warned.
//! Renewals are sacred: the customer keeps everything through the grace period,
//! then only growth stops, and `/update` of existing names stops last — after a
//! second period, once the customer has actually been warned at least twice,
//! and never sooner than [`FINAL_NOTICE`] after the last warning.

use certdns_store::BillingRecord;
use time::{Duration, OffsetDateTime};

/// Warnings a customer must have had before their updates can stop.
pub const WARNINGS_BEFORE_UPDATES_STOP: u32 = 2;
/// Updates never stop sooner than this after the last warning (a warning that
/// went out late moves the stop, so nobody is cut off the day they are told).
pub const FINAL_NOTICE: Duration = Duration::days(3);
/// The reminders go out this long before grace ends and before updates stop.
pub const REMINDER_LEAD: Duration = Duration::days(3);
/// Two warnings are never sent closer together than this (short periods, or a
/// portal that was down, would otherwise send them all at once).
pub const MIN_GAP: Duration = Duration::days(1);

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
    /// Grace is over: no new registrations; updates work at least until
    /// `updates_until` (later still while fewer than two warnings were sent).
    GrowthStopped { updates_until: OffsetDateTime },
    /// Updates of existing registrations are refused too.
    UpdatesStopped,
}

impl Standing {
    pub fn of(record: &BillingRecord, periods: GracePeriods, now: OffsetDateTime) -> Standing {
        let Some(failed) = record.payment_failed_at else { return Standing::Good };
        let grace_end = failed + periods.grace;
        let updates_end = updates_stop_at(failed, record, periods);
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

/// The earliest moment `/update` can stop after the failure at `failed`: the
/// end of the second period, or [`FINAL_NOTICE`] after the last warning if
/// that is later. (It stops then only once two warnings were sent.)
pub fn updates_stop_at(failed: OffsetDateTime, record: &BillingRecord, periods: GracePeriods) -> OffsetDateTime {
    let end = failed + periods.grace + periods.updates;
    record.last_warning_at.map_or(end, |last| end.max(last + FINAL_NOTICE))
}

/// The warnings of one failed payment, in the order they go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
    /// When the payment fails (grace starts).
    PaymentFailed,
    /// [`REMINDER_LEAD`] before grace ends (new registrations stop).
    GraceEnding,
    /// [`REMINDER_LEAD`] before updates stop: the final notice.
    UpdatesStopping,
}

impl WarningKind {
    pub const ALL: [WarningKind; 3] =
        [WarningKind::PaymentFailed, WarningKind::GraceEnding, WarningKind::UpdatesStopping];

    /// The name stored with a sent warning and shown in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::PaymentFailed => "payment_failed",
            WarningKind::GraceEnding => "grace_ending",
            WarningKind::UpdatesStopping => "updates_stopping",
        }
    }

    pub fn parse(s: &str) -> Option<WarningKind> {
        WarningKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// When it is due for a failure at `failed`.
    fn due(self, failed: OffsetDateTime, periods: GracePeriods) -> OffsetDateTime {
        let grace_end = failed + periods.grace;
        match self {
            WarningKind::PaymentFailed => failed,
            WarningKind::GraceEnding => (grace_end - REMINDER_LEAD).max(failed),
            WarningKind::UpdatesStopping => (grace_end + periods.updates - REMINDER_LEAD).max(failed),
        }
    }

    /// The warning to send now, if any: the first of the schedule not sent yet,
    /// once due and [`MIN_GAP`] after the last one. Nothing once updates have
    /// stopped (a late warning would move the stop back and forth) or when no
    /// payment is overdue.
    pub fn next(
        record: &BillingRecord,
        periods: GracePeriods,
        sent: &[WarningKind],
        now: OffsetDateTime,
    ) -> Option<WarningKind> {
        let failed = record.payment_failed_at?;
        if !Standing::of(record, periods, now).allows_updates() {
            return None;
        }
        let next = WarningKind::ALL.into_iter().find(|k| !sent.contains(k))?;
        let rested = record.last_warning_at.is_none_or(|last| now >= last + MIN_GAP);
        (now >= next.due(failed, periods) && rested).then_some(next)
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
        // A warning sent late moves the stop: never sooner than the final notice.
        let mut late = record(Some(30), 2, now);
        late.last_warning_at = Some(now - Duration::days(1));
        let until = now + Duration::days(2);
        assert_eq!(Standing::of(&late, periods, now), Standing::GrowthStopped { updates_until: until });
        assert_eq!(Standing::of(&late, periods, until), Standing::UpdatesStopped);
    }

    /// The reminders of 14 + 14 days: day 0, day 11, day 25; each once, in order.
    #[test]
    fn warnings_go_out_on_schedule_in_order_and_never_after_updates_stopped() {
        let failed = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let periods = GracePeriods::from_days(14, 14);
        let mut record = BillingRecord { payment_failed_at: Some(failed), ..BillingRecord::default() };
        let mut sent = Vec::new();
        let mut schedule = Vec::new();
        for hour in 0..40 * 24 {
            let now = failed + Duration::hours(hour);
            if let Some(kind) = WarningKind::next(&record, periods, &sent, now) {
                sent.push(kind);
                record.warnings_sent += 1;
                record.last_warning_at = Some(now);
                schedule.push((kind, hour / 24));
            }
        }
        use WarningKind::*;
        assert_eq!(schedule, [(PaymentFailed, 0), (GraceEnding, 11), (UpdatesStopping, 25)]);
        assert_eq!(Standing::of(&record, periods, failed + Duration::days(28)), Standing::UpdatesStopped);
        assert_eq!(WarningKind::next(&BillingRecord::default(), periods, &[], failed), None, "nothing overdue");

        // No periods at all: still a day between warnings, and three days'
        // notice after the last before updates stop.
        let zero = GracePeriods::from_days(0, 0);
        let mut record = BillingRecord { payment_failed_at: Some(failed), ..BillingRecord::default() };
        let mut sent = Vec::new();
        let mut stopped_at = None;
        for hour in 0..10 * 24 {
            let now = failed + Duration::hours(hour);
            if let Some(kind) = WarningKind::next(&record, zero, &sent, now) {
                sent.push(kind);
                record.warnings_sent += 1;
                record.last_warning_at = Some(now);
            }
            if stopped_at.is_none() && !Standing::of(&record, zero, now).allows_updates() {
                stopped_at = Some(hour);
            }
        }
        assert_eq!(sent, [PaymentFailed, GraceEnding, UpdatesStopping]);
        assert_eq!(stopped_at, Some(5 * 24), "final notice on day 2, updates stop on day 5");
        assert_eq!(WarningKind::parse("grace_ending"), Some(GraceEnding));
        assert_eq!(WarningKind::parse("nope"), None);
    }
}
