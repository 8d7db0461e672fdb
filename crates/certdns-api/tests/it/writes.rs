//! What a write leaves behind: the newest values served, the distribution
//! following the store (repaired after a failed publish), audit events.

use std::time::Duration;

use certdns_api::ApiConfig;
use certdns_core::{AuditKind, Subdomain};
use certdns_testkit::Backend;

use crate::support::*;

certdns_testkit::both_backends!(
    updates_answer_once_every_responder_serves_them,
    concurrent_updates_keep_the_newest,
    published_state_follows_writes,
    reconcile_repairs_a_failed_publish,
    txt_limit_is_configurable,
    audit_events_are_written,
);

async fn concurrent_updates_keep_the_newest(backend: Backend) {
    let env = Env::start(backend).await;
    let reg = env.register().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (http, url, reg) = (env.http.clone(), env.url("/update"), reg.clone());
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .header("X-Api-User", &reg.username)
                .header("X-Api-Key", &reg.password)
                .body(format!(r#"{{"subdomain":"{}","txt":"{}"}}"#, reg.subdomain, txt(i)))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let sub: Subdomain = reg.subdomain.parse().unwrap();
    let stored = env.store.txt_state(sub, 2).await.unwrap().unwrap();
    assert_eq!(stored.version, 20);
    assert_eq!(stored.values.len(), 2);
    let published = env.snapshot_state(&reg.subdomain).await.unwrap();
    assert_eq!(published, stored, "the distribution holds exactly the newest stored state");
}

async fn published_state_follows_writes(backend: Backend) {
    let env = Env::start(backend).await;
    let reg = env.register().await;
    let state = env.snapshot_state(&reg.subdomain).await.expect("published at registration");
    assert_eq!((state.version, state.values.len()), (0, 0), "NODATA right away");
    for i in 1..=3 {
        assert_eq!(update(&env, &reg, &txt(i)).await.status(), 200);
    }
    let state = env.snapshot_state(&reg.subdomain).await.unwrap();
    assert_eq!(state.version, 3);
    assert_eq!(state.values.iter().map(|v| v.as_str().to_owned()).collect::<Vec<_>>(), [txt(3), txt(2)]);
    let r = env
        .post("/deregister")
        .header("X-Api-User", &reg.username)
        .header("X-Api-Key", &reg.password)
        .body(format!(r#"{{"subdomain":"{}"}}"#, reg.subdomain))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(env.snapshot_state(&reg.subdomain).await.is_none(), "nothing stale stays answerable");
    // The deleted credentials are gone.
    expect_error(update(&env, &reg, &txt(4)).await, 401, "forbidden").await;
}

async fn reconcile_repairs_a_failed_publish(backend: Backend) {
    let env = Env::start(backend).await;
    let reg = env.register().await;
    let gone = env.register().await;
    env.dist.fail(true);
    // The writes succeed although publishing fails.
    assert_eq!(update(&env, &reg, &txt(1)).await.status(), 200);
    let fresh = env.register().await;
    let r = env
        .post("/deregister")
        .header("X-Api-User", &gone.username)
        .header("X-Api-Key", &gone.password)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(env.snapshot_state(&reg.subdomain).await.unwrap().version, 0, "publish was lost");
    assert!(env.snapshot_state(&fresh.subdomain).await.is_none());
    assert!(env.snapshot_state(&gone.subdomain).await.is_some());

    // The router's own reconciler repairs it once publishing works again.
    env.dist.fail(false);
    for _ in 0..100 {
        if env.snapshot_state(&reg.subdomain).await.unwrap().version == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(env.snapshot_state(&reg.subdomain).await.unwrap().version, 1);
    assert!(env.snapshot_state(&fresh.subdomain).await.is_some());
    assert!(env.snapshot_state(&gone.subdomain).await.is_none());

    // A direct reconcile is then a no-op.
    let report = certdns_sync::reconcile(env.store.as_ref(), env.dist.inner.as_ref(), 2).await.unwrap();
    assert_eq!((report.checked, report.upserted, report.removed), (2, 0, 0));

    // An empty distribution (a restarted single binary) is seeded by the periodic
    // reconciler's first run.
    let empty: std::sync::Arc<dyn certdns_replication::Distribution> =
        std::sync::Arc::new(certdns_replication::InProcess::new());
    let cancel = tokio_util::sync::CancellationToken::new();
    let sync = certdns_sync::TxtSync::new(env.store.clone(), empty.clone(), 2);
    let task = sync.spawn_periodic(certdns_sync::PERIODIC, cancel.clone());
    for _ in 0..100 {
        if empty.snapshot().await.unwrap().states.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let states = empty.snapshot().await.unwrap().states;
    assert_eq!(states.len(), 2);
    assert!(states.iter().any(|s| s.subdomain.to_string() == reg.subdomain && s.version == 1));
    sync.request_reconcile();
    cancel.cancel();
    task.await.unwrap();
}

async fn txt_limit_is_configurable(backend: Backend) {
    let env = Env::with_config(backend, ApiConfig { txt_values: 3, ..ApiConfig::default() }).await;
    let reg = env.register().await;
    for i in 1..=4 {
        assert_eq!(update(&env, &reg, &txt(i)).await.status(), 200);
    }
    let state = env.snapshot_state(&reg.subdomain).await.unwrap();
    assert_eq!(state.values.iter().map(|v| v.as_str().to_owned()).collect::<Vec<_>>(), [txt(4), txt(3), txt(2)]);
}

async fn audit_events_are_written(backend: Backend) {
    let env = Env::start(backend).await;
    let reg = env.register().await;
    env.wait_for_audit(env.account, AuditKind::RegistrationCreated).await;
    env.wait_for_audit(env.account, AuditKind::LicenseKeyNewAddress).await;
    let r = env
        .post("/deregister")
        .header("X-Api-User", &reg.username)
        .header("X-Api-Key", &reg.password)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    env.wait_for_audit(env.account, AuditKind::RegistrationDeleted).await;
    let events = env.store.audit_events(env.account, None, 100).await.unwrap();
    let created = events.iter().find(|e| e.kind == AuditKind::RegistrationCreated).unwrap();
    assert_eq!(created.client_addr, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(created.detail["subdomain"], reg.subdomain.as_str());
    assert_eq!(created.detail["key_id"], env.key.as_str());
    // New address is recorded once, not per request.
    env.register().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let n = env.audit_kinds(env.account).await.iter().filter(|k| **k == AuditKind::LicenseKeyNewAddress).count();
    assert_eq!(n, 1);
    // last_used_at is touched.
    for _ in 0..50 {
        if env.store.license_key(&env.key).await.unwrap().unwrap().last_used_at.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("last_used_at never set");
}

/// With a live responder, `/update` answers once the responder serves the new
/// value, and says so (`propagationDelaySeconds: 0`); concurrent updates share
/// one wait per batch. Without any responder nothing is waited for.
async fn updates_answer_once_every_responder_serves_them(backend: Backend) {
    let env = Env::start(backend).await;
    let reg = env.register().await;
    let r = update(&env, &reg, &txt(1)).await;
    assert!(r.text().await.unwrap().ends_with("\"propagationDelaySeconds\": 2}"), "no responder: the usual delay");

    let replica = certdns_replication::Replica::new();
    let responder = certdns_replication::ResponderId::generate("test responder");
    let follower = certdns_replication::Follower::new(env.dist.clone(), replica.clone(), responder);
    let cancel = tokio_util::sync::CancellationToken::new();
    tokio::spawn(follower.run(cancel.clone()));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while certdns_replication::Distribution::live_responders(env.dist.as_ref()).await.unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the responder reports itself");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sub: Subdomain = reg.subdomain.parse().unwrap();
    for i in 2..=6 {
        let r = update(&env, &reg, &txt(i)).await;
        assert_eq!(r.text().await.unwrap(), format!("{{\"txt\": \"{}\", \"propagationDelaySeconds\": 0}}", txt(i)));
        let served = replica.values(sub).unwrap();
        assert_eq!(served.first(), Some(&txt(i)), "served by the responder when /update answers");
    }

    // Thirty at once: every answer confirmed, fewer waits than updates.
    let waits_before = env.dist.waits();
    let regs: Vec<Registered> = futures_util::future::join_all((0..10).map(|_| env.register())).await;
    let values: Vec<String> = (0..30).map(|i| txt(100 + i)).collect();
    let answers =
        futures_util::future::join_all(regs.iter().cycle().zip(&values).map(|(reg, value)| update(&env, reg, value)))
            .await;
    for r in answers {
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().ends_with("\"propagationDelaySeconds\": 0}"));
    }
    let waits = env.dist.waits() - waits_before;
    assert!(waits < 30, "{waits} waits for 30 updates: one per batch, not per update");
    cancel.cancel();
}
