//! One behaviour suite for the `Store` trait, run against SQLite and Postgres.
//!
//! Each case is written once as `async fn case(store)` and instantiated for both
//! backends by `certdns_testkit::both_backends!`; every instance gets a database of its own.

use std::collections::BTreeSet;
use std::sync::Arc;

use certdns_core::{
    Account, AccountId, AccountRole, AccountStatus, AllowFrom, AuditKind, Email, KeyId, LicenseKey, NewAuditEvent,
    Registration, RegistrationId, Secret, SecretHash, Subdomain, TxtValue, Username, now,
};
use certdns_store::{Store, StoreError};
use certdns_testkit::{Backend, TestDatabase, TestPostgres, TestSqlite};

use crate::fast_writes::{fast, fast_registration};

certdns_testkit::both_backends!(setup = open_store;
    accounts,
    license_keys_are_scoped_to_their_account,
    registrations_are_scoped_to_their_account,
    txt_keeps_the_most_recent_values,
    concurrent_txt_writes_are_serialised,
    txt_state_pages_cover_every_registration,
    audit_log_pages_newest_first,
    migrations_are_idempotent,
    registration_for_update_carries_the_account_status,
    versioned_delete_returns_the_last_version,
    license_key_addresses_are_new_once,
    registrations_are_created_with_their_audit_event,
    fast_txt_write_checks_every_condition,
    fast_batch_answers_each_write_in_order,
    concurrent_fast_writes_are_serialised,
);

pub(crate) async fn open_store(backend: Backend) -> (Arc<dyn Store>, TestDatabase) {
    let db = TestDatabase::new(backend).await;
    (open(db.url()).await, db)
}

async fn open(url: &str) -> Arc<dyn Store> {
    let store = certdns_store::open(url).await.expect("open store");
    store.migrate().await.expect("migrate");
    store
}

pub(crate) fn account(email: &str) -> Account {
    Account {
        id: AccountId::generate(),
        email: Email::parse(email).unwrap(),
        role: AccountRole::Customer,
        status: AccountStatus::Active,
        password_hash: None,
        created_at: now(),
    }
}

pub(crate) fn key(account: AccountId) -> (LicenseKey, Secret) {
    let secret = Secret::generate();
    let key = LicenseKey {
        id: KeyId::generate(),
        account_id: account,
        name: "ci".into(),
        secret_hash: secret.hash(),
        created_at: now(),
        last_used_at: None,
        revoked_at: None,
        storage_access: false,
    };
    (key, secret)
}

pub(crate) fn registration(account: AccountId, key: Option<KeyId>) -> Registration {
    Registration {
        id: RegistrationId::generate(),
        account_id: account,
        license_key_id: key,
        username: Username::generate(),
        password_hash: Secret::generate().hash(),
        subdomain: Subdomain::generate(),
        allow_from: AllowFrom::parse(&["10.0.0.0/8", "::1/128"]).unwrap(),
        subject: Some("example.com".into()),
        domain: None,
        password_sealed: None,
        acme_account_url: None,
        kind: certdns_core::RegistrationKind::Challenge,
        created_at: now(),
        last_update_at: None,
    }
}

pub(crate) fn txt(i: usize) -> TxtValue {
    TxtValue::parse(&format!("{i:0>43}")).unwrap()
}

