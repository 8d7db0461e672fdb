//! Outgoing mail: SMTP when configured, otherwise the log plus an outbox file.

use std::path::PathBuf;

use lettre::message::{Mailbox, Message, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::io::AsyncWriteExt;

pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    /// Appends each message to a file (mbox-like, one message after another).
    Outbox {
        path: PathBuf,
        from: Mailbox,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address: {0}")]
    Address(String),
    #[error("could not build the message: {0}")]
    Build(String),
    #[error("could not send: {0}")]
    Send(String),
}

impl Mailer {
    pub fn new(smtp_url: Option<&str>, from: &str, outbox: PathBuf) -> Result<Self, MailError> {
        let from: Mailbox =
            from.parse().map_err(|e: lettre::address::AddressError| MailError::Address(e.to_string()))?;
        Ok(match smtp_url {
            Some(url) => Mailer::Smtp {
                transport: AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailError::Build(format!("smtp url: {e}")))?
                    .build(),
                from,
            },
            None => Mailer::Outbox { path: outbox, from },
        })
    }

    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), MailError> {
        let to: Mailbox = to.parse().map_err(|e: lettre::address::AddressError| MailError::Address(e.to_string()))?;
        let from = match self {
            Mailer::Smtp { from, .. } | Mailer::Outbox { from, .. } => from.clone(),
        };
        let message = Message::builder()
            .from(from.clone())
            .to(to.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.clone())
            .map_err(|e| MailError::Build(e.to_string()))?;
        match self {
            Mailer::Smtp { transport, .. } => {
                transport.send(message).await.map_err(|e| MailError::Send(e.to_string()))?;
                tracing::info!(to = %to.email, subject, "mail sent");
            }
            Mailer::Outbox { path, .. } => {
                // Never the body: it carries live reset and confirmation links, and
                // logs are read by more people than the outbox file.
                tracing::info!(subject, outbox = %path.display(), "mail written to the outbox (no SMTP configured)");
                // Readable as is (no transfer encoding): links must be copyable.
                let _ = message;
                let date = time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc2822)
                    .unwrap_or_default();
                let bytes =
                    format!("From: {from}\nTo: {to}\nDate: {date}\nSubject: {subject}\n\n{body}\n\n").into_bytes();
                let mut file = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await
                    .map_err(|e| MailError::Send(format!("{}: {e}", path.display())))?;
                // tokio hands writes to a blocking thread: flush, or the mail may
                // not be in the file yet when the response goes out.
                file.write_all(&bytes).await.map_err(|e| MailError::Send(format!("{}: {e}", path.display())))?;
                file.flush().await.map_err(|e| MailError::Send(format!("{}: {e}", path.display())))?;
            }
        }
        Ok(())
    }
}
