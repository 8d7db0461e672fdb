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
];

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
