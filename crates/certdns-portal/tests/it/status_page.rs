//! The public status page and `/status.json`, truthful at every step: what
//! nobody reported is unknown, a responder that stops is shown stopped, a
//! stale API instance degrades the API, and the propagation time is the one
//! measured on real updates with a real responder confirming them.

use std::time::Duration;

use certdns_replication::{Follower, Replica, ResponderId};
use certdns_store::Heartbeat;
use certdns_testkit::Backend;
use tokio_util::sync::CancellationToken;

use crate::support::*;

certdns_testkit::both_backends!(tokio(flavor = "multi_thread", worker_threads = 2);
    status_follows_responders_api_instances_and_updates,
);

/// The status as JSON, after the page's cache has expired.
async fn status_json(env: &Env) -> serde_json::Value {
    tokio::time::sleep(Duration::from_millis(5_100)).await;
    let r = reqwest::get(format!("{}/status.json", env.portal)).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().await.unwrap()
}

async fn status_follows_responders_api_instances_and_updates(backend: Backend) {
    let env = start(backend).await;
    // Nothing reported yet: the API's heartbeat is there, no responder, no update.
    let s = status_json(&env).await;
    assert_eq!(s["api"]["health"], "operational", "{s:#}");
    assert_eq!(s["api"]["instances"].as_array().unwrap().len(), 1);
    assert_eq!(s["api"]["instances"][0]["distribution"], "ok");
    assert_eq!(s["dns"]["health"], "unknown", "no responder reported: not green");
    assert!(s["dns"]["responders"].as_array().unwrap().is_empty());
    assert_eq!(s["propagation"]["health"], "unknown");
    assert_eq!(s["propagation"]["figures"], serde_json::Value::Null);
    assert_eq!(s["database"], "operational");
    assert_eq!(s["overall"], "unknown");
    let c = client();
    let (status, page, _) = get(&c, &format!("{}/status", env.portal)).await;
    assert_eq!(status, 200);
    assert!(page.contains("Status partly unknown") && page.contains("No DNS responder has reported"), "{page}");

    // A real responder: a follower of the distribution, reporting as in the dns role.
    let stop = CancellationToken::new();
    let follower =
        Follower::new(env.distribution.clone(), Replica::new(), ResponderId::generate("ns1.test 127.0.0.1:53"));
    let responder = tokio::spawn(follower.run(stop.clone()));
    // Updates through the real API, confirmed by that responder.
    let user = signup(&env, "status@example.com").await;
    let (_, base_url) = create_key(&env, &user, "k").await;
    let (_, reg) = register(&base_url, "www.status.example").await;
    for i in 0..3 {
        let r = reqwest::Client::new()
            .post(format!("{}/update", env.api))
            .header("X-Api-User", reg["username"].as_str().unwrap())
            .header("X-Api-Key", reg["password"].as_str().unwrap())
            .json(&serde_json::json!({ "subdomain": reg["subdomain"], "txt": format!("{i}").repeat(43) }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["propagationDelaySeconds"], 0, "the responder confirmed it");
    }
    // The API instance's next heartbeat carries the measurements.
    env.sync.beat(&env.api_instance).await.unwrap();
    let s = status_json(&env).await;
    assert_eq!(s["dns"]["health"], "operational", "{s:#}");
    let r = &s["dns"]["responders"][0];
    assert_eq!(
        (r["name"].as_str(), r["live"].as_bool(), r["replica"].as_str()),
        (Some("ns1.test 127.0.0.1:53"), Some(true), Some("current"))
    );
    assert_eq!(s["propagation"]["health"], "operational");
    let figures = &s["propagation"]["figures"];
    assert_eq!((figures["samples"].as_u64(), figures["confirmed"].as_u64()), (Some(3), Some(3)), "{s:#}");
    assert!(figures["median_ms"].as_u64().unwrap() < 2_000 && figures["newest_at"].as_i64().unwrap() > 0);
    assert_eq!(s["overall"], "operational");
    let (_, page, _) = get(&c, &format!("{}/status", env.portal)).await;
    assert!(page.contains("All systems operational") && page.contains("id=\"propagation-median\""), "{page}");

    // An API instance that stopped reporting (crashed) degrades the API.
    let now = certdns_core::now().unix_timestamp();
    let gone = Heartbeat {
        instance_id: "crashed".into(),
        role: "api".into(),
        name: "api-2 10.0.0.2:443".into(),
        started_at: now - 600,
        seen_at: now - 120,
        detail: serde_json::json!({ "distribution": "ok", "propagation": [] }),
    };
    env.store.core().fleet().put_heartbeat(&gone, now - 3600).await.unwrap();
    // The responder stops: after its liveness bound it is shown stopped, not green.
    stop.cancel();
    responder.await.unwrap();
    tokio::time::sleep(certdns_replication::membership::LIVENESS).await;
    let s = status_json(&env).await;
    assert_eq!(s["api"]["health"], "degraded", "{s:#}");
    let crashed = s["api"]["instances"].as_array().unwrap().iter().find(|i| i["name"] == "api-2 10.0.0.2:443").unwrap();
    assert_eq!(
        (crashed["up"].as_bool(), crashed["heartbeat_age_secs"].as_i64().map(|a| a >= 120)),
        (Some(false), Some(true))
    );
    assert_eq!(s["dns"]["health"], "down");
    let r = &s["dns"]["responders"][0];
    assert_eq!((r["live"].as_bool(), r["replica"].as_str()), (Some(false), Some("unknown")));
    assert!(r["heartbeat_age_secs"].as_u64().unwrap() >= 3);
    assert_eq!(s["overall"], "down");
    let (_, page, _) = get(&c, &format!("{}/status", env.portal)).await;
    assert!(page.contains("Outage") && page.contains("stopped"), "{page}");
}
