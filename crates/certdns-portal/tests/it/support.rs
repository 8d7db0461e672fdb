//! A portal, the acme-dns API and a tiny DNS resolver stand-in, all on loopback,
//! over one store (SQLite or Postgres) and an in-process distribution.

use std::net::SocketAddr;
use std::sync::Arc;

use certdns_core::{Account, AccountId, AccountRole, AccountStatus, Email, now};
use certdns_portal::{PortalConfig, PortalDeps};
use certdns_replication::{Distribution, InProcess};
use certdns_store::PortalStore;
use certdns_sync::TxtSync;
use certdns_testkit::{Backend, TestDatabase};
use hickory_proto::rr::{RData, RecordType};
use tokio::net::TcpListener;

pub const ZONE: &str = "auth.certdns.test";
/// The API and the portal of a test share it, as in one process.
pub const CREDENTIALS_KEY: &str = "the-portal-tests-credentials-key-0123456789";

pub use certdns_testkit::resolver::{Zone, cname, spawn_dns, txt};

pub struct Env {
    pub portal: String,
    pub api: String,
    pub store: Arc<dyn PortalStore>,
    pub distribution: Arc<dyn Distribution>,
    pub sync: Arc<TxtSync>,
    pub dns: Zone,
    /// The stand-in resolver answering from `dns` (the portal's `resolver`).
    pub resolver: SocketAddr,
    pub data_dir: tempfile::TempDir,
    /// `[billing]` as the portal and the API got it.
    pub billing: certdns_billing::BillingConfig,
    /// The test API's identity in its heartbeats (`env.sync.beat(&env.api_instance)`
    /// writes one at once).
    pub api_instance: certdns_sync::heartbeat::Instance,
    _heartbeat: AbortOnDrop,
    _db: TestDatabase,
}

/// Stops a task with the test (the heartbeat must not outlive its database).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Env {
    pub fn outbox(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("outbox.eml")).unwrap_or_default()
    }

    /// The payment reminders as the portal role runs them (billing on only);
    /// tests call their `round` at the times they choose.
    pub fn reminders(&self) -> certdns_portal::PaymentReminders {
        let config = PortalConfig { public_url: Some(self.portal.clone()), ..PortalConfig::default() };
        certdns_portal::payment_reminders(&config, self.store.core(), self.data_dir.path(), &self.billing)
            .unwrap()
            .expect("billing is on")
    }

    pub fn set_dns(&self, name: &str, rtype: RecordType, data: Vec<RData>) {
        self.dns.lock().unwrap().insert((name.trim_end_matches('.').to_lowercase(), rtype), data);
    }
}

pub async fn start(backend: Backend) -> Env {
    start_with(backend, |_| {}).await
}

pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut PortalConfig)) -> Env {
    start_full(backend, tweak, certdns_billing::BillingConfig::default()).await
}

