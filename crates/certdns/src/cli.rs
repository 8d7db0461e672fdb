//! The command line. Help texts are written for the operator running certdns.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, LogFormat, Overrides, Role};

#[derive(Parser)]
#[command(
    name = "certdns",
    version,
    about = "Hosted DNS-01 challenges for ACME: an acme-dns compatible API and an authoritative DNS responder",
    long_about = "certdns answers ACME DNS-01 challenges for your customers' domains. Each customer \
        points `_acme-challenge.<their name>` at `<subdomain>.<your zone>` with one permanent CNAME; their \
        ACME client (lego, certbot, acme.sh, cert-manager, Posh-ACME, Certify The Web, …) registers and \
        updates TXT values through the acme-dns API, authenticated by a license key embedded in the \
        base URL (https://KEYID:SECRET@api.example.net).\n\n\
        Start with `certdns serve`: with no configuration it runs everything in one process on a SQLite \
        file in the current directory, DNS on 127.0.0.1:5353 and HTTP on 127.0.0.1:8080, and prints a \
        ready-to-use base URL on first start."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run certdns (by default every role in one process).
    #[command(after_long_help = config::env_help())]
    Serve(ServeArgs),
    /// Apply pending database migrations and exit (`serve` also applies them at start).
    Migrate(ConfigArgs),
    /// Manage accounts and license keys from the command line.
    Admin(AdminArgs),
    /// Move an acme-dns server's registrations here (same usernames, passwords,
    /// subdomains, allow-from lists and current TXT values), so existing CNAMEs
    /// and clients keep working unchanged. Safe to run again.
    #[command(name = "import-acme-dns")]
    ImportAcmeDns(ImportArgs),
    /// Print the effective configuration (defaults, file, environment and flags
    /// merged) as TOML, with passwords in URLs redacted.
    Config(ServeArgs),
}

/// Where the configuration comes from; shared by every subcommand.
#[derive(Args, Clone)]
pub struct ConfigArgs {
    /// TOML configuration file (keys: see `certdns serve --help`).
    #[arg(short, long, env = "CERTDNS_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Directory of the embedded SQLite database [key: data_dir].
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database: sqlite:<path> or postgres://user:pass@host/db [key: database_url].
    #[arg(long, value_name = "URL", global = true)]
    pub database_url: Option<String>,
}

impl ConfigArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides { data_dir: self.data_dir.clone(), database_url: self.database_url.clone(), ..Overrides::default() }
    }
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// A role to run; repeat for several (default: api, dns and portal) [key: roles].
    #[arg(long = "role", value_enum, value_name = "ROLE")]
    pub roles: Vec<Role>,
    /// Redis URL for TXT distribution between processes [key: redis_url].
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
    /// HTTP listen address [key: http.listen].
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// DNS listen address, UDP and TCP; repeat for several [key: dns.listen].
    #[arg(long, value_name = "ADDR")]
    pub dns_listen: Vec<SocketAddr>,
    /// Public base URL of the API, no path [key: public_api_url].
    #[arg(long, value_name = "URL")]
    pub public_api_url: Option<String>,
    /// Portal listen address [key: portal.listen].
    #[arg(long, value_name = "ADDR")]
    pub portal_listen: Option<SocketAddr>,
    /// Operator listener for /metrics [key: ops.listen].
    #[arg(long, value_name = "ADDR")]
    pub ops_listen: Option<SocketAddr>,
    /// Log format [key: log_format].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

impl ServeArgs {
    pub fn overrides(&self) -> Overrides {
        let mut o = self.config.overrides();
        o.roles = (!self.roles.is_empty()).then(|| self.roles.clone());
        o.redis_url = self.redis_url.clone();
        o.public_api_url = self.public_api_url.clone();
        o.log_format = self.log_format;
        o.http.listen = self.http_listen;
        o.dns.listen = (!self.dns_listen.is_empty()).then(|| self.dns_listen.clone());
        o.portal.listen = self.portal_listen;
        o.ops.listen = self.ops_listen;
        o
    }
}

#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// acme-dns's database: the path of its SQLite file (opened read-only) or a
    /// postgres:// URL (read in a read-only transaction).
    #[arg(long, value_name = "PATH|URL")]
    pub from: String,
    /// E-mail address of the account that will own the registrations.
    #[arg(long)]
    pub account: String,
    /// A license key of that account to file the registrations under (as if
    /// they had been registered with it).
    #[arg(long, value_name = "KEY_ID")]
    pub key: Option<String>,
    /// Check everything and report what would happen; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// A client's acme-dns credentials file (lego, cert-manager,
    /// certbot-dns-acmedns: domain → account JSON) whose domains are bound to
    /// the imported registrations; repeat for several.
    #[arg(long = "storage-file", value_name = "FILE")]
    pub storage_files: Vec<PathBuf>,
}

#[derive(Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Accounts (tenants).
    #[command(subcommand)]
    Account(AccountCommand),
    /// License keys: the credentials ACME clients register with.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Personal access tokens for the account API (/api/v1 on the portal).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it, once.
    Create {
        /// E-mail address of the account the token acts for.
        #[arg(long)]
        account: String,
        /// What uses the token (e.g. terraform).
        #[arg(long)]
        name: String,
        /// `read` (lists, CNAME check, audit log) or `read-write` (also changes and exports).
        #[arg(long, default_value = "read")]
        scope: String,
        /// Days until it expires; 0: never.
        #[arg(long, default_value_t = 90)]
        expires_days: u32,
    },
    /// Revoke a token (its id is the 16 characters after `cdpat_`).
    Revoke {
        /// E-mail address of the account that owns the token.
        #[arg(long)]
        account: String,
        token_id: String,
    },
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create an account. Without --password-stdin it cannot log in to the portal,
    /// but its license keys work at the API.
    Create {
        /// The account's e-mail address (its login).
        #[arg(long)]
        email: String,
        /// Make it an operator (runs the deployment) instead of a customer.
        #[arg(long)]
        operator: bool,
        /// Read a portal password from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List every account.
    List,
    /// Suspend an account: its license keys and registrations stop working at the API.
    Suspend {
        /// The account's e-mail address.
        email: String,
    },
    /// Lift a suspension.
    Reactivate {
        /// The account's e-mail address.
        email: String,
    },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a license key and print, once, the base URL with the credentials embedded.
    Create {
        /// E-mail address of the account that owns the key.
        #[arg(long)]
        account: String,
        /// A name to tell keys apart (e.g. the server or team using it).
        #[arg(long, default_value = "default")]
        name: String,
        /// Let the key read back the credentials of the registrations made with
        /// it (lego's HTTP storage at <base URL>/storage). Anyone holding the key
        /// can then update every name registered with it.
        #[arg(long)]
        storage_access: bool,
    },
    /// Revoke a license key: it can no longer register or update.
    Revoke {
        /// The key id (the part before `:` in the base URL).
        key_id: String,
    },
    /// List license keys (of one account, or of all).
    List {
        /// Only this account's keys.
        #[arg(long)]
        account: Option<String>,
    },
}
