//! `certdns migrate` and `certdns admin …`: operator commands against the store.

use std::io::BufRead;
use std::sync::Arc;

use anyhow::{Context, bail};
use certdns_core::{
    Account, AccountId, AccountRole, AccountStatus, AuditKind, Email, KeyId, LicenseKey, NewAuditEvent, Secret, now,
};
use certdns_store::{PortalStore, Store, StoreError};

use crate::cli::{AccountCommand, AdminArgs, AdminCommand, ConfigArgs, KeyCommand, TokenCommand};
use crate::config::{self, Config};

/// Opens the configured store and applies pending migrations. The portal's
/// interface is a superset; `core()` is the [`Store`] the API and CLI use.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn PortalStore>> {
    crate::files::prepare_data_dir(&config.data_dir)?;
    let url = config.database_url();
    let redacted = certdns_store::redact(&url);
    let store =
        certdns_store::open_portal(&url).await.with_context(|| format!("database_url: cannot open {redacted}"))?;
    store.core().migrate().await.with_context(|| format!("database_url: migrating {redacted}"))?;
    Ok(store)
}

pub async fn migrate(args: ConfigArgs) -> anyhow::Result<()> {
    let config = config::load(args.config.as_deref(), args.overrides()).map_err(anyhow::Error::msg)?;
    let store = open_store(&config).await?.core();
    println!("migrations applied ({} at {})", store.backend().as_str(), certdns_store::redact(&config.database_url()));
    Ok(())
}

pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let config = config::load(args.config.config.as_deref(), args.config.overrides()).map_err(anyhow::Error::msg)?;
    let portal = open_store(&config).await?;
    let store = portal.core();
    match args.command {
        AdminCommand::Account(cmd) => account(&*store, cmd).await,
        AdminCommand::Key(cmd) => key(&*store, &config, cmd).await,
        AdminCommand::Token(cmd) => token(&*portal, cmd).await,
    }
}

async fn token(store: &dyn PortalStore, cmd: TokenCommand) -> anyhow::Result<()> {
    let core = store.core();
    match cmd {
        TokenCommand::Create { account, name, scope, expires_days } => {
            let owner = find_account(&*core, &account).await?;
            let scope: certdns_core::TokenScope = scope.parse().map_err(anyhow::Error::msg)?;
            let lifetime = (expires_days > 0).then(|| time::Duration::days(i64::from(expires_days)));
            let (token, text) = certdns_core::access_token::issue(owner.id, &name, scope, lifetime, now())?;
            store.create_access_token(&token).await?;
            let expires = token.expires_at.map(|t| t.unix_timestamp());
            let detail = serde_json::json!({ "token": token.id.as_str(), "name": token.name, "scope": scope.as_str(), "expires_at": expires, "via": "cli" });
            audit(&*core, owner.id, AuditKind::AccessTokenCreated, detail).await?;
            let until = token.expires_at.map_or_else(|| "never expires".to_owned(), |t| format!("expires {}", date(t)));
            println!("created {scope} access token {} ({}) for {}, {until}", token.id, token.name, owner.email);
            println!("token for the account API (shown once, keep it secret):");
            println!("{text}");
        }
        TokenCommand::Revoke { account, token_id } => {
            let owner = find_account(&*core, &account).await?;
            let id: certdns_core::TokenId = token_id.parse().map_err(|e| anyhow::anyhow!("{token_id:?}: {e}"))?;
            match store.revoke_access_token(owner.id, &id, now()).await {
                Ok(()) => {}
                Err(StoreError::NotFound) => bail!("{} has no active token {id}", owner.email),
                Err(e) => return Err(e.into()),
            }
            let detail = serde_json::json!({ "token": id.as_str(), "via": "cli" });
            audit(&*core, owner.id, AuditKind::AccessTokenRevoked, detail).await?;
            println!("revoked access token {id}");
        }
    }
    Ok(())
}

async fn account(store: &dyn Store, cmd: AccountCommand) -> anyhow::Result<()> {
    match cmd {
        AccountCommand::Create { email, operator, password_stdin } => {
            let password = if password_stdin { Some(read_password()?) } else { None };
            let role = if operator { AccountRole::Operator } else { AccountRole::Customer };
            let account = create_account(store, &email, role, password).await?;
            println!("created {} account {} ({})", account.role, account.email, account.id);
        }
        AccountCommand::List => {
            let accounts = store.list_accounts().await?;
            println!("{:<36}  {:<9}  {:<9}  {:<20}  EMAIL", "ID", "ROLE", "STATUS", "CREATED");
            for a in accounts {
                println!("{}  {:<9}  {:<9}  {:<20}  {}", a.id, a.role, a.status, date(a.created_at), a.email);
            }
        }
        AccountCommand::Suspend { email } => set_status(store, &email, AccountStatus::Suspended).await?,
        AccountCommand::Reactivate { email } => set_status(store, &email, AccountStatus::Active).await?,
    }
    Ok(())
}

