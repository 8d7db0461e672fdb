//! `certdns serve`: wires the configured roles together and runs them until
//! SIGINT/SIGTERM.
//!
//! The same code serves the embedded default (SQLite + in-process distribution, all
//! roles) and split production deployments (Postgres + Redis, one role per
//! process): only the two trait objects differ.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use certdns_replication::{Distribution, Follower, InProcess, RedisDistribution, Replica};
use certdns_sync::TxtSync;
use tokio_util::sync::CancellationToken;

use crate::cli::ServeArgs;
use crate::config::{self, Config, Role};
use crate::ops::{self, Ops};
use crate::{admin, bootstrap, telemetry};

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = config::load(args.config.config.as_deref(), args.overrides()).map_err(anyhow::Error::msg)?;
    telemetry::init_tracing(config.log_format, &config.log_level);
    let metrics = telemetry::init_metrics()?;
    let cancel = CancellationToken::new();
    tokio::spawn(telemetry::upkeep(metrics.clone(), cancel.clone()));

    let portal_store = match config.needs_store() {
        true => Some(admin::open_store(&config).await?),
        false => None,
    };
    let store = portal_store.as_ref().map(|p| p.core());
    let distribution: Arc<dyn Distribution> = match (&config.redis_url, &config.redis_read_url) {
        (Some(url), None) => Arc::new(
            RedisDistribution::connect(url, &config.redis_prefix)
                .await
                .with_context(|| format!("redis_url: cannot connect to {}", certdns_store::redact(url)))?,
        ),
        // A responder reading the replica in its PoP; its reports go to the primary.
        (Some(url), Some(read_url)) => Arc::new(
            RedisDistribution::connect_with_reads_from(url, read_url, &config.redis_prefix).await.with_context(
                || {
                    format!(
                        "redis_url / redis_read_url: cannot connect to {} / {}",
                        certdns_store::redact(url),
                        certdns_store::redact(read_url)
                    )
                },
            )?,
        ),
        (None, _) => Arc::new(InProcess::new()),
    };

    // Bind HTTP before anything prints a URL: with port 0 only the bound address is real.
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("http.listen: cannot listen on {}", config.http.listen))?;
    let http_addr = listener.local_addr()?;
    let ops_listener = tokio::net::TcpListener::bind(config.ops.listen)
        .await
        .with_context(|| format!("ops.listen: cannot listen on {}", config.ops.listen))?;
    let ops_addr = ops_listener.local_addr()?;
    let public_api_url = config.public_api_url(http_addr);
    // The certificate is loaded before anything listens: a missing or broken one
    // stops the start, naming the file. With tls.acme the slot starts empty and
    // is filled once the store holds a certificate or an order succeeds.
    let mut tls = certdns_tls::Tls::start(&config.tls, cancel.clone())?;
    let acme_slot = config.acme().map(|_| Arc::new(certdns_tls::CertSlot::empty()));
    if let Some(slot) = &acme_slot {
        tls = Some(certdns_tls::Tls::serving(slot.clone()));
    }
    let https = tls.as_ref().map(|tls| certdns_http::Https {
        acceptor: tls.acceptor.clone(),
        hsts_max_age_secs: config.tls.hsts_max_age_secs,
    });

    // Every change to what the DNS answers goes through the sync layer, shared by
    // the api and portal roles of this process.
    let sync =
        store.as_ref().map(|store| TxtSync::new(store.clone(), distribution.clone(), config.api.served_values()));

    let first_start = match &store {
        Some(store) => bootstrap::first_start(&**store, &config.zone.domain, &public_api_url).await?,
        None => None,
    };
    // Printed on a terminal; anywhere else stdout is a log, so a private file.
    let first_start = match first_start {
        Some(first) if !std::io::stdout().is_terminal() => {
            let path = first.write_to(&config.data_dir)?;
            tracing::info!(file = %path.display(), "first-start credentials written");
            Some(FirstStartShown::InFile(path))
        }
        Some(first) => Some(FirstStartShown::Printed(first)),
        None => None,
    };
    // The key sealing the registration passwords storage access gives back: the
    // API seals and opens, the portal seals what "Add a domain" creates.
    let credentials_key = match &config.api.credentials_key {
        Some(key) => Some(key.clone()),
        None if store.is_some() && config.database_url().starts_with("sqlite") => {
            Some(crate::files::credentials_key(&config.data_dir)?)
        }
        None => None,
    };
    let portal = match &portal_store {
        Some(portal_store) if config.runs(Role::Portal) => {
            let sync = sync.clone().context("the portal runs with a store")?;
            let key = credentials_key.clone();
            Some(start_portal(&config, portal_store.clone(), sync, &public_api_url, key).await?)
        }
        _ => None,
    };
    // The account API is on the portal: the API's /openapi.json documents it
    // where this process knows the portal's address.
    let portal_url = portal.as_ref().map(|(_, _, url)| url.clone()).or_else(|| config.portal.public_url.clone());

    let mut tasks = tokio::task::JoinSet::new();
    let mut http = axum::Router::new();

    if let (Some(store), Some(sync)) = (store.as_ref().filter(|_| config.runs(Role::Api)), &sync) {
        // The in-process distribution starts empty: fill it before DNS starts so the
        // first answers already carry every stored value.
        if config.redis_url.is_none() {
            sync.reconcile_now().await.context("loading TXT values from the store")?;
        }
        // The public status page reads this instance's heartbeat (alive, reaching
        // the distribution, the propagation times of its writes).
        let instance = certdns_sync::heartbeat::Instance::new("api", format!("{} {}", host_name(), http_addr));
        let heartbeat = sync.spawn_heartbeat(instance, cancel.clone());
        tasks.spawn(async move {
            heartbeat.await.context("heartbeat")?;
            anyhow::Ok("heartbeat")
        });
        // Start-up and periodic reconciliation; failed publishes are repaired at once.
        let periodic = sync.spawn_periodic(certdns_sync::PERIODIC, cancel.clone());
        tasks.spawn(async move {
            periodic.await.context("TXT reconciler")?;
            anyhow::Ok("TXT reconciler")
        });
        let mut api_config = config.api.clone();
        api_config.credentials_key = credentials_key.clone();
        http = http.merge(certdns_api::router(certdns_api::ApiDeps {
            store: store.clone(),
            sync: sync.clone(),
            config: api_config,
            public_url: public_api_url.clone(),
            zone_domain: config.zone.domain.trim_end_matches('.').to_owned(),
            usage: portal_store.clone(),
            also_documented: portal_url.as_deref().map(certdns_portal::account_api_document),
            entitlements: certdns_billing::Entitlements::from_config(&config.billing).map(Arc::new),
        }));
    }

    let mut dns_addrs = Vec::new();
    let mut replica_health = None;
    if config.runs(Role::Dns) {
        let replica = Replica::new();
        let follower = Follower::new(distribution.clone(), replica.clone(), responder_id(&config));
        replica_health = Some((replica.clone(), follower.health()));
        tasks.spawn({
            let cancel = cancel.clone();
            async move {
                follower.run(cancel).await;
                anyhow::Ok("TXT replica follower")
            }
        });
        let bound = certdns_dns::bind(&config.dns, &config.zone, replica).await?;
        dns_addrs = bound.local_addrs();
        let cancel = cancel.clone();
        tasks.spawn(async move {
            bound.run(cancel).await?;
            anyhow::Ok("DNS responder")
        });
    }

    // After the DNS role is bound: the first challenge is answered at once.
    let acme_status = match (config.acme(), &acme_slot, &store, &sync) {
        (Some(acme), Some(slot), Some(store), Some(sync)) => {
            let key = credentials_key.as_deref().context(
                "tls.acme: the certificate's private key is sealed in the store with api.credentials_key; set it \
                 (CERTDNS_API__CREDENTIALS_KEY or CERTDNS_API__CREDENTIALS_KEY_FILE)",
            )?;
            let backend = crate::tls_acme::StoreBackedAcme::new(
                store.clone(),
                sync.clone(),
                key,
                &config.zone.domain,
                &acme.directory_url,
            )?;
            let status = Arc::new(certdns_tls::AcmeStatus::default());
            let run = certdns_tls::acme::run(
                acme.clone(),
                Arc::new(backend),
                slot.clone(),
                status.clone(),
                config.tls.watch_interval(),
                cancel.clone(),
            );
            tasks.spawn(async move {
                run.await;
                anyhow::Ok("tls.acme")
            });
            Some(status)
        }
        _ => None,
    };

    let ops = Ops {
        metrics,
        store: store.clone(),
        distribution: distribution.clone(),
        replica: replica_health,
        degraded_after: Duration::from_secs(config.dns.degraded_after_secs),
        distribution_required: config.runs(Role::Api),
        last_write: Arc::default(),
        tls: tls.as_ref().map(|tls| tls.slot.clone()),
        acme: acme_status,
    };
    http = http.merge(ops::probes(ops.clone(), !config.runs(Role::Api)));
    tasks.spawn(serve_http(listener, http, config.http.limits, https.clone(), cancel.clone(), ("HTTP server", "http")));
    let ops_limits =
        certdns_http::ConnectionLimits { max_connections: 64, ..certdns_http::ConnectionLimits::default() };
    tasks.spawn(serve_http(
        ops_listener,
        ops::operator(ops),
        ops_limits,
        None,
        cancel.clone(),
        ("ops listener", "ops"),
    ));
    let redirect_addr = match config.tls.redirect_listen.filter(|_| config.speaks_tls()) {
        Some(at) => {
            let listener = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("tls.redirect_listen: cannot listen on {at}"))?;
            let addr = listener.local_addr()?;
            let router = certdns_http::redirect::to_https(http_addr.port());
            let names = ("redirect to HTTPS", "redirect");
            tasks.spawn(serve_http(listener, router, config.http.limits, None, cancel.clone(), names));
            Some(addr)
        }
        None => None,
    };

    let portal_addr = match portal {
        Some((listener, router, _)) => {
            let addr = listener.local_addr()?;
            let names = ("portal", "portal");
            tasks.spawn(serve_http(listener, router, config.portal.limits, https.clone(), cancel.clone(), names));
            if let Some(portal_store) = portal_store.as_ref() {
                let workers = start_alerts(&config, portal_store.clone(), portal_url.clone())?;
                let (watch, deliverer) = (workers.watch, workers.deliverer);
                let c = cancel.clone();
                tasks.spawn(async move {
                    watch.run(c).await;
                    anyhow::Ok("alert watch")
                });
                let c = cancel.clone();
                tasks.spawn(async move {
                    deliverer.run(c).await;
                    anyhow::Ok("webhook deliveries")
                });
                if config.portal.monitor_interval_secs > 0 {
                    let monitor = start_monitor(&config, portal_store.clone(), workers.notifier);
                    let cancel = cancel.clone();
                    tasks.spawn(async move {
                        monitor.run(cancel).await;
                        anyhow::Ok("delegation monitor")
                    });
                }
            }
            if let Some(reminders) = start_payment_reminders(&config, portal_store.as_ref(), portal_url.clone())? {
                let cancel = cancel.clone();
                tasks.spawn(async move {
                    reminders.run(cancel).await;
                    anyhow::Ok("payment reminders")
                });
            }
            Some(addr)
        }
        None => None,
    };

    let addrs = Listeners {
        http: http_addr,
        ops: ops_addr,
        portal: portal_addr,
        redirect: redirect_addr,
        tls: tls.as_ref().map(|tls| tls.slot.as_ref()),
        dns: &dns_addrs,
    };
    print_banner(&config, &addrs, distribution.kind(), first_start.as_ref());
    tracing::info!(roles = ?config.roles, %http_addr, "certdns started");

    tokio::select! {
        () = shutdown_signal() => tracing::info!("shutting down"),
        Some(done) = tasks.join_next() => {
            // A task ending on its own is a failure: everything runs until shutdown.
            cancel.cancel();
            match done {
                Ok(Ok(task)) => anyhow::bail!("the {task} stopped unexpectedly"),
                Ok(Err(e)) => return Err(e),
                Err(e) => anyhow::bail!("a server task panicked: {e}"),
            }
        }
    }
    cancel.cancel();
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), drain).await.is_err() {
        tracing::warn!("some tasks did not stop within 10 s");
    }
    Ok(())
}