async fn accounts(store: Arc<dyn Store>) {
    let a = account("Alice@Example.com");
    store.create_account(&a).await.unwrap();
    assert_eq!(store.account(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.account_by_email("ALICE@example.COM").await.unwrap(), Some(a.clone()));
    assert_eq!(store.account_by_email("not an email").await.unwrap(), None);

    let dup = account("alice@example.com");
    assert!(matches!(store.create_account(&dup).await, Err(StoreError::Conflict(_))));

    let b = account("bob@example.com");
    store.create_account(&b).await.unwrap();
    assert_eq!(store.count_accounts().await.unwrap(), 2);
    let listed: Vec<_> = store.list_accounts().await.unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(listed, [a.id, b.id]);

    store.set_account_status(a.id, AccountStatus::Suspended).await.unwrap();
    assert_eq!(store.account(a.id).await.unwrap().unwrap().status, AccountStatus::Suspended);
    assert!(matches!(
        store.set_account_status(AccountId::generate(), AccountStatus::Active).await,
        Err(StoreError::NotFound)
    ));
}

async fn license_keys_are_scoped_to_their_account(store: Arc<dyn Store>) {
    let a = account("a@example.com");
    let b = account("b@example.com");
    store.create_account(&a).await.unwrap();
    store.create_account(&b).await.unwrap();
    let (ka, secret) = key(a.id);
    let (kb, _) = key(b.id);
    store.create_license_key(&ka).await.unwrap();
    store.create_license_key(&kb).await.unwrap();

    let loaded = store.license_key(&ka.id).await.unwrap().unwrap();
    assert_eq!(loaded, ka);
    assert!(loaded.secret_hash.verify(secret.expose()));
    assert_eq!(store.list_license_keys(a.id).await.unwrap(), std::slice::from_ref(&ka));

    // B cannot revoke A's key, even knowing its id.
    assert!(matches!(store.revoke_license_key(b.id, &ka.id, now()).await, Err(StoreError::NotFound)));
    assert!(store.license_key(&ka.id).await.unwrap().unwrap().is_active());

    store.revoke_license_key(a.id, &ka.id, now()).await.unwrap();
    assert!(!store.license_key(&ka.id).await.unwrap().unwrap().is_active());
    assert!(matches!(store.revoke_license_key(a.id, &ka.id, now()).await, Err(StoreError::NotFound)));

    let used = now();
    store.touch_license_key(&kb.id, used).await.unwrap();
    assert_eq!(store.license_key(&kb.id).await.unwrap().unwrap().last_used_at, Some(used));
}

async fn registrations_are_scoped_to_their_account(store: Arc<dyn Store>) {
    let a = account("a@example.com");
    let b = account("b@example.com");
    store.create_account(&a).await.unwrap();
    store.create_account(&b).await.unwrap();
    let (ka, _) = key(a.id);
    store.create_license_key(&ka).await.unwrap();
    let ra = registration(a.id, Some(ka.id.clone()));
    let rb = registration(b.id, None);
    store.create_registration(&ra).await.unwrap();
    store.create_registration(&rb).await.unwrap();

    assert_eq!(store.registration_by_username(ra.username).await.unwrap(), Some(ra.clone()));
    assert_eq!(store.registration_by_username(Username::generate()).await.unwrap(), None);
    assert_eq!(store.registration_by_subdomain(a.id, ra.subdomain).await.unwrap(), Some(ra.clone()));
    assert_eq!(
        store.registration_by_subdomain(b.id, ra.subdomain).await.unwrap(),
        None,
        "B must not see A's registration"
    );
    assert_eq!(store.list_registrations(a.id).await.unwrap(), std::slice::from_ref(&ra));

    let mut clash = registration(a.id, None);
    clash.subdomain = ra.subdomain;
    assert!(matches!(store.create_registration(&clash).await, Err(StoreError::Conflict(_))));

    store.put_txt(ra.id, &txt(1), 2, now()).await.unwrap();
    assert!(matches!(store.delete_registration(b.id, ra.id).await, Err(StoreError::NotFound)));
    assert!(store.txt_state(ra.subdomain, 2).await.unwrap().is_some());
    assert_eq!(store.delete_registration(a.id, ra.id).await.unwrap(), ra.subdomain);
    assert_eq!(store.txt_state(ra.subdomain, 2).await.unwrap(), None);
    assert_eq!(store.registration_by_username(ra.username).await.unwrap(), None);
    assert!(matches!(store.delete_registration(a.id, ra.id).await, Err(StoreError::NotFound)));
}

async fn txt_keeps_the_most_recent_values(store: Arc<dyn Store>) {
    let a = account("a@example.com");
    store.create_account(&a).await.unwrap();
    let r = registration(a.id, None);
    store.create_registration(&r).await.unwrap();

    let empty = store.txt_state(r.subdomain, 2).await.unwrap().unwrap();
    assert_eq!((empty.version, empty.values.len()), (0, 0), "registered, never updated");

    for i in 1..=3 {
        let state = store.put_txt(r.id, &txt(i), 2, now()).await.unwrap();
        assert_eq!(state.version, i as u64);
    }
    let state = store.txt_state(r.subdomain, 2).await.unwrap().unwrap();
    assert_eq!(state.version, 3);
    assert_eq!(state.values, [txt(3), txt(2)], "newest first, oldest evicted");
    assert!(store.registration_by_username(r.username).await.unwrap().unwrap().last_update_at.is_some());

    // A higher limit keeps more from then on; the same value twice is two values.
    store.put_txt(r.id, &txt(3), 3, now()).await.unwrap();
    let state = store.txt_state(r.subdomain, 3).await.unwrap().unwrap();
    assert_eq!(state.values, [txt(3), txt(3), txt(2)]);
    assert_eq!(store.txt_state(r.subdomain, 1).await.unwrap().unwrap().values, [txt(3)]);

    assert!(matches!(store.put_txt(RegistrationId::generate(), &txt(1), 2, now()).await, Err(StoreError::NotFound)));
}

async fn concurrent_txt_writes_are_serialised(store: Arc<dyn Store>) {
    let a = account("a@example.com");
    store.create_account(&a).await.unwrap();
    let r = registration(a.id, None);
    store.create_registration(&r).await.unwrap();

    let writers: Vec<_> = (1..=24)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.put_txt(r.id, &txt(i), 2, now()).await.map(|s| (s.version, i)) })
        })
        .collect();
    let mut by_version = std::collections::BTreeMap::new();
    for w in writers {
        let (version, i) = w.await.unwrap().unwrap();
        assert!(by_version.insert(version, i).is_none(), "version {version} handed out twice");
    }
    assert_eq!(by_version.keys().copied().collect::<Vec<_>>(), (1..=24).collect::<Vec<u64>>());

    let state = store.txt_state(r.subdomain, 2).await.unwrap().unwrap();
    assert_eq!(state.version, 24);
    let newest: Vec<_> = by_version.values().rev().take(2).map(|i| txt(*i)).collect();
    assert_eq!(state.values, newest, "exactly the two most recent writes survive");
}

