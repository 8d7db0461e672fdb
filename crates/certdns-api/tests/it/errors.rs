//! Bad input and failed authentication get acme-dns's exact errors; the router
//! behaves like acme-dns's (404/405 bodies, OPTIONS, CORS, request ids).

use certdns_core::TxtValue;
use certdns_testkit::Backend;
use serde_json::Value;

use crate::support::*;

certdns_testkit::both_backends!(
    update_auth_failures_are_forbidden,
    bad_txt_values,
    register_body_errors,
    huge_bodies_get_413,
    generic_http_behaviour,
);

/// Every way of failing /update authentication is 401 `forbidden`, as in acme-dns's
/// own API tests (no headers, unknown user, wrong key, malformed values, allow-from).
async fn update_auth_failures_are_forbidden(backend: Backend) {
    let env = Env::start(backend).await;
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

/// TXT values acme-dns refuses with 400 `bad_txt`: 42 or 44 characters, characters
/// outside base64url, values that are not strings.
async fn bad_txt_values(backend: Backend) {
    let env = Env::start(backend).await;
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

/// The /register bodies acme-dns refuses (malformed JSON, bad CIDRs) and the
/// ones it accepts (empty, `null`, `{}`, extra keys).
async fn register_body_errors(backend: Backend) {
    let env = Env::start(backend).await;
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

async fn huge_bodies_get_413(backend: Backend) {
    let env = Env::start(backend).await;
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

/// acme-dns's router behaviour: 404/405 bodies, /health, OPTIONS, CORS, request ids.
async fn generic_http_behaviour(backend: Backend) {
    let env = Env::start(backend).await;
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
