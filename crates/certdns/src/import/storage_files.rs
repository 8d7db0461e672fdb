//! Client-side credential files (lego's `acme-dns` storage, cert-manager's
//! `acmedns` secret, certbot-dns-acmedns's file): a JSON object mapping each
//! domain to the acme-dns account its client uses. Importing one binds each
//! domain to its imported registration, so the portal, the CNAME check and
//! the acmeproxy dialect know which name a registration proves.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use anyhow::Context;
use certdns_core::{AccountId, Domain, Registration, Username};
use certdns_store::{Store, StoreError};
use serde::Deserialize;

use super::plan::Skipped;

/// One account as the clients keep it (acme-dns's `/register` answer).
#[derive(Deserialize)]
struct StoredAccount {
    username: String,
    password: String,
    #[serde(default)]
    subdomain: String,
}

/// What binding one file's entries did.
#[derive(Debug, Default)]
pub struct Bindings {
    pub bound: usize,
    pub already: usize,
    pub skipped: Vec<Skipped>,
}

/// Reads `path` and binds each domain in it to the registration of `account`
/// with that username, when the password in the file is that registration's
/// (an imported hash is upgraded on the way, as at its first `/update`).
/// `dry_run` checks everything and changes nothing; there, a username in
/// `pending` (a registration the run would import) counts as bound.
pub async fn bind(
    store: &dyn Store,
    account: AccountId,
    path: &Path,
    dry_run: bool,
    pending: &HashSet<Username>,
) -> anyhow::Result<Bindings> {
    let text = std::fs::read_to_string(path).with_context(|| format!("--storage-file {}", path.display()))?;
    let entries: BTreeMap<String, StoredAccount> = serde_json::from_str(&text).with_context(|| {
        format!("--storage-file {}: not a JSON object of domain → {{username, password, …}}", path.display())
    })?;
    let mut out = Bindings::default();
    for (name, entry) in entries {
        let row = format!("{}: {name}", path.display());
        let would_import = dry_run && entry.username.trim().parse().is_ok_and(|u: Username| pending.contains(&u));
        if would_import {
            out.bound += 1;
            continue;
        }
        match bind_one(store, account, &name, entry, dry_run).await? {
            Ok(true) => out.bound += 1,
            Ok(false) => out.already += 1,
            Err(reason) => out.skipped.push(Skipped { row, reason }),
        }
    }
    Ok(out)
}

/// `Ok(Ok(true))` bound now, `Ok(Ok(false))` already bound, `Ok(Err(reason))` left out.
async fn bind_one(
    store: &dyn Store,
    account: AccountId,
    name: &str,
    entry: StoredAccount,
    dry_run: bool,
) -> anyhow::Result<Result<bool, String>> {
    let domain = match Domain::parse(name) {
        Ok(d) => d,
        Err(e) => return Ok(Err(format!("not a domain: {e}"))),
    };
    let Ok(username) = entry.username.trim().parse::<Username>() else {
        return Ok(Err("username is not a UUID".into()));
    };
    let reg = match store.registration_by_username(username).await? {
        Some(reg) if reg.account_id == account => reg,
        _ => return Ok(Err("no imported registration of this account has this username".into())),
    };
    if !entry.subdomain.is_empty() && !entry.subdomain.eq_ignore_ascii_case(&reg.subdomain.to_string()) {
        return Ok(Err("the subdomain in the file is not the registration's".into()));
    }
    if !password_matches(store, &reg, entry.password, dry_run).await? {
        return Ok(Err("the password in the file is not the registration's".into()));
    }
    match &reg.domain {
        Some(bound) if *bound == domain => return Ok(Ok(false)),
        Some(bound) => return Ok(Err(format!("the registration is bound to {bound} already (one domain each)"))),
        None => {}
    }
    if dry_run {
        return Ok(match store.registration_by_domain(account, &domain).await? {
            Some(_) => Err("another registration of the account is bound to this domain".into()),
            None => Ok(true),
        });
    }
    match store.set_registration_domain(account, reg.id, Some(&domain), false).await {
        Ok(()) => Ok(Ok(true)),
        Err(StoreError::Conflict(_)) => Ok(Err("another registration of the account is bound to this domain".into())),
        Err(e) => Err(e.into()),
    }
}

/// The password check `/update` makes, bcrypt off the async threads; an
/// imported hash that matches is replaced by certdns's own (unless `dry_run`).
async fn password_matches(
    store: &dyn Store,
    reg: &Registration,
    password: String,
    dry_run: bool,
) -> anyhow::Result<bool> {
    if !reg.password_hash.is_imported() {
        return Ok(reg.password_hash.verify(&password));
    }
    let stored = reg.password_hash.clone();
    let Some(own) = tokio::task::spawn_blocking(move || stored.verify_imported(&password)).await? else {
        return Ok(false);
    };
    if !dry_run {
        store.replace_registration_password_hash(reg.account_id, reg.id, &reg.password_hash, &own).await?;
    }
    Ok(true)
}
