//! Rate limits (429 with `Retry-After`) and the client address they count by.

use certdns_api::{ApiConfig, Rate};
use certdns_core::AuditKind;
use certdns_testkit::Backend;

use crate::support::*;

certdns_testkit::both_backends!(
    failed_auth_is_rate_limited,
    registration_is_rate_limited_per_key,
    registration_is_rate_limited_per_address,
    client_ip_from_trusted_proxy,
);

async fn failed_auth_is_rate_limited(backend: Backend) {
    let mut config = ApiConfig::default();
    config.rate_limits.auth_failures_per_address = Rate::new(1, 3);
    let env = Env::with_config(backend, config).await;
    let reg = env.register().await;
    let fail = || {
        env.post("/update")
            .header("X-Api-User", &reg.username)
            .header("X-Api-Key", "x".repeat(40))
            .body(format!(r#"{{"subdomain":"{}","txt":"{}"}}"#, reg.subdomain, txt(1)))
            .send()
    };
    for _ in 0..3 {
        expect_error(fail().await.unwrap(), 401, "forbidden").await;
    }
    let r = fail().await.unwrap();
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    expect_error(r, 429, "rate_limited").await;
    // Correct credentials are never limited.
    assert_eq!(update(&env, &reg, &txt(2)).await.status(), 200);
    env.wait_for_audit(env.account, AuditKind::AuthFailureBurst).await;
    let event = env.store.audit_events(env.account, None, 100).await.unwrap();
    let burst = event.iter().find(|e| e.kind == AuditKind::AuthFailureBurst).unwrap();
    assert_eq!(burst.client_addr, Some("127.0.0.1".parse().unwrap()));
}

async fn registration_is_rate_limited_per_key(backend: Backend) {
    let mut config = ApiConfig::default();
    config.rate_limits.register_per_key = Rate::new(1, 2);
    let env = Env::with_config(backend, config).await;
    env.register().await;
    env.register().await;
    let r = env.post("/register").header("authorization", env.basic()).send().await.unwrap();
    assert!(r.headers().contains_key("retry-after"));
    expect_error(r, 429, "rate_limited").await;
    // Another key of the same deployment is unaffected.
    let (k2, s2) = create_key(&env.store, env.account).await;
    let r = env.post("/register").header("authorization", basic(k2.as_str(), s2.expose())).send().await.unwrap();
    assert_eq!(r.status(), 201);
}

/// The per-address limit holds across keys: every request here comes from
/// 127.0.0.1, so a second key does not escape it.
async fn registration_is_rate_limited_per_address(backend: Backend) {
    let mut config = ApiConfig::default();
    config.rate_limits.register_per_address = Rate::new(1, 2);
    let env = Env::with_config(backend, config).await;
    env.register().await;
    let (k2, s2) = create_key(&env.store, env.account).await;
    let r = env.post("/register").header("authorization", basic(k2.as_str(), s2.expose())).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let (k3, s3) = create_key(&env.store, env.account).await;
    let r = env.post("/register").header("authorization", basic(k3.as_str(), s3.expose())).send().await.unwrap();
    assert!(r.headers().contains_key("retry-after"));
    expect_error(r, 429, "rate_limited").await;
}

async fn client_ip_from_trusted_proxy(backend: Backend) {
    let config = ApiConfig { client_ip_header: Some("X-Forwarded-For".parse().unwrap()), ..ApiConfig::default() };
    let env = Env::with_config(backend, config).await;
    let r = env
        .post("/register")
        .header("authorization", env.basic())
        .body(r#"{"allowfrom":["192.168.1.2/32","2002:c0a8::0/32"]}"#)
        .send()
        .await
        .unwrap();
    let reg = Registered::from_json(&r.json().await.unwrap());
    for (xff, status) in [
        ("192.168.1.2", 200),
        ("10.1.1.1 ,192.168.1.2", 200),
        ("192.168.1.2, 10.0.0.9", 401),
        ("2002:c0a8:b4dc:0d3::0", 200),
        ("2002:c0a7:0ff::0", 401),
        ("whatever goes", 401),
    ] {
        let r = env
            .post("/update")
            .header("X-Forwarded-For", xff)
            .header("X-Api-User", &reg.username)
            .header("X-Api-Key", &reg.password)
            .body(format!(r#"{{"subdomain":"{}","txt":"{}"}}"#, reg.subdomain, txt(1)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{xff}");
    }
}