async fn serve_http(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: certdns_http::ConnectionLimits,
    https: Option<certdns_http::Https>,
    cancel: CancellationToken,
    (name, label): (&'static str, &'static str),
) -> anyhow::Result<&'static str> {
    certdns_http::serve(listener, router, limits, label, https, async move { cancel.cancelled().await })
        .await
        .context(name)?;
    Ok(name)
}

/// Binds the portal's own listener and builds its router.
async fn start_portal(
    config: &Config,
    store: Arc<dyn certdns_store::PortalStore>,
    sync: Arc<TxtSync>,
    public_api_url: &str,
    credentials_key: Option<String>,
) -> anyhow::Result<(tokio::net::TcpListener, axum::Router, String)> {
    let listener = tokio::net::TcpListener::bind(config.portal.listen)
        .await
        .with_context(|| format!("portal.listen: cannot listen on {}", config.portal.listen))?;
    let mut portal_config = config.portal.clone();
    if portal_config.public_url.is_none() {
        portal_config.public_url = Some(format!("{}://{}", config.http_scheme(), listener.local_addr()?));
    }
    let base_url = portal_config.base_url();
    // The API reference page shows what the API's /openapi.json serves.
    let api_document = certdns_api::openapi::merged(Some(certdns_portal::account_api_document(&base_url)));
    let router = certdns_portal::router(certdns_portal::PortalDeps {
        store,
        sync,
        config: portal_config,
        public_api_url: public_api_url.to_owned(),
        zone_domain: config.zone.domain.trim_end_matches('.').to_owned(),
        data_dir: config.data_dir.clone(),
        credentials_key,
        billing: config.billing.clone(),
        api_document: Some(api_document),
    })
    .await?;
    Ok((listener, router, base_url))
}

