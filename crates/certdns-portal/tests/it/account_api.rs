//! The account API (`/api/v1` on the portal) with personal access tokens:
//! tokens made in the portal (shown once, scoped, revocable, audited), every
//! route with each scope, bad input refused with JSON and nothing changed, and
//! one tenant's token blind to another's registrations and keys.

use certdns_core::{AccessToken, AuditKind, KeyId, Secret, TokenId, TokenScope};
use certdns_testkit::Backend;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::domains::{account_id, events_of};
use crate::support::*;

certdns_testkit::both_backends!(tokio(flavor = "multi_thread", worker_threads = 2);
    tokens_are_shown_once_scoped_and_revocable,
    registrations_and_keys_through_the_api,
    bad_input_is_refused_in_json_and_changes_nothing,
    one_tenant_cannot_reach_another,
    bad_tokens_spend_a_budget_and_suspension_refuses,
);

/// Creates a token in the portal; returns its text from the one page that shows it.
pub(crate) async fn portal_token(env: &Env, c: &reqwest::Client, name: &str, scope: &str) -> String {
    let (status, page, _) = get(c, &format!("{}/tokens", env.portal)).await;
    assert_eq!(status, 200);
    let t = csrf(&page);
    let form = [("csrf", t.as_str()), ("name", name), ("scope", scope), ("expires_days", "90")];
    let (status, body, location) = post(c, &format!("{}/tokens", env.portal), &form).await;
    assert_eq!((status, location.as_deref()), (303, Some("/tokens/created")), "{body}");
    let (status, page, _) = get(c, &format!("{}/tokens/created", env.portal)).await;
    assert_eq!(status, 200);
    let marker = "id=\"token\" class=\"mono\" readonly value=\"";
    let start = page.find(marker).expect("the token is shown") + marker.len();
    let token = page[start..start + page[start..].find('"').unwrap()].to_owned();
    let (_, again, _) = get(c, &format!("{}/tokens/created", env.portal)).await;
    assert!(again.contains("Token already shown") && !again.contains(&token), "shown once");
    token
}

