//! Certificate files, re-read when they change.
//!
//! Polled, not watched with inotify: a poll sees every way a certificate gets
//! replaced (written in place, renamed over, a Kubernetes secret's symlink
//! swapped, a bind mount) and costs two `stat`s every few seconds. A change that
//! does not load — a chain written before its key, a half-written file — is
//! logged once and retried at the next check while the old certificate is
//! served on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::certs::{self, CertError, Loaded};
use crate::config::TlsConfig;
use crate::slot::CertSlot;

/// The chain and key files of `[tls]`.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What a file looked like: a change to any part is a change of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

/// Both files' stamps.
pub type Stamp = [Option<FileStamp>; 2];

fn stamp_of(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    // Follows symlinks: a swapped symlink is a new inode.
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp { modified: meta.modified().ok(), len: meta.len(), inode: meta.ino() })
}

impl CertFiles {
    /// The files `config` names; `None` when TLS is off.
    pub fn of(config: &TlsConfig) -> Option<Self> {
        Some(Self { cert: config.cert_file.clone()?, key: config.key_file.clone()? })
    }

    fn stamp(&self) -> Stamp {
        [stamp_of(&self.cert), stamp_of(&self.key)]
    }

    /// Reads and checks both files; the stamp taken before reading them (so a
    /// change during the read is seen at the next check).
    pub fn load(&self) -> Result<(Loaded, Stamp), CertError> {
        let stamp = self.stamp();
        let read = |what, path: &Path| {
            std::fs::read(path).map_err(|source| CertError::Read { what, path: path.display().to_string(), source })
        };
        let chain = read("tls.cert_file", &self.cert)?;
        let key = read("tls.key_file", &self.key)?;
        let loaded = certs::from_pem(&chain, &key).map_err(|e| CertError::InFiles {
            cert: self.cert.display().to_string(),
            key: self.key.display().to_string(),
            source: Box::new(e),
        })?;
        Ok((loaded, stamp))
    }
}

/// Checks the files every `interval` until `cancel`; a change that loads is
/// served from the next handshake on.
pub async fn watch(
    files: CertFiles,
    slot: Arc<CertSlot>,
    mut seen: Stamp,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut failed: Option<Stamp> = None;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = files.stamp();
        if now == seen {
            continue;
        }
        let reading = files.clone();
        let Ok(loaded) = tokio::task::spawn_blocking(move || reading.load()).await else { continue };
        match loaded {
            Ok((loaded, stamp)) => {
                tracing::info!(
                    cert_file = %files.cert.display(),
                    names = ?loaded.names,
                    not_after = loaded.not_after,
                    "TLS certificate reloaded"
                );
                slot.replace(loaded);
                seen = stamp;
                failed = None;
            }
            Err(e) => {
                if failed != Some(now) {
                    tracing::warn!(
                        cert_file = %files.cert.display(),
                        error = %e,
                        "TLS certificate files changed but do not load; serving the previous certificate, retrying"
                    );
                    metrics::counter!("certdns_tls_reload_failures_total").increment(1);
                    failed = Some(now);
                }
            }
        }
    }
}
