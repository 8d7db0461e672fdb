//! Every client's wire habits, as each real client sends its requests: the
//! base URL with the license key, Content-Types, bodies, paths and status codes
//! it relies on.

use certdns_api::ApiConfig;
use certdns_testkit::Backend;
use serde_json::Value;

use crate::support::*;

certdns_testkit::both_backends!(
    client_acme_dns_auth_py,
    client_certbot_acme_dns,
    client_goacmedns_0_1_1,
    client_goacmedns_0_2_0,
    client_acme_sh_curl_and_wget,
    client_posh_acme,
    client_certify_dns,
    client_win_acme,
    client_caddy_libdns_and_prefixes,
);

/// acme-dns-auth.py (the certbot hook): Basic from the URL on both endpoints, no
/// Content-Type on /register, exact 201/200, base URLs with and without `/`.
async fn client_acme_dns_auth_py(backend: Backend) {
    let env = Env::start(backend).await;
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
async fn client_certbot_acme_dns(backend: Backend) {
    let env = Env::start(backend).await;
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

/// goacmedns ≤ 0.1.1 (lego ≤ 4.21): JSON Content-Type on an empty
/// body, `AllowFrom`, `SubDomain`/`Txt`, exact 201/200.
async fn client_goacmedns_0_1_1(backend: Backend) {
    let env = Env::start(backend).await;
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

/// goacmedns 0.2.0: `Accept`, no body, trailing newline on update.
async fn client_goacmedns_0_2_0(backend: Backend) {
    let env = Env::start(backend).await;
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

/// acme.sh: stale X-Api headers on register, sed-extractable
/// one-line JSON; wget's challenge-driven Basic; form Content-Type on update.
async fn client_acme_sh_curl_and_wget(backend: Backend) {
    let env = Env::start(backend).await;
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

/// Posh-ACME: `{}` with JSON Content-Type and an explicit Basic header.
async fn client_posh_acme(backend: Backend) {
    let env = Env::start(backend).await;
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

/// Certify The Web: base64url Basic without padding, text/plain, `subject`;
/// update without Basic reads a JSON object with `propagationDelaySeconds`.
async fn client_certify_dns(backend: Backend) {
    let env = Env::start(backend).await;
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

/// win-acme: empty text/plain body, Basic of the raw userinfo.
async fn client_win_acme(backend: Backend) {
    let env = Env::start(backend).await;
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

/// Caddy (libdns/acmedns): `//update` exactly 200; `/p//update` with a configured prefix.
async fn client_caddy_libdns_and_prefixes(backend: Backend) {
    let env = Env::with_config(backend, ApiConfig { path_prefix: "/p".into(), ..ApiConfig::default() }).await;
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