/// One account API call: status and JSON body (`Value::Null` if none).
pub(crate) async fn call(
    env: &Env,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let c = reqwest::Client::new();
    let url = format!("{}/api/v1{path}", env.portal);
    let mut req = c.request(method.parse().unwrap(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn tokens_are_shown_once_scoped_and_revocable(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "ada@example.com").await;
    let account = account_id(&env, "ada@example.com").await;
    let read = portal_token(&env, &c, "inventory", "read").await;
    let write = portal_token(&env, &c, "terraform", "read-write").await;
    assert!(read.starts_with("cdpat_") && read.len() == 63, "{read}");
    let created = events_of(&env, account, AuditKind::AccessTokenCreated).await;
    assert_eq!(created.len(), 2);
    assert_eq!((created[0]["name"].as_str(), created[0]["scope"].as_str()), (Some("terraform"), Some("read-write")));
    let stored = env.store.list_access_tokens(account).await.unwrap();
    assert!(stored.iter().all(|t| !t.secret_hash.as_str().contains(&read[23..])), "only the hash is kept");

    // No token, a mangled one: 401 with the scheme to use.
    let r = reqwest::Client::new().get(format!("{}/api/v1/registrations", env.portal)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"certdns account API\"");
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "token_required");
    let (status, body) = call(&env, "GET", "/registrations", Some(&format!("{}x", &read[..62])), None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")));

    // Read: lists; never writes, never sees a credential.
    let (status, body) = call(&env, "GET", "/registrations", Some(&read), None).await;
    assert_eq!((status, body["registrations"].as_array().map(Vec::len)), (200, Some(0)));
    let (status, body) = call(&env, "POST", "/keys", Some(&read), Some(json!({ "name": "x" }))).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("insufficient_scope")));
    assert!(body["message"].as_str().unwrap().contains("read-write"));
    assert!(env.store.core().list_license_keys(account).await.unwrap().is_empty(), "nothing was created");
    // Read-write: creates.
    let (status, body) = call(&env, "POST", "/keys", Some(&write), Some(json!({ "name": "ci" }))).await;
    assert_eq!(status, 201, "{body}");
    let listed = env.store.list_access_tokens(account).await.unwrap();
    assert!(listed.iter().all(|t| t.last_used_at.is_some()), "use is noted");

    // Revoked in the portal: refused at once; the page lists it as revoked.
    let write_id = &write[6..22];
    let t = token(&env, &c).await;
    let (status, _, location) = post(&c, &format!("{}/tokens/{write_id}/revoke", env.portal), &[("csrf", &t)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/tokens?notice=token_revoked")));
    let (status, body) = call(&env, "GET", "/keys", Some(&write), None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")));
    let (_, page, _) = get(&c, &format!("{}/tokens", env.portal)).await;
    assert!(page.contains("revoked 20") && page.contains("inventory"), "{page}");
    assert_eq!(events_of(&env, account, AuditKind::AccessTokenRevoked).await[0]["token"], write_id);

    // Expired: refused like any bad token.
    let secret = Secret::generate();
    let id = TokenId::generate();
    let old = certdns_core::now() - time::Duration::days(91);
    let expired = AccessToken {
        id: id.clone(),
        account_id: account,
        name: "old".into(),
        scope: TokenScope::ReadWrite,
        secret_hash: secret.hash(),
        created_at: old,
        expires_at: Some(old + time::Duration::days(90)),
        last_used_at: None,
        revoked_at: None,
    };
    env.store.create_access_token(&expired).await.unwrap();
    let text = certdns_core::access_token::token_text(&id, secret.expose());
    assert_eq!(call(&env, "GET", "/keys", Some(&text), None).await.0, 401);
}

async fn registrations_and_keys_through_the_api(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "ada@example.com").await;
    let account = account_id(&env, "ada@example.com").await;
    let rw = portal_token(&env, &c, "terraform", "read-write").await;
    let read = portal_token(&env, &c, "inventory", "read").await;
    let t = Some(rw.as_str());

    // A key, its secret once, working at the acme-dns API.
    let (status, made) = call(&env, "POST", "/keys", t, Some(json!({ "name": "web servers" }))).await;
    assert_eq!(status, 201, "{made}");
    let key = made["key"]["id"].as_str().unwrap().to_owned();
    let base_url = made["base_url"].as_str().unwrap().to_owned();
    assert!(base_url.contains(&format!("{key}:{}@", made["secret"].as_str().unwrap())), "{made}");
    assert_eq!(register(&base_url, "api.example.com").await.0, 201);

    // A domain-bound registration: credentials in the answer, usable at once.
    let body = json!({ "key_id": key, "domain": "Bücher.example" });
    let (status, made) = call(&env, "POST", "/registrations", t, Some(body)).await;
    assert_eq!(status, 201, "{made}");
    let reg = &made["registration"];
    let sub = reg["subdomain"].as_str().unwrap().to_owned();
    assert_eq!(reg["domain"], "xn--bcher-kva.example");
    assert_eq!(reg["domain_unicode"], "bücher.example");
    assert_eq!(reg["status"], "awaiting_first_update");
    assert_eq!(reg["cname"]["name"], "_acme-challenge.xn--bcher-kva.example");
    assert_eq!(reg["cname"]["target"].as_str(), Some(format!("{sub}.{ZONE}").as_str()));
    let creds = &made["credentials"];
    assert_eq!(creds["fulldomain"].as_str(), Some(format!("{sub}.{ZONE}").as_str()));
    let update = reqwest::Client::new()
        .post(format!("{}/update", env.api))
        .header("X-Api-User", creds["username"].as_str().unwrap())
        .header("X-Api-Key", creds["password"].as_str().unwrap())
        .json(&json!({ "subdomain": sub, "txt": "a".repeat(43) }))
        .send()
        .await
        .unwrap();
    assert_eq!(update.status().as_u16(), 200);
    let (status, one) = call(&env, "GET", &format!("/registrations/{sub}"), Some(&read), None).await;
    assert_eq!((status, one["status"].as_str()), (200, Some("in_use")), "{one}");
    assert!(one["last_update_at"].as_str().is_some_and(|t| t.starts_with("20")));
    let via: Vec<Value> = events_of(&env, account, AuditKind::RegistrationCreated).await;
    assert_eq!(via.iter().filter(|d| d["via"] == "api").count(), 1, "{via:?}");

    // Its password is not kept (the key has no storage access): nothing to export.
    let (status, body) = call(&env, "GET", &format!("/registrations/{sub}/credentials"), t, None).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("credentials_not_kept")));
    // Under a key with storage access it is, for a read-write token only.
    let key_id: KeyId = key.parse().unwrap();
    env.store.core().set_license_key_storage_access(account, &key_id, true).await.unwrap();
    let (_, kept) =
        call(&env, "POST", "/registrations", t, Some(json!({ "key_id": key, "domain": "kept.example" }))).await;
    let kept_sub = kept["registration"]["subdomain"].as_str().unwrap().to_owned();
    assert_eq!(kept["registration"]["credentials_kept"], true);
    let path = format!("/registrations/{kept_sub}/credentials");
    assert_eq!(call(&env, "GET", &path, Some(&read), None).await.0, 403);
    let (status, exported) = call(&env, "GET", &path, t, None).await;
    assert_eq!(status, 200, "{exported}");
    assert_eq!(exported["password"], kept["credentials"]["password"]);
    assert_eq!(exported["username"], kept["credentials"]["username"]);
    let fetched = events_of(&env, account, AuditKind::CredentialsFetched).await;
    assert_eq!((fetched.len(), fetched[0]["via"].as_str()), (1, Some("api")));

    // The domain: a held one moves only when asked; clearing works.
    let set = |domain: Value, take_over: bool| json!({ "domain": domain, "take_over": take_over });
    let path = format!("/registrations/{kept_sub}/domain");
    let (status, body) = call(&env, "PUT", &path, t, Some(set(json!("bücher.example"), false))).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("domain_bound_elsewhere")), "{body}");
    assert_eq!(body["held_by"]["subdomain"].as_str(), Some(sub.as_str()));
    let (status, body) = call(&env, "PUT", &path, t, Some(set(json!("bücher.example"), true))).await;
    assert_eq!((status, body["domain"].as_str()), (200, Some("xn--bcher-kva.example")), "{body}");
    let (_, first) = call(&env, "GET", &format!("/registrations/{sub}"), t, None).await;
    assert_eq!((first["domain"].clone(), first["status"].as_str()), (Value::Null, Some("no_domain")));
    let (status, body) = call(&env, "PUT", &path, t, Some(set(Value::Null, false))).await;
    assert_eq!((status, body["domain"].clone()), (200, Value::Null));

    // The CNAME check, with the record in place in the resolver the portal asks.
    let path = format!("/registrations/{sub}/domain");
    call(&env, "PUT", &path, t, Some(set(json!("www.example.com"), false))).await;
    env.set_dns("_acme-challenge.www.example.com", RecordType::CNAME, vec![cname(&format!("{sub}.{ZONE}"))]);
    let (status, check) = call(&env, "POST", &format!("/registrations/{sub}/check"), Some(&read), None).await;
    assert_eq!((status, check["status"].as_str()), (200, Some("correct")), "{check}");
    env.set_dns("_acme-challenge.www.example.com", RecordType::CNAME, vec![]);
    env.set_dns("_acme-challenge.www.example.com", RecordType::TXT, vec![txt("leftover")]);
    let (_, check) = call(&env, "POST", &format!("/registrations/{sub}/check"), Some(&read), None).await;
    assert_eq!(check["status"], "shadowed", "{check}");

    // Keys: listed with counts; rotated (the old secret in grace); revoked.
    let (status, keys) = call(&env, "GET", "/keys", Some(&read), None).await;
    assert_eq!(status, 200);
    let listed = &keys["keys"][0];
    assert_eq!((listed["id"].as_str(), listed["registrations"].as_u64()), (Some(key.as_str()), Some(3)));
    let (status, rotated) = call(&env, "POST", &format!("/keys/{key}/rotate"), t, None).await;
    assert_eq!(status, 200, "{rotated}");
    assert!(rotated["key"]["grace_until"].is_string() && rotated["secret"] != made["secret"]);
    assert_eq!(register(&base_url, "old-secret.example").await.0, 201, "the old secret works in grace");
    // The API caches keys for KEY_CACHE_TTL; the new secret works once that passed.
    tokio::time::sleep(certdns_api::KEY_CACHE_TTL + std::time::Duration::from_millis(200)).await;
    assert_eq!(register(rotated["base_url"].as_str().unwrap(), "new-secret.example").await.0, 201);
    let (status, revoked) = call(&env, "POST", &format!("/keys/{key}/revoke"), t, None).await;
    assert_eq!((status, revoked["active"].as_bool()), (200, Some(false)));
    tokio::time::sleep(certdns_api::KEY_CACHE_TTL + std::time::Duration::from_millis(200)).await;
    assert_eq!(register(rotated["base_url"].as_str().unwrap(), "late.example").await.0, 403, "revoked");

    // Delete: gone from the list and from the store.
    let (status, _) = call(&env, "DELETE", &format!("/registrations/{kept_sub}"), t, None).await;
    assert_eq!(status, 204);
    assert_eq!(call(&env, "GET", &format!("/registrations/{kept_sub}"), t, None).await.0, 404);

    // The audit log, newest first, in pages.
    let (status, page) = call(&env, "GET", "/audit?limit=2", Some(&read), None).await;
    assert_eq!(status, 200, "{page}");
    let events = page["events"].as_array().unwrap();
    assert_eq!(events[0]["kind"], "registration.deleted");
    assert_eq!(events.len(), 2);
    let next = page["next_before"].as_i64().unwrap();
    let (_, older) = call(&env, "GET", &format!("/audit?limit=2&before={next}"), Some(&read), None).await;
    assert!(older["events"][0]["id"].as_i64().unwrap() < next);
}

