//! certdns.toml: loading (defaults < file < `CERTDNS_*` environment < flags) and
//! validation. Every key, its environment name and its default are listed by
//! [`env_help`], which `serve --help` prints.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use certdns_api::ApiConfig;
use certdns_billing::BillingConfig;
use certdns_dns::{DnsConfig, ZoneConfig};
use certdns_http::ConnectionLimits;
use certdns_portal::PortalConfig;
use certdns_tls::TlsConfig;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub const ENV_PREFIX: &str = "CERTDNS_";
const SQLITE_FILE: &str = "certdns.sqlite3";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The acme-dns HTTP API (/register, /update, /health).
    Api,
    /// The web portal (accounts, license keys, registrations).
    Portal,
    /// The authoritative DNS responder.
    Dns,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Portal => "portal",
            Role::Dns => "dns",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Where the HTTP listener (API, /metrics, /ready) binds.
    pub listen: SocketAddr,
    /// Header timeout and connection cap of that listener.
    pub limits: ConnectionLimits,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 8080)), limits: ConnectionLimits::default() }
    }
}

/// `[ops]`: the operator's listener (metrics), on loopback unless opened up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpsConfig {
    /// Where `/metrics` (and `/ready`, `/health`) are served.
    pub listen: SocketAddr,
}

impl Default for OpsConfig {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 9090)) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Roles this process runs.
    pub roles: Vec<Role>,
    /// Where the embedded default keeps its SQLite file.
    pub data_dir: PathBuf,
    /// `sqlite:<path>` or `postgres://…`. Unset: a SQLite file in `data_dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Redis for TXT distribution between processes. Unset: in-process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// dns role only: read the distribution from this Redis (a replica of
    /// `redis_url` in the responder's PoP); reports still go to `redis_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_read_url: Option<String>,
    /// Prefix of every Redis key, so deployments can share a server.
    pub redis_prefix: String,
    /// The API's public base URL, without credentials or path; license keys are
    /// handed out embedded in it. Unset: `http://<http.listen>` (`https://` with
    /// TLS; with `tls.acme` the certificate's first name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_api_url: Option<String>,
    pub log_format: LogFormat,
    /// A tracing filter (`info`, `certdns=debug,info`, …); `RUST_LOG` wins if set.
    pub log_level: String,
    pub http: HttpConfig,
    pub ops: OpsConfig,
    pub dns: DnsConfig,
    pub zone: ZoneConfig,
    pub api: ApiConfig,
    pub portal: PortalConfig,
    pub tls: TlsConfig,
    /// Plans and Stripe; off (no plan, no limit) unless both Stripe secrets are set.
    pub billing: BillingConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            roles: vec![Role::Api, Role::Dns, Role::Portal],
            data_dir: PathBuf::from("."),
            database_url: None,
            redis_url: None,
            redis_read_url: None,
            redis_prefix: "certdns:".into(),
            public_api_url: None,
            log_format: LogFormat::Text,
            log_level: "info,hickory_server=warn".into(),
            http: HttpConfig::default(),
            ops: OpsConfig::default(),
            dns: DnsConfig::default(),
            zone: ZoneConfig::default(),
            api: ApiConfig::default(),
            portal: PortalConfig::default(),
            tls: TlsConfig::default(),
            billing: BillingConfig::default(),
        }
    }
}

/// Top-level keys and `[http]`, described for `--help` (the sections owned by other
/// crates describe themselves: `ZoneConfig::DOCS`, …).
const TOP_DOCS: &[(&str, &str)] = &[
    ("roles", "roles this process runs: api, dns, portal"),
    ("data_dir", "directory of the embedded SQLite database"),
    ("database_url", "sqlite:<path> or postgres://user:pass@host/db (default: <data_dir>/certdns.sqlite3)"),
    ("redis_url", "redis://host:port for TXT distribution between processes (default: in-process)"),
    ("redis_read_url", "dns role: read TXT changes from this Redis (a replica in the PoP); reports go to redis_url"),
    ("redis_prefix", "prefix of every Redis key"),
    (
        "public_api_url",
        "public base URL of the API, no path (default: http://<http.listen>, https:// with [tls], \
         https://<first tls.acme name> with tls.acme)",
    ),
    ("log_format", "text or json"),
    ("log_level", "tracing filter, e.g. info or certdns=debug,info (RUST_LOG wins)"),
];
const HTTP_DOCS: &[(&str, &str)] = &[("listen", "HTTP listen address (API, /ready, /health)")];
const OPS_DOCS: &[(&str, &str)] =
    &[("listen", "operator listener: /metrics (and /ready, /health); keep it on loopback or an internal network")];

