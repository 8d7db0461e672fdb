//! A PEM certificate chain and its key, checked and turned into what rustls
//! serves. Everything is checked before anything is served: a chain that does not
//! parse, a key of another certificate or a half-written file is refused with a
//! reason, and whatever was served before stays.

use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{what}: cannot read {path}: {source}")]
    Read { what: &'static str, path: String, source: std::io::Error },
    #[error("the certificate chain holds no PEM CERTIFICATE")]
    NoCertificate,
    #[error("the certificate chain does not parse: {0}")]
    BadCertificate(String),
    #[error("the private key does not parse (PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY expected): {0}")]
    BadKey(String),
    #[error("the private key is not usable: {0}")]
    UnusableKey(String),
    #[error("tls.cert_file {cert} / tls.key_file {key}: {source}")]
    InFiles { cert: String, key: String, source: Box<CertError> },
}

/// A certificate ready to serve, with what an operator wants to know of it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    /// The leaf's notAfter, seconds since the epoch.
    pub not_after: i64,
    /// The leaf's notBefore, seconds since the epoch (renewals are planned on
    /// the lifetime).
    pub not_before: i64,
    /// The leaf's subjectAltNames: DNS names and IP addresses.
    pub names: Vec<String>,
}

/// Parses a PEM chain (leaf first) and the leaf's private key.
pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Loaded, CertError> {
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::BadCertificate(pem_problem(&e)))?;
    let Some(leaf) = chain.first() else { return Err(CertError::NoCertificate) };
    let (not_before, not_after, names) = leaf_facts(leaf)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| CertError::BadKey(pem_problem(&e)))?;
    let provider = rustls::crypto::ring::default_provider();
    // Also refuses a key that is not the leaf's (a mismatch would fail every handshake).
    let key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| CertError::UnusableKey(e.to_string()))?;
    Ok(Loaded { key: Arc::new(key), not_after, not_before, names })
}

/// A PEM error in words (the crate's own names marker lines as byte lists).
fn pem_problem(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { end_marker } => {
            format!("no \"-----END {}-----\" line (cut short?)", String::from_utf8_lossy(end_marker))
        }
        Error::IllegalSectionStart { line } => format!("a bad BEGIN line: {:?}", String::from_utf8_lossy(line)),
        Error::NoItemsFound => "no PEM section of the expected kind".to_owned(),
        other => other.to_string(),
    }
}

/// The leaf's validity and names (DNS names and IP addresses).
fn leaf_facts(leaf: &CertificateDer<'_>) -> Result<(i64, i64, Vec<String>), CertError> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).map_err(|e| CertError::BadCertificate(e.to_string()))?;
    let not_after = cert.validity().not_after.timestamp();
    let not_before = cert.validity().not_before.timestamp();
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(name) => Some((*name).to_owned()),
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => <[u8; 4]>::try_from(*bytes).ok().map(|b| std::net::IpAddr::from(b).to_string()),
                    16 => <[u8; 16]>::try_from(*bytes).ok().map(|b| std::net::IpAddr::from(b).to_string()),
                    _ => None,
                },
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok((not_before, not_after, names))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap().self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_matching_pair_loads_with_its_facts() {
        let (cert, key) = pair("api.example.test");
        let loaded = from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        assert_eq!(loaded.names, ["api.example.test"]);
        // rcgen's default validity ends in 4096.
        assert!(loaded.not_after > 4_000_000_000, "{}", loaded.not_after);
    }

    #[test]
    fn what_is_refused() {
        let (cert, key) = pair("a.example.test");
        let (_, other_key) = pair("b.example.test");
        let cases: [(&str, &str, &str); 5] = [
            ("", &key, "holds no PEM CERTIFICATE"),
            (&cert, "", "private key does not parse"),
            (&cert, &other_key, "not usable"),
            // A file caught half-written.
            (&cert[..cert.len() / 2], &key, "does not parse"),
            (&cert, &key[..key.len() / 2], "private key does not parse"),
        ];
        for (chain, key, expected) in cases {
            let err = from_pem(chain.as_bytes(), key.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