async fn txt_state_pages_cover_every_registration(store: Arc<dyn Store>) {
    let a = account("a@example.com");
    store.create_account(&a).await.unwrap();
    let mut expected = BTreeSet::new();
    for i in 0..25 {
        let r = registration(a.id, None);
        store.create_registration(&r).await.unwrap();
        if i % 2 == 0 {
            for j in 0..3 {
                store.put_txt(r.id, &txt(j), 2, now()).await.unwrap();
            }
        }
        expected.insert(r.subdomain);
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.txt_states_page(after, 7, 2).await.unwrap();
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        after = Some(last.subdomain);
        for s in &page {
            assert!(s.values.len() <= 2);
            assert_eq!(s.values.is_empty(), s.version == 0);
        }
        seen.extend(page.into_iter().map(|s| s.subdomain));
    }
    assert_eq!(seen.len(), 25, "no registration twice, none missed");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), expected);
}

async fn audit_log_pages_newest_first(store: Arc<dyn Store>) {
    let a = account("a@example.com");
    let b = account("b@example.com");
    store.create_account(&a).await.unwrap();
    store.create_account(&b).await.unwrap();
    for i in 0..5 {
        let event = NewAuditEvent {
            account_id: Some(a.id),
            kind: AuditKind::RegistrationCreated,
            client_addr: Some("2001:db8::1".parse().unwrap()),
            detail: serde_json::json!({ "n": i }),
        };
        store.append_audit(&event, now()).await.unwrap();
    }
    let other = NewAuditEvent {
        account_id: Some(b.id),
        kind: AuditKind::Login,
        client_addr: None,
        detail: serde_json::json!({}),
    };
    store.append_audit(&other, now()).await.unwrap();

    let first = store.audit_events(a.id, None, 3).await.unwrap();
    assert_eq!(first.iter().map(|e| e.detail["n"].as_i64().unwrap()).collect::<Vec<_>>(), [4, 3, 2]);
    assert_eq!(first[0].client_addr, Some("2001:db8::1".parse().unwrap()));
    let second = store.audit_events(a.id, Some(first[2].id), 3).await.unwrap();
    assert_eq!(second.iter().map(|e| e.detail["n"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 0]);
    let bs = store.audit_events(b.id, None, 10).await.unwrap();
    assert_eq!(bs.len(), 1, "B sees only its own events");
    assert_eq!(bs[0].kind, AuditKind::Login);
}

async fn registration_for_update_carries_the_account_status(store: Arc<dyn Store>) {
    let a = account("a@example.com");
    store.create_account(&a).await.unwrap();
    let r = registration(a.id, None);
    store.create_registration(&r).await.unwrap();
    assert_eq!(store.registration_for_update(r.username).await.unwrap(), Some((r.clone(), AccountStatus::Active)));
    store.set_account_status(a.id, AccountStatus::Suspended).await.unwrap();
    assert_eq!(store.registration_for_update(r.username).await.unwrap(), Some((r.clone(), AccountStatus::Suspended)));
    assert_eq!(store.registration_for_update(Username::generate()).await.unwrap(), None);
}

async fn versioned_delete_returns_the_last_version(store: Arc<dyn Store>) {
    let a = account("a@example.com");
    let b = account("b@example.com");
    store.create_account(&a).await.unwrap();
    store.create_account(&b).await.unwrap();
    let r = registration(a.id, None);
    store.create_registration(&r).await.unwrap();
    for i in 0..3 {
        store.put_txt(r.id, &txt(i), 2, now()).await.unwrap();
    }
    assert!(matches!(store.delete_registration_versioned(b.id, r.id).await, Err(StoreError::NotFound)));
    assert_eq!(store.delete_registration_versioned(a.id, r.id).await.unwrap(), (r.subdomain, 3));
    assert_eq!(store.txt_state(r.subdomain, 2).await.unwrap(), None);
    assert!(matches!(store.delete_registration_versioned(a.id, r.id).await, Err(StoreError::NotFound)));
}

async fn registrations_are_created_with_their_audit_event(store: Arc<dyn Store>) {
    let a = account("a@example.com");
    store.create_account(&a).await.unwrap();
    let r = registration(a.id, None);
    let event = NewAuditEvent {
        account_id: Some(a.id),
        kind: AuditKind::RegistrationCreated,
        client_addr: Some("192.0.2.1".parse().unwrap()),
        detail: serde_json::json!({ "subdomain": r.subdomain.to_string() }),
    };
    store.create_registration_audited(&r, &event, now()).await.unwrap();
    assert_eq!(store.registration_by_username(r.username).await.unwrap(), Some(r.clone()));
    let events = store.audit_events(a.id, None, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].kind, events[0].client_addr), (AuditKind::RegistrationCreated, event.client_addr));
    assert_eq!(events[0].detail["subdomain"], r.subdomain.to_string());
    // A clash writes neither.
    let mut clash = registration(a.id, None);
    clash.username = r.username;
    assert!(matches!(store.create_registration_audited(&clash, &event, now()).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.audit_events(a.id, None, 10).await.unwrap().len(), 1);
}

