//! The payment warnings: when a payment fails, a reminder before grace ends, a
//! final notice before updates stop (`certdns_billing::WarningKind` is the
//! schedule). The portal role runs [`PaymentReminders::run`] in the background
//! like the delegation monitor; a round looks at every account with an unpaid
//! invoice.
//!
//! Durable and shared by every portal instance: a warning is claimed in the
//! store before its mail goes out and marked sent after (with its audit event),
//! so a restart neither sends one twice nor skips one. A claim whose sender died
//! is taken again after [`CLAIM_LEASE`] (that mail may then go twice: better
//! than never). Only warnings marked sent count towards the two that must come
//! before updates stop.

use std::sync::Arc;
use std::time::Duration;

use certdns_billing::{BillingConfig, GracePeriods, Standing, WarningKind, updates_stop_at};
use certdns_core::{AccountId, AuditKind, NewAuditEvent};
use certdns_store::{BillingRecord, Store, StoreError};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::mail::Mailer;

/// How often the reminders look (the first warning goes out within this).
pub const REMINDER_INTERVAL: Duration = Duration::from_secs(60);
/// A claim older than this whose mail was never marked sent is taken again.
const CLAIM_LEASE: time::Duration = time::Duration::minutes(10);

pub struct PaymentReminders {
    store: Arc<dyn Store>,
    mailer: Mailer,
    base_url: String,
    periods: GracePeriods,
}

/// The reminders of the portal role, from the portal's configuration (the same
/// SMTP relay or outbox as every other mail); `None` when billing is off.
pub fn payment_reminders(
    config: &crate::PortalConfig,
    store: Arc<dyn Store>,
    data_dir: &std::path::Path,
    billing: &BillingConfig,
) -> Result<Option<PaymentReminders>, crate::PortalError> {
    billing.validate().map_err(crate::PortalError::Config)?;
    if !billing.enabled() {
        return Ok(None);
    }
    let mailer =
        Mailer::new(config.smtp.as_ref().map(|s| s.url.as_str()), &config.mail_from, data_dir.join("outbox.eml"))?;
    let periods = GracePeriods::from_days(billing.grace_days, billing.update_grace_days);
    Ok(Some(PaymentReminders { store, mailer, base_url: config.base_url(), periods }))
}

impl PaymentReminders {
    /// One round every [`REMINDER_INTERVAL`] until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            if let Err(e) = self.round(certdns_core::now()).await {
                tracing::warn!(error = %e, "payment reminders: round failed");
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(REMINDER_INTERVAL) => {}
            }
        }
    }

    /// Sends every warning due at `now`; returns how many went out.
    pub async fn round(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        let mut sent = 0;
        for account in self.store.billing().accounts_with_failed_payment().await? {
            match self.warn(account, now).await {
                Ok(true) => sent += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, %account, "payment reminders: cannot warn"),
            }
        }
        Ok(sent)
    }

    /// The account's next warning, if one is due: claimed, mailed, marked sent.
    async fn warn(&self, account: AccountId, now: OffsetDateTime) -> Result<bool, StoreError> {
        let billing = self.store.billing();
        let record = billing.billing(account).await?;
        let Some(failed) = record.payment_failed_at else { return Ok(false) };
        let sent: Vec<WarningKind> = billing
            .payment_warnings_sent(account, failed)
            .await?
            .iter()
            .filter_map(|k| WarningKind::parse(k))
            .collect();
        let Some(kind) = WarningKind::next(&record, self.periods, &sent, now) else { return Ok(false) };
        if !billing.claim_payment_warning(account, failed, kind.as_str(), now, now - CLAIM_LEASE).await? {
            return Ok(false);
        }
        let Some(customer) = self.store.account(account).await? else {
            billing.release_payment_warning(account, failed, kind.as_str()).await?;
            return Ok(false);
        };
        let told = Told::after_warning(&record, failed, self.periods, now);
        let (subject, body) = message(kind, &told, &self.base_url);
        if let Err(e) = self.mailer.send(customer.email.as_str(), &subject, body).await {
            tracing::warn!(error = %e, %account, warning = kind.as_str(), "cannot send the payment warning");
            billing.release_payment_warning(account, failed, kind.as_str()).await?;
            return Ok(false);
        }
        let event = NewAuditEvent {
            account_id: Some(account),
            kind: AuditKind::BillingPaymentWarningSent,
            client_addr: None,
            detail: serde_json::json!({
                "warning": kind.as_str(),
                "grace_ends": told.grace_ends.unix_timestamp(),
                "updates_stop_earliest": told.updates_stop.unix_timestamp(),
            }),
        };
        billing.payment_warning_sent(account, failed, kind.as_str(), &event, now).await?;
        Ok(true)
    }
}

