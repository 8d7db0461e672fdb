//! Registrations bound to their domain and the two extensions that use the
//! binding: lego's HTTP storage (`/storage`) and the acmeproxy dialect
//! (`/acmeproxy`), with the wire those clients send.

use base64::Engine as _;
use certdns_api::ApiConfig;
use certdns_core::{AccountRole, AuditKind, Domain, Username};
use certdns_testkit::Backend;
use certdns_testkit::resolver::{Zone, cname, spawn_dns};
use hickory_proto::rr::RecordType;
use sha2::Digest;

use crate::support::*;

certdns_testkit::both_backends!(
    register_binds_the_subject_domain,
    storage_fetch_put_fetch_all,
    storage_is_per_key_and_off_by_default,
    acmeproxy_present_and_cleanup,
    acmeproxy_refuses_what_it_cannot_map,
);

const CREDENTIALS_KEY: &str = "a-test-credentials-key-of-forty-characters";

/// An env whose CNAME checks ask a stand-in resolver the test fills.
async fn env_with_resolver(backend: Backend) -> (Env, Zone) {
    let zone = Zone::default();
    let resolver = spawn_dns(zone.clone()).await;
    let config = ApiConfig { credentials_key: Some(CREDENTIALS_KEY.into()), resolver, ..ApiConfig::default() };
    (Env::with_config(backend, config).await, zone)
}