async fn fast_txt_write_checks_every_condition(store: Arc<dyn Store>) {
    let a = account("a@example.com");
    let b = account("b@example.com");
    store.create_account(&a).await.unwrap();
    store.create_account(&b).await.unwrap();
    let secret = Secret::generate();
    let r = fast_registration(store.as_ref(), a.id, None, &secret).await;
    let mut restricted = registration(a.id, None);
    restricted.password_hash = secret.hash();
    store.create_registration(&restricted).await.unwrap();
    let (k, _) = key(a.id);
    store.create_license_key(&k).await.unwrap();
    let keyed = fast_registration(store.as_ref(), a.id, Some(k.id.clone()), &secret).await;
    let h = secret.hash();
    let put = |user, hash: SecretHash, sub, acct| {
        let store = store.clone();
        async move {
            let mut states = store.put_txts_if_authorized(&[fast(user, &hash, sub, acct, 1)], 2, now()).await.unwrap();
            assert_eq!(states.len(), 1);
            states.pop().unwrap()
        }
    };
    assert_eq!(put(r.username, Secret::generate().hash(), r.subdomain, None).await, None, "wrong secret");
    assert_eq!(put(r.username, h.clone(), restricted.subdomain, None).await, None, "other subdomain");
    assert_eq!(put(Username::generate(), h.clone(), r.subdomain, None).await, None, "unknown user");
    assert_eq!(put(r.username, h.clone(), r.subdomain, Some(b.id)).await, None, "other account");
    assert_eq!(put(restricted.username, h.clone(), restricted.subdomain, None).await, None, "allow-from set");
    assert_eq!(store.txt_state(r.subdomain, 2).await.unwrap().unwrap().version, 0, "nothing written");
    let state = put(r.username, h.clone(), r.subdomain, Some(a.id)).await.unwrap();
    assert_eq!((state.version, state.values), (1, vec![txt(1)]));
    assert_eq!(put(r.username, h.clone(), r.subdomain, None).await.unwrap().values, [txt(1), txt(1)]);
    assert!(put(keyed.username, h.clone(), keyed.subdomain, None).await.is_some(), "key not revoked");
    store.revoke_license_key(a.id, &k.id, now()).await.unwrap();
    assert_eq!(put(keyed.username, h.clone(), keyed.subdomain, None).await, None, "revoked key");
    store.set_account_status(a.id, AccountStatus::Suspended).await.unwrap();
    assert_eq!(put(r.username, h, r.subdomain, None).await, None, "suspended account");
    assert_eq!(store.put_txts_if_authorized(&[], 2, now()).await.unwrap(), vec![], "empty batch");
}

