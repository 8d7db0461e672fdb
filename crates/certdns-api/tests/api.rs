//! Black-box tests of the API over real HTTP, each case run on both deployments:
//! SQLite + in-process distribution, and Postgres + Redis.

// Cases are plain async fns called from #[tokio::test] wrappers, which clippy
// does not see as tests; a failed unwrap is a failed test here.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use certdns_api::{ApiConfig, Rate, RegistrationMode};
use certdns_core::{AccountRole, AccountStatus, AuditKind, Subdomain, TxtValue};
use common::*;
use serde_json::Value;

macro_rules! both_backends {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $case() { super::$case(super::Kind::Sqlite).await; } )+
        }
        mod postgres {
            $( #[tokio::test] async fn $case() { super::$case(super::Kind::Postgres).await; } )+
        }
    };
}

both_backends!(
    client_acme_dns_auth_py,
    client_certbot_acme_dns,
    client_goacmedns_0_1_1,
    client_goacmedns_0_2_0,
    client_acme_sh_curl_and_wget,
    client_posh_acme,
    client_certify_dns,
    client_win_acme,
    client_caddy_libdns_and_prefixes,
    update_auth_failures_are_forbidden,
    bad_txt_values,
    register_body_errors,
    register_requires_an_active_license_key,
    update_refuses_revoked_keys_and_suspended_accounts,
    tenants_cannot_touch_each_other,
    huge_bodies_get_413,
    concurrent_updates_keep_the_newest,
    failed_auth_is_rate_limited,
    registration_is_rate_limited_per_key,
    registration_is_rate_limited_per_address,
    audit_events_are_written,
    published_state_follows_writes,
    reconcile_repairs_a_failed_publish,
    generic_http_behaviour,
    registration_modes,
    client_ip_from_trusted_proxy,
    txt_limit_is_configurable,
);

/// Asserts a JSON error response byte for byte.
async fn expect_error(r: reqwest::Response, status: u16, code: &str) {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.text().await.unwrap(), format!("{{\"error\": \"{code}\"}}"));
}