async fn register_subject(env: &Env, subject: &str) -> Registered {
    let r = env
        .post("/register")
        .header("authorization", env.basic())
        .body(serde_json::json!({ "subject": subject }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    Registered::from_json(&r.json().await.unwrap())
}

async fn domain_of(env: &Env, reg: &Registered) -> Option<String> {
    let stored = env.store.registration_by_username(reg.username.parse::<Username>().unwrap()).await.unwrap().unwrap();
    stored.domain.map(|d| d.to_string())
}

fn account_json(reg: &Registered) -> String {
    serde_json::json!({
        "fulldomain": reg.fulldomain, "subdomain": reg.subdomain,
        "username": reg.username, "password": reg.password, "server_url": "https://ignored",
    })
    .to_string()
}

async fn error_code(r: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(r.status(), status);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["message"].as_str().is_some_and(|m| m.len() > 20), "a message says what to do: {body}");
    body
}

/// `subject` binds the domain (wildcard to its base, IDN to its A-label) when the
/// account holds no registration for it; a second registration does not take it.
async fn register_binds_the_subject_domain(backend: Backend) {
    let env = Env::start(backend).await;
    let first = register_subject(&env, "*.Example.COM").await;
    assert_eq!(domain_of(&env, &first).await.as_deref(), Some("example.com"));
    let second = register_subject(&env, "example.com").await;
    assert_eq!(domain_of(&env, &second).await, None, "never taken over silently");
    let idn = register_subject(&env, "bücher.example").await;
    assert_eq!(domain_of(&env, &idn).await.as_deref(), Some("xn--bcher-kva.example"));
    let free_text = register_subject(&env, "web servers (eu)").await;
    assert_eq!(domain_of(&env, &free_text).await, None);
}

/// lego's wire: GET (404) → /register → POST (200, no CNAME yet) → GET gives the
/// account back; POST again once the CNAME exists → 201; GET /storage maps all.
async fn storage_fetch_put_fetch_all(backend: Backend) {
    let (env, zone) = env_with_resolver(backend).await;
    env.store.set_license_key_storage_access(env.account, &env.key, true).await.unwrap();
    let get = |path: &str| env.http.get(env.url(path)).header("authorization", env.basic()).send();

    let r = get("/storage/www.example.com").await.unwrap();
    assert_eq!(error_code(r, 404).await["error"], "domain_not_bound");
    let reg = env.register().await;
    let put = || {
        env.post("/storage/www.example.com")
            .header("authorization", env.basic())
            .header("content-type", "application/json")
            .body(account_json(&reg))
            .send()
    };
    let r = put().await.unwrap();
    assert_eq!(r.status(), 200, "no CNAME yet: lego stops and asks for it");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["cname"], "missing");

    let r = get("/storage/www.example.com").await.unwrap();
    assert_eq!(r.status(), 200);
    let account: serde_json::Value = r.json().await.unwrap();
    for field in ["fulldomain", "subdomain", "username", "password"] {
        assert_eq!(account[field], serde_json::to_value(account_json_field(&reg, field)).unwrap(), "{field}");
    }
    assert_eq!(account["server_url"], "http://127.0.0.1");
    // The wildcard and the apex share `_acme-challenge.<domain>`.
    let r = get("/storage/*.www.example.com").await.unwrap();
    assert_eq!(r.status(), 200);

    zone.lock()
        .unwrap()
        .insert(("_acme-challenge.www.example.com".into(), RecordType::CNAME), vec![cname(&reg.fulldomain)]);
    assert_eq!(put().await.unwrap().status(), 201, "the CNAME is in place: lego carries on");

    let r = get("/storage").await.unwrap();
    assert_eq!(r.status(), 200);
    let all: serde_json::Value = r.json().await.unwrap();
    assert_eq!(all.as_object().unwrap().len(), 1);
    assert_eq!(all["www.example.com"]["password"], reg.password.as_str());
    env.wait_for_audit(env.account, AuditKind::CredentialsFetched).await;
    assert!(env.audit_kinds(env.account).await.contains(&AuditKind::RegistrationDomainSet));

    // A key with storage access keeps the password of what it registers.
    let direct = register_subject(&env, "api.example.com").await;
    let r = get("/storage/api.example.com").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["password"], direct.password.as_str());

    // Bad input: nothing changes.
    let r = env.post("/storage/www.example.com").header("authorization", env.basic()).body("{").send().await.unwrap();
    expect_error(r, 400, "malformed_json_payload").await;
    let r = get("/storage/not_a_domain").await.unwrap();
    assert_eq!(error_code(r, 400).await["error"], "bad_domain");
    let mut wrong = serde_json::from_str::<serde_json::Value>(&account_json(&reg)).unwrap();
    wrong["password"] = "x".repeat(40).into();
    let r = env
        .post("/storage/other.example.com")
        .header("authorization", env.basic())
        .body(wrong.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r, 403).await["error"], "account_mismatch");
    // Another registration of the key may not take a bound domain.
    let other = env.register().await;
    let r = env
        .post("/storage/www.example.com")
        .header("authorization", env.basic())
        .body(account_json(&other))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r, 409).await["error"], "domain_bound_elsewhere");
    assert_eq!(domain_of(&env, &reg).await.as_deref(), Some("www.example.com"));
    assert_eq!(domain_of(&env, &other).await, None);
}

fn account_json_field(reg: &Registered, field: &str) -> String {
    match field {
        "fulldomain" => reg.fulldomain.clone(),
        "subdomain" => reg.subdomain.clone(),
        "username" => reg.username.clone(),
        _ => reg.password.clone(),
    }
}

