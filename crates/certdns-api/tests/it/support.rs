//! Test harness: the router served over real HTTP on 127.0.0.1, backed by SQLite +
//! in-process distribution or by Postgres + Redis.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use certdns_api::{ApiConfig, ApiDeps};
use certdns_core::{
    Account, AccountId, AccountRole, AccountStatus, AuditKind, Email, KeyId, LicenseKey, Secret, Subdomain, TxtState,
    now,
};
use certdns_replication::faults::FailingPublishes;
use certdns_replication::{Distribution, InProcess, RedisDistribution};
use certdns_store::Store;
use certdns_sync::TxtSync;
use certdns_testkit::{Backend, TestDatabase, TestRedis};

pub const ZONE: &str = "auth.example.org";

pub struct Env {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub dist: Arc<FailingPublishes>,
    pub account: AccountId,
    pub key: KeyId,
    pub secret: Secret,
    pub config: ApiConfig,
    db: TestDatabase,
    _redis: Option<TestRedis>,
}

/// The store and distribution of `backend`, each the test's own.
pub async fn open_backends(
    backend: Backend,
) -> (Arc<dyn Store>, Arc<dyn Distribution>, TestDatabase, Option<TestRedis>) {
    let db = TestDatabase::new(backend).await;
    let store = certdns_store::open(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    match backend {
        Backend::Embedded => (store, Arc::new(InProcess::new()), db, None),
        Backend::Fleet => {
            let redis = TestRedis::new().await;
            let dist = RedisDistribution::connect(redis.url(), redis.prefix()).await.unwrap();
            (store, Arc::new(dist), db, Some(redis))
        }
    }
}

impl Env {
    pub async fn start(backend: Backend) -> Env {
        Self::with_config(backend, ApiConfig::default()).await
    }

    pub async fn with_config(backend: Backend, config: ApiConfig) -> Env {
        Self::with_billing(backend, config, None).await
    }

    /// With billing on: the plans and grace periods of `entitlements`.
    pub async fn with_billing(
        backend: Backend,
        config: ApiConfig,
        entitlements: Option<Arc<certdns_billing::Entitlements>>,
    ) -> Env {
        config.validate().unwrap();
        let (store, inner, db, redis) = open_backends(backend).await;
        let dist = Arc::new(FailingPublishes::new(inner));
        let account = create_account(&store, "owner@example.com", AccountRole::Customer).await;
        let (key, secret) = create_key(&store, account).await;
        let router = certdns_api::router(ApiDeps {
            store: store.clone(),
            sync: TxtSync::new(store.clone(), dist.clone(), config.served_values()),
            config: config.clone(),
            zone_domain: ZONE.into(),
            public_url: "http://127.0.0.1".into(),
            usage: None,
            also_documented: None,
            entitlements,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
        });
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Env { base: format!("http://{addr}"), http, store, dist, account, key, secret, config, db, _redis: redis }
    }

    /// Postgres only: the database refuses and drops every connection.
    pub async fn cut_database(&self) {
        match &self.db {
            TestDatabase::Postgres(db) => db.cut_connections().await,
            TestDatabase::Sqlite(_) => panic!("cut_database needs the fleet backend"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `Authorization: Basic` with standard padded base64 of this env's key.
    pub fn basic(&self) -> String {
        basic(self.key.as_str(), self.secret.expose())
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path))
    }

    /// Registers with this env's key and returns the parsed account JSON.
    pub async fn register(&self) -> Registered {
        let r = self.post("/register").header("authorization", self.basic()).send().await.unwrap();
        assert_eq!(r.status(), 201);
        let reg = Registered::from_json(&r.json().await.unwrap());
        assert_eq!(reg.fulldomain, format!("{}.{ZONE}", reg.subdomain));
        reg
    }

    pub async fn snapshot_state(&self, sub: &str) -> Option<TxtState> {
        let sub: Subdomain = sub.parse().unwrap();
        self.dist.inner.snapshot().await.unwrap().states.into_iter().find(|s| s.subdomain == sub)
    }

    pub async fn audit_kinds(&self, account: AccountId) -> Vec<AuditKind> {
        self.store.audit_events(account, None, 100).await.unwrap().into_iter().map(|e| e.kind).collect()
    }

    /// Polls the audit log (some events are written in the background).
    pub async fn wait_for_audit(&self, account: AccountId, kind: AuditKind) {
        for _ in 0..50 {
            if self.audit_kinds(account).await.contains(&kind) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {kind} audit event for {account}: {:?}", self.audit_kinds(account).await);
    }
}

pub fn basic(user: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}")))
}

pub fn basic_url_safe(user: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{user}:{secret}")))
}

pub async fn create_account(store: &Arc<dyn Store>, email: &str, role: AccountRole) -> AccountId {
    let account = Account {
        id: AccountId::generate(),
        email: Email::parse(email).unwrap(),
        role,
        status: AccountStatus::Active,
        password_hash: None,
        created_at: now(),
    };
    store.create_account(&account).await.unwrap();
    account.id
}

pub async fn create_key(store: &Arc<dyn Store>, account: AccountId) -> (KeyId, Secret) {
    let secret = Secret::generate();
    let key = LicenseKey {
        id: KeyId::generate(),
        account_id: account,
        name: "test".into(),
        secret_hash: secret.hash(),
        created_at: now(),
        last_used_at: None,
        revoked_at: None,
        storage_access: false,
    };
    store.create_license_key(&key).await.unwrap();
    (key.id, secret)
}

#[derive(Debug, Clone)]
pub struct Registered {
    pub username: String,
    pub password: String,
    pub fulldomain: String,
    pub subdomain: String,
    pub allowfrom: Vec<String>,
}

impl Registered {
    pub fn from_json(v: &serde_json::Value) -> Self {
        let s = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("{k} missing in {v}")).to_owned();
        Registered {
            username: s("username"),
            password: s("password"),
            fulldomain: s("fulldomain"),
            subdomain: s("subdomain"),
            allowfrom: v["allowfrom"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect(),
        }
    }
}

/// A valid 43-character TXT value, distinct per `i`.
pub fn txt(i: usize) -> String {
    format!("{i:_>43}")
}

pub const FORBIDDEN: &str = r#"{"error": "forbidden"}"#;
pub const BAD_TXT: &str = r#"{"error": "bad_txt"}"#;

/// Asserts a JSON error response byte for byte.
pub async fn expect_error(r: reqwest::Response, status: u16, code: &str) {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.text().await.unwrap(), format!("{{\"error\": \"{code}\"}}"));
}

pub async fn update(env: &Env, reg: &Registered, value: &str) -> reqwest::Response {
    env.post("/update")
        .header("X-Api-User", &reg.username)
        .header("X-Api-Key", &reg.password)
        .body(format!(r#"{{"subdomain": "{}", "txt": "{value}"}}"#, reg.subdomain))
        .send()
        .await
        .unwrap()
}
