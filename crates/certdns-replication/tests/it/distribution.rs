//! One behaviour suite for the `Distribution` trait and the follower/replica on
//! top of it, run against the in-process backend and a real Redis.

use std::sync::Arc;
use std::time::{Duration, Instant};

use certdns_core::{Subdomain, TxtState, TxtValue};
use certdns_replication::{
    Change, Distribution, Follower, Generation, InProcess, RedisDistribution, Replica, ResponderId,
};
use certdns_testkit::{Backend, TestRedis};
use tokio_util::sync::CancellationToken;

certdns_testkit::both_backends!(setup = open_distribution;
    snapshot_holds_the_newest_state,
    removal_wins_over_older_upserts,
    changes_follow_the_snapshot_cursor,
    waiting_for_changes_wakes_on_publish,
    followers_converge_and_keep_the_newest,
    publishes_return_ordered_positions,
    writers_wait_until_every_live_follower_applied,
    a_persist_record_reaches_every_follower_whole_and_its_removal_too,
);

/// The in-process backend, or a real Redis under a key prefix of the test's own.
async fn open_distribution(backend: Backend) -> (Arc<dyn Distribution>, Option<TestRedis>) {
    match backend {
        Backend::Embedded => (Arc::new(InProcess::new()), None),
        Backend::Fleet => {
            let redis = TestRedis::new().await;
            let dist = RedisDistribution::connect(redis.url(), redis.prefix()).await.unwrap();
            (Arc::new(dist), Some(redis))
        }
    }
}

fn value(i: u64) -> TxtValue {
    TxtValue::parse(&format!("{i:0>43}")).unwrap()
}

fn upsert(subdomain: Subdomain, version: u64) -> Change {
    let values = (version.saturating_sub(1)..=version).rev().filter(|v| *v > 0).map(value).collect();
    Change::Upsert(TxtState::values(subdomain, version, values))
}

async fn snapshot_holds_the_newest_state(dist: Arc<dyn Distribution>) {
    dist.ping().await.unwrap();
    let a = Subdomain::generate();
    let b = Subdomain::generate();
    dist.publish(&[upsert(a, 0), upsert(b, 3)]).await.unwrap();
    dist.publish(&[upsert(a, 2), upsert(b, 1)]).await.unwrap(); // b: older, ignored
    let snap = dist.snapshot().await.unwrap();
    let mut states = snap.states;
    states.sort_by_key(|s| s.subdomain != a);
    assert_eq!(states.len(), 2);
    assert_eq!(Change::Upsert(states[0].clone()), upsert(a, 2));
    assert_eq!(Change::Upsert(states[1].clone()), upsert(b, 3));
}

async fn removal_wins_over_older_upserts(dist: Arc<dyn Distribution>) {
    let a = Subdomain::generate();
    dist.publish(&[upsert(a, 4)]).await.unwrap();
    dist.publish(&[Change::Remove { subdomain: a, version: 5 }]).await.unwrap();
    dist.publish(&[upsert(a, 4)]).await.unwrap();
    assert!(dist.snapshot().await.unwrap().states.is_empty(), "removed stays removed");
}

async fn changes_follow_the_snapshot_cursor(dist: Arc<dyn Distribution>) {
    let a = Subdomain::generate();
    dist.publish(&[upsert(a, 1)]).await.unwrap();
    let snap = dist.snapshot().await.unwrap();
    let (none, same) = dist.changes(&snap.cursor, Duration::from_millis(50)).await.unwrap();
    assert!(none.is_empty());
    assert_eq!(same, snap.cursor);

    let b = Subdomain::generate();
    dist.publish(&[upsert(a, 2), upsert(b, 1), upsert(a, 1)]).await.unwrap();
    let (changes, next) = dist.changes(&snap.cursor, Duration::from_secs(1)).await.unwrap();
    assert_eq!(changes, [upsert(a, 2), upsert(b, 1)], "in order, stale one dropped at the source");
    let (none, _) = dist.changes(&next, Duration::from_millis(50)).await.unwrap();
    assert!(none.is_empty(), "nothing is delivered twice from the advanced cursor");
}