/// Every section of the file with its key docs; `serve --help` prints them in
/// this order, and a test checks that together they name every key.
fn sections() -> [(&'static str, &'static [(&'static str, &'static str)]); 12] {
    [
        ("", TOP_DOCS),
        ("http", HTTP_DOCS),
        ("http", ConnectionLimits::DOCS),
        ("ops", OPS_DOCS),
        ("dns", DnsConfig::DOCS),
        ("zone", ZoneConfig::DOCS),
        ("api", ApiConfig::DOCS),
        ("portal", PortalConfig::DOCS),
        ("portal", ConnectionLimits::DOCS),
        ("tls", TlsConfig::DOCS),
        ("tls.acme", certdns_tls::AcmeConfig::DOCS),
        ("billing", BillingConfig::DOCS),
    ]
}

/// The environment variable that sets `key` (`zone.domain` → `CERTDNS_ZONE__DOMAIN`).
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase())
}

/// The key table printed by `serve --help`.
pub fn env_help() -> String {
    let defaults = toml::Value::try_from(Config::default()).unwrap_or(toml::Value::Boolean(false));
    let mut out = String::from(
        "Configuration keys (TOML file < environment < flags). Nested keys use `__` in the\n\
         environment; lists are written as [\"a\", \"b\"].\n",
    );
    let files: Vec<String> = SECRET_KEYS.iter().map(|k| file_env_name(k)).collect();
    let _ = writeln!(
        out,
        "Secrets ({}) are never shown, and may be read from a file instead:\n  {}",
        SECRET_KEYS.join(", "),
        files.join(", ")
    );
    for (section, docs) in sections() {
        for (key, help) in docs {
            let full = if section.is_empty() { (*key).to_owned() } else { format!("{section}.{key}") };
            let default = full
                .split('.')
                .try_fold(&defaults, |v, part| v.get(part))
                .map_or_else(|| "unset".to_owned(), |v| v.to_string());
            let _ = write!(out, "\n  {full}\n      env {}  default {default}\n      {help}\n", env_name(&full));
        }
    }
    out
}

/// Flags that override the file and the environment. `None` leaves a key alone
/// (hence `skip_serializing_if` everywhere: a `None` must not overwrite a value).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<Role>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_api_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    #[serde(skip_serializing_if = "ListenOverride::is_empty")]
    pub http: ListenOverride<SocketAddr>,
    #[serde(skip_serializing_if = "ListenOverride::is_empty")]
    pub ops: ListenOverride<SocketAddr>,
    #[serde(skip_serializing_if = "ListenOverride::is_empty")]
    pub dns: ListenOverride<Vec<SocketAddr>>,
    #[serde(skip_serializing_if = "ListenOverride::is_empty")]
    pub portal: ListenOverride<SocketAddr>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListenOverride<T> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<T>,
}

impl<T> Default for ListenOverride<T> {
    fn default() -> Self {
        Self { listen: None }
    }
}

impl<T> ListenOverride<T> {
    fn is_empty(&self) -> bool {
        self.listen.is_none()
    }
}

/// Keys whose values are secrets. `certdns config`, errors and the banner never
/// show them, and each can come from a file named by `CERTDNS_<KEY>_FILE` (the
/// way container platforms hand out secrets), e.g. `CERTDNS_DATABASE_URL_FILE`.
pub const SECRET_KEYS: &[&str] = &[
    "database_url",
    "redis_url",
    "redis_read_url",
    "api.credentials_key",
    "portal.session_secret",
    "portal.smtp.url",
    "tls.acme.eab_hmac_key",
    "billing.stripe.secret_key",
    "billing.stripe.webhook_secret",
];

/// The environment variable naming a file that holds `key`'s value.
fn file_env_name(key: &str) -> String {
    format!("{}_FILE", env_name(key))
}

/// The secrets given as files: (key, file content without the final newline).
/// Setting a key both ways is an error, so nobody wonders which one won.
fn secrets_from_files() -> Result<Vec<(&'static str, String)>, String> {
    let mut found = Vec::new();
    for key in SECRET_KEYS {
        let var = file_env_name(key);
        let Some(path) = std::env::var_os(&var) else { continue };
        if std::env::var_os(env_name(key)).is_some() {
            return Err(format!("{key}: both {} and {var} are set; set one", env_name(key)));
        }
        let value = std::fs::read_to_string(&path)
            .map_err(|e| format!("{key}: {var}: cannot read {}: {e}", Path::new(&path).display()))?;
        found.push((*key, value.trim_end_matches(['\n', '\r']).to_owned()));
    }
    Ok(found)
}