/// One batch: an answer per write in the caller's order; writes to one
/// registration apply in batch order, each on top of the one before.
async fn fast_batch_answers_each_write_in_order(store: Arc<dyn Store>) {
    let a = account("a@example.com");
    store.create_account(&a).await.unwrap();
    let secret = Secret::generate();
    let h = secret.hash();
    let r1 = fast_registration(store.as_ref(), a.id, None, &secret).await;
    let r2 = fast_registration(store.as_ref(), a.id, None, &secret).await;
    let wrong = Secret::generate().hash();
    let batch = [
        fast(r1.username, &h, r1.subdomain, None, 1),
        fast(r2.username, &wrong, r2.subdomain, None, 2),
        fast(r1.username, &h, r1.subdomain, None, 3),
        fast(r2.username, &h, r2.subdomain, None, 4),
        fast(r1.username, &h, r1.subdomain, None, 5),
        fast(Username::generate(), &h, r1.subdomain, None, 6),
    ];
    let states = store.put_txts_if_authorized(&batch, 2, now()).await.unwrap();
    let seen: Vec<_> = states.into_iter().map(|s| s.map(|s| (s.subdomain, s.version, s.values))).collect();
    assert_eq!(
        seen,
        vec![
            Some((r1.subdomain, 1, vec![txt(1)])),
            None,
            Some((r1.subdomain, 2, vec![txt(3), txt(1)])),
            Some((r2.subdomain, 1, vec![txt(4)])),
            Some((r1.subdomain, 3, vec![txt(5), txt(3)])),
            None,
        ]
    );
    assert_eq!(store.txt_state(r1.subdomain, 2).await.unwrap().unwrap().values, [txt(5), txt(3)]);
}

