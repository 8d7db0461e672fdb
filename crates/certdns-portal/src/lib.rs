//! The web portal: accounts and sessions, license keys, registrations with a
//! CNAME check, the audit log, usage, and the operator's account list.
//!
//! Server-rendered (axum + askama, templates and static assets in `web/`), with
//! a little vanilla JavaScript for copy buttons. [`router`] builds the whole
//! portal; the binary serves it on its own listener (`[portal] listen`) with
//! `into_make_service_with_connect_info::<SocketAddr>()`.
//!
//! Security model:
//! * Sessions are HS256 JWTs (jsonwebtoken) in an HttpOnly, SameSite=Lax cookie
//!   (Secure unless `secure_cookies = false`). Each carries the account's
//!   `session_version`; logout and password change bump it, which revokes every
//!   session of the account at once.
//! * Every state-changing request must carry a CSRF token in its form: the
//!   session's own token when logged in, otherwise a per-browser token cookie
//!   (double submit). Cross-site requests (`Sec-Fetch-Site: cross-site`, or an
//!   `Origin` that is not the portal) are refused before that.
//! * Every store call is scoped by the logged-in account; ids in URLs are only
//!   looked up within it.

mod account_api;
mod actions;
mod alerts;
mod api_reference;
mod assets;
mod billing;
mod caa;
mod chart;
mod cname_advice;
pub mod config;
mod dates;
mod docs;
mod error;
mod limits;
mod mail;
mod pages;
mod passwords;
mod payment_reminders;
mod persist;
mod session;
mod state;
mod status;
mod suspension;
mod templates;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use certdns_http::ClientAddrRule;
use certdns_store::PortalStore;
use certdns_sync::TxtSync;
use tower_http::set_header::SetResponseHeaderLayer;

pub use account_api::document as account_api_document;
pub use alerts::{AlertWorkers, alert_notifier, alert_workers};
pub use certdns_delegation::{CnameStatus, check_cname};
pub use config::{PortalConfig, Signup, SmtpConfig};
pub use payment_reminders::{PaymentReminders, payment_reminders};

use crate::state::AppState;

/// The `[portal]` keys and their descriptions (see [`PortalConfig::DOCS`]).
pub const DOCS: &[(&str, &str)] = PortalConfig::DOCS;