/// The payment reminders of the portal role (billing on only): their mail
/// through the portal's mailer, links to the portal's public URL.
fn start_payment_reminders(
    config: &Config,
    store: Option<&Arc<dyn certdns_store::PortalStore>>,
    portal_url: Option<String>,
) -> anyhow::Result<Option<certdns_portal::PaymentReminders>> {
    let Some(store) = store.filter(|_| config.billing.enabled()) else { return Ok(None) };
    let mut portal = config.portal.clone();
    portal.public_url = portal.public_url.or(portal_url);
    Ok(certdns_portal::payment_reminders(&portal, store.core(), &config.data_dir, &config.billing)?)
}

/// The portal role's alerting: mails, audit entries and webhooks (through
/// `portal.smtp` and the portal's public URL for links).
fn start_alerts(
    config: &Config,
    store: Arc<dyn certdns_store::PortalStore>,
    portal_url: Option<String>,
) -> anyhow::Result<certdns_portal::AlertWorkers> {
    let mut portal = config.portal.clone();
    portal.public_url = portal.public_url.or(portal_url);
    Ok(certdns_portal::alert_workers(&portal, store.core(), &config.data_dir)?)
}

/// The delegation monitor of the portal role: its checks through
/// `portal.resolver`, its alerts through the portal's alerting.
fn start_monitor(
    config: &Config,
    store: Arc<dyn certdns_store::PortalStore>,
    notifier: Arc<dyn certdns_monitor::Notifier>,
) -> certdns_monitor::Monitor {
    let monitor_config = certdns_monitor::MonitorConfig {
        resolver: config.portal.resolver,
        zone: config.zone.domain.trim_end_matches('.').to_owned(),
        interval_secs: config.portal.monitor_interval_secs,
        checks_per_second: config.portal.monitor_checks_per_second,
    };
    certdns_monitor::Monitor::new(store, monitor_config, notifier)
}