async fn bad_input_is_refused_in_json_and_changes_nothing(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "ada@example.com").await;
    let account = account_id(&env, "ada@example.com").await;
    let rw = portal_token(&env, &c, "terraform", "read-write").await;
    let t = Some(rw.as_str());
    let (_, made) = call(&env, "POST", "/keys", t, Some(json!({ "name": "k" }))).await;
    let key = made["key"]["id"].as_str().unwrap().to_owned();
    let before = env.store.core().list_registrations(account).await.unwrap().len();

    for (body, code) in [
        (json!({ "key_id": key, "domain": "a.*.example.com" }), "invalid"),
        (json!({ "key_id": key, "domain": "" }), "invalid"),
        (json!({ "key_id": "nosuchkey0000000", "domain": "ok.example" }), "not_found"),
        (json!({ "key_id": "../../etc", "domain": "ok.example" }), "not_found"),
        (json!({ "key_id": key, "domain": "ok.example", "admin": true }), "bad_request"),
        (json!({ "key_id": key }), "bad_request"),
        (json!([1, 2]), "bad_request"),
    ] {
        let (status, answer) = call(&env, "POST", "/registrations", t, Some(body.clone())).await;
        assert_eq!(answer["error"], code, "{body} → {status} {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
    }
    // Not JSON, or too big.
    let url = format!("{}/api/v1/registrations", env.portal);
    let r = reqwest::Client::new().post(&url).bearer_auth(&rw).body("key_id=x").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let huge = json!({ "key_id": key, "domain": "x".repeat(20_000) });
    let r = reqwest::Client::new().post(&url).bearer_auth(&rw).json(&huge).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(env.store.core().list_registrations(account).await.unwrap().len(), before, "nothing was created");

    // Unknown routes, ids and methods answer JSON too.
    for (method, path, status) in [
        ("GET", "/nope", 404),
        ("GET", "/registrations/not-a-uuid", 404),
        ("GET", "/registrations/00000000-0000-4000-8000-000000000000", 404),
        ("PATCH", "/registrations", 405),
        ("POST", "/keys/nosuchkey0000000/rotate", 404),
    ] {
        let (got, body) = call(&env, method, path, t, None).await;
        assert_eq!(got, status, "{method} {path}: {body}");
        assert!(body["error"].is_string(), "{method} {path}: {body}");
    }
    let (status, body) = call(&env, "GET", "/audit?limit=0", t, None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));

    // The document describes every route and how to authenticate.
    let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", env.portal)).await.unwrap().json().await.unwrap();
    for path in ["/api/v1/registrations", "/api/v1/registrations/{subdomain}/credentials", "/api/v1/audit"] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
        assert_eq!(doc["paths"][path]["servers"][0]["url"].as_str(), Some(env.portal.as_str()));
    }
    assert_eq!(doc["components"]["securitySchemes"]["access_token"]["scheme"], "bearer");
}

