//! Serves the API router alone, for the load benchmark in `loadtest/api/`.
//!
//! Opens the store and the distribution from URLs (SQLite + in-process, or
//! Postgres + Redis), seeds one account with a license key and `--registrations`
//! registrations, writes their credentials to `--creds-out`, and serves until
//! killed. The binary (crates/certdns) is not needed, so the API can be measured
//! on its own.
//!
//! Credentials file, one item per line:
//! `addr <host:port>`, `key <KEYID:SECRET>`, then `reg <username> <password> <subdomain>`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use certdns_api::{ApiConfig, ApiDeps, Rate, RateLimits};
use certdns_core::{
    Account, AccountId, AccountRole, AccountStatus, AllowFrom, Email, KeyId, LicenseKey, Registration, RegistrationId,
    Secret, Subdomain, Username, now,
};
use certdns_replication::{Distribution, InProcess, RedisDistribution};
use clap::Parser;

// The allocator of the certdns binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// `sqlite:<path>` or `postgres://…`
    #[arg(long)]
    database_url: String,
    /// Redis for the distribution; in-process when absent.
    #[arg(long)]
    redis_url: Option<String>,
    #[arg(long, default_value = "certdns-bench:")]
    redis_prefix: String,
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    #[arg(long, default_value_t = 64)]
    registrations: usize,
    #[arg(long)]
    creds_out: PathBuf,
    /// Store pool size.
    #[arg(long, default_value_t = 16)]
    max_connections: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let store = certdns_store::open_with(&args.database_url, args.max_connections).await?;
    store.migrate().await?;
    let distribution: Arc<dyn Distribution> = match &args.redis_url {
        Some(url) => Arc::new(RedisDistribution::connect(url, &args.redis_prefix).await?),
        None => Arc::new(InProcess::new()),
    };

    let account = Account {
        id: AccountId::generate(),
        email: Email::parse(&format!("bench-{}@example.com", uuid::Uuid::new_v4().simple()))?,
        role: AccountRole::Customer,
        status: AccountStatus::Active,
        password_hash: None,
        created_at: now(),
    };
    store.create_account(&account).await?;
    let secret = Secret::generate();
    let key = LicenseKey {
        id: KeyId::generate(),
        account_id: account.id,
        name: "bench".into(),
        secret_hash: secret.hash(),
        created_at: now(),
        last_used_at: None,
        revoked_at: None,
        storage_access: false,
    };
    store.create_license_key(&key).await?;

    let mut regs = String::new();
    for _ in 0..args.registrations {
        let password = Secret::generate();
        let reg = Registration {
            id: RegistrationId::generate(),
            account_id: account.id,
            license_key_id: Some(key.id.clone()),
            username: Username::generate(),
            password_hash: password.hash(),
            subdomain: Subdomain::generate(),
            allow_from: AllowFrom::default(),
            subject: None,
            domain: None,
            password_sealed: None,
            acme_account_url: None,
            kind: certdns_core::RegistrationKind::Challenge,
            created_at: now(),
            last_update_at: None,
        };
        store.create_registration(&reg).await?;
        writeln!(regs, "reg {} {} {}", reg.username, password.expose(), reg.subdomain)?;
    }

    // Limits far above what the benchmark sends: it measures throughput, not the limiter.
    let generous = Rate::new(10_000_000, 10_000_000);
    let config = ApiConfig {
        rate_limits: RateLimits {
            register_per_key: generous,
            register_unauthenticated_per_address: generous,
            auth_failures_per_address: generous,
            auth_failures_per_user: generous,
        },
        ..ApiConfig::default()
    };
    let sync = certdns_sync::TxtSync::new(store.clone(), distribution, config.served_values());
    let router = certdns_api::router(ApiDeps {
        store,
        sync,
        config,
        zone_domain: "auth.bench.test".into(),
        public_url: String::new(),
        usage: None,
        also_documented: None,
        entitlements: None,
    });
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let creds = format!("addr {addr}\nkey {}:{}\n{regs}", key.id, secret.expose());
    // Written last and renamed into place, so a reader never sees half a file.
    let tmp = args.creds_out.with_extension("tmp");
    std::fs::write(&tmp, creds).context("writing credentials")?;
    std::fs::rename(&tmp, &args.creds_out)?;
    eprintln!("api-bench-server listening on http://{addr}");
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