async fn key(store: &dyn Store, config: &Config, cmd: KeyCommand) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Create { account, name, storage_access } => {
            let owner = find_account(store, &account).await?;
            let (key, secret) = create_license_key(store, owner.id, &name, storage_access).await?;
            println!("created license key {} ({}) for {}", key.id, key.name, owner.email);
            if storage_access {
                println!("storage access: on (the key can read back its registrations' credentials at /storage)");
            }
            println!("base URL for ACME clients (shown once, keep it secret):");
            println!(
                "{}",
                config::base_url_with_credentials(
                    &config.public_api_url(config.http.listen),
                    key.id.as_str(),
                    secret.expose()
                )
            );
        }
        KeyCommand::Revoke { key_id } => {
            let id: KeyId = key_id.parse().map_err(|e| anyhow::anyhow!("{key_id:?}: {e}"))?;
            let Some(key) = store.license_key(&id).await? else { bail!("no license key {id}") };
            match store.revoke_license_key(key.account_id, &id, now()).await {
                Ok(()) => {}
                Err(StoreError::NotFound) => bail!("license key {id} is already revoked"),
                Err(e) => return Err(e.into()),
            }
            audit(
                store,
                key.account_id,
                AuditKind::LicenseKeyRevoked,
                serde_json::json!({ "key_id": id, "by": "cli" }),
            )
            .await?;
            println!("revoked license key {id}");
        }
        KeyCommand::List { account } => {
            let accounts = match account {
                Some(email) => vec![find_account(store, &email).await?],
                None => store.list_accounts().await?,
            };
            println!(
                "{:<16}  {:<8}  {:<7}  {:<20}  {:<20}  {:<24}  NAME",
                "KEY ID", "STATE", "STORAGE", "CREATED", "LAST USED", "ACCOUNT"
            );
            for a in accounts {
                for k in store.list_license_keys(a.id).await? {
                    let state = if k.is_active() { "active" } else { "revoked" };
                    let storage = if k.storage_access { "on" } else { "off" };
                    let used = k.last_used_at.map_or_else(|| "never".to_owned(), date);
                    println!(
                        "{}  {state:<8}  {storage:<7}  {:<20}  {used:<20}  {:<24}  {}",
                        k.id,
                        date(k.created_at),
                        a.email,
                        k.name
                    );
                }
            }
        }
    }
    Ok(())
}

fn date(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.format(&f).unwrap_or_else(|_| t.to_string())
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn find_account(store: &dyn Store, email: &str) -> anyhow::Result<Account> {
    store.account_by_email(email).await?.with_context(|| format!("no account with e-mail {email:?}"))
}

async fn set_status(store: &dyn Store, email: &str, status: AccountStatus) -> anyhow::Result<()> {
    let account = find_account(store, email).await?;
    store.set_account_status(account.id, status).await?;
    let kind = match status {
        AccountStatus::Suspended => AuditKind::AccountSuspended,
        AccountStatus::Active => AuditKind::AccountReactivated,
    };
    audit(store, account.id, kind, serde_json::json!({ "by": "cli" })).await?;
    println!("account {} is now {status}", account.email);
    Ok(())
}

async fn audit(
    store: &dyn Store,
    account: AccountId,
    kind: AuditKind,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    let event = NewAuditEvent { account_id: Some(account), kind, client_addr: None, detail };
    store.append_audit(&event, now()).await?;
    Ok(())
}

/// Creates an account (argon2id-hashing the password off the async threads).
pub async fn create_account(
    store: &dyn Store,
    email: &str,
    role: AccountRole,
    password: Option<String>,
) -> anyhow::Result<Account> {
    let email = Email::parse(email)?;
    let password_hash = match password {
        Some(p) => Some(tokio::task::spawn_blocking(move || certdns_core::password::hash(&p)).await??),
        None => None,
    };
    let account = Account {
        id: AccountId::generate(),
        email,
        role,
        status: AccountStatus::Active,
        password_hash,
        created_at: now(),
    };
    match store.create_account(&account).await {
        Err(StoreError::Conflict(_)) => bail!("an account with e-mail {} already exists", account.email),
        other => other?,
    }
    audit(store, account.id, AuditKind::AccountCreated, serde_json::json!({ "role": role, "by": "cli" })).await?;
    Ok(account)
}

/// Creates a license key; the secret is returned once and only its hash is stored.
pub async fn create_license_key(
    store: &dyn Store,
    account: AccountId,
    name: &str,
    storage_access: bool,
) -> anyhow::Result<(LicenseKey, Secret)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        bail!("a key name must be 1 to 100 characters");
    }
    let secret = Secret::generate();
    let key = LicenseKey {
        id: KeyId::generate(),
        account_id: account,
        name: name.to_owned(),
        secret_hash: secret.hash(),
        created_at: now(),
        last_used_at: None,
        revoked_at: None,
        storage_access,
    };
    store.create_license_key(&key).await?;
    let detail = serde_json::json!({ "key_id": key.id, "name": key.name, "storage_access": storage_access });
    audit(store, account, AuditKind::LicenseKeyCreated, detail).await?;
    Ok((key, secret))
}
