//! `certdns import-acme-dns`: moves an acme-dns server's registrations here with
//! the same username, subdomain, allow-from list and current TXT values, so
//! existing CNAMEs and clients' stored credentials keep working unchanged.
//!
//! Each registration is one INSERT (registration and values together), checked
//! against what the store holds first: a second run finds everything in place and
//! changes nothing. acme-dns's bcrypt hashes are kept and replaced by certdns's
//! own on their first use (`SecretHash::verify_imported`, the one rule).

mod plan;
mod storage_files;

use std::collections::HashSet;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use certdns_core::{AccountId, AuditKind, KeyId, NewAuditEvent, Registration, RegistrationId, TxtState, now};
use certdns_store::{Store, StoreError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use self::plan::{Candidate, Skipped};
use crate::cli::ImportArgs;
use crate::config::{self, Config};

/// What happened to one candidate.
enum Outcome {
    Imported(TxtState),
    /// Dry run: would be imported.
    WouldImport,
    /// The same registration is here already (a previous run).
    Already,
    Conflict(String),
}

#[derive(Default)]
struct Summary {
    imported: Vec<TxtState>,
    would_import: usize,
    already: usize,
    conflicts: Vec<Skipped>,
}

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let config = config::load(args.config.config.as_deref(), args.config.overrides()).map_err(anyhow::Error::msg)?;
    let store = crate::admin::open_store(&config).await?.core();
    let account = store
        .account_by_email(&args.account)
        .await?
        .with_context(|| format!("--account: no account with e-mail {:?}", args.account))?;
    let key = match &args.key {
        Some(id) => Some(owned_key(&*store, account.id, id).await?),
        None => None,
    };

    let source = certdns_store::redact(&args.from);
    let dump = certdns_store::acme_dns::read(&args.from).await.with_context(|| format!("--from {source}"))?;
    let keep = config.api.served_values();
    let plan = plan::plan(&dump, keep);
    let mode = if args.dry_run { " (dry run: nothing is written)" } else { "" };
    println!("acme-dns database {source}: {} registrations, {} TXT rows{mode}", dump.records.len(), dump.txt.len());

    let started = Instant::now();
    let progress = progress_bar(plan.candidates.len() as u64);
    let mut summary = Summary::default();
    for candidate in &plan.candidates {
        match import_one(&*store, account.id, key.as_ref(), candidate, args.dry_run).await? {
            Outcome::Imported(state) => summary.imported.push(state),
            Outcome::WouldImport => summary.would_import += 1,
            Outcome::Already => summary.already += 1,
            Outcome::Conflict(reason) => {
                summary.conflicts.push(Skipped { row: candidate.username.to_string(), reason });
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    let took = started.elapsed();

    if !summary.imported.is_empty() {
        let detail = serde_json::json!({
            "count": summary.imported.len(), "source": source, "key_id": key.as_ref().map(KeyId::as_str), "by": "cli",
        });
        let event = NewAuditEvent {
            account_id: Some(account.id),
            kind: AuditKind::RegistrationsImported,
            client_addr: None,
            detail,
        };
        store.append_audit(&event, now()).await?;
        publish(&config, &store, &summary.imported, keep).await?;
    }

    let pending: HashSet<_> =
        if args.dry_run { plan.candidates.iter().map(|c| c.username).collect() } else { HashSet::new() };
    let mut bindings = storage_files::Bindings::default();
    for path in &args.storage_files {
        let done = storage_files::bind(&*store, account.id, path, args.dry_run, &pending).await?;
        bindings.bound += done.bound;
        bindings.already += done.already;
        bindings.skipped.extend(done.skipped);
    }

    print_summary(&args, &plan, &summary, &bindings, took);
    Ok(())
}

/// The license key `id`, which must be an active key of `account`.
async fn owned_key(store: &dyn Store, account: AccountId, id: &str) -> anyhow::Result<KeyId> {
    let id: KeyId = id.parse().map_err(|e| anyhow::anyhow!("--key {id:?}: {e}"))?;
    match store.license_key(&id).await? {
        Some(k) if k.account_id == account && k.is_active() => Ok(id),
        Some(k) if k.account_id == account => bail!("--key {id}: the key is revoked"),
        _ => bail!("--key {id}: the account has no such key"),
    }
}

async fn import_one(
    store: &dyn Store,
    account: AccountId,
    key: Option<&KeyId>,
    c: &Candidate,
    dry_run: bool,
) -> anyhow::Result<Outcome> {
    if let Some(existing) = store.registration_by_username(c.username).await? {
        return Ok(if existing.account_id == account && existing.subdomain == c.subdomain {
            Outcome::Already
        } else {
            Outcome::Conflict("a registration with this username exists already (another subdomain or account)".into())
        });
    }
    if store.txt_state(c.subdomain, 1).await?.is_some() {
        return Ok(Outcome::Conflict("the subdomain belongs to another registration here".into()));
    }
    if dry_run {
        return Ok(Outcome::WouldImport);
    }
    let registration = Registration {
        id: RegistrationId::generate(),
        account_id: account,
        license_key_id: key.cloned(),
        username: c.username,
        password_hash: c.password_hash.clone(),
        subdomain: c.subdomain,
        allow_from: c.allow_from.clone(),
        subject: None,
        domain: None,
        password_sealed: None,
        acme_account_url: None,
        kind: certdns_core::RegistrationKind::Challenge,
        created_at: now(),
        last_update_at: c.last_update,
    };
    // A version per value written, so a reader sees them as newer than "created".
    let state = TxtState::values(c.subdomain, c.values.len() as u64, c.values.clone());
    match store.import_registration(&registration, &state).await {
        Ok(()) => Ok(Outcome::Imported(state)),
        // Taken between the check and the insert.
        Err(StoreError::Conflict(what)) => Ok(Outcome::Conflict(format!("{what} exists already"))),
        Err(e) => Err(e.into()),
    }
}

/// A fleet's responders follow Redis: publish there so they answer the imported
/// names at once. The embedded default's in-process distribution belongs to the
/// running `serve`, which loads the store when it starts (and reconciles every 5
/// minutes).
async fn publish(config: &Config, store: &Arc<dyn Store>, states: &[TxtState], keep: usize) -> anyhow::Result<()> {
    let Some(url) = &config.redis_url else {
        println!(
            "Embedded TXT distribution: a running `certdns serve` answers the imported names after its next start."
        );
        return Ok(());
    };
    let distribution = certdns_replication::RedisDistribution::connect(url, &config.redis_prefix)
        .await
        .with_context(|| format!("redis_url: cannot connect to {}", certdns_store::redact(url)))?;
    let distribution: Arc<dyn certdns_replication::Distribution> = Arc::new(distribution);
    let sync = certdns_sync::TxtSync::new(store.clone(), distribution, keep);
    for chunk in states.chunks(500) {
        if sync.publish_states(chunk.to_vec()).await.is_none() {
            println!("Publishing to Redis failed; the api role's reconciler republishes from the database.");
            return Ok(());
        }
    }
    println!("Published to the TXT distribution: the responders answer the imported names now.");
    Ok(())
}

/// A bar on a terminal; nothing at all in a pipe or a log.
fn progress_bar(len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} registrations ({per_sec}, {eta} left)") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn print_summary(
    args: &ImportArgs,
    plan: &plan::Plan,
    s: &Summary,
    bindings: &storage_files::Bindings,
    took: Duration,
) {
    let checked = plan.candidates.len();
    let rate = if took.as_secs_f64() > 0.0 { checked as f64 / took.as_secs_f64() } else { 0.0 };
    if args.dry_run {
        println!("Would import {} registrations (dry run, nothing written).", s.would_import);
    } else {
        println!("Imported {} registrations in {:.1} s ({rate:.0}/s).", s.imported.len(), took.as_secs_f64());
    }
    if s.already > 0 {
        println!("Already here, unchanged: {}.", s.already);
    }
    if !args.dry_run && s.imported.is_empty() && s.conflicts.is_empty() && s.already > 0 {
        println!("Nothing to do: every registration was imported before.");
    }
    list("Skipped (malformed in the source)", &plan.skipped);
    list("Conflicts (left as they are)", &s.conflicts);
    if plan.orphan_txt_rows > 0 {
        println!("Ignored {} TXT rows of subdomains with no registration.", plan.orphan_txt_rows);
    }
    if !args.storage_files.is_empty() {
        let verb = if args.dry_run { "Would bind" } else { "Bound" };
        println!("{verb} {} domains from storage files; {} bound already.", bindings.bound, bindings.already);
        list("Storage file entries left out", &bindings.skipped);
    }
}

fn list(title: &str, rows: &[Skipped]) {
    if rows.is_empty() {
        return;
    }
    println!("{title}: {}", rows.len());
    for r in rows {
        println!("  {}: {}", r.row, r.reason);
    }
}
