//! TLS for certdns's HTTP listeners (the acme-dns API and the portal), so a
//! license key in `https://KEYID:SECRET@api…` and the credentials of every
//! `/update` never travel in clear and no TLS proxy is needed in front.
//!
//! * [`TlsConfig`]: the `[tls]` section, shared by both listeners.
//! * [`CertSlot`]: the certificate being served; swapped whole when a new one is
//!   loaded, so handshakes in flight and open connections are not disturbed.
//! * [`certs`]: a PEM chain and key checked and turned into a served certificate.
//! * [`files`]: certificate files re-read when they change, without a restart.
//! * [`acme`]: certificates by ACME DNS-01 through certdns's own responder
//!   (`tls.acme`), renewed, one instance ordering for all.
//! * [`server_config`]: rustls with the `ring` provider, TLS 1.2 and 1.3 with
//!   AEAD suites only, ALPN `h2` and `http/1.1`.
//!
//! The listeners themselves (handshake deadline, HSTS, the plain listener that
//! only redirects) are `certdns-http`'s.

pub mod acme;
mod acme_http;
mod acme_order;
pub mod certs;
pub mod config;
pub mod files;
mod slot;

use std::sync::Arc;

pub use acme::{AcmeError, AcmeReport, AcmeStatus, AcmeStore, Delegation, StoredCertificate};
pub use certs::{CertError, Loaded};
pub use config::{AcmeConfig, TlsConfig};
pub use slot::CertSlot;
pub use tokio_rustls::TlsAcceptor;

/// The rustls server configuration every TLS listener uses, serving whatever
/// certificate `slot` holds at the time of each handshake.
pub fn server_config(slot: Arc<CertSlot>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // ring's default suites are AEAD only (AES-GCM, ChaCha20-Poly1305) with
    // ECDHE key exchange; nothing older than TLS 1.2 exists in rustls.
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .unwrap_or_else(|e| unreachable!("ring supports TLS 1.2 and 1.3: {e}"));
    let mut config = builder.with_no_client_auth().with_cert_resolver(slot);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// What a TLS listener needs: the acceptor and the slot it serves from (whose
/// certificate's expiry the readiness details show).
#[derive(Clone)]
pub struct Tls {
    pub acceptor: TlsAcceptor,
    pub slot: Arc<CertSlot>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("slot", &self.slot).finish_non_exhaustive()
    }
}

impl Tls {
    /// TLS from `config`'s certificate files, loaded now (a start with a missing
    /// or broken certificate fails here, naming the file) and re-read when they
    /// change until `cancel`. `None` when `config` turns TLS off.
    pub fn start(config: &TlsConfig, cancel: tokio_util::sync::CancellationToken) -> Result<Option<Self>, CertError> {
        let Some(files) = files::CertFiles::of(config) else { return Ok(None) };
        let (loaded, stamp) = files.load()?;
        let slot = Arc::new(CertSlot::new(loaded));
        tokio::spawn(files::watch(files, slot.clone(), stamp, config.watch_interval(), cancel));
        Ok(Some(Self::serving(slot)))
    }

    /// TLS serving from `slot`, whoever fills it.
    pub fn serving(slot: Arc<CertSlot>) -> Self {
        Self { acceptor: TlsAcceptor::from(server_config(slot.clone())), slot }
    }
}