/// Storage access is off by default (403 saying how to switch it on), needs a
/// credentials key (503), and a key sees only the registrations made with it.
async fn storage_is_per_key_and_off_by_default(backend: Backend) {
    let (env, _zone) = env_with_resolver(backend).await;
    let r = env.http.get(env.url("/storage")).header("authorization", env.basic()).send().await.unwrap();
    let body = error_code(r, 403).await;
    assert_eq!(body["error"], "storage_access_required");
    assert!(body["message"].as_str().unwrap().contains("portal"));
    let r = env.http.get(env.url("/storage")).send().await.unwrap();
    expect_error(r, 401, "license_key_required").await;

    env.store.set_license_key_storage_access(env.account, &env.key, true).await.unwrap();
    let reg = register_subject(&env, "shop.example.com").await;
    // A second key of the same account: told the domain is another key's.
    let (key2, secret2) = create_key(&env.store, env.account).await;
    env.store.set_license_key_storage_access(env.account, &key2, true).await.unwrap();
    let r = env
        .http
        .get(env.url("/storage/shop.example.com"))
        .header("authorization", basic(key2.as_str(), secret2.expose()))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r, 409).await["error"], "domain_bound_to_other_key");
    let r = env
        .post("/storage/shop.example.com")
        .header("authorization", basic(key2.as_str(), secret2.expose()))
        .body(account_json(&reg))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r, 403).await["error"], "account_mismatch", "a body for another key's registration");
    // Another tenant: nothing revealed.
    let other = create_account(&env.store, "other@example.com", AccountRole::Customer).await;
    let (key3, secret3) = create_key(&env.store, other).await;
    env.store.set_license_key_storage_access(other, &key3, true).await.unwrap();
    let auth3 = basic(key3.as_str(), secret3.expose());
    let r = env.http.get(env.url("/storage/shop.example.com")).header("authorization", &auth3).send().await.unwrap();
    assert_eq!(error_code(r, 404).await["error"], "domain_not_bound");
    let r = env.http.get(env.url("/storage")).header("authorization", &auth3).send().await.unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap(), serde_json::json!({}));

    // Without a credentials key the service keeps no passwords.
    let plain = Env::start(backend).await;
    plain.store.set_license_key_storage_access(plain.account, &plain.key, true).await.unwrap();
    let r = plain.http.get(plain.url("/storage")).header("authorization", plain.basic()).send().await.unwrap();
    assert_eq!(error_code(r, 503).await["error"], "storage_not_configured");
}

async fn proxy(env: &Env, action: &str, body: serde_json::Value) -> reqwest::Response {
    env.post(&format!("/acmeproxy/{action}"))
        .header("authorization", env.basic())
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn served(env: &Env, reg: &Registered) -> Vec<String> {
    env.snapshot_state(&reg.subdomain)
        .await
        .map(|s| s.values.iter().map(|v| v.as_str().to_owned()).collect())
        .unwrap_or_default()
}

/// present adds, cleanup removes exactly one value, both published at once; ten
/// names under one bound domain are served together; lego's RAW mode and the
/// delegation target as fqdn work too.
async fn acmeproxy_present_and_cleanup(backend: Backend) {
    let env = Env::start(backend).await;
    let reg = register_subject(&env, "example.com").await;
    let r =
        proxy(&env, "present", serde_json::json!({ "fqdn": "_acme-challenge.example.com.", "value": txt(0) })).await;
    assert_eq!(r.status(), 200);
    assert_eq!(served(&env, &reg).await, [txt(0)]);
    // A retried present does not duplicate.
    proxy(&env, "present", serde_json::json!({ "fqdn": "_acme-challenge.example.com.", "value": txt(0) })).await;
    assert_eq!(served(&env, &reg).await, [txt(0)]);
    for i in 1..10 {
        let fqdn = format!("_acme-challenge.host{i}.example.com.");
        let r = proxy(&env, "present", serde_json::json!({ "fqdn": fqdn, "value": txt(i) })).await;
        assert_eq!(r.status(), 200, "the closest bound parent serves host{i}");
    }
    let values = served(&env, &reg).await;
    assert_eq!(values.len(), 10, "ten names at once: {values:?}");
    let r = proxy(&env, "cleanup", serde_json::json!({ "fqdn": "_acme-challenge.host3.example.com", "value": txt(3) }))
        .await;
    assert_eq!(r.status(), 200);
    let values = served(&env, &reg).await;
    assert_eq!(values.len(), 9);
    assert!(!values.contains(&txt(3)));
    let r = proxy(&env, "cleanup", serde_json::json!({ "fqdn": "_acme-challenge.example.com", "value": txt(3) })).await;
    assert_eq!(r.status(), 200, "cleaning up twice is fine");

    // lego RAW mode: the value is the key authorization's SHA-256, base64url.
    let key_auth = "token.thumbprint";
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(key_auth));
    let r =
        proxy(&env, "present", serde_json::json!({ "domain": "*.example.com", "token": "token", "keyAuth": key_auth }))
            .await;
    assert_eq!(r.status(), 200);
    assert_eq!(served(&env, &reg).await.first(), Some(&raw));
    // lego after following the CNAME: the delegation target itself.
    let target = format!("{}.", reg.fulldomain.to_uppercase());
    let r = proxy(&env, "cleanup", serde_json::json!({ "fqdn": target, "value": raw })).await;
    assert_eq!(r.status(), 200);
    assert!(!served(&env, &reg).await.contains(&raw));
    // The acme-dns /update keeps its own two values on the same registration.
    let stored = env.store.registration_by_domain(env.account, &Domain::parse("example.com").unwrap()).await.unwrap();
    assert_eq!(stored.unwrap().subdomain.to_string(), reg.subdomain);
}