async fn waiting_for_changes_wakes_on_publish(dist: Arc<dyn Distribution>) {
    let snap = dist.snapshot().await.unwrap();
    let a = Subdomain::generate();
    let publisher = {
        let dist = dist.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            dist.publish(&[upsert(a, 1)]).await.unwrap();
        })
    };
    let started = Instant::now();
    let (changes, _) = dist.changes(&snap.cursor, Duration::from_secs(10)).await.unwrap();
    assert_eq!(changes, [upsert(a, 1)]);
    assert!(started.elapsed() < Duration::from_secs(5), "woken by the publish, not by the timeout");
    publisher.await.unwrap();
}

/// What a writer does before responders may trust a snapshot: claim a
/// generation, (publish the store,) mark it complete.
async fn make_complete(dist: &dyn Distribution) {
    if let Generation::Building(id) = dist.begin_generation().await.unwrap() {
        assert!(dist.complete_generation(&id).await.unwrap());
    }
    assert!(dist.generation().await.unwrap().is_complete());
}

async fn followers_converge_and_keep_the_newest(dist: Arc<dyn Distribution>) {
    make_complete(dist.as_ref()).await;
    let before = Subdomain::generate();
    dist.publish(&[upsert(before, 7)]).await.unwrap();

    let cancel = CancellationToken::new();
    let replicas: Vec<Arc<Replica>> = (0..2).map(|_| Replica::new()).collect();
    let mut healths = Vec::new();
    for replica in &replicas {
        let follower = Follower::new(dist.clone(), replica.clone(), certdns_replication::ResponderId::generate("test"));
        healths.push(follower.health());
        tokio::spawn(follower.run(cancel.clone()));
    }

    let subs: Vec<Subdomain> = (0..20).map(|_| Subdomain::generate()).collect();
    for v in 1..=3 {
        let batch: Vec<Change> = subs.iter().map(|s| upsert(*s, v)).collect();
        dist.publish(&batch).await.unwrap();
    }
    // Out of order: older versions arrive after newer ones; replicas keep v3.
    let stale: Vec<Change> = subs.iter().map(|s| upsert(*s, 2)).collect();
    dist.publish(&stale).await.unwrap();
    dist.publish(&[Change::Remove { subdomain: subs[0], version: 4 }]).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    for replica in &replicas {
        loop {
            // A follower that started late has no entry for the removed one; one that
            // followed the stream holds its tombstone.
            let removed = replica.values(subs[0]).is_none() && replica.version(subs[0]).is_none_or(|v| v == 4);
            let done = removed && subs[1..].iter().all(|s| replica.version(*s) == Some(3));
            if done {
                break;
            }
            assert!(Instant::now() < deadline, "replica did not converge");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(replica.values(before).unwrap().len(), 2, "state from before the follower started");
        assert_eq!(replica.values(subs[0]), None, "removed");
        let expected: Vec<String> = [3, 2].iter().map(|v| value(*v).to_string()).collect();
        assert_eq!(replica.values(subs[5]).unwrap(), expected);
    }
    for h in &healths {
        let report = h.report(Duration::from_secs(30));
        assert!(report.ready && !report.degraded, "{report:?}");
    }
    cancel.cancel();
}

/// A follower that falls further behind than the in-process log keeps is told so
/// and resyncs from a snapshot instead of silently missing changes.
#[tokio::test]
async fn in_process_cursor_lost_when_far_behind() {
    let dist = InProcess::new();
    let snap = dist.snapshot().await.unwrap();
    let changes: Vec<Change> = (0..70_000).map(|_| upsert(Subdomain::generate(), 1)).collect();
    dist.publish(&changes).await.unwrap();
    let err = dist.changes(&snap.cursor, Duration::from_millis(10)).await.unwrap_err();
    assert!(matches!(err, certdns_replication::DistError::CursorLost), "{err}");
}

/// Redis prefixes isolate deployments (and tests) sharing one server.
#[tokio::test]
async fn redis_prefixes_are_isolated() {
    let one = certdns_testkit::TestRedis::new().await;
    let two = certdns_testkit::TestRedis::new().await;
    let a = RedisDistribution::connect(one.url(), one.prefix()).await.unwrap();
    let b = RedisDistribution::connect(two.url(), two.prefix()).await.unwrap();
    a.publish(&[upsert(Subdomain::generate(), 1)]).await.unwrap();
    assert_eq!(a.snapshot().await.unwrap().states.len(), 1);
    assert!(b.snapshot().await.unwrap().states.is_empty());
}

#[tokio::test]
async fn redis_unreachable_is_a_clear_error() {
    let err = RedisDistribution::connect("redis://127.0.0.1:1", "x:").await.err().expect("must fail");
    assert!(err.to_string().contains("unavailable"), "{err}");
}

/// A publish says where its changes are in the stream; later publishes are later.
async fn publishes_return_ordered_positions(dist: Arc<dyn Distribution>) {
    let a = Subdomain::generate();
    let first = dist.publish(&[upsert(a, 1)]).await.unwrap().expect("written");
    let second = dist.publish(&[upsert(a, 2), upsert(Subdomain::generate(), 1)]).await.unwrap().expect("written");
    assert!(second.is_at_or_after(&first) && !first.is_at_or_after(&second), "{first:?} {second:?}");
    assert_eq!(dist.publish(&[upsert(a, 2)]).await.unwrap(), None, "nothing newer: no position");
    let snap = dist.snapshot().await.unwrap();
    assert!(snap.cursor.is_at_or_after(&second));
}

/// Followers report what they applied; a writer's wait ends when every live one
/// has the change, and a follower that stops reporting drops out of it.
async fn writers_wait_until_every_live_follower_applied(dist: Arc<dyn Distribution>) {
    make_complete(dist.as_ref()).await;
    let cancel = CancellationToken::new();
    let replicas: Vec<Arc<Replica>> = (0..2).map(|_| Replica::new()).collect();
    for (i, replica) in replicas.iter().enumerate() {
        let follower = Follower::new(dist.clone(), replica.clone(), ResponderId::generate(format!("r{i}")));
        tokio::spawn(follower.run(cancel.clone()));
    }
    // Both announce themselves within a heartbeat.
    let deadline = Instant::now() + Duration::from_secs(5);
    while dist.live_responders().await.unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "followers never reported");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sub = Subdomain::generate();
    let position = dist.publish(&[upsert(sub, 7)]).await.unwrap().unwrap();
    let started = Instant::now();
    let applied = dist.wait_applied(&position, Duration::from_secs(5)).await.unwrap();
    assert!(applied.everywhere(), "{applied:?}");
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    for replica in &replicas {
        assert_eq!(replica.version(sub), Some(7), "answered by every follower when the wait ends");
    }
    // A report from a responder that then goes silent: waited for until it leaves.
    let silent = ResponderId::generate("silent");
    dist.report_applied(&silent, &position).await.unwrap();
    let later = dist.publish(&[upsert(sub, 8)]).await.unwrap().unwrap();
    let started = Instant::now();
    let applied = dist.wait_applied(&later, Duration::from_millis(300)).await.unwrap();
    assert_eq!((applied.live, applied.confirmed), (3, 2), "the silent one holds the wait to its bound");
    assert!(started.elapsed() >= Duration::from_millis(290));
    tokio::time::sleep(certdns_replication::membership::LIVENESS).await;
    let applied = dist.wait_applied(&later, Duration::from_secs(5)).await.unwrap();
    assert!(applied.everywhere() && applied.live == 2, "it left after the liveness bound: {applied:?}");
    cancel.cancel();
}