async fn one_tenant_cannot_reach_another(backend: Backend) {
    let env = start(backend).await;
    let ada = signup(&env, "ada@example.com").await;
    let bob = signup(&env, "bob@example.com").await;
    let ada_t = portal_token(&env, &ada, "a", "read-write").await;
    let bob_t = portal_token(&env, &bob, "b", "read-write").await;
    let (_, made) = call(&env, "POST", "/keys", Some(&ada_t), Some(json!({ "name": "k" }))).await;
    let key = made["key"]["id"].as_str().unwrap().to_owned();
    let (_, reg) =
        call(&env, "POST", "/registrations", Some(&ada_t), Some(json!({ "key_id": key, "domain": "ada.example" })))
            .await;
    let sub = reg["registration"]["subdomain"].as_str().unwrap().to_owned();

    let b = Some(bob_t.as_str());
    assert_eq!(call(&env, "GET", "/registrations", b, None).await.1["registrations"], json!([]));
    assert_eq!(call(&env, "GET", "/keys", b, None).await.1["keys"], json!([]));
    for (method, path, body) in [
        ("GET", format!("/registrations/{sub}"), None),
        ("PUT", format!("/registrations/{sub}/domain"), Some(json!({ "domain": "x.example" }))),
        ("GET", format!("/registrations/{sub}/credentials"), None),
        ("POST", format!("/registrations/{sub}/check"), None),
        ("DELETE", format!("/registrations/{sub}"), None),
        ("POST", format!("/keys/{key}/rotate"), None),
        ("POST", format!("/keys/{key}/revoke"), None),
        ("POST", "/registrations".to_owned(), Some(json!({ "key_id": key, "domain": "bob.example" }))),
    ] {
        let (status, answer) = call(&env, method, &path, b, body).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
        assert!(!answer.to_string().contains("ada"), "nothing about the other tenant: {answer}");
    }
    let (status, still) = call(&env, "GET", &format!("/registrations/{sub}"), Some(&ada_t), None).await;
    assert_eq!((status, still["domain"].as_str()), (200, Some("ada.example")), "unchanged");
    let (_, keys) = call(&env, "GET", "/keys", Some(&ada_t), None).await;
    assert_eq!(keys["keys"][0]["active"], true);
    assert!(keys["keys"][0]["grace_until"].is_null(), "not rotated");
}

