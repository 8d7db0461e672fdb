//! Creating, writing and deleting through `TxtSync` reaches the distribution;
//! a publish that fails is repaired by the reconciler without anyone asking.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use certdns_core::{
    Account, AccountId, AccountRole, AccountStatus, AllowFrom, Email, Registration, RegistrationId, Secret, Subdomain,
    TxtState, TxtValue, Username, now,
};
use certdns_replication::{Change, Cursor, DistError, Distribution, InProcess, RedisDistribution, Snapshot};
use certdns_store::PortalStore;
use certdns_sync::TxtSync;
use certdns_testkit::{Backend, TestDatabase, TestRedis};

certdns_testkit::both_backends!(
    setup = open;
    writes_and_creations_are_published,
    deletes_publish_tombstones_newer_than_any_upsert,
    account_deletion_removes_every_name,
    failed_publishes_are_repaired_at_once,
    reconcile_seeds_an_empty_distribution_and_removes_strays,
);

/// A distribution whose publishes fail while `failing` is set (Redis down).
struct Flaky {
    inner: Arc<dyn Distribution>,
    failing: AtomicBool,
}

#[async_trait]
impl Distribution for Flaky {
    fn kind(&self) -> &'static str {
        "flaky"
    }
    async fn publish(&self, changes: &[Change]) -> Result<(), DistError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(DistError::Unavailable("simulated outage".into()));
        }
        self.inner.publish(changes).await
    }
    async fn snapshot(&self) -> Result<Snapshot, DistError> {
        self.inner.snapshot().await
    }
    async fn changes(&self, cursor: &Cursor, wait: Duration) -> Result<(Vec<Change>, Cursor), DistError> {
        self.inner.changes(cursor, wait).await
    }
    async fn ping(&self) -> Result<(), DistError> {
        self.inner.ping().await
    }
}

struct Setup {
    store: Arc<dyn PortalStore>,
    dist: Arc<Flaky>,
    sync: Arc<TxtSync>,
    account: AccountId,
}

async fn open(backend: Backend) -> (Setup, (TestDatabase, Option<TestRedis>)) {
    let db = TestDatabase::new(backend).await;
    let store = certdns_store::open_portal(db.url()).await.unwrap();
    store.core().migrate().await.unwrap();
    let (inner, redis): (Arc<dyn Distribution>, _) = match backend {
        Backend::Embedded => (Arc::new(InProcess::new()), None),
        Backend::Fleet => {
            let redis = TestRedis::new().await;
            (Arc::new(RedisDistribution::connect(redis.url(), redis.prefix()).await.unwrap()), Some(redis))
        }
    };
    let dist = Arc::new(Flaky { inner, failing: AtomicBool::new(false) });
    let sync = TxtSync::new(store.core(), dist.clone(), 2);
    let account = Account {
        id: AccountId::generate(),
        email: Email::parse("owner@example.com").unwrap(),
        role: AccountRole::Customer,
        status: AccountStatus::Active,
        password_hash: None,
        created_at: now(),
    };
    store.core().create_account(&account).await.unwrap();
    (Setup { store, dist, sync, account: account.id }, (db, redis))
}

impl Setup {
    async fn register(&self) -> Registration {
        let reg = Registration {
            id: RegistrationId::generate(),
            account_id: self.account,
            license_key_id: None,
            username: Username::generate(),
            password_hash: Secret::generate().hash(),
            subdomain: Subdomain::generate(),
            allow_from: AllowFrom::default(),
            subject: None,
            created_at: now(),
            last_update_at: None,
        };
        self.store.core().create_registration(&reg).await.unwrap();
        self.sync.registration_created(reg.subdomain).await;
        reg
    }

    async fn write(&self, reg: &Registration, value: u32) -> TxtState {
        let value = TxtValue::parse(&format!("{value:0>43}")).unwrap();
        let state = self.store.core().put_txt(reg.id, &value, 2, now()).await.unwrap();
        self.sync.publish_states(vec![state.clone()]).await;
        state
    }