async fn update(env: &Env, reg: &Registered, value: &str) -> reqwest::Response {
    env.post("/update")
        .header("X-Api-User", &reg.username)
        .header("X-Api-Key", &reg.password)
        .body(format!(r#"{{"subdomain": "{}", "txt": "{value}"}}"#, reg.subdomain))
        .send()
        .await
        .unwrap()
}

/// §8.1-3, §8.13: requests with Basic from the URL on both endpoints, no
/// Content-Type on /register, exact 201/200, base URLs with and without `/`.
async fn client_acme_dns_auth_py(kind: Kind) {
    let env = Env::start(kind).await;
    for path in ["/register", "//register"] {
        let r = env.post(path).header("authorization", env.basic()).send().await.unwrap();
        assert_eq!(r.status(), 201, "{path}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let text = r.text().await.unwrap();
        let reg = Registered::from_json(&serde_json::from_str(&text).unwrap());
        let expected = format!(
            r#"{{"username":"{}","password":"{}","fulldomain":"{}.{ZONE}","subdomain":"{}","allowfrom":[]}}"#,
            reg.username, reg.password, reg.subdomain, reg.subdomain
        );
        assert_eq!(text, expected, "compact JSON, acme-dns field order");
        assert_ne!(reg.username, reg.subdomain);
        assert_eq!(reg.password.len(), 40);
    }
    let r = env
        .post("/register")
        .header("authorization", env.basic())
        .body(r#"{"allowfrom": ["192.168.10.0/24", "::1/128"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let reg = Registered::from_json(&r.json().await.unwrap());
    assert_eq!(reg.allowfrom, ["192.168.10.0/24", "::1/128"]);

    let reg = env.register().await;
    let t = txt(1);
    for path in ["/update", "//update"] {
        let r = env
            .post(path)
            .header("X-Api-User", &reg.username)
            .header("X-Api-Key", &reg.password)
            .header("Content-Type", "application/json")
            .header("authorization", env.basic())
            .body(format!(r#"{{"subdomain": "{}", "txt": "{t}"}}"#, reg.subdomain))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let body = r.text().await.unwrap();
        assert!(body.starts_with(&format!(r#"{{"txt": "{t}""#)), "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["propagationDelaySeconds"], 2);
    }
}

/// certbot-acme-dns: urljoin paths, no body, any status < 400, `json=` update.
async fn client_certbot_acme_dns(kind: Kind) {
    let env = Env::start(kind).await;
    let r = env.post("/register").header("authorization", env.basic()).send().await.unwrap();
    assert!(r.status().as_u16() < 400);
    let reg = Registered::from_json(&r.json().await.unwrap());
    let r = env
        .post("/update")
        .header("authorization", env.basic())
        .header("X-Api-User", &reg.username)
        .header("X-Api-Key", &reg.password)
        .json(&serde_json::json!({"subdomain": reg.subdomain, "txt": txt(2)}))
        .send()
        .await
        .unwrap();
    assert!(r.status().as_u16() < 400);
}

/// §8.4, §8.14: goacmedns ≤ 0.1.1 (lego ≤ 4.21): JSON Content-Type on an empty
/// body, `AllowFrom`, `SubDomain`/`Txt`, exact 201/200.
async fn client_goacmedns_0_1_1(kind: Kind) {
    let env = Env::start(kind).await;
    let go = |path: &str| {
        env.post(path)
            .header("authorization", env.basic())
            .header("Content-Type", "application/json")
            .header("User-Agent", "goacmedns (linux; amd64)")
    };
    let r = go("/register").send().await.unwrap();
    assert_eq!(r.status(), 201);
    let reg = Registered::from_json(&r.json().await.unwrap());
    let r = go("/update")
        .header("X-Api-User", &reg.username)
        .header("X-Api-Key", &reg.password)
        .body(format!(r#"{{"SubDomain":"{}","Txt":"{}"}}"#, reg.subdomain, txt(3)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let r = go("/register").body(r#"{"AllowFrom":["10.0.0.0/8"]}"#).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let restricted = Registered::from_json(&r.json().await.unwrap());
    assert_eq!(restricted.allowfrom, ["10.0.0.0/8"]);
    // We connect from 127.0.0.1, outside 10.0.0.0/8: the restriction applies.
    expect_error(update(&env, &restricted, &txt(3)).await, 401, "forbidden").await;
}

/// §8.5, §8.15: goacmedns 0.2.0: `Accept`, no body, trailing newline on update.
async fn client_goacmedns_0_2_0(kind: Kind) {
    let env = Env::start(kind).await;
    let r = env
        .post("/register")
        .header("authorization", env.basic())
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let reg = Registered::from_json(&r.json().await.unwrap());
    let r = env
        .post("/register")
        .header("authorization", env.basic())
        .header("Content-Type", "application/json")
        .body("{\"allowfrom\":[\"127.0.0.0/8\"]}\n")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = env
        .post("/update")
        .header("authorization", env.basic())
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .header("X-Api-User", &reg.username)
        .header("X-Api-Key", &reg.password)
        .body(format!("{{\"subdomain\":\"{}\",\"txt\":\"{}\"}}\n", reg.subdomain, txt(4)))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

/// §8.6, §8.7, §8.16: acme.sh: stale X-Api headers on register, sed-extractable
/// one-line JSON; wget's challenge-driven Basic; form Content-Type on update.
async fn client_acme_sh_curl_and_wget(kind: Kind) {
    let env = Env::start(kind).await;
    let r = env
        .post("/register")
        .header("authorization", env.basic())
        .header("User-Agent", "acme.sh/3.1.0")
        .header("X-Api-User", "stale")
        .header("X-Api-Key", "stale")
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(body.starts_with('{') && body.ends_with('}') && !body.contains('\n'));
    // acme.sh: sed -n 's/^{.*"username":[ ]*"\([^"]*\)".*}/\1/p'
    let extract = |key: &str| {
        let needle = format!("\"{key}\":");
        let rest = body.split_once(&needle).unwrap().1.trim_start();
        rest.strip_prefix('"').unwrap().split('"').next().unwrap().to_owned()
    };
    let (user, pass, sub) = (extract("username"), extract("password"), extract("subdomain"));
    assert_eq!(extract("fulldomain"), format!("{sub}.{ZONE}"));

    // wget: first without credentials, then with them after the challenge.
    let r = env.post("/register").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"certdns\"");
    expect_error(r, 401, "license_key_required").await;
    let r = env.post("/register").header("authorization", env.basic()).send().await.unwrap();
    assert_eq!(r.status(), 201);

    let t = txt(5);
    let r = env
        .post("/update")
        .header("authorization", env.basic())
        .header("X-Api-User", &user)
        .header("X-Api-Key", &pass)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(r#"{{"subdomain":"{sub}", "txt": "{t}"}}"#))
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains(&format!("\"{t}\"")));
}

/// §8.8: Posh-ACME: `{}` with JSON Content-Type and an explicit Basic header.
async fn client_posh_acme(kind: Kind) {
    let env = Env::start(kind).await;
    let r = env
        .post("/register")
        .header("authorization", env.basic())
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(r.headers()["content-type"], "application/json");
    let reg = Registered::from_json(&r.json().await.unwrap());
    let r = env
        .post("/update")
        .header("authorization", env.basic())
        .header("Content-Type", "application/json")
        .header("X-Api-User", &reg.username)
        .header("X-Api-Key", &reg.password)
        .body(format!(r#"{{"subdomain":"{}","txt":"{}"}}"#, reg.subdomain, txt(6)))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

/// §8.9, §8.17: Certify: base64url Basic without padding, text/plain, `subject`;
/// update without Basic reads a JSON object with `propagationDelaySeconds`.
async fn client_certify_dns(kind: Kind) {
    let env = Env::start(kind).await;
    let r = env
        .post("/register")
        .header("authorization", basic_url_safe(env.key.as_str(), env.secret.expose()))
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("User-Agent", "Certify/DnsProviderCertifyDns")
        .body(r#"{"subject":"*.example.com","allowfrom":["127.0.0.1/32"]}"#)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["subject"], "*.example.com");
    let reg = Registered::from_json(&v);
    let stored = env.store.registration_by_username(reg.username.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.subject.as_deref(), Some("*.example.com"));
    let r = env
        .post("/update")
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("X-Api-User", &reg.username)
        .header("X-Api-Key", &reg.password)
        .body(format!(r#"{{"subdomain":"{}","txt":"{}"}}"#, reg.subdomain, txt(7)))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let v: Value = r.json().await.unwrap();
    assert!(v.is_object());
    assert_eq!(v["propagationDelaySeconds"].as_u64(), Some(2));
}

/// §8.10: win-acme: empty text/plain body, Basic of the raw userinfo.
async fn client_win_acme(kind: Kind) {
    let env = Env::start(kind).await;
    let r = env
        .post("/register")
        .header("authorization", env.basic())
        .header("Content-Type", "text/plain; charset=utf-8")
        .body("")
        .send()
        .await
        .unwrap();
    let reg = Registered::from_json(&r.json().await.unwrap());
    let r = env
        .post("/update")
        .header("authorization", env.basic())
        .header("Content-Type", "application/json; charset=utf-8")
        .header("X-Api-User", &reg.username)
        .header("X-Api-Key", &reg.password)
        .body(format!(r#"{{"subdomain":"{}","txt":"{}"}}"#, reg.subdomain, txt(8)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// §8.18: Caddy: `//update` exactly 200; `/p//update` with a configured prefix.
async fn client_caddy_libdns_and_prefixes(kind: Kind) {
    let env = Env::with_config(kind, ApiConfig { path_prefix: "/p".into(), ..ApiConfig::default() }).await;
    let reg = env.register().await;
    for (i, path) in ["//update", "/update/", "/p/update", "/p//update", "/P/Update"].iter().enumerate() {
        let r = env
            .post(path)
            .header("authorization", env.basic())
            .header("Content-Type", "application/json")
            .header("X-Api-User", &reg.username)
            .header("X-Api-Key", &reg.password)
            .body(format!(r#"{{"subdomain":"{}","txt":"{}"}}"#, reg.subdomain, txt(10 + i)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    for path in ["/p//register", "/p/register/", "/register/"] {
        let r = env.post(path).header("authorization", env.basic()).send().await.unwrap();
        assert_eq!(r.status(), 201, "{path}");
    }
    let r = env.post("/q/update").send().await.unwrap();
    assert_eq!(r.status(), 404);
}

/// §8.19 and acme-dns's own table: every way of failing /update auth is 401 forbidden.
async fn update_auth_failures_are_forbidden(kind: Kind) {
    let env = Env::start(kind).await;
    let reg = env.register().await;
    let other = env.register().await;
    let t = txt(1);
    let cases: Vec<(&str, String, String, String)> = vec![
        ("wrong key", reg.username.clone(), "x".repeat(40), reg.subdomain.clone()),
        ("unknown user", uuid::Uuid::new_v4().to_string(), reg.password.clone(), reg.subdomain.clone()),
        ("malformed user", "non-uuid-user".into(), reg.password.clone(), reg.subdomain.clone()),
        ("short key", reg.username.clone(), "tooshortpass".into(), reg.subdomain.clone()),
        ("bad key alphabet", reg.username.clone(), format!("{}#", &reg.password[..39]), reg.subdomain.clone()),
        ("other subdomain", reg.username.clone(), reg.password.clone(), other.subdomain.clone()),
        ("not a subdomain", reg.username.clone(), reg.password.clone(), "example.com".into()),
        ("case differs", reg.username.clone(), reg.password.clone(), reg.subdomain.to_uppercase()),
    ];
    for (name, user, key, sub) in cases {
        let r = env
            .post("/update")
            .header("X-Api-User", user)
            .header("X-Api-Key", key)
            .body(format!(r#"{{"subdomain":"{sub}","txt":"{t}"}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{name}");
        assert!(r.headers().get("www-authenticate").is_none());
        assert_eq!(r.text().await.unwrap(), FORBIDDEN, "{name}");
    }
    // No headers, no body.
    expect_error(env.post("/update").send().await.unwrap(), 401, "forbidden").await;
    // Only one of the two headers.
    let r = env.post("/update").header("X-Api-User", &reg.username).send().await.unwrap();
    expect_error(r, 401, "forbidden").await;
    // Username in another accepted UUID form still authenticates.
    let r = env
        .post("/update")
        .header("X-Api-User", format!("{{{}}}", reg.username.to_uppercase()))
        .header("X-Api-Key", &reg.password)
        .body(format!(r#"{{"subdomain":"{}","txt":"{t}"}}"#, reg.subdomain))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// §8.20 and the issue's TXT cases: 42/44 characters, bad alphabet, wrong types.
async fn bad_txt_values(kind: Kind) {
    let env = Env::start(kind).await;
    let reg = env.register().await;
    for bad in [
        "\"tooshortfortxt\"".to_owned(),
        "1234567890".to_owned(),
        format!("\"{}\"", "a".repeat(42)),
        format!("\"{}\"", "a".repeat(44)),
        format!("\"{}#\"", "a".repeat(42)),
        format!("\"{}=\"", "a".repeat(42)),
        "\"idk m8 bbl lmao\"".to_owned(),
        "null".to_owned(),
        "[]".to_owned(),
    ] {
        let r = env
            .post("/update")
            .header("X-Api-User", &reg.username)
            .header("X-Api-Key", &reg.password)
            .body(format!(r#"{{"subdomain":"{}","txt":{bad}}}"#, reg.subdomain))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.text().await.unwrap(), BAD_TXT, "{bad}");
    }
    // Malformed JSON: the subdomain cannot be read, so it is an ownership failure.
    for garbage in ["not json", "{\"subdomain\":", ""] {
        let r = env
            .post("/update")
            .header("X-Api-User", &reg.username)
            .header("X-Api-Key", &reg.password)
            .body(garbage)
            .send()
            .await
            .unwrap();
        expect_error(r, 401, "forbidden").await;
    }
    assert_eq!(env.snapshot_state(&reg.subdomain).await.unwrap().values, Vec::<TxtValue>::new());
}

/// §8.12 and acme-dns's register-body table.
async fn register_body_errors(kind: Kind) {
    let env = Env::start(kind).await;
    let post = |body: &'static str| env.post("/register").header("authorization", env.basic()).body(body).send();
    for bad in [
        "whatever that's not a json payload",
        r#"{"allowfrom': '1.1.1.1/32'}"#,
        r#""allowfrom": "1.1.1.1/32""#,
        r#"{"allowfrom": "[1.1.1.1/32]""#,
        r#"{allowfrom: [1.2.3.4]}"#,
        r#"{"allowfrom": "1.1.1.1/32"}"#,
        r#"{"allowfrom": [1, 2]}"#,
        r#"{"username": "x"}"#,
        r#"{"subject": 42}"#,
        "[]",
        "   ",
    ] {
        expect_error(post(bad).await.unwrap(), 400, "malformed_json_payload").await;
    }
    for bad in [
        r#"{"allowfrom":["1.2.3.4"]}"#,
        r#"{"allowfrom":["invalid"]}"#,
        r#"{"allowfrom":["1.2.3.4/33"]}"#,
        r#"{"allowfrom":["1.2/24"]}"#,
        r#"{"allowfrom":["12345:db8:a0b:12f0::1/32"]}"#,
        r#"{"allowfrom":["1234::123::123::1/32"]}"#,
        r#"{"allowfrom":["10.0.0.0/8","bad"]}"#,
    ] {
        expect_error(post(bad).await.unwrap(), 400, "invalid_allowfrom_cidr").await;
    }
    let r = post(r#"{"allowfrom":["123.123.123.123/32","2001:db8:a0b:12f0::1/32","[::1]/64"]}"#).await.unwrap();
    assert_eq!(r.status(), 201);
    let reg = Registered::from_json(&r.json().await.unwrap());
    assert_eq!(reg.allowfrom, ["123.123.123.123/32", "2001:db8:a0b:12f0::1/32", "::1/64"]);
    for ok in ["null", "{}", r#"{"AllowFrom":null,"unknown":{"x":1},"subdomain":"s","txt":"t"}"#] {
        assert_eq!(post(ok).await.unwrap().status(), 201, "{ok}");
    }
    // Nothing was created by the failures: 1 + 3 successes.
    assert_eq!(env.store.list_registrations(env.account).await.unwrap().len(), 4);
}

/// §8.11 and the license-key rules: missing, wrong, revoked, suspended.
async fn register_requires_an_active_license_key(kind: Kind) {
    let env = Env::start(kind).await;
    let realm = "Basic realm=\"certdns\"";
    let r = env.post("/register").send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], realm);
    expect_error(r, 401, "license_key_required").await;
    for bad in [
        basic(env.key.as_str(), &"x".repeat(40)),
        basic("nosuchkeyid00000", env.secret.expose()),
        basic("not a key", "nope"),
        "Basic %%%".to_owned(),
    ] {
        let r = env.post("/register").header("authorization", bad).send().await.unwrap();
        assert_eq!(r.headers()["www-authenticate"], realm);
        expect_error(r, 401, "invalid_license_key").await;
    }
    let (revoked, revoked_secret) = create_key(&env.store, env.account).await;
    env.store.revoke_license_key(env.account, &revoked, certdns_core::now()).await.unwrap();
    let r = env
        .post("/register")
        .header("authorization", basic(revoked.as_str(), revoked_secret.expose()))
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "license_key_revoked").await;

    let suspended = create_account(&env.store, "suspended@example.com", AccountRole::Customer).await;
    let (skey, ssecret) = create_key(&env.store, suspended).await;
    env.store.set_account_status(suspended, AccountStatus::Suspended).await.unwrap();
    let r = env.post("/register").header("authorization", basic(skey.as_str(), ssecret.expose())).send().await.unwrap();
    expect_error(r, 403, "account_suspended").await;

    assert!(env.store.list_registrations(env.account).await.unwrap().is_empty());
    assert!(env.store.list_registrations(suspended).await.unwrap().is_empty());
    // The key works, and the registration belongs to its account.
    let reg = env.register().await;
    let stored = env.store.registration_by_username(reg.username.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!((stored.account_id, stored.license_key_id), (env.account, Some(env.key.clone())));
}

async fn update_refuses_revoked_keys_and_suspended_accounts(kind: Kind) {
    let env = Env::start(kind).await;
    let reg = env.register().await;
    let with_basic = |auth: Option<String>| {
        let mut b = env
            .post("/update")
            .header("X-Api-User", &reg.username)
            .header("X-Api-Key", &reg.password)
            .body(format!(r#"{{"subdomain":"{}","txt":"{}"}}"#, reg.subdomain, txt(1)));
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.send()
    };
    // An unreadable or unknown Basic header is tolerated.
    assert_eq!(with_basic(Some("Basic !!!".into())).await.unwrap().status(), 200);
    assert_eq!(with_basic(Some(basic("user", "pass"))).await.unwrap().status(), 200);
    env.store.revoke_license_key(env.account, &env.key, certdns_core::now()).await.unwrap();
    tokio::time::sleep(certdns_api::KEY_CACHE_TTL).await;
    expect_error(with_basic(Some(env.basic())).await.unwrap(), 403, "license_key_revoked").await;
    // A revoked key's registrations stop working too, even with only their own
    // credentials (rotation, which keeps the key id, is how keys are replaced).
    expect_error(with_basic(None).await.unwrap(), 403, "license_key_revoked").await;

    // A suspended account: every registration of it, key or not.
    let env = Env::start(kind).await;
    let reg = env.register().await;
    let update = || {
        env.post("/update")
            .header("X-Api-User", &reg.username)
            .header("X-Api-Key", &reg.password)
            .body(format!(r#"{{"subdomain":"{}","txt":"{}"}}"#, reg.subdomain, txt(2)))
            .send()
    };
    assert_eq!(update().await.unwrap().status(), 200);
    env.store.set_account_status(env.account, AccountStatus::Suspended).await.unwrap();
    expect_error(update().await.unwrap(), 403, "account_suspended").await;
}

/// Key A cannot update, read or delete key B's registrations, even knowing them.
async fn tenants_cannot_touch_each_other(kind: Kind) {
    let env = Env::start(kind).await;
    let a = env.register().await;
    let b_account = create_account(&env.store, "b@example.com", AccountRole::Customer).await;
    let (b_key, b_secret) = create_key(&env.store, b_account).await;
    let b_basic = basic(b_key.as_str(), b_secret.expose());
    let r = env.post("/register").header("authorization", &b_basic).send().await.unwrap();
    let b = Registered::from_json(&r.json().await.unwrap());
    assert_eq!(env.store.list_registrations(b_account).await.unwrap().len(), 1);

    // B's credentials on A's subdomain.
    let r = env
        .post("/update")
        .header("X-Api-User", &b.username)
        .header("X-Api-Key", &b.password)
        .body(format!(r#"{{"subdomain":"{}","txt":"{}"}}"#, a.subdomain, txt(1)))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "forbidden").await;
    // A's credentials with B's license key: the key must belong to the same account.
    let r = env
        .post("/update")
        .header("authorization", &b_basic)
        .header("X-Api-User", &a.username)
        .header("X-Api-Key", &a.password)
        .body(format!(r#"{{"subdomain":"{}","txt":"{}"}}"#, a.subdomain, txt(1)))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "forbidden").await;
    // B's license key cannot delete (or learn anything about) A's registration.
    let r = env
        .post("/deregister")
        .header("authorization", &b_basic)
        .body(format!(r#"{{"subdomain":"{}"}}"#, a.subdomain))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "not_found").await;
    let r = env
        .post("/deregister")
        .header("authorization", &b_basic)
        .body(format!(r#"{{"subdomain":"{}"}}"#, uuid::Uuid::new_v4()))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "not_found").await;
    // B's registration credentials cannot delete A's.
    let r = env
        .post("/deregister")
        .header("X-Api-User", &b.username)
        .header("X-Api-Key", &b.password)
        .body(format!(r#"{{"subdomain":"{}"}}"#, a.subdomain))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "forbidden").await;
    assert_eq!(env.store.list_registrations(env.account).await.unwrap().len(), 1, "A's registration is intact");
    assert_eq!(env.store.list_registrations(b_account).await.unwrap().len(), 1);
    assert!(env.snapshot_state(&a.subdomain).await.unwrap().values.is_empty());
    // A's own key can.
    let r = env
        .post("/deregister")
        .header("authorization", env.basic())
        .body(format!(r#"{{"subdomain":"{}"}}"#, a.subdomain))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), format!(r#"{{"subdomain":"{}","deleted":true}}"#, a.subdomain));
}

async fn huge_bodies_get_413(kind: Kind) {
    let env = Env::start(kind).await;
    let reg = env.register().await;
    let huge = format!(r#"{{"allowfrom":[],"pad":"{}"}}"#, "x".repeat(env.config.max_body_bytes));
    let r = env.post("/register").header("authorization", env.basic()).body(huge.clone()).send().await.unwrap();
    expect_error(r, 413, "payload_too_large").await;
    let r = env
        .post("/update")
        .header("X-Api-User", &reg.username)
        .header("X-Api-Key", &reg.password)
        .body(huge)
        .send()
        .await
        .unwrap();
    expect_error(r, 413, "payload_too_large").await;
    // Chunked (no Content-Length) is cut off too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..64).map(|_| Ok(vec![b' '; 1024])).collect();
    let r = env
        .post("/register")
        .header("authorization", env.basic())
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    expect_error(r, 413, "payload_too_large").await;
}

async fn concurrent_updates_keep_the_newest(kind: Kind) {
    let env = Env::start(kind).await;
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

async fn failed_auth_is_rate_limited(kind: Kind) {
    let mut config = ApiConfig::default();
    config.rate_limits.auth_failures_per_address = Rate::new(1, 3);
    let env = Env::with_config(kind, config).await;
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

async fn registration_is_rate_limited_per_key(kind: Kind) {
    let mut config = ApiConfig::default();
    config.rate_limits.register_per_key = Rate::new(1, 2);
    let env = Env::with_config(kind, config).await;
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
async fn registration_is_rate_limited_per_address(kind: Kind) {
    let mut config = ApiConfig::default();
    config.rate_limits.register_per_address = Rate::new(1, 2);
    let env = Env::with_config(kind, config).await;
    env.register().await;
    let (k2, s2) = create_key(&env.store, env.account).await;
    let r = env.post("/register").header("authorization", basic(k2.as_str(), s2.expose())).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let (k3, s3) = create_key(&env.store, env.account).await;
    let r = env.post("/register").header("authorization", basic(k3.as_str(), s3.expose())).send().await.unwrap();
    assert!(r.headers().contains_key("retry-after"));
    expect_error(r, 429, "rate_limited").await;
}

async fn audit_events_are_written(kind: Kind) {
    let env = Env::start(kind).await;
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

async fn published_state_follows_writes(kind: Kind) {
    let env = Env::start(kind).await;
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

async fn reconcile_repairs_a_failed_publish(kind: Kind) {
    let env = Env::start(kind).await;
    let reg = env.register().await;
    let gone = env.register().await;
    env.dist.failing.store(true, Ordering::SeqCst);
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
    env.dist.failing.store(false, Ordering::SeqCst);
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
    let report = certdns_api::reconcile(env.store.as_ref(), env.dist.inner.as_ref(), 2).await.unwrap();
    assert_eq!((report.checked, report.upserted, report.removed), (2, 0, 0));

    // An empty distribution (a restarted single binary) is seeded by spawn_reconciler.
    let empty: std::sync::Arc<dyn certdns_distribution::Distribution> =
        std::sync::Arc::new(certdns_distribution::InProcess::new());
    let cancel = tokio_util::sync::CancellationToken::new();
    let (handle, task) = certdns_api::spawn_reconciler(env.store.clone(), empty.clone(), 2, cancel.clone());
    for _ in 0..100 {
        if empty.snapshot().await.unwrap().states.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let states = empty.snapshot().await.unwrap().states;
    assert_eq!(states.len(), 2);
    assert!(states.iter().any(|s| s.subdomain.to_string() == reg.subdomain && s.version == 1));
    handle.poke();
    cancel.cancel();
    task.await.unwrap();
}

/// acme-dns's router behaviour: 404/405 bodies, /health, OPTIONS, CORS, request ids.
async fn generic_http_behaviour(kind: Kind) {
    let env = Env::start(kind).await;
    let r = env.http.get(env.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("content-type").is_none());
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(r.text().await.unwrap(), "");
    let r = env.post("/health").send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, OPTIONS");
    assert_eq!(r.text().await.unwrap(), "Method Not Allowed\n");
    for path in ["/register", "/update"] {
        let r = env.http.get(env.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 405, "{path}");
        assert_eq!(r.headers()["allow"], "OPTIONS, POST");
    }
    let r = env.http.get(env.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), "404 page not found\n");
    assert_eq!(env.post("/acme/register").send().await.unwrap().status(), 404, "no prefix configured");
    // CORS: simple requests get the origin header; /update's credentials headers are not allowed.
    let r = env.http.get(env.url("/health")).header("origin", "https://portal.example").send().await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let r = env
        .http
        .request(reqwest::Method::OPTIONS, env.url("/update"))
        .header("origin", "https://portal.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-api-key")
        .send()
        .await
        .unwrap();
    let allowed = r.headers().get("access-control-allow-headers").map(|v| v.to_str().unwrap().to_lowercase());
    assert!(!allowed.unwrap_or_default().contains("x-api-key"));
    // The OpenAPI document is generated from the handlers.
    let r = env.http.get(env.url("/openapi.json")).send().await.unwrap();
    let doc: Value = r.json().await.unwrap();
    for path in ["/register", "/update", "/deregister", "/health"] {
        assert!(doc["paths"][path].is_object(), "{path} missing from the OpenAPI document");
    }
    // A request id sent by the client is echoed.
    let r = env.http.get(env.url("/health")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
}

async fn registration_modes(kind: Kind) {
    let env =
        Env::with_config(kind, ApiConfig { registration: RegistrationMode::Disabled, ..ApiConfig::default() }).await;
    let r = env.post("/register").header("authorization", env.basic()).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), "404 page not found\n");
    assert_eq!(env.post("//register").send().await.unwrap().status(), 404);

    let env = Env::with_config(kind, ApiConfig { registration: RegistrationMode::Open, ..ApiConfig::default() }).await;
    let r = env.post("/register").send().await.unwrap();
    expect_error(r, 500, "no_operator_account").await;
    let operator = create_account(&env.store, "ops@example.com", AccountRole::Operator).await;
    let r = env.post("/register").send().await.unwrap();
    assert_eq!(r.status(), 201);
    let reg = Registered::from_json(&r.json().await.unwrap());
    let stored = env.store.registration_by_username(reg.username.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!((stored.account_id, stored.license_key_id), (operator, None));
    assert_eq!(update(&env, &reg, &txt(1)).await.status(), 200);
}

async fn client_ip_from_trusted_proxy(kind: Kind) {
    let config = ApiConfig { client_ip_header: Some("X-Forwarded-For".into()), ..ApiConfig::default() };
    let env = Env::with_config(kind, config).await;
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

async fn txt_limit_is_configurable(kind: Kind) {
    let env = Env::with_config(kind, ApiConfig { txt_values: 3, ..ApiConfig::default() }).await;
    let reg = env.register().await;
    for i in 1..=4 {
        assert_eq!(update(&env, &reg, &txt(i)).await.status(), 200);
    }
    let state = env.snapshot_state(&reg.subdomain).await.unwrap();
    assert_eq!(state.values.iter().map(|v| v.as_str().to_owned()).collect::<Vec<_>>(), [txt(4), txt(3), txt(2)]);
}
