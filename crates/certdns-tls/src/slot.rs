//! The certificate being served, replaced whole: a handshake takes whichever
//! certificate is current when it starts, and open connections keep the session
//! they have. With `tls.acme` the slot starts empty (handshakes fail) until the
//! first certificate arrives.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use arc_swap::{ArcSwap, ArcSwapOption};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::certs::Loaded;

pub struct CertSlot {
    current: ArcSwapOption<CertifiedKey>,
    not_after: AtomicI64,
    names: ArcSwap<Vec<String>>,
}

impl std::fmt::Debug for CertSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertSlot").field("names", &self.names()).field("not_after", &self.not_after()).finish()
    }
}

impl CertSlot {
    pub fn new(first: Loaded) -> Self {
        let slot = Self::empty();
        slot.replace(first);
        slot
    }

    /// A slot with no certificate yet: every handshake fails until one is put in.
    pub fn empty() -> Self {
        Self { current: ArcSwapOption::empty(), not_after: AtomicI64::new(0), names: ArcSwap::from_pointee(Vec::new()) }
    }

    /// Whether a certificate is being served.
    pub fn is_serving(&self) -> bool {
        self.current.load().is_some()
    }

    /// Serves `loaded` from the next handshake on.
    pub fn replace(&self, loaded: Loaded) {
        self.current.store(Some(loaded.key.clone()));
        self.not_after.store(loaded.not_after, Ordering::Relaxed);
        self.names.store(Arc::new(loaded.names.clone()));
        self.record(&loaded);
    }

    /// The served certificate's notAfter, seconds since the epoch.
    pub fn not_after(&self) -> i64 {
        self.not_after.load(Ordering::Relaxed)
    }

    /// The served certificate's DNS names.
    pub fn names(&self) -> Vec<String> {
        self.names.load().as_ref().clone()
    }

    fn record(&self, loaded: &Loaded) {
        // f64 holds every plausible timestamp exactly.
        metrics::gauge!("certdns_tls_certificate_not_after_seconds").set(loaded.not_after as f64);
        metrics::counter!("certdns_tls_certificates_loaded_total").increment(1);
    }
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }
}