/// Loads the configuration. `file` is optional; a named file that does not exist
/// is an error (a typo must not silently fall back to defaults).
pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Config, String> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(format!("config file {} does not exist", path.display()));
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    let file_vars: Vec<String> =
        SECRET_KEYS.iter().map(|k| file_env_name(k).trim_start_matches(ENV_PREFIX).to_ascii_lowercase()).collect();
    let env = Env::prefixed(ENV_PREFIX)
        // CERTDNS_CONFIG names the file itself; CERTDNS_TEST_* belong to the test
        // suite; CERTDNS_<secret>_FILE are read below.
        .filter(move |key| {
            let key = key.as_str().to_ascii_lowercase();
            key != "config" && !key.starts_with("test_") && !file_vars.contains(&key)
        })
        .split("__");
    figment = figment.merge(env);
    for (key, value) in secrets_from_files()? {
        figment = figment.merge(Serialized::global(key, value));
    }
    figment = figment.merge(Serialized::globals(overrides));
    let config: Config = figment.extract().map_err(describe)?;
    config.validate()?;
    Ok(config)
}

/// `certdns config`: the merged configuration as TOML, secrets hidden.
pub fn print(args: &crate::cli::ServeArgs) -> anyhow::Result<()> {
    let config = load(args.config.config.as_deref(), args.overrides()).map_err(anyhow::Error::msg)?;
    print!("{}", toml::to_string(&config.redacted())?);
    Ok(())
}