/// Where this process listens, as bound (a configured port 0 is a real port here).
struct Listeners<'a> {
    http: SocketAddr,
    ops: SocketAddr,
    portal: Option<SocketAddr>,
    redirect: Option<SocketAddr>,
    tls: Option<&'a certdns_tls::CertSlot>,
    dns: &'a [(certdns_dns::Protocol, SocketAddr)],
}

fn print_banner(config: &Config, at: &Listeners<'_>, distribution: &str, first_start: Option<&FirstStartShown>) {
    let roles: Vec<&str> = config.roles.iter().map(|r| r.as_str()).collect();
    println!("certdns {} serving roles: {}", env!("CARGO_PKG_VERSION"), roles.join(", "));
    if !at.dns.is_empty() {
        let listeners: Vec<String> = at
            .dns
            .iter()
            .map(|(p, a)| match p {
                certdns_dns::Protocol::Udp => format!("udp {a}"),
                certdns_dns::Protocol::Tcp => format!("tcp {a}"),
            })
            .collect();
        println!("  DNS   {}  (zone {})", listeners.join(", "), config.zone.domain);
    }
    let mut served = vec!["/ready"];
    if config.runs(Role::Api) {
        served.splice(0..0, ["/register", "/update", "/health"]);
    } else {
        served.push("/health");
    }
    let scheme = config.http_scheme();
    println!("  HTTP  {scheme}://{}  ({})", at.http, served.join(" "));
    if let Some(redirect) = at.redirect {
        println!("  HTTP  http://{redirect}  (redirects to HTTPS only)");
    }
    println!("  Ops   http://{}  (/metrics /ready /health)", at.ops);
    if let Some(portal) = at.portal {
        println!("  Portal {scheme}://{portal}");
    }
    if let Some(acme) = config.acme() {
        println!(
            "  TLS   certificate by ACME for {} from {} (progress: /ready)",
            acme.names.join(", "),
            acme.directory_url
        );
    } else if let Some(slot) = at.tls {
        let expires = time::OffsetDateTime::from_unix_timestamp(slot.not_after())
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| slot.not_after().to_string());
        println!("  TLS   certificate for {}, expires {expires}", slot.names().join(", "));
    }
    for warning in clear_text_warnings(config, at) {
        println!("  WARNING: {warning}");
        tracing::warn!("{warning}");
    }
    if config.needs_store() {
        println!("  store {}", certdns_store::redact(&config.database_url()));
    }
    println!("  TXT distribution: {distribution}");
    match first_start {
        Some(FirstStartShown::Printed(first)) => {
            println!();
            println!("First start: created an operator account and a license key. Shown once; keep them safe.");
            for line in first.lines() {
                println!("{line}");
            }
        }
        Some(FirstStartShown::InFile(path)) => {
            println!();
            println!("First start: created an operator account and a license key.");
            println!("  Credentials written to {} (readable only by this user);", path.display());
            println!("  store them somewhere safe, then delete the file.");
        }
        None => {}
    }
}