/// With `[billing]` (the API gets the same plans, as in one process).
pub async fn start_full(
    backend: Backend,
    tweak: impl FnOnce(&mut PortalConfig),
    billing: certdns_billing::BillingConfig,
) -> Env {
    // The Stripe client's TLS needs one crypto provider; fantoccini brings a second.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDatabase::new(backend).await;
    let store = certdns_store::open_portal(db.url()).await.unwrap();
    store.core().migrate().await.unwrap();
    let distribution: Arc<dyn Distribution> = Arc::new(InProcess::new());
    let sync = TxtSync::new(store.core(), distribution.clone(), certdns_api::ApiConfig::default().served_values());
    let dns: Zone = Arc::default();
    let resolver = spawn_dns(dns.clone()).await;

    let api_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = api_listener.local_addr().unwrap();
    // The portal's listener first: the API's document names it as the account API's server.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let account_api = certdns_portal::account_api_document(&format!("http://{addr}"));
    let api = certdns_api::router(certdns_api::ApiDeps {
        store: store.core(),
        sync: sync.clone(),
        config: certdns_api::ApiConfig { credentials_key: Some(CREDENTIALS_KEY.into()), ..Default::default() },
        zone_domain: ZONE.into(),
        public_url: "http://127.0.0.1".into(),
        usage: Some(store.clone()),
        also_documented: Some(account_api.clone()),
        entitlements: certdns_billing::Entitlements::from_config(&billing).map(Arc::new),
    });
    tokio::spawn(async move {
        axum::serve(api_listener, api.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });

    // The API instance's heartbeat, as the binary's api role writes it.
    let api_instance = certdns_sync::heartbeat::Instance::new("api", format!("test-api {api_addr}"));
    let heartbeat = sync.spawn_heartbeat(api_instance.clone(), Default::default());
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = PortalConfig {
        listen: addr,
        public_url: Some(format!("http://{addr}")),
        secure_cookies: false,
        resolver,
        ..PortalConfig::default()
    };
    tweak(&mut config);
    let router = certdns_portal::router(PortalDeps {
        store: store.clone(),
        sync: sync.clone(),
        config,
        public_api_url: format!("http://{api_addr}"),
        zone_domain: ZONE.into(),
        data_dir: data_dir.path().to_owned(),
        credentials_key: Some(CREDENTIALS_KEY.into()),
        billing: billing.clone(),
        api_document: Some(certdns_api::openapi::merged(Some(account_api))),
    })
    .await
    .unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    Env {
        portal: format!("http://{addr}"),
        api: format!("http://{api_addr}"),
        store,
        distribution,
        sync,
        dns,
        resolver,
        data_dir,
        billing,
        api_instance,
        _heartbeat: AbortOnDrop(heartbeat),
        _db: db,
    }
}

/// A browser-like client: cookies, no automatic redirects (tests look at them).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The CSRF token of the first form on a page.
pub fn csrf(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("page has a csrf field") + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

pub async fn get(c: &reqwest::Client, url: &str) -> (u16, String, Option<String>) {
    let r = c.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    (status, r.text().await.unwrap(), location)
}

pub async fn post(c: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, String, Option<String>) {
    let r = c.post(url).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    (status, r.text().await.unwrap(), location)
}

pub const PASSWORD: &str = "correct horse battery staple";

/// Signs up `email` in a fresh client; returns the client (logged in).
pub async fn signup(env: &Env, email: &str) -> reqwest::Client {
    let c = client();
    let (_, page, _) = get(&c, &format!("{}/signup", env.portal)).await;
    let token = csrf(&page);
    let (status, body, location) = post(
        &c,
        &format!("{}/signup", env.portal),
        &[("csrf", &token), ("email", email), ("password", PASSWORD), ("password_confirm", PASSWORD)],
    )
    .await;
    assert_eq!((status, location.as_deref()), (303, Some("/signup/sent")), "signup failed: {body}");
    // Post/Redirect/Get: the page after it is a plain GET (a reload repeats nothing).
    let (status, body, _) = get(&c, &format!("{}/signup/sent", env.portal)).await;
    assert!(status == 200 && body.contains("Check your inbox"), "{body}");
    let (status, _, location) = get(&c, &format!("{}/keys", env.portal)).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")), "no session before the address is confirmed");
    // The confirmation link finishes the sign-up and signs in.
    let link = link_in(&env.outbox(), "/verify-email?token=");
    let (status, _, location) = get(&c, &format!("{}{link}", env.portal)).await;
    assert_eq!((status, location.as_deref()), (303, Some("/keys?notice=welcome")));
    c
}

/// The CSRF token of a logged-in client (from the keys page).
pub async fn token(env: &Env, c: &reqwest::Client) -> String {
    let (status, page, _) = get(c, &format!("{}/keys", env.portal)).await;
    assert_eq!(status, 200);
    csrf(&page)
}

/// Creates a key; returns (key id, base URL with credentials).
pub async fn create_key(env: &Env, c: &reqwest::Client, name: &str) -> (String, String) {
    let t = token(env, c).await;
    let (status, page, location) = post(c, &format!("{}/keys", env.portal), &[("csrf", &t), ("name", name)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/keys/created")), "{page}");
    let page = shown_once(env, c).await;
    base_url_on(&page)
}

/// `/keys/created` after a create or rotate: the page with the new secret.
/// Asking again shows it no more.
pub async fn shown_once(env: &Env, c: &reqwest::Client) -> String {
    let (status, page, _) = get(c, &format!("{}/keys/created", env.portal)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"base-url\""), "the new secret is shown: {page}");
    let (status, again, _) = get(c, &format!("{}/keys/created", env.portal)).await;
    assert_eq!(status, 200);
    assert!(again.contains("Secret already shown") && !again.contains("base-url"), "shown once: {again}");
    page
}

/// The key id and base URL on the page that shows a new secret.
pub fn base_url_on(page: &str) -> (String, String) {
    let marker = "id=\"base-url\" class=\"mono\" readonly value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    let end = page[start..].find('"').unwrap() + start;
    let url = page[start..end].to_owned();
    let id = url.split("//").nth(1).unwrap().split(':').next().unwrap().to_owned();
    (id, url)
}

/// Registers through the real API with a base URL carrying the key; returns the JSON.
pub async fn register(base_url: &str, subject: &str) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{base_url}/register"))
        .json(&serde_json::json!({ "subject": subject }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Logs in without a cookie jar; returns the `Cookie:` header value of the session.
pub async fn session_cookie(env: &Env, email: &str) -> String {
    let c = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = c.get(format!("{}/login", env.portal)).send().await.unwrap();
    let set = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    let csrf_cookie = set.split(';').next().unwrap().to_owned();
    let page = r.text().await.unwrap();
    let t = csrf(&page);
    let r = c
        .post(format!("{}/login", env.portal))
        .header("cookie", &csrf_cookie)
        .form(&[("csrf", t.as_str()), ("email", email), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let set = r.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Max-Age="), "{set}");
    set.split(';').next().unwrap().to_owned()
}

/// A sign-in attempt from a fresh browser: status and page.
pub async fn try_login(env: &Env, email: &str, password: &str) -> (u16, String) {
    let c = client();
    let (_, page, _) = get(&c, &format!("{}/login", env.portal)).await;
    let t = csrf(&page);
    let (status, page, _) =
        post(&c, &format!("{}/login", env.portal), &[("csrf", &t), ("email", email), ("password", password)]).await;
    (status, page)
}

pub async fn login(env: &Env, email: &str, password: &str) -> Option<reqwest::Client> {
    let c = client();
    let (_, page, _) = get(&c, &format!("{}/login", env.portal)).await;
    let t = csrf(&page);
    let (status, _, _) =
        post(&c, &format!("{}/login", env.portal), &[("csrf", &t), ("email", email), ("password", password)]).await;
    (status == 303).then_some(c)
}

pub fn link_in(outbox: &str, path: &str) -> String {
    let start = outbox.rfind(path).unwrap();
    let rest = &outbox[start..];
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    rest[..end].to_owned()
}

pub async fn create_operator(env: &Env, email: &str) -> AccountId {
    let hash = certdns_core::password::hash(PASSWORD).unwrap();
    let account = Account {
        id: AccountId::generate(),
        email: Email::parse(email).unwrap(),
        role: AccountRole::Operator,
        status: AccountStatus::Active,
        password_hash: Some(hash),
        created_at: now(),
    };
    env.store.core().create_account(&account).await.unwrap();
    account.id
}
