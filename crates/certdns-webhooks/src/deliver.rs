//! The delivery worker: claims due deliveries from the queue (several portal
//! instances may run it; a claim is a compare-and-set), posts each signed body,
//! and records what happened. A delivery is retried with back-off until the
//! endpoint answers 2xx or [`BACKOFF`] is spent (about a day); every attempt is
//! in the customer's delivery log.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use certdns_store::{AlertStore, AttemptOutcome, DeliveryState, DueDelivery};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::CancellationToken;

use crate::signature;
use crate::target::{self, GuardedResolver};

/// Seconds to wait after each failed attempt; one more attempt than entries.
pub const BACKOFF: [i64; 8] = [30, 120, 600, 1_800, 3_600, 3 * 3_600, 6 * 3_600, 12 * 3_600];
/// How long a claimed delivery may take before another instance may take it over.
const LEASE_SECS: i64 = 120;
/// Finished deliveries (and quiet bursts) are kept this long for the log.
pub const KEEP_SECS: i64 = 30 * 86_400;
/// Longest error text kept per attempt.
const MAX_ERROR_LEN: usize = 200;

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Lifts the `https` and public-address rules (self-hosting, tests).
    pub allow_private: bool,
    /// For the whole attempt: connecting, TLS, sending, the answer's head.
    pub timeout: Duration,
    /// At most this many attempts start per second.
    pub per_second: u32,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self { allow_private: false, timeout: Duration::from_secs(10), per_second: 20 }
    }
}

/// When the attempt after `attempts` failed ones is due (`None`: give up).
/// `jitter` in [-1, 1] spreads retries by up to a tenth, so endpoints that
/// come back are not hit by every queued delivery in the same second.
pub fn next_attempt_at(attempts: u32, now: i64, jitter: f64) -> Option<i64> {
    let base = *BACKOFF.get(usize::try_from(attempts).ok()?.checked_sub(1)?)?;
    Some(now + base + (base as f64 * 0.1 * jitter.clamp(-1.0, 1.0)) as i64)
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>;

pub struct Deliverer {
    store: Arc<dyn AlertStore>,
    client: HttpsClient,
    config: DeliveryConfig,
}

impl Deliverer {
    pub fn new(store: Arc<dyn AlertStore>, config: DeliveryConfig) -> Result<Self, rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new_with_resolver(GuardedResolver { allow_private: config.allow_private });
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        // No pooling: deliveries to one endpoint are rare, and a pooled
        // connection would skip the address check of a fresh resolution.
        let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build(connector);
        Ok(Self { store, client, config })
    }

    /// Runs until `cancel`: a round a second, old log entries pruned hourly.
    pub async fn run(self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_prune = 0;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = certdns_core::now().unix_timestamp();
            if let Err(e) = self.round(now).await {
                tracing::warn!(error = %e, "webhook delivery round failed; retrying");
            }
            if now - last_prune >= 3_600 {
                last_prune = now;
                if let Err(e) = self.store.prune_alerts(now - KEEP_SECS).await {
                    tracing::warn!(error = %e, "cannot prune the webhook delivery log");
                }
            }
        }
    }

    /// Attempts every delivery due at `now` (up to `per_second`).
    pub async fn round(&self, now: i64) -> Result<Round, certdns_store::StoreError> {
        let due = self.store.claim_due_deliveries(now, LEASE_SECS, self.config.per_second.max(1)).await?;
        let outcomes = futures_util::future::join_all(due.iter().map(|d| self.attempt(d, now))).await;
        let mut round = Round::default();
        for outcome in outcomes {
            match outcome.state {
                DeliveryState::Delivered => round.delivered += 1,
                DeliveryState::Pending => round.retrying += 1,
                DeliveryState::Failed => round.failed += 1,
            }
            metrics::counter!("certdns_webhook_attempts_total", "outcome" => outcome.state.as_str()).increment(1);
            self.store.record_attempt(&outcome).await?;
        }
        Ok(round)
    }

    async fn attempt(&self, due: &DueDelivery, now: i64) -> AttemptOutcome {
        let d = &due.delivery;
        let (status, error) = match self.post(due, now).await {
            Ok(status) if (200..300).contains(&status) => (Some(status), String::new()),
            Ok(status) => (Some(status), format!("HTTP {status}")),
            Err(e) => (None, e),
        };
        let attempts = d.attempts + 1;
        let (state, next) = if error.is_empty() {
            (DeliveryState::Delivered, now)
        } else {
            match next_attempt_at(attempts, now, rand::random::<f64>() * 2.0 - 1.0) {
                Some(at) => (DeliveryState::Pending, at),
                None => (DeliveryState::Failed, now),
            }
        };
        tracing::info!(delivery = %d.id, event = %d.event_type, attempt = attempts, ?status, %error, "webhook attempt");
        AttemptOutcome { id: d.id, at: now, state, status, error, next_attempt_at: next }
    }

    /// Posts the delivery; the answer's status, or why there was none.
    async fn post(&self, due: &DueDelivery, now: i64) -> Result<u16, String> {
        let url: url::Url = due.url.parse().map_err(|e| format!("bad URL: {e}"))?;
        // The resolver checks names; an address literal is checked here.
        match url.host() {
            Some(url::Host::Ipv4(ip)) => target::check_address(ip.into(), self.config.allow_private),
            Some(url::Host::Ipv6(ip)) => target::check_address(ip.into(), self.config.allow_private),
            _ => Ok(()),
        }
        .map_err(|e| e.to_string())?;
        if url.scheme() != "https" && !self.config.allow_private {
            return Err(target::BadTarget::NotHttps.to_string());
        }
        let body = Bytes::from(due.delivery.payload.clone());
        let request = http::Request::post(url.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, concat!("certdns-webhooks/", env!("CARGO_PKG_VERSION")))
            .header(signature::HEADER, signature::sign(&due.secret, now, &body))
            .header("certdns-event-id", due.delivery.event_id.as_str())
            .header("certdns-event-type", due.delivery.event_type.as_str())
            .header("certdns-delivery-id", due.delivery.id.to_string())
            .body(Full::new(body))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        match tokio::time::timeout(self.config.timeout, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response.status().as_u16()),
            Ok(Err(e)) => Err(describe(&e)),
            Err(_) => Err(format!("no answer within {} s", self.config.timeout.as_secs())),
        }
    }
}

/// The innermost cause of a client error (the useful part: "connection
/// refused", "resolves to no public address"), cut to a log-friendly length.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(inner) = source.source() {
        source = inner;
    }
    let mut text = source.to_string();
    if text.len() > MAX_ERROR_LEN {
        let cut = (0..=MAX_ERROR_LEN).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_then_gives_up() {
        assert_eq!(next_attempt_at(0, 1000, 0.0), None, "no attempt yet means nothing failed");
        assert_eq!(next_attempt_at(1, 1000, 0.0), Some(1030));
        assert_eq!(next_attempt_at(2, 1000, 0.0), Some(1120));
        assert_eq!(next_attempt_at(8, 1000, 0.0), Some(1000 + 12 * 3600));
        assert_eq!(next_attempt_at(9, 1000, 0.0), None, "nine attempts over about a day");
        assert_eq!(next_attempt_at(1, 1000, 1.0), Some(1033));
        assert_eq!(next_attempt_at(1, 1000, -5.0), Some(1027), "jitter is bounded");
        let total: i64 = BACKOFF.iter().sum();
        assert!((20 * 3600..30 * 3600).contains(&total), "{total}");
    }
}