/// A listener that carries credentials in clear beyond this machine: TLS off, not
/// on loopback, and no proxy declared in front (`client_ip_header`, where TLS
/// would end).
fn clear_text_warnings(config: &Config, at: &Listeners<'_>) -> Vec<String> {
    if config.speaks_tls() {
        return Vec::new();
    }
    let listeners = [
        ("http.listen", Some(at.http).filter(|_| config.runs(Role::Api)), config.api.client_ip_header.is_some()),
        ("portal.listen", at.portal, config.portal.client_ip_header.is_some()),
    ];
    listeners
        .into_iter()
        .filter_map(|(key, addr, behind_proxy)| Some((key, addr?, behind_proxy)))
        .filter(|(_, addr, behind_proxy)| !addr.ip().is_loopback() && !behind_proxy)
        .map(|(key, addr, _)| {
            format!(
                "{key} {addr} is reachable from other machines over plain HTTP: license keys and /update \
                 credentials would cross the network in clear. Set tls.cert_file and tls.key_file, or put a \
                 TLS-terminating proxy in front (and set client_ip_header)."
            )
        })
        .collect()
}

/// Where the first start's credentials went.
enum FirstStartShown {
    Printed(bootstrap::FirstStart),
    InFile(std::path::PathBuf),
}

/// How this responder names itself to writers: the host and its first DNS address.
fn host_name() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

fn responder_id(config: &Config) -> certdns_replication::ResponderId {
    let addr = config.dns.listen.first().map(ToString::to_string).unwrap_or_default();
    certdns_replication::ResponderId::generate(format!("{} {addr}", host_name()))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
