//! The HTTPS client instant-acme talks to the CA with. Its built-in client asks
//! rustls for the process-wide crypto provider, which does not exist here (both
//! ring and aws-lc-rs are compiled into rustls by other crates, so rustls cannot
//! pick one): this one names ring explicitly, as the server side does.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::acme::AcmeError;

pub(crate) struct AcmeHttp(Client<hyper_rustls::HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>);

impl AcmeHttp {
    /// Trusting the PEM roots in `ca_file`, or the system's roots.
    pub(crate) fn new(ca_file: Option<&Path>) -> Result<Self, AcmeError> {
        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| AcmeError(format!("tls.acme.directory_ca_file {}: {e}", path.display())))?;
                for cert in certs {
                    roots.add(cert).map_err(|e| AcmeError(format!("tls.acme.directory_ca_file: {e}")))?;
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    // A system root rustls cannot use is skipped, as browsers do.
                    let _ = roots.add(cert);
                }
            }
        }
        if roots.is_empty() {
            return Err(AcmeError("no roots to trust the ACME directory's HTTPS with".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| AcmeError(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config).https_only().enable_http1().build();
        Ok(Self(Client::builder(TokioExecutor::new()).build(connector)))
    }
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        request: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let sent = self.0.request(request);
        Box::pin(
            async move { sent.await.map(BytesResponse::from).map_err(|e| instant_acme::Error::Other(Box::new(e))) },
        )
    }
}