/// What the portal needs from the process that embeds it.
pub struct PortalDeps {
    /// From [`certdns_store::open_portal`]; its [`PortalStore::core`] is the
    /// [`Store`] the API should share.
    pub store: Arc<dyn PortalStore>,
    /// Deletes go through it, so the DNS stops answering at once (shared with
    /// the API in one process).
    pub sync: Arc<TxtSync>,
    pub config: PortalConfig,
    /// The API's public base URL without credentials, e.g. `https://api.example.net`.
    pub public_api_url: String,
    /// The zone; a registration's fulldomain is `<subdomain>.<zone_domain>`.
    pub zone_domain: String,
    /// Where the outbox file goes when no SMTP relay is configured.
    pub data_dir: PathBuf,
    /// `api.credentials_key`: seals the password of a registration "Add a domain"
    /// creates under a key with storage access, so lego's HTTP storage can give
    /// it back. `None`: nothing is sealed.
    pub credentials_key: Option<String>,
    /// `[billing]`; billing pages and the Stripe webhook exist only when it is on.
    pub billing: certdns_billing::BillingConfig,
    /// The OpenAPI document the API reference page shows: the API's merged one
    /// (what `/openapi.json` serves). `None`: the account API's own.
    pub api_document: Option<utoipa::openapi::OpenApi>,
}

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("{0}")]
    Config(String),
    #[error("store: {0}")]
    Store(#[from] certdns_store::StoreError),
    #[error("mail: {0}")]
    Mail(#[from] mail::MailError),
}

const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const CSP_WITH_STRIPE: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
     form-action 'self' https://checkout.stripe.com https://billing.stripe.com; frame-ancestors 'none'; \
     base-uri 'none'";

/// Name under which a generated session secret is kept in the database.
const SESSION_SECRET_SETTING: &str = "portal.session_secret";

/// Builds the portal. Loads (or creates and stores) the session secret, so it is async.
pub async fn router(deps: PortalDeps) -> Result<Router, PortalError> {
    deps.config.validate().map_err(PortalError::Config)?;
    let api_url = url::Url::parse(&deps.public_api_url)
        .map_err(|e| PortalError::Config(format!("public API URL {:?}: {e}", deps.public_api_url)))?;
    if api_url.host_str().is_none() || !matches!(api_url.scheme(), "http" | "https") {
        return Err(PortalError::Config(format!("public API URL {:?}: expected http(s)://host", deps.public_api_url)));
    }
    let secret = match &deps.config.session_secret {
        Some(s) => s.clone(),
        None => {
            let fresh = session::random_token(32);
            deps.store.init_setting(SESSION_SECRET_SETTING, &fresh).await?
        }
    };
    let mailer = mail::Mailer::new(
        deps.config.smtp.as_ref().map(|s| s.url.as_str()),
        &deps.config.mail_from,
        deps.data_dir.join("outbox.eml"),
    )?;
    let sealer = match deps.credentials_key.as_deref().map(certdns_core::CredentialSealer::from_secret) {
        Some(Ok(sealer)) => Some(sealer),
        Some(Err(e)) => return Err(PortalError::Config(format!("api.credentials_key: {e}"))),
        None => None,
    };
    let billing = billing::PortalBilling::new(&deps.billing).map_err(PortalError::Config)?;
    let document = deps.api_document.unwrap_or_else(|| account_api::document(&deps.config.base_url()));
    let document =
        serde_json::to_value(&document).map_err(|e| PortalError::Config(format!("OpenAPI document: {e}")))?;
    let api_reference = api_reference::ApiReference::from_document(&document);
    let state = Arc::new(AppState {
        api_reference,
        status: status::StatusCache::default(),
        billing,
        sealer,
        core: deps.store.core(),
        store: deps.store,
        sync: deps.sync,
        base_url: deps.config.base_url(),
        limits: limits::Limits::new(
            deps.config.login_failures_per_minute_per_address,
            std::time::Duration::from_secs(u64::from(deps.config.login_backoff_max_secs)),
        ),
        keys: session::Keys::new(secret.as_bytes(), deps.config.secure_cookies),
        client_addr: ClientAddrRule::new(deps.config.client_ip_header.as_ref(), &deps.config.trusted_proxies),
        passwords: passwords::PasswordHasher::new(deps.config.password_hash_threads()),
        config: deps.config,
        api_url,
        zone_domain: deps.zone_domain.trim_end_matches('.').to_owned(),
        mailer,
    });

    let pages = pages::routes()
        .layer(axum::middleware::from_fn_with_state(state.clone(), session::guard))
        .layer(axum::middleware::from_fn_with_state(state.clone(), error::deadline))
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")));

    // The account API: tokens, not sessions, so outside the session guard.
    let account_api = account_api::routes()
        .layer(axum::middleware::from_fn_with_state(state.clone(), account_api::deadline))
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")));

    // Browsers apply form-action to a form's redirects too: with billing on,
    // the Checkout and customer-portal forms end on Stripe's pages.
    let csp = if state.billing.is_some() { CSP_WITH_STRIPE } else { CSP };
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(account_api)
        // Stripe signs it; no session, no CSRF token.
        .merge(billing::webhook_routes())
        .route("/static/portal.css", get(assets::css))
        .route("/static/portal.js", get(assets::js))
        .route("/static/favicon.svg", get(assets::favicon))
        .route("/favicon.ico", get(assets::favicon))
        .merge(pages)
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp)))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .with_state(state);
    Ok(router)
}
