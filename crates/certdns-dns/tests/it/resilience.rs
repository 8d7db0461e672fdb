//! Redis goes away mid-test: the responder keeps answering its last replica and
//! the follower reports degraded; Redis comes back: new values are answered.
//!
//! Runs a private `redis-server` on a free loopback port (Debian package
//! `redis-server`), killed by PID when the test ends, whatever happens.

use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use certdns_core::Subdomain;
use certdns_replication::{Distribution, Follower, Generation, RedisDistribution, Replica};
use certdns_testkit::PrivateRedis;
use hickory_proto::rr::RecordType;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

async fn wait_for_values(r: &Running, qname: &str, expected: &[&str]) {
    let expected: Vec<String> = expected.iter().map(|t| value(t).as_str().to_owned()).collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = txt_values(&udp(r.udp, &query(qname, RecordType::TXT)).await);
        if got == expected {
            return;
        }
        assert!(Instant::now() < deadline, "expected {expected:?}, still answering {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn answers_survive_a_redis_outage_and_resync_after() {
    let port = PrivateRedis::free_port();
    let mut redis = PrivateRedis::start(port).await;
    let prefix = "certdns-dns-test:";
    let publisher = RedisDistribution::connect(&redis.url(), prefix).await.unwrap();
    let sub = Subdomain::generate();
    // As a writer does: claim a generation, publish the store, mark it complete.
    let Generation::Building(id) = publisher.begin_generation().await.unwrap() else { panic!("a fresh Redis") };
    publisher.publish(&[upsert(sub, 1, &["before"])]).await.unwrap();
    assert!(publisher.complete_generation(&id).await.unwrap());

    let replica = Replica::with_states(&[]);
    let follower_dist = RedisDistribution::connect(&redis.url(), prefix).await.unwrap();
    let follower =
        Follower::new(Arc::new(follower_dist), replica.clone(), certdns_replication::ResponderId::generate("test"));
    let health = follower.health();
    let stop = CancellationToken::new();
    let following = tokio::spawn(follower.run(stop.clone()));
    let r = Running::start(dns_config(), zone_config(), replica).await;
    let qname = format!("{sub}.{ZONE}.");
    wait_for_values(&r, &qname, &["before"]).await;
    let bound = Duration::from_millis(300);
    assert!(health.report(bound).ready);
    assert!(!health.report(bound).degraded);

    // Redis stops: answers go on from the replica; health turns degraded.
    redis.stop();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !health.report(bound).degraded {
        assert!(Instant::now() < deadline, "degraded within the bound: {:?}", health.report(bound));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..5 {
        assert_eq!(txt_values(&udp(r.udp, &query(&qname, RecordType::TXT)).await), [value("before").as_str()]);
        assert_eq!(txt_values(&tcp(r.tcp, &query(&qname, RecordType::TXT)).await), [value("before").as_str()]);
    }

    // Redis is back (empty: no persistence), a new update is published: it is answered.
    let _redis = PrivateRedis::start(port).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match publisher.publish(&[upsert(sub, 2, &["after", "before"])]).await {
            Ok(_) => break,
            Err(e) => assert!(Instant::now() < deadline, "publisher reconnects: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for_values(&r, &qname, &["after", "before"]).await;
    let report = health.report(bound);
    assert!(!report.degraded && report.resyncs >= 1, "{report:?}");
    // The empty Redis holds no complete generation: the replica was kept, not
    // swapped for the empty snapshot, and says it is waiting for a rebuild.
    assert!(report.ready && report.rebuilding, "{report:?}");

    stop.cancel();
    following.await.unwrap();
    r.stop().await;
}