/// Batches running at once, each with several registrations: writes to one
/// registration are serialised, every write lands, versions are never reused.
async fn concurrent_fast_writes_are_serialised(store: Arc<dyn Store>) {
    let a = account("a@example.com");
    store.create_account(&a).await.unwrap();
    let secret = Secret::generate();
    let mut regs = Vec::new();
    for _ in 0..4 {
        regs.push(fast_registration(store.as_ref(), a.id, None, &secret).await);
    }
    // 24 batches of two writes (registrations i % 4 and (i + 1) % 4): 12 writes each.
    let writers: Vec<_> = (0..24)
        .map(|i| {
            let (store, h) = (store.clone(), secret.hash());
            let (r, s) = (regs[i % 4].clone(), regs[(i + 1) % 4].clone());
            tokio::spawn(async move {
                let batch = [
                    fast(r.username, &h, r.subdomain, None, 2 * i),
                    fast(s.username, &h, s.subdomain, None, 2 * i + 1),
                ];
                let states = store.put_txts_if_authorized(&batch, 2, now()).await.unwrap();
                let versions: Vec<u64> = states.iter().map(|s| s.as_ref().expect("authorized").version).collect();
                [(i % 4, versions[0], 2 * i), ((i + 1) % 4, versions[1], 2 * i + 1)]
            })
        })
        .collect();
    let mut versions = vec![std::collections::BTreeMap::new(); 4];
    for w in writers {
        for (reg, version, i) in w.await.unwrap() {
            assert!(versions[reg].insert(version, i).is_none(), "version {version} handed out twice");
        }
    }
    for (reg, by_version) in regs.iter().zip(&versions) {
        assert_eq!(by_version.keys().copied().collect::<Vec<_>>(), (1..=12).collect::<Vec<u64>>());
        let state = store.txt_state(reg.subdomain, 2).await.unwrap().unwrap();
        let newest: Vec<_> = by_version.values().rev().take(2).map(|i| txt(*i)).collect();
        assert_eq!((state.version, state.values), (12, newest));
    }
}

