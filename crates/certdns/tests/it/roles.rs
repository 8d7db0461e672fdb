//! Split roles on Postgres and Redis, and readiness that follows what each role depends on.

use crate::support::*;
use serde_json::Value;

/// Production shape: Postgres + Redis, one api process and two dns processes; an
/// update through the API is answered by both responders.
#[tokio::test]
async fn split_roles_on_postgres_and_redis_converge() {
    let pg = certdns_testkit::TestPostgres::new().await;
    let redis = certdns_testkit::TestRedis::new().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CERTDNS_DATABASE_URL", pg.url()),
        ("CERTDNS_REDIS_URL", redis.url()),
        ("CERTDNS_REDIS_PREFIX", redis.prefix()),
    ];
    let api = Certdns::start(dir.path(), &["serve", "--role", "api", "--http-listen", "127.0.0.1:0"], &env).await;
    let dns_args = ["serve", "--role", "dns", "--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0"];
    let dns1 = Certdns::start(dir.path(), &dns_args, &env).await;
    let dns2 = Certdns::start(dir.path(), &dns_args, &env).await;
    assert!(api.banner.contains("serving roles: api"), "{}", api.banner);
    assert!(dns1.banner.contains("TXT distribution: redis"), "{}", dns1.banner);

    let base_url = api.first_start_base_url().expect("first start on an empty Postgres");
    let reg = register(&base_url).await;
    let fulldomain = reg["fulldomain"].as_str().unwrap().to_owned();
    update(&api.http_url(), &reg, &valid_txt('x')).await;
    for dns in [&dns1, &dns2] {
        let answer = crate::support::wait_for_txt(dns.dns_udp(), &fulldomain, 1).await;
        assert_eq!(txt_values(&answer), [valid_txt('x')]);
        // Ready once the api's first reconcile has completed the distribution's generation.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let ready: Value = reqwest::get(format!("{}/ready", dns.http_url())).await.unwrap().json().await.unwrap();
            if ready["checks"]["replica"]["status"] == "ok" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{ready}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    for server in [api, dns1, dns2] {
        server.stop().await;
    }
}

/// `/ready` of an api role checks the store and the distribution backend: 200
/// while both answer, 503 naming the distribution when Redis goes away.
#[tokio::test]
async fn api_readiness_follows_the_distribution_backend() {
    let mut redis = certdns_testkit::PrivateRedis::start(certdns_testkit::PrivateRedis::free_port()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let env = [("CERTDNS_REDIS_URL", url.as_str())];
    let api = Certdns::start(dir.path(), &["serve", "--role", "api", "--http-listen", "127.0.0.1:0"], &env).await;
    let ready = reqwest::get(format!("{}/ready", api.http_url())).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!((&body["checks"]["store"], &body["checks"]["distribution"]["status"]), (&"ok".into(), &"ok".into()));

    redis.stop();
    let ready = reqwest::get(format!("{}/ready", api.http_url())).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["ready"], false, "{body}");
    assert_eq!(body["checks"]["store"], "ok", "{body}");
    assert_eq!(body["checks"]["distribution"]["status"], "unavailable", "{body}");
    api.stop().await;
}
