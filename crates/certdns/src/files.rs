//! What certdns writes to disk is private to the user it runs as.
//!
//! The SQLite database holds the portal's session signing key and every hash;
//! the outbox holds live reset links; the first-start file holds the operator's
//! password. So the process masks group and other bits off everything it
//! creates (umask 077), creates the data directory 0700, and tightens files an
//! older version left readable.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;
use rustix::fs::Mode;

/// Files certdns keeps in the data directory.
const OWN_FILES: &[&str] = &[
    "certdns.sqlite3",
    "certdns.sqlite3-wal",
    "certdns.sqlite3-shm",
    "outbox.eml",
    crate::bootstrap::CREDENTIALS_FILE,
    CREDENTIALS_KEY_FILE,
];

/// The embedded default's `api.credentials_key`, generated once: it seals the
/// registration passwords lego's HTTP storage gives back, so it lives beside the
/// database, never in it.
const CREDENTIALS_KEY_FILE: &str = "credentials.key";

/// Every file and directory this process creates from now on is private.
pub fn private_by_default() {
    rustix::process::umask(Mode::from_raw_mode(0o077));
}

/// Creates `dir` (0700) if it does not exist, and takes group and other access
/// away from certdns's own files in it.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("data_dir: cannot create {}", dir.display()))?;
    }
    for name in OWN_FILES {
        let path = dir.join(name);
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_file() && mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o700))
                .with_context(|| format!("data_dir: cannot make {} private", path.display()))?;
            tracing::warn!(file = %path.display(), old_mode = format!("{mode:o}"), "made a readable certdns file private (0600)");
        }
    }
    Ok(())
}

/// Reads the generated credentials key from `dir`, creating it (0600) on first use.
pub fn credentials_key(dir: &Path) -> anyhow::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(CREDENTIALS_KEY_FILE);
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
        Ok(mut file) => {
            let key = certdns_core::Secret::generate();
            file.write_all(key.expose().as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(key.expose().to_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let key = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let key = key.trim().to_owned();
            anyhow::ensure!(
                key.len() >= certdns_core::sealed::MIN_SECRET_LEN,
                "{} is damaged (shorter than 32 characters); restore it from a backup",
                path.display()
            );
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}
