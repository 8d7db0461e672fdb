//! `tls.acme`: certdns orders its own certificate by ACME DNS-01 and answers the
//! challenge with its own responder — the product used on itself.
//!
//! This crate holds the ACME side (instant-acme) and the schedule; everything
//! that touches the store or the TXT distribution is behind [`AcmeStore`], which
//! the binary implements, so certdns-tls stays free of them. The schedule, per
//! process:
//!
//! * pick up whatever certificate the store holds (another instance may have
//!   ordered it) and serve it;
//! * when none is served or renewal is due (two thirds of the lifetime, or
//!   earlier when the CA's renewal information says so), take the store's lease
//!   — one instance orders at a time — and order; the old certificate is served
//!   until the new one is in place;
//! * a failed order is retried with exponential back-off.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::certs::{self, Loaded};
use crate::config::AcmeConfig;
use crate::slot::CertSlot;

/// How long an order may hold the lease; a holder that dies is replaced after it.
pub const LEASE: Duration = Duration::from_secs(600);
/// An order (account, challenges, validation, issuance) that takes longer is
/// given up (the HTTP client has no deadlines of its own); well inside [`LEASE`].
const ORDER_TIMEOUT: Duration = Duration::from_secs(300);
/// Asking the CA for renewal information.
const ARI_TIMEOUT: Duration = Duration::from_secs(30);
/// First and longest wait after a failed order.
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct AcmeError(pub String);

impl From<instant_acme::Error> for AcmeError {
    fn from(e: instant_acme::Error) -> Self {
        Self(format!("ACME: {e}"))
    }
}

impl From<certs::CertError> for AcmeError {
    fn from(e: certs::CertError) -> Self {
        Self(format!("the CA's certificate: {e}"))
    }
}

/// A certificate as kept in the store: the chain and its private key, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCertificate {
    pub chain_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for StoredCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCertificate").finish_non_exhaustive()
    }
}

/// Where the challenge of a name outside the zone is answered: the operator
/// adds `cname → target` once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delegation {
    pub cname: String,
    pub target: String,
    /// Made just now (the operator has not been told yet).
    #[serde(skip)]
    pub new: bool,
}

/// What `tls.acme` needs from the rest of certdns (the binary implements it over
/// the store and the TXT sync).
#[async_trait]
pub trait AcmeStore: Send + Sync + 'static {
    /// Makes sure every name's challenge has a place to be answered; the
    /// delegations the operator must put in place for names outside the zone.
    async fn prepare(&self, names: &[String]) -> Result<Vec<Delegation>, AcmeError>;
    /// Answers `value` at `_acme-challenge.<name>`; returns once the responders
    /// serve it.
    async fn publish_challenge(&self, name: &str, value: &str) -> Result<(), AcmeError>;
    async fn remove_challenge(&self, name: &str, value: &str) -> Result<(), AcmeError>;
    /// Takes (or extends) the lease to order for `lease`; whether this process holds it.
    async fn take_lease(&self, lease: Duration) -> Result<bool, AcmeError>;
    async fn release_lease(&self) -> Result<(), AcmeError>;
    /// The ACME account's credentials (instant-acme's JSON), if one was made.
    async fn account(&self) -> Result<Option<String>, AcmeError>;
    async fn save_account(&self, credentials: &str) -> Result<(), AcmeError>;
    async fn certificate(&self) -> Result<Option<StoredCertificate>, AcmeError>;
    async fn save_certificate(&self, certificate: &StoredCertificate) -> Result<(), AcmeError>;
}

/// What `/ready` shows of `tls.acme`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AcmeReport {
    /// `waiting` (no certificate yet), `ordering`, `ok`, `retrying`.
    pub state: &'static str,
    pub directory: String,
    /// CNAMEs the operator must add for names outside the zone.
    pub cnames: Vec<Delegation>,
    /// When the served certificate is due for renewal (unix seconds).
    pub renew_at: Option<i64>,
    /// `renewal information` when the CA's ARI moved the date earlier.
    pub renew_by: &'static str,
    pub last_error: Option<String>,
    /// The next attempt after a failure (unix seconds).
    pub retry_at: Option<i64>,
    /// Certificates this process ordered, and how long the last order took.
    pub ordered: u64,
    pub last_order_secs: Option<f64>,
}

#[derive(Debug, Default)]
pub struct AcmeStatus(Mutex<AcmeReport>);

