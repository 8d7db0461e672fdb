//! The certificate being served, replaced whole: a handshake takes whichever
//! certificate is current when it starts, and open connections keep the session
//! they have.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::certs::Loaded;

pub struct CertSlot {
    current: ArcSwap<CertifiedKey>,
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
        let slot = Self {
            current: ArcSwap::new(first.key.clone()),
            not_after: AtomicI64::new(first.not_after),
            names: ArcSwap::from_pointee(first.names.clone()),
        };
        slot.record(&first);
        slot
    }

    /// Serves `loaded` from the next handshake on.
    pub fn replace(&self, loaded: Loaded) {
        self.current.store(loaded.key.clone());
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
        Some(self.current.load_full())
    }
}