/// Two API instances (two stores, two pools) writing overlapping batches in
/// opposite orders at once: every write lands and Postgres reports no deadlock,
/// because each batch locks its rows in id order.
#[tokio::test]
async fn postgres_batches_from_two_instances_never_deadlock() {
    const TASKS: usize = 6;
    const BATCHES: usize = 15;
    let db = TestPostgres::new().await;
    let (one, two) = (open(db.url()).await, open(db.url()).await);
    let a = account("a@example.com");
    one.create_account(&a).await.unwrap();
    let secret = Secret::generate();
    let mut regs = Vec::new();
    for _ in 0..12 {
        regs.push(fast_registration(one.as_ref(), a.id, None, &secret).await);
    }
    let mut tasks = Vec::new();
    for t in 0..2 * TASKS {
        let store = if t % 2 == 0 { one.clone() } else { two.clone() };
        let (h, mut order) = (secret.hash(), regs.clone());
        if t % 2 == 1 {
            order.reverse();
        }
        order.rotate_left(t);
        tasks.push(tokio::spawn(async move {
            for i in 0..BATCHES {
                let batch: Vec<_> = order.iter().map(|r| fast(r.username, &h, r.subdomain, None, i)).collect();
                let states = store.put_txts_if_authorized(&batch, 2, now()).await.unwrap();
                assert!(states.iter().all(Option::is_some), "every write is authorized");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for r in &regs {
        assert_eq!(one.txt_state(r.subdomain, 2).await.unwrap().unwrap().version, (2 * TASKS * BATCHES) as u64);
    }
    // Backends flush their statistics when they exit: close both stores' pools,
    // wait for their sessions to end, then read the database's deadlock count.
    drop((one, two));
    let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
    let others = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()";
    for _ in 0..100 {
        if sqlx::query_scalar::<_, i64>(others).fetch_one(&pool).await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    sqlx::query("SELECT pg_stat_clear_snapshot()").execute(&pool).await.unwrap();
    let deadlocks: i64 =
        sqlx::query_scalar("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(deadlocks, 0);
}

async fn license_key_addresses_are_new_once(store: Arc<dyn Store>) {
    let a = account("a@example.com");
    store.create_account(&a).await.unwrap();
    let (k, _) = key(a.id);
    store.create_license_key(&k).await.unwrap();
    let v4: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    let mapped: std::net::IpAddr = "::ffff:192.0.2.7".parse().unwrap();
    assert!(store.note_license_key_address(&k.id, v4, now()).await.unwrap());
    assert!(!store.note_license_key_address(&k.id, v4, now()).await.unwrap());
    assert!(!store.note_license_key_address(&k.id, mapped, now()).await.unwrap(), "IPv4-mapped is the same address");
    assert!(store.note_license_key_address(&k.id, "2001:db8::1".parse().unwrap(), now()).await.unwrap());
}

async fn migrations_are_idempotent(store: Arc<dyn Store>) {
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    assert_eq!(store.count_accounts().await.unwrap(), 0);
}

/// A migration that fails part-way leaves the database as it was: the statements
/// before the failure are rolled back and the migration is not recorded.
mod failed_migration {
    use std::path::Path;

    use sqlx::migrate::Migrator;

    use super::*;

    fn migrations_with_broken_one(flavour: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations").join(flavour);
        for entry in std::fs::read_dir(src).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        std::fs::write(
            dir.path().join("9999_broken.sql"),
            "CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n",
        )
        .unwrap();
        dir
    }

    #[tokio::test]
    async fn sqlite() {
        let db = TestSqlite::new();
        open(db.url()).await;
        let dir = migrations_with_broken_one("sqlite");
        let pool = sqlx::SqlitePool::connect(db.url()).await.unwrap();
        let migrator = Migrator::new(dir.path()).await.unwrap();
        assert!(migrator.run(&pool).await.is_err());
        let tables: Vec<(String,)> =
            sqlx::query_as("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetch_all(&pool).await.unwrap();
        assert!(tables.is_empty(), "the failed migration's first statement was rolled back");
        let recorded: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations WHERE version = 9999")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(recorded.0, 0);
    }

    #[tokio::test]
    async fn postgres() {
        let db = TestPostgres::new().await;
        open(db.url()).await;
        let dir = migrations_with_broken_one("postgres");
        let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
        let migrator = Migrator::new(dir.path()).await.unwrap();
        assert!(migrator.run(&pool).await.is_err());
        let tables: Vec<(String,)> =
            sqlx::query_as("SELECT tablename::text FROM pg_tables WHERE tablename = 'half_done'")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert!(tables.is_empty(), "the failed migration's first statement was rolled back");
        let recorded: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations WHERE version = 9999")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(recorded.0, 0);
    }
}

/// Migration 0005 moves the TXT values of existing registrations into the
/// registration row, newest first.
mod txt_inline_migration {
    use std::path::Path;

    use sqlx::migrate::Migrator;

    use super::*;

    fn migrations_before_0005(flavour: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations").join(flavour);
        for entry in std::fs::read_dir(src).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if name.as_str() < "0005" {
                std::fs::copy(entry.path(), dir.path().join(&name)).unwrap();
            }
        }
        dir
    }

    const SEED: [&str; 3] = [
        "INSERT INTO accounts (id, email, role, status, created_at) VALUES ($1, 'a@example.com', 'customer', 'active', $2)",
        "INSERT INTO registrations (id, account_id, username, password_hash, subdomain, txt_version, created_at) \
         VALUES ($3, $1, $4, 'sha256:00', $5, 3, $2)",
        "INSERT INTO txt_values (registration_id, version, value) VALUES ($3, 2, $6), ($3, 3, $7)",
    ];

    async fn check(store: Arc<dyn Store>, sub: Subdomain) {
        let state = store.txt_state(sub, 2).await.unwrap().unwrap();
        assert_eq!((state.version, state.values), (3, vec![txt(3), txt(2)]));
    }

    #[tokio::test]
    async fn sqlite() {
        let db = TestSqlite::new();
        let pool = sqlx::SqlitePool::connect(&format!("{}?mode=rwc", db.url())).await.unwrap();
        Migrator::new(migrations_before_0005("sqlite").path()).await.unwrap().run(&pool).await.unwrap();
        let (acct, reg, user, sub) =
            (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        for sql in SEED {
            sqlx::query(sql)
                .bind(acct)
                .bind(now())
                .bind(reg)
                .bind(user)
                .bind(sub)
                .bind(txt(2).as_str())
                .bind(txt(3).as_str())
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
        check(open(db.url()).await, Subdomain::from_uuid(sub)).await;
    }

    #[tokio::test]
    async fn postgres() {
        let db = TestPostgres::new().await;
        let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
        Migrator::new(migrations_before_0005("postgres").path()).await.unwrap().run(&pool).await.unwrap();
        let (acct, reg, user, sub) =
            (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        for sql in SEED {
            sqlx::query(sql)
                .bind(acct)
                .bind(now())
                .bind(reg)
                .bind(user)
                .bind(sub)
                .bind(txt(2).as_str())
                .bind(txt(3).as_str())
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
        check(open(db.url()).await, Subdomain::from_uuid(sub)).await;
    }
}
