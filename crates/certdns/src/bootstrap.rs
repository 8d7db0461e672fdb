//! First start: an empty database gets an operator account and a license key, shown
//! once, so a newcomer can point an ACME client at the server straight away.
//!
//! On a terminal they are printed. Anywhere else stdout is usually a log (a
//! container, a service manager), so they go to a private file in the data
//! directory instead, and only its path is printed.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use certdns_core::{AccountRole, Secret};
use certdns_store::Store;

use crate::admin::{create_account, create_license_key};
use crate::config;

pub struct FirstStart {
    pub login: String,
    pub password: String,
    pub base_url: String,
}

/// Creates the operator and a key if the database has no account yet.
pub async fn first_start(store: &dyn Store, zone: &str, public_api_url: &str) -> anyhow::Result<Option<FirstStart>> {
    if store.count_accounts().await? > 0 {
        return Ok(None);
    }
    let login = format!("operator@{}", zone.trim_end_matches('.'));
    // A generated secret doubles as a strong portal password.
    let password = Secret::generate().expose().to_owned();
    let account = create_account(store, &login, AccountRole::Operator, Some(password.clone())).await?;
    let (key, secret) = create_license_key(store, account.id, "first key", false).await?;
    let base_url = config::base_url_with_credentials(public_api_url, key.id.as_str(), secret.expose());
    Ok(Some(FirstStart { login: account.email.to_string(), password, base_url }))
}

/// The file first-start credentials go to when stdout is not a terminal.
pub const CREDENTIALS_FILE: &str = "first-start.txt";

impl FirstStart {
    /// The credentials as lines (the banner prints them; the file holds them).
    pub fn lines(&self) -> Vec<String> {
        vec![
            format!("  operator login     {} (portal)", self.login),
            format!("  operator password  {}", self.password),
            "  ACME client base URL (acme-dns API, license key embedded):".to_owned(),
            format!("    {}", self.base_url),
            format!("  e.g. curl -X POST {}/register", self.base_url),
        ]
    }

    /// Writes the credentials to `<dir>/first-start.txt`, readable only by this
    /// user, and returns its absolute path (the banner names it; `./first-start.txt`
    /// means nothing in a log read from another directory). A file left by an
    /// earlier first start is replaced; the exclusive create refuses a link planted
    /// in its place.
    pub fn write_to(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let dir = std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
        let path = dir.join(CREDENTIALS_FILE);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing the old {}", path.display())),
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        let mut text = String::from(
            "# certdns first start: an operator account and a license key. Store them somewhere safe,\n\
             # then delete this file.\n",
        );
        for line in self.lines() {
            text.push_str(&line);
            text.push('\n');
        }
        file.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}