/// The distribution loses its state (a Redis restarted empty, shown here by
/// deleting every key of the deployment): a follower keeps every name, merges
/// what the empty distribution gets meanwhile, and loads the new generation
/// whole once a writer completes it — deletions made during the outage included.
/// (The in-process distribution lives and dies with its process: nothing to lose.)
#[tokio::test]
async fn a_lost_redis_state_keeps_the_replica_until_a_new_generation_is_complete() {
    let redis = TestRedis::new().await;
    let dist: Arc<dyn Distribution> = Arc::new(RedisDistribution::connect(redis.url(), redis.prefix()).await.unwrap());
    make_complete(dist.as_ref()).await;
    let (kept, deleted) = (Subdomain::generate(), Subdomain::generate());
    dist.publish(&[upsert(kept, 1), upsert(deleted, 1)]).await.unwrap();
    let replica = Replica::new();
    let follower = Follower::new(dist.clone(), replica.clone(), ResponderId::generate("r"));
    let health = follower.health();
    let cancel = CancellationToken::new();
    tokio::spawn(follower.run(cancel.clone()));
    wait_until(|| replica.version(deleted) == Some(1)).await;

    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{}*", redis.prefix())).query_async(&mut conn).await.unwrap();
    let _: () = redis::cmd("DEL").arg(keys).query_async(&mut conn).await.unwrap();
    assert_eq!(dist.generation().await.unwrap(), Generation::Missing);
    let after_loss = Subdomain::generate();
    dist.publish(&[upsert(after_loss, 1)]).await.unwrap();
    wait_until(|| replica.version(after_loss) == Some(1)).await;
    wait_until(|| health.report(Duration::from_secs(30)).rebuilding).await;
    assert_eq!((replica.version(kept), replica.version(deleted)), (Some(1), Some(1)), "nothing dropped");
    assert!(health.report(Duration::from_secs(30)).ready, "a complete replica stays ready");

    // A writer republishes the store (without `deleted`, removed meanwhile) into
    // a new generation and completes it: the follower loads it whole.
    let Generation::Building(id) = dist.begin_generation().await.unwrap() else { panic!("claimed") };
    dist.publish(&[upsert(kept, 1)]).await.unwrap();
    assert!(dist.complete_generation(&id).await.unwrap());
    wait_until(|| replica.version(deleted).is_none()).await;
    assert_eq!((replica.version(kept), replica.version(after_loss)), (Some(1), Some(1)));
    assert!(!health.report(Duration::from_secs(30)).rebuilding);
    cancel.cancel();
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "condition not reached within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A dns-persist-01 record (longer than one character-string, spaces and `;`
/// inside) travels whole through the backend to two followers' replicas, is
/// replaced there by a newer one, and its removal stops it being answered.
async fn a_persist_record_reaches_every_follower_whole_and_its_removal_too(dist: Arc<dyn Distribution>) {
    let record = |issuer: &str| {
        let uri = format!("https://ca.example/{}/sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw", "p".repeat(300));
        let uri = certdns_core::HashedAccountUri::parse(&uri).unwrap();
        certdns_core::PersistRecord::new(issuer, uri, true, Some(32_472_144_000)).unwrap()
    };
    let persist = |s: Subdomain, version: u64, issuer: &str| {
        Change::Upsert(TxtState { subdomain: s, version, values: vec![], persist: Some(record(issuer)) })
    };
    let cancel = CancellationToken::new();
    let replicas: Vec<Arc<Replica>> = (0..2).map(|_| Replica::new()).collect();
    for (i, replica) in replicas.iter().enumerate() {
        let follower = Follower::new(dist.clone(), replica.clone(), ResponderId::generate(format!("persist-{i}")));
        tokio::spawn(follower.run(cancel.clone()));
    }
    let s = Subdomain::generate();
    let until = |want: Option<Vec<String>>| {
        let replicas = replicas.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            while replicas.iter().any(|r| r.values(s) != want) {
                assert!(Instant::now() < deadline, "replicas never held {want:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    dist.publish(&[persist(s, 1, "letsencrypt.org")]).await.unwrap();
    until(Some(vec![record("letsencrypt.org").to_txt()])).await;
    let snap = dist.snapshot().await.unwrap();
    assert_eq!(
        snap.states.iter().find(|st| st.subdomain == s).and_then(|st| st.persist.clone()),
        Some(record("letsencrypt.org"))
    );
    dist.publish(&[persist(s, 2, "pki.goog")]).await.unwrap();
    until(Some(vec![record("pki.goog").to_txt()])).await;
    dist.publish(&[Change::Remove { subdomain: s, version: 3 }]).await.unwrap();
    until(None).await;
    cancel.cancel();
}
