//! Telling an account's owner what the delegation monitor found: one e-mail
//! (through the portal's mailer) and one audit event per change.

use std::sync::Arc;

use async_trait::async_trait;
use certdns_core::{AuditKind, NewAuditEvent};
use certdns_monitor::{Alert, AlertKind, Notifier};
use certdns_store::Store;

use crate::mail::Mailer;

pub struct AlertMailer {
    store: Arc<dyn Store>,
    mailer: Mailer,
    /// The portal's base URL, for the link to the registration.
    base_url: String,
}

/// The notifier the binary hands the monitor, from the portal's configuration
/// (the same SMTP relay or outbox as every other mail).
pub fn alert_notifier(
    config: &crate::PortalConfig,
    store: Arc<dyn Store>,
    data_dir: &std::path::Path,
) -> Result<Arc<dyn Notifier>, crate::PortalError> {
    let mailer =
        Mailer::new(config.smtp.as_ref().map(|s| s.url.as_str()), &config.mail_from, data_dir.join("outbox.eml"))?;
    Ok(Arc::new(AlertMailer { store, mailer, base_url: config.base_url() }))
}

/// Subject and body of the mail for `alert`.
fn message(alert: &Alert, link: &str) -> (String, String) {
    let record = format!("{}. CNAME {}.", alert.cname_name, alert.target);
    match &alert.kind {
        AlertKind::Broken { status, detail } => {
            let found = match status.as_str() {
                "missing" => format!("{} has no record any more.", alert.cname_name),
                "elsewhere" => format!("{} {detail}, not at {}.", alert.cname_name, alert.target),
                "shadowed" => format!("{} has a TXT record ({detail}) that the CA reads instead.", alert.cname_name),
                _ => format!("{}: {status} {detail}", alert.cname_name),
            };
            (
                format!("certdns: the CNAME for {} is broken — the next renewal will fail", alert.domain),
                format!(
                    "Our monitor checked the delegation of {domain} and found a problem:\n\n  {found}\n\n\
                     Until it is fixed, certificate renewals for {domain} through certdns will fail.\n\
                     The record must read:\n\n  {record}\n\n\
                     Registration: {link}\n\nWe will write once more when it is correct again.\n",
                    domain = alert.domain
                ),
            )
        }
        AlertKind::RenewalOverdue { last_renewal, expected_by } => {
            let date = |t: i64| {
                time::OffsetDateTime::from_unix_timestamp(t)
                    .ok()
                    .and_then(|t| t.format(time::macros::format_description!("[year]-[month]-[day]")).ok())
                    .unwrap_or_default()
            };
            (
                format!("certdns: the certificate renewal for {} is overdue", alert.domain),
                format!(
                    "Your ACME client renewed {domain} through certdns until {last}, and from its usual rhythm the \
                     next renewal was due by {by}. None has come.\n\n\
                     The CNAME is checked separately (you would have heard if it were broken). Look at the client: \
                     its logs, its schedule (cron, systemd timer), and whether the server it runs on still exists.\n\n\
                     Registration: {link}\n",
                    domain = alert.domain,
                    last = date(*last_renewal),
                    by = date(*expected_by),
                ),
            )
        }
        AlertKind::Restored => (
            format!("certdns: the CNAME for {} is correct again", alert.domain),
            format!(
                "The delegation of {} is in place again:\n\n  {record}\n\nRenewals through certdns work.\n\
                 Registration: {link}\n",
                alert.domain
            ),
        ),
    }
}

#[async_trait]
impl Notifier for AlertMailer {
    async fn alert(&self, alert: &Alert) {
        let (kind, status) = match &alert.kind {
            AlertKind::Broken { status, .. } => (AuditKind::DelegationBroken, status.as_str()),
            AlertKind::Restored => (AuditKind::DelegationRestored, "correct"),
            AlertKind::RenewalOverdue { .. } => (AuditKind::RenewalOverdue, "overdue"),
        };
        let subdomain = alert.target.split('.').next().unwrap_or_default();
        let event = NewAuditEvent {
            account_id: Some(alert.account),
            kind,
            client_addr: None,
            detail: serde_json::json!({ "domain": alert.domain, "subdomain": subdomain, "status": status }),
        };
        if let Err(e) = self.store.append_audit(&event, certdns_core::now()).await {
            tracing::warn!(error = %e, "cannot write the delegation audit event");
        }
        let owner = match self.store.account(alert.account).await {
            Ok(Some(account)) => account,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, domain = %alert.domain, "cannot find whom to tell about a delegation");
                return;
            }
        };
        let link = format!("{}/registrations/{subdomain}", self.base_url.trim_end_matches('/'));
        let (subject, body) = message(alert, &link);
        if let Err(e) = self.mailer.send(owner.email.as_str(), &subject, body).await {
            tracing::warn!(error = %e, domain = %alert.domain, "cannot mail a delegation alert");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mails_say_what_was_found_and_the_record_to_create() {
        let alert = |kind| Alert {
            account: certdns_core::AccountId::generate(),
            registration: certdns_core::RegistrationId::generate(),
            domain: "www.example.com".into(),
            cname_name: "_acme-challenge.www.example.com".into(),
            target: "abc.auth.example.net".into(),
            kind,
        };
        let broken = alert(AlertKind::Broken { status: "shadowed".into(), detail: "TXT manual".into() });
        let (subject, body) = message(&broken, "https://portal/registrations/abc");
        assert!(subject.contains("www.example.com") && subject.contains("broken"), "{subject}");
        assert!(body.contains("TXT record (TXT manual)"), "{body}");
        assert!(body.contains("_acme-challenge.www.example.com. CNAME abc.auth.example.net."), "{body}");
        let (subject, _) = message(&alert(AlertKind::Restored), "x");
        assert!(subject.ends_with("correct again"), "{subject}");
    }
}
