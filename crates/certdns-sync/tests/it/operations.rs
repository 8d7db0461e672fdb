//! Creating, writing and deleting through `TxtSync` reaches the distribution;
//! a publish that fails is repaired by the reconciler without anyone asking.

use std::sync::Arc;
use std::time::Duration;

use certdns_core::{
    Account, AccountId, AccountRole, AccountStatus, AllowFrom, Email, Registration, RegistrationId, Secret, Subdomain,
    TxtState, TxtValue, Username, now,
};
use certdns_replication::faults::FailingPublishes;
use certdns_replication::{Change, Distribution, InProcess, RedisDistribution, ResponderId};
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

struct Setup {
    store: Arc<dyn PortalStore>,
    dist: Arc<FailingPublishes>,
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
    let dist = Arc::new(FailingPublishes::new(inner));
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
            domain: None,
            password_sealed: None,
            acme_account_url: None,
            kind: certdns_core::RegistrationKind::Challenge,
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
    s.dist.fail(true);
    let written = s.write(&kept, 1).await;
    s.sync.delete_registration(s.account, gone.id).await.unwrap();
    let fresh = s.register().await;
    assert_eq!(s.published(kept.subdomain).await, Some(0), "the publish was lost");
    // No periodic reconciler runs here: the failed publish itself asked for a repair,
    // which retries with back-off until the distribution works again.
    s.dist.fail(false);
    s.eventually(kept.subdomain, Some(written.version)).await;
    s.eventually(gone.subdomain, None).await;
    s.eventually(fresh.subdomain, Some(0)).await;
}

async fn reconcile_seeds_an_empty_distribution_and_removes_strays(s: Setup) {
    let reg = s.register().await;
    let state = s.write(&reg, 7).await;
    let empty: Arc<dyn Distribution> = Arc::new(InProcess::new());
    let stray = Subdomain::generate();
    empty.publish(&[Change::Upsert(TxtState::values(stray, 3, Vec::new()))]).await.unwrap();
    let fresh = TxtSync::new(s.store.core(), empty.clone(), 2);
    let report = fresh.reconcile_now().await.unwrap();
    assert_eq!((report.checked, report.upserted, report.removed), (1, 1, 1));
    let states = empty.snapshot().await.unwrap().states;
    assert_eq!(states, vec![state]);
    let again = fresh.reconcile_now().await.unwrap();
    assert_eq!((again.upserted, again.removed), (0, 0), "a second run has nothing to do");
}

/// A Redis that comes back from an old save holds a "complete" generation that
/// is stale: the writer sees the newest change go back in time, republishes the
/// store into a new generation, and a follower keeps everything meanwhile.
#[tokio::test]
async fn a_distribution_restored_from_an_old_save_is_republished() {
    let (s, (_db, redis)) = open(Backend::Fleet).await;
    let redis = redis.expect("a Redis");
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    s.sync.reconcile_now().await.unwrap(); // a complete generation
    let early = s.register().await;
    s.write(&early, 1).await;
    // The "save": every key of the deployment as it is now.
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{}*", redis.prefix())).query_async(&mut conn).await.unwrap();
    let mut saved = Vec::new();
    for key in &keys {
        let dump: Vec<u8> = redis::cmd("DUMP").arg(key).query_async(&mut conn).await.unwrap();
        saved.push((key.clone(), dump));
    }
    let replica = certdns_replication::Replica::new();
    let follower = certdns_replication::Follower::new(s.dist.clone(), replica.clone(), ResponderId::generate("r"));
    let cancel = tokio_util::sync::CancellationToken::new();
    tokio::spawn(follower.run(cancel.clone()));
    let late = s.register().await;
    let written = s.write(&late, 1).await;
    wait_for(|| replica.version(late.subdomain) == Some(written.version)).await;

    // Restored from the save: the late registration is gone from Redis.
    for (key, dump) in &saved {
        let _: () =
            redis::cmd("RESTORE").arg(key).arg(0).arg(dump).arg("REPLACE").query_async(&mut conn).await.unwrap();
    }
    let stale = s.dist.inner.snapshot().await.unwrap();
    assert!(stale.states.iter().all(|st| st.subdomain != late.subdomain) && stale.generation.is_complete());
    // The writer notices within a check or two and republishes into a new generation.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let snap = s.dist.inner.snapshot().await.unwrap();
        if snap.generation.is_complete()
            && snap.generation != stale.generation
            && snap.states.iter().any(|st| st.subdomain == late.subdomain)
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the stale generation was never replaced");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The follower never dropped the late name, and holds the new generation.
    assert_eq!(replica.version(late.subdomain), Some(written.version));
    assert_eq!(replica.version(early.subdomain).map(|v| v >= 1), Some(true));
    cancel.cancel();
}

async fn wait_for(mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "not reached within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