/// Unknown, foreign or malformed names are 4xx JSON errors and change nothing.
async fn acmeproxy_refuses_what_it_cannot_map(backend: Backend) {
    let env = Env::start(backend).await;
    let reg = register_subject(&env, "example.com").await;
    let body = |fqdn: &str| serde_json::json!({ "fqdn": fqdn, "value": txt(1) });
    let r = proxy(&env, "present", body("_acme-challenge.example.net.")).await;
    let err = error_code(r, 404).await;
    assert_eq!(err["error"], "domain_not_bound");
    assert!(err["message"].as_str().unwrap().contains("/storage/example.net"), "{err}");
    for bad in ["www.example.com.", "_acme-challenge.under_score.example.com", "_acme-challenge.*.example.com"] {
        assert_eq!(error_code(proxy(&env, "present", body(bad)).await, 400).await["error"], "bad_domain", "{bad}");
    }
    // Multi-byte text where the zone's suffix would start: a 400, not a dropped
    // connection (found by the API fuzzer).
    let odd = "\u{10000}00\u{80}\u{80}\u{80}\u{80}\u{80}\u{10000}\u{10000}";
    assert_eq!(error_code(proxy(&env, "present", body(odd)).await, 400).await["error"], "bad_domain");
    let mixed = serde_json::json!({ "fqdn": "_acme-challenge.example.com", "value": txt(1), "domain": "example.com" });
    expect_error(proxy(&env, "present", mixed).await, 400, "malformed_json_payload").await;
    let r =
        proxy(&env, "present", serde_json::json!({ "fqdn": "_acme-challenge.example.com", "value": "short" })).await;
    expect_error(r, 400, "bad_txt").await;
    let r = proxy(&env, "present", serde_json::json!({ "nothing": 1 })).await;
    expect_error(r, 400, "malformed_json_payload").await;
    let r = env.post("/acmeproxy/present").body(body("_acme-challenge.example.com").to_string()).send().await.unwrap();
    expect_error(r, 401, "license_key_required").await;
    // Another tenant's key: its own (empty) view, nothing about ours.
    let other = create_account(&env.store, "other@example.com", AccountRole::Customer).await;
    let (key, secret) = create_key(&env.store, other).await;
    let r = env
        .post("/acmeproxy/present")
        .header("authorization", basic(key.as_str(), secret.expose()))
        .body(body("_acme-challenge.example.com").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r, 404).await["error"], "domain_not_bound");
    let r = env
        .post("/acmeproxy/present")
        .header("authorization", basic(key.as_str(), secret.expose()))
        .body(body(&format!("{}.", reg.fulldomain)).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r, 404).await["error"], "domain_not_bound");
    assert!(served(&env, &reg).await.is_empty(), "nothing was written");
}