/// The dates a warning tells, as they stand once it is sent.
struct Told {
    grace_ends: OffsetDateTime,
    updates_stop: OffsetDateTime,
    /// Whether grace is already over (new registrations paused).
    growth_stopped: bool,
}

impl Told {
    fn after_warning(
        record: &BillingRecord,
        failed: OffsetDateTime,
        periods: GracePeriods,
        now: OffsetDateTime,
    ) -> Told {
        let after =
            BillingRecord { warnings_sent: record.warnings_sent + 1, last_warning_at: Some(now), ..record.clone() };
        Told {
            grace_ends: failed + periods.grace,
            updates_stop: updates_stop_at(failed, &after, periods),
            growth_stopped: !Standing::of(&after, periods, now).allows_new_registrations(),
        }
    }
}

fn date(t: OffsetDateTime) -> String {
    t.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC")).unwrap_or_default()
}

/// Subject and body of a warning: what works now, what stops when, what to do.
fn message(kind: WarningKind, told: &Told, base_url: &str) -> (String, String) {
    let (grace, stop) = (date(told.grace_ends), date(told.updates_stop));
    let subject = match kind {
        WarningKind::PaymentFailed => "certdns: a payment failed — everything keeps working for now".to_owned(),
        WarningKind::GraceEnding => format!("certdns: reminder — new registrations pause on {grace}"),
        WarningKind::UpdatesStopping => format!("certdns: final notice — certificate renewals stop on {stop}"),
    };
    let now_state = if told.growth_stopped {
        format!(
            "Since {grace} no new registrations can be made; updates of existing registrations (renewals) still work."
        )
    } else {
        format!("Everything keeps working until {grace}. After that no new registrations can be made.")
    };
    let body = format!(
        "A payment for your certdns subscription is overdue.\n\n{now_state}\n\n\
         Existing registrations keep accepting updates, so certificates keep renewing, until {stop} at the \
         earliest. After that /update answers 403 and certificates will not renew until the invoice is paid.\n\n\
         Paying the open invoice restores everything at once: update your payment method under \
         \"Invoices and payment methods\" on the Billing page, {}/billing\n",
        base_url.trim_end_matches('/'),
    );
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_warning_names_the_dates_and_the_way_out() {
        let failed = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let periods = GracePeriods::from_days(14, 14);
        let record = BillingRecord { payment_failed_at: Some(failed), ..BillingRecord::default() };
        let told = Told::after_warning(&record, failed, periods, failed);
        let (subject, body) = message(WarningKind::PaymentFailed, &told, "https://portal.example/");
        assert!(subject.contains("a payment failed"), "{subject}");
        assert!(body.contains("Everything keeps working until 2024-10-18 00:00 UTC"), "{body}");
        assert!(body.contains("until 2024-11-01 00:00 UTC at the earliest"), "{body}");
        assert!(body.contains("https://portal.example/billing"), "{body}");
        // Sent late (the portal was down): the stop moves to three days after it.
        let late = failed + time::Duration::days(27);
        let told = Told::after_warning(&record, failed, periods, late);
        let (subject, body) = message(WarningKind::UpdatesStopping, &told, "https://portal.example");
        assert!(subject.contains("final notice") && subject.contains("2024-11-03 00:00 UTC"), "{subject}");
        assert!(body.contains("no new registrations can be made; updates"), "{body}");
    }
}