async fn bad_tokens_spend_a_budget_and_suspension_refuses(backend: Backend) {
    let env = start_with(backend, |c| c.login_failures_per_minute_per_address = 3).await;
    let c = signup(&env, "ada@example.com").await;
    let good = portal_token(&env, &c, "a", "read").await;
    let bad = format!("cdpat_{}_{}", "a".repeat(16), "b".repeat(40));
    for _ in 0..3 {
        assert_eq!(call(&env, "GET", "/keys", Some(&bad), None).await.0, 401);
    }
    let r = reqwest::Client::new().get(format!("{}/api/v1/keys", env.portal)).bearer_auth(&bad).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let (status, body) = call(&env, "GET", "/keys", Some(&good), None).await;
    assert_eq!((status, body["error"].as_str()), (429, Some("too_many_failures")), "refused before any lookup");
    // The sign-in form keeps its own budget: the owner still gets in.
    assert_eq!(try_login(&env, "ada@example.com", PASSWORD).await.0, 303);

    // A suspended account's tokens stop working.
    let env = start(backend).await;
    let c = signup(&env, "ada@example.com").await;
    let good = portal_token(&env, &c, "a", "read").await;
    let account = account_id(&env, "ada@example.com").await;
    env.store.core().set_account_status(account, certdns_core::AccountStatus::Suspended).await.unwrap();
    let (status, body) = call(&env, "GET", "/keys", Some(&good), None).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("account_suspended")));
    assert_eq!(body["reason"], serde_json::Value::Null, "suspended from the CLI: no reason given");
    // With the operator's reason, the 403 says it.
    env.store.suspend_account(account, "Abuse report #7").await.unwrap();
    let (status, body) = call(&env, "GET", "/keys", Some(&good), None).await;
    assert_eq!((status, body["reason"].as_str()), (403, Some("Abuse report #7")));
    assert!(body["message"].as_str().unwrap().contains("Reason: Abuse report #7."), "{body}");
}