    /// What the distribution answers for `subdomain`: `None` if nothing (removed).
    async fn published(&self, subdomain: Subdomain) -> Option<u64> {
        let snapshot = self.dist.inner.snapshot().await.unwrap();
        snapshot.states.iter().find(|s| s.subdomain == subdomain).map(|s| s.version)
    }

    async fn eventually(&self, subdomain: Subdomain, want: Option<u64>) {
        for _ in 0..100 {
            if self.published(subdomain).await == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(self.published(subdomain).await, want, "{subdomain}");
    }
}

async fn writes_and_creations_are_published(s: Setup) {
    let reg = s.register().await;
    assert_eq!(s.published(reg.subdomain).await, Some(0), "a new name answers NODATA at once");
    let state = s.write(&reg, 1).await;
    assert_eq!(s.published(reg.subdomain).await, Some(state.version));
}

async fn deletes_publish_tombstones_newer_than_any_upsert(s: Setup) {
    let reg = s.register().await;
    let last = s.write(&reg, 1).await;
    assert_eq!(s.sync.delete_registration(s.account, reg.id).await.unwrap(), reg.subdomain);
    assert_eq!(s.published(reg.subdomain).await, None);
    // A late copy of the last upsert (a slow publisher, a replay) cannot bring it back.
    s.dist.publish(&[Change::Upsert(last)]).await.unwrap();
    assert_eq!(s.published(reg.subdomain).await, None);
    // Deleting again, or another account's registration, is "not found".
    assert!(matches!(s.sync.delete_registration(s.account, reg.id).await, Err(certdns_store::StoreError::NotFound)));
    let other = s.register().await;
    let stranger = AccountId::generate();
    assert!(s.sync.delete_registration(stranger, other.id).await.is_err());
    assert_eq!(s.published(other.subdomain).await, Some(0));
}

async fn account_deletion_removes_every_name(s: Setup) {
    let (a, b) = (s.register().await, s.register().await);
    s.write(&a, 1).await;
    assert_eq!(s.sync.delete_account(s.store.as_ref(), s.account).await.unwrap(), 2);
    assert_eq!((s.published(a.subdomain).await, s.published(b.subdomain).await), (None, None));
}

async fn failed_publishes_are_repaired_at_once(s: Setup) {
    let (kept, gone) = (s.register().await, s.register().await);
    s.dist.failing.store(true, Ordering::SeqCst);
    let written = s.write(&kept, 1).await;
    s.sync.delete_registration(s.account, gone.id).await.unwrap();
    let fresh = s.register().await;
    assert_eq!(s.published(kept.subdomain).await, Some(0), "the publish was lost");
    // No periodic reconciler runs here: the failed publish itself asked for a repair,
    // which retries with back-off until the distribution works again.
    s.dist.failing.store(false, Ordering::SeqCst);
    s.eventually(kept.subdomain, Some(written.version)).await;
    s.eventually(gone.subdomain, None).await;
    s.eventually(fresh.subdomain, Some(0)).await;
}

async fn reconcile_seeds_an_empty_distribution_and_removes_strays(s: Setup) {
    let reg = s.register().await;
    let state = s.write(&reg, 7).await;
    let empty: Arc<dyn Distribution> = Arc::new(InProcess::new());
    let stray = Subdomain::generate();
    empty.publish(&[Change::Upsert(TxtState { subdomain: stray, version: 3, values: Vec::new() })]).await.unwrap();
    let fresh = TxtSync::new(s.store.core(), empty.clone(), 2);
    let report = fresh.reconcile_now().await.unwrap();
    assert_eq!((report.checked, report.upserted, report.removed), (1, 1, 1));
    let states = empty.snapshot().await.unwrap().states;
    assert_eq!(states, vec![state]);
    let again = fresh.reconcile_now().await.unwrap();
    assert_eq!((again.upserted, again.removed), (0, 0), "a second run has nothing to do");
}
