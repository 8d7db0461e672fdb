//! Rate limits (429 with `Retry-After`) and the client address they count by.

use certdns_api::{ApiConfig, Rate};
use certdns_core::AuditKind;
use certdns_testkit::Backend;

use crate::support::*;

certdns_testkit::both_backends!(
    failed_auth_is_rate_limited,
    registration_is_rate_limited_per_key,
    anonymous_registration_has_a_budget_of_its_own,
    proxy_header_tricks_cannot_pass_allow_from,
    client_ip_from_trusted_proxy,
);

/// An address out of failed authentications is refused before the store is
/// touched: with the database gone, it still gets 429, never a 500.
#[tokio::test]
async fn over_budget_clients_never_reach_the_store() {
    let mut config = ApiConfig::default();
    config.rate_limits.auth_failures_per_address = Rate::new(1, 3);
    let env = Env::with_config(Backend::Fleet, config).await;
    let reg = env.register().await;
    let bad = || {
        env.post("/update")
            .header("X-Api-User", &reg.username)
            .header("X-Api-Key", "x".repeat(40))
            .body(format!(r#"{{"subdomain":"{}","txt":"{}"}}"#, reg.subdomain, txt(1)))
            .send()
    };
    for _ in 0..3 {
        expect_error(bad().await.unwrap(), 401, "forbidden").await;
    }
    expect_error(bad().await.unwrap(), 429, "rate_limited").await;
    env.cut_database().await;
    for _ in 0..20 {
        expect_error(bad().await.unwrap(), 429, "rate_limited").await;
    }
    let r = env.post("/deregister").header("X-Api-User", &reg.username).header("X-Api-Key", "y".repeat(40));
    expect_error(r.send().await.unwrap(), 429, "rate_limited").await;
    // The store really is gone: a request that needs it fails.
    let r = env.post("/register").header("authorization", env.basic()).send().await.unwrap();
    expect_error(r, 503, "store_unavailable").await;
}

/// Failed authentications are limited per address; once the budget is gone the
/// address is refused (even with right credentials, before any store work) until
/// it refills, and the burst is audited.
async fn failed_auth_is_rate_limited(backend: Backend) {
    let mut config = ApiConfig::default();
    config.rate_limits.auth_failures_per_address = Rate::new(60, 3);
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
    assert_eq!(update(&env, &reg, &txt(2)).await.status(), 429, "the address waits, whatever it sends");
    tokio::time::sleep(std::time::Duration::from_secs(retry)).await;
    assert_eq!(update(&env, &reg, &txt(2)).await.status(), 200, "and gets in once the budget refills");
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

/// Calls without a valid key spend a budget of their own per address; a valid
/// key from the same address (customers behind one proxy) is never refused for
/// them, and only spends its own budget.
async fn anonymous_registration_has_a_budget_of_its_own(backend: Backend) {
    let env = Env::start(backend).await;
    for _ in 0..120 {
        let r = env.post("/register").send().await.unwrap();
        assert!(matches!(r.status().as_u16(), 401 | 429), "{}", r.status());
    }
    expect_error(env.post("/register").send().await.unwrap(), 429, "rate_limited").await;
    let wrong = basic(env.key.as_str(), &"x".repeat(40));
    expect_error(env.post("/register").header("authorization", wrong).send().await.unwrap(), 429, "rate_limited").await;
    let r = env.post("/register").header("authorization", env.basic()).send().await.unwrap();
    assert_eq!(r.status(), 201, "a valid key from the same address registers");

    let mut config = ApiConfig::default();
    config.rate_limits.register_unauthenticated_per_address = Rate::new(1, 3);
    let env = Env::with_config(backend, config).await;
    for _ in 0..3 {
        expect_error(env.post("/register").send().await.unwrap(), 401, "license_key_required").await;
    }
    let r = env.post("/register").send().await.unwrap();
    assert!(r.headers().contains_key("retry-after"));
    expect_error(r, 429, "rate_limited").await;
    env.register().await;
}

/// A proxy that adds a header line of its own (HAProxy), or appends the client as
/// `ip:port`, `[v6]` or `unknown`, never lets the client's own `X-Forwarded-For`
/// pass an allow-from list.
async fn proxy_header_tricks_cannot_pass_allow_from(backend: Backend) {
    let config = ApiConfig { client_ip_header: Some("X-Forwarded-For".parse().unwrap()), ..ApiConfig::default() };
    let env = Env::with_config(backend, config).await;
    let r = env.post("/register").header("authorization", env.basic()).body(r#"{"allowfrom":["10.0.0.0/8"]}"#);
    let reg = Registered::from_json(&r.send().await.unwrap().json().await.unwrap());
    let cases: &[(&[&str], u16)] = &[
        (&["10.1.2.3", "203.0.113.7"], 401),
        (&["10.1.2.3, 203.0.113.7:4711"], 401),
        (&["10.1.2.3, [2001:db8::7]:4711"], 401),
        (&["10.1.2.3, [2001:db8::7]"], 401),
        (&["10.1.2.3, unknown"], 401),
        (&["10.1.2.3", "unknown"], 401),
        (&["203.0.113.7, 10.1.2.3"], 200),
        (&["203.0.113.7", "10.1.2.3:4711"], 200),
    ];
    for (i, (lines, status)) in cases.iter().enumerate() {
        let mut request = env.post("/update").header("X-Api-User", &reg.username).header("X-Api-Key", &reg.password);
        for line in *lines {
            request = request.header("X-Forwarded-For", *line);
        }
        let body = format!(r#"{{"subdomain":"{}","txt":"{}"}}"#, reg.subdomain, txt(i + 1));
        assert_eq!(request.body(body).send().await.unwrap().status(), *status, "{lines:?}");
    }
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