impl AcmeStatus {
    pub fn report(&self) -> AcmeReport {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn update(&self, change: impl FnOnce(&mut AcmeReport)) {
        change(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Two thirds into the certificate's lifetime.
pub fn two_thirds(loaded: &Loaded) -> i64 {
    loaded.not_before + (loaded.not_after - loaded.not_before) * 2 / 3
}

/// Whether `loaded` covers every configured name.
fn covers(loaded: &Loaded, names: &[String]) -> bool {
    names.iter().all(|n| loaded.names.iter().any(|have| have.eq_ignore_ascii_case(n)))
}

/// Runs `tls.acme` until `cancel`: fills `slot` and keeps it renewed.
pub async fn run(
    config: AcmeConfig,
    store: Arc<dyn AcmeStore>,
    slot: Arc<CertSlot>,
    status: Arc<AcmeStatus>,
    poll: Duration,
    cancel: CancellationToken,
) {
    let names = config.normalized_names();
    status.update(|r| {
        r.state = "waiting";
        r.directory = config.directory_url.clone();
    });
    let mut client = crate::acme_order::Client::new(config, store.clone());
    let mut retry = RETRY_FIRST;
    loop {
        match store.prepare(&names).await {
            Ok(delegations) => {
                tell_delegations(&delegations);
                status.update(|r| r.cnames = delegations);
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "tls.acme: cannot prepare the challenge names; retrying");
                if sleep_or_cancel(retry, &cancel).await {
                    return;
                }
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
    let mut served: Option<(StoredCertificate, Loaded)> = None;
    // A stored certificate not taken (expired, other names, broken): said once.
    let mut passed_over: Option<StoredCertificate> = None;
    let mut earlier_by_ari: Option<i64> = None;
    let mut retry = RETRY_FIRST;
    loop {
        // What another instance (or this one, before a restart) stored.
        match store.certificate().await {
            Ok(Some(stored))
                if served.as_ref().is_none_or(|(s, _)| *s != stored) && passed_over.as_ref() != Some(&stored) =>
            {
                // Never back to an older one (this process's newest may have
                // failed to reach the store).
                let newer = |l: &Loaded| served.as_ref().is_none_or(|(_, s)| l.not_after >= s.not_after);
                match certs::from_pem(stored.chain_pem.as_bytes(), stored.key_pem.as_bytes()) {
                    Ok(loaded) if covers(&loaded, &names) && loaded.not_after > unix_now() && newer(&loaded) => {
                        tracing::info!(names = ?loaded.names, not_after = loaded.not_after, "tls.acme: serving the stored certificate");
                        slot.replace(loaded.clone());
                        earlier_by_ari = renewal_hint(&mut client, &stored.chain_pem).await;
                        served = Some((stored, loaded));
                        // Another instance's order succeeded: this one's failure is history.
                        retry = RETRY_FIRST;
                        status.update(|r| {
                            r.state = "ok";
                            r.last_error = None;
                            r.retry_at = None;
                        });
                    }
                    Ok(_) => {
                        tracing::info!(
                            "tls.acme: the stored certificate is older, expired or for other names; not served"
                        );
                        passed_over = Some(stored);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "tls.acme: the stored certificate does not load; ordering");
                        passed_over = Some(stored);
                    }
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "tls.acme: cannot read the stored certificate"),
        }
        let renew_at = served.as_ref().map(|(_, l)| {
            let planned = two_thirds(l);
            earlier_by_ari.map_or(planned, |ari| ari.min(planned))
        });
        status.update(|r| {
            r.renew_at = renew_at;
            r.renew_by = if earlier_by_ari.zip(renew_at).is_some_and(|(a, at)| a == at) {
                "renewal information"
            } else {
                "two thirds of the lifetime"
            };
        });
        let due = renew_at.is_none_or(|at| unix_now() >= at);
        if due && take_lease(store.as_ref()).await {
            status.update(|r| r.state = "ordering");
            let started = Instant::now();
            let ordered = tokio::select! {
                // Shutting down: the lease expires by itself.
                () = cancel.cancelled() => return,
                ordered = tokio::time::timeout(ORDER_TIMEOUT, client.order(&names)) => ordered,
            };
            let result = ordered.unwrap_or_else(|_| {
                Err(AcmeError(format!("the order took longer than {} s", ORDER_TIMEOUT.as_secs())))
            });
            // After a success the lease ends at once; after a failure this
            // process keeps it through its back-off, so the fleet backs off
            // together instead of each instance ordering in turn.
            let lease_end = match &result {
                Ok(_) => store.release_lease().await,
                Err(_) => store.take_lease(retry).await.map(|_| ()),
            };
            if let Err(e) = lease_end {
                tracing::warn!(error = %e, "tls.acme: cannot end or extend the lease (it expires by itself)");
            }
            match result {
                Ok((stored, loaded)) => {
                    let took = started.elapsed();
                    if let Err(e) = store.save_certificate(&stored).await {
                        // Served here anyway; the others order their own when due.
                        tracing::warn!(error = %e, "tls.acme: cannot store the new certificate");
                    }
                    tracing::info!(names = ?loaded.names, not_after = loaded.not_after, took_ms = took.as_millis() as u64, "tls.acme: certificate obtained");
                    metrics::counter!("certdns_tls_acme_orders_total", "result" => "ok").increment(1);
                    slot.replace(loaded.clone());
                    earlier_by_ari = renewal_hint(&mut client, &stored.chain_pem).await;
                    served = Some((stored, loaded));
                    retry = RETRY_FIRST;
                    status.update(|r| {
                        r.state = "ok";
                        r.ordered += 1;
                        r.last_order_secs = Some(took.as_secs_f64());
                        r.last_error = None;
                        r.retry_at = None;
                    });
                    continue;
                }
                Err(e) => {
                    // The old certificate (if any) stays in the slot.
                    tracing::warn!(error = %e, retry_in_secs = retry.as_secs(), "tls.acme: order failed; retrying");
                    metrics::counter!("certdns_tls_acme_orders_total", "result" => "failed").increment(1);
                    status.update(|r| {
                        r.state = "retrying";
                        r.last_error = Some(e.0.clone());
                        r.retry_at = Some(unix_now() + retry.as_secs() as i64);
                    });
                    if sleep_or_cancel(retry, &cancel).await {
                        return;
                    }
                    retry = (retry * 2).min(RETRY_MAX);
                    continue;
                }
            }
        }
        if served.is_some() {
            status.update(|r| {
                if r.state != "retrying" {
                    r.state = "ok";
                }
            });
        }
        if sleep_or_cancel(poll, &cancel).await {
            return;
        }
    }
}

/// The CA's renewal information, bounded in time (none when it does not answer).
async fn renewal_hint(client: &mut crate::acme_order::Client, chain_pem: &str) -> Option<i64> {
    tokio::time::timeout(ARI_TIMEOUT, client.renewal_hint(chain_pem)).await.ok().flatten()
}

async fn take_lease(store: &dyn AcmeStore) -> bool {
    match store.take_lease(LEASE).await {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(error = %e, "tls.acme: cannot take the ordering lease");
            false
        }
    }
}

/// Logs the CNAMEs to add: at warn the first time (when they were made), then
/// at info on each start; `/ready` lists them all the time.
fn tell_delegations(delegations: &[Delegation]) {
    for d in delegations {
        if d.new {
            tracing::warn!(
                "tls.acme: add this DNS record once, in the zone of {}: {}. CNAME {}. (it stays valid for every renewal)",
                d.cname.trim_start_matches("_acme-challenge."),
                d.cname,
                d.target
            );
        } else {
            tracing::info!(cname = %d.cname, target = %d.target, "tls.acme: challenge delegated by CNAME");
        }
    }
}

/// Sleeps `d`; `true` when cancelled meanwhile.
async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        () = cancel.cancelled() => true,
        () = tokio::time::sleep(d) => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn loaded(names: &[&str], not_before: i64, not_after: i64) -> Loaded {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x.example".to_owned()]).unwrap().self_signed(&key).unwrap();
        let real = certs::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap();
        Loaded { names: names.iter().map(|n| (*n).to_owned()).collect(), not_before, not_after, ..real }
    }

    #[test]
    fn renewal_is_due_at_two_thirds_of_the_lifetime() {
        // A 90-day certificate: day 60.
        let day = 86_400;
        assert_eq!(two_thirds(&loaded(&[], 1_000, 1_000 + 90 * day)), 1_000 + 60 * day);
        // pebble's 60 s test certificates: 40 s in.
        assert_eq!(two_thirds(&loaded(&[], 0, 60)), 40);
    }

    #[test]
    fn a_stored_certificate_must_cover_every_configured_name() {
        let both = loaded(&["api.example.net", "*.auth.example.net"], 0, 1);
        assert!(covers(&both, &["api.example.net".into(), "*.auth.example.net".into()]));
        assert!(covers(&both, &["API.example.net".into()]));
        assert!(!covers(&both, &["api.example.net".into(), "www.example.net".into()]), "a name added since");
    }
}