/// A figment error as this file's other errors read: `<key>: <problem> (<source>)`,
/// on one line.
fn describe(errors: figment::Error) -> String {
    let lines: Vec<String> = errors
        .into_iter()
        .map(|e| {
            let key = e.path.iter().filter(|p| p.parse::<usize>().is_err()).cloned().collect::<Vec<_>>().join(".");
            let source = match e.metadata.as_ref() {
                Some(m) => match &m.source {
                    Some(from) => format!(" ({} {from})", m.name),
                    None => format!(" ({})", m.name),
                },
                None => String::new(),
            };
            let problem = one_line(&e.kind.to_string());
            if key.is_empty() {
                format!("{problem}{source}")
            } else {
                format!("{}: {problem}{source}", key.to_lowercase())
            }
        })
        .collect();
    lines.join("; ")
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Config {
    /// A copy without secrets (every key of [`SECRET_KEYS`]), for showing.
    pub fn redacted(&self) -> Config {
        let mut shown = self.clone();
        shown.database_url = Some(certdns_core::redact::url(&self.database_url()));
        shown.redis_url = self.redis_url.as_deref().map(certdns_core::redact::url);
        shown.redis_read_url = self.redis_read_url.as_deref().map(certdns_core::redact::url);
        shown.portal.session_secret = self.portal.session_secret.as_ref().map(|_| "***".to_owned());
        if let Some(smtp) = &mut shown.portal.smtp {
            smtp.url = certdns_core::redact::url(&smtp.url);
        }
        if let Some(acme) = &mut shown.tls.acme {
            acme.eab_hmac_key = acme.eab_hmac_key.as_ref().map(|_| "***".to_owned());
        }
        let hide = |s: &Option<String>| s.as_ref().map(|_| "***".to_owned());
        shown.billing.stripe.secret_key = hide(&self.billing.stripe.secret_key);
        shown.billing.stripe.webhook_secret = hide(&self.billing.stripe.webhook_secret);
        shown
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.roles.is_empty() {
            return Err("roles: at least one role is needed (api, dns, portal)".into());
        }
        let split = !(self.roles.contains(&Role::Api) && self.roles.contains(&Role::Dns));
        if split && self.redis_url.is_none() {
            return Err("redis_url: running only some roles needs Redis to carry TXT changes between processes".into());
        }
        if let Some(url) = &self.database_url
            && certdns_store::Backend::of_url(url).is_none()
        {
            return Err(format!(
                "database_url: {:?} is neither sqlite:<path> nor postgres://…",
                certdns_store::redact(url)
            ));
        }
        for (key, url) in [("redis_url", &self.redis_url), ("redis_read_url", &self.redis_read_url)] {
            if let Some(url) = url
                && !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("redis+unix://"))
            {
                return Err(format!("{key}: {:?} is not a redis:// URL", certdns_core::redact::url(url)));
            }
        }
        if self.redis_read_url.is_some() && (self.redis_url.is_none() || self.roles != [Role::Dns]) {
            return Err("redis_read_url: only for a process running the dns role alone, beside redis_url".into());
        }
        if let Some(url) = &self.public_api_url {
            validate_public_url(url).map_err(|e| format!("public_api_url: {e}"))?;
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return Err(format!("log_level: {:?} is not a tracing filter", self.log_level));
        }
        self.zone.validate()?;
        self.dns.validate()?;
        self.api.validate()?;
        self.portal.validate()?;
        self.http.limits.validate("http")?;
        self.tls.validate()?;
        self.billing.validate()?;
        if self.runs(Role::Portal) && self.portal.listen == self.http.listen && self.http.listen.port() != 0 {
            return Err(format!(
                "portal.listen: {} is already http.listen; the portal needs its own",
                self.http.listen
            ));
        }
        let others = [self.http.listen, self.portal.listen];
        if self.ops.listen.port() != 0 && others.contains(&self.ops.listen) {
            return Err(format!("ops.listen: {} is already taken by http.listen or portal.listen", self.ops.listen));
        }
        if let Some(redirect) = self.tls.redirect_listen
            && redirect.port() != 0
            && [self.http.listen, self.portal.listen, self.ops.listen].contains(&redirect)
        {
            return Err(format!("tls.redirect_listen: {redirect} is already taken by another listener"));
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join(SQLITE_FILE).display()))
    }

    /// The public API base URL without a trailing slash; unset, the listener's
    /// address (as bound: `http.listen` may name port 0).
    pub fn public_api_url(&self, bound: SocketAddr) -> String {
        let url = self.public_api_url.clone().unwrap_or_else(|| match self.acme_host() {
            // The certificate's name, not the listener's address (0.0.0.0 is no URL).
            Some(host) if bound.port() == 443 => format!("https://{host}"),
            Some(host) => format!("https://{host}:{}", bound.port()),
            None => format!("{}://{bound}", self.http_scheme()),
        });
        url.trim_end_matches('/').to_owned()
    }

    /// With `tls.acme`, the first name of the certificate that is not a wildcard.
    fn acme_host(&self) -> Option<String> {
        self.acme()?.normalized_names().into_iter().find(|n| !n.starts_with("*."))
    }

    /// `https` when the HTTP listeners speak TLS.
    pub fn http_scheme(&self) -> &'static str {
        if self.speaks_tls() { "https" } else { "http" }
    }

    /// Whether this process's HTTP listeners speak TLS: with certificate files,
    /// or with `tls.acme` where there is a store to order through (a dns-only
    /// process sharing the file serves its probes in plain HTTP).
    pub fn speaks_tls(&self) -> bool {
        self.tls.cert_file.is_some() || self.acme().is_some()
    }

    /// `tls.acme`, when this process orders (or picks up) the certificate.
    pub fn acme(&self) -> Option<&certdns_tls::AcmeConfig> {
        self.tls.acme.as_ref().filter(|_| self.needs_store())
    }

    /// Whether this process needs the database (the dns role does not).
    pub fn needs_store(&self) -> bool {
        self.runs(Role::Api) || self.runs(Role::Portal)
    }

    pub fn runs(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// A base URL clients concatenate `/register` to: http(s), a host, no path, no credentials.
fn validate_public_url(s: &str) -> Result<(), String> {
    let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{s:?} must be http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{s:?} must not carry credentials (each license key adds its own)"));
    }
    if url.path() != "/" || url.query().is_some() {
        return Err(format!("{s:?} must have no path: several clients drop a path prefix"));
    }
    Ok(())
}

/// `https://KEYID:SECRET@api.example.net`: the base URL an ACME client is given.
/// Key ids and secrets are `[A-Za-z0-9_-]`, so nothing needs percent-encoding.
pub fn base_url_with_credentials(public_api_url: &str, key_id: &str, secret: &str) -> String {
    match public_api_url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{key_id}:{secret}@{}", rest.trim_end_matches('/')),
        None => format!("{key_id}:{secret}@{public_api_url}"),
    }
}

#[cfg(test)]
mod tests;
