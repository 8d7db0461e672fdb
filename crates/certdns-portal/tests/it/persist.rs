//! dns-persist-01 records, black-box: made, changed and removed in the portal
//! and through the account API; refused input changes nothing and says why;
//! every change audited; the CA's view (a resolver following
//! `_validation-persist.<domain>`'s CNAME to a real certdns responder) gets the
//! record's exact text; `/update` never writes one; another account can
//! neither see nor change it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use certdns_core::{AuditKind, RegistrationKind, Secret, Subdomain};
use certdns_testkit::Backend;
use certdns_testkit::resolver::spawn_dns_following;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::account_api::{call, portal_token};
use crate::account_label::{post_form, start_responder, txt_through};
use crate::domains::{account_id, events_of, stored};
use crate::support::*;

certdns_testkit::both_backends!(tokio(flavor = "multi_thread", worker_threads = 2);
    a_persist_record_is_made_changed_and_removed_in_the_portal,
    the_account_api_manages_persist_records_within_its_account,
);

/// draft-ietf-acme-dns-persist-02 §10.2: its inputs and hashed URI.
pub(crate) const THUMBPRINT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
pub(crate) const ACCOUNT_URL: &str = "https://ca.example/acct/123";
pub(crate) const PREFIX: &str = "https://ca.example/account-hash/";
const HASHED: &str = "https://ca.example/account-hash/sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw";

/// Waits until `name`, asked of `resolver`, answers exactly `want`.
async fn answers(resolver: SocketAddr, name: &str, want: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = txt_through(resolver, name).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{name} answers {got:?}, not {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn subdomain_in(location: &str) -> String {
    location.trim_start_matches("/persist/").split('?').next().unwrap().to_owned()
}

async fn a_persist_record_is_made_changed_and_removed_in_the_portal(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "persist@example.com").await;
    let account = account_id(&env, "persist@example.com").await;
    let (status, page, _) = get(&c, &format!("{}/persist", env.portal)).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"tradeoff\"") && page.contains("until it expires or you remove it"), "{page}");

    // The draft -01 form (a plain account URL) is refused, with the way out; nothing is made.
    let plain = [("domain", "example.com"), ("issuer", "letsencrypt.org"), ("account_mode", "hashed")];
    let mut fields = plain.to_vec();
    fields.push(("accounturi", "https://acme-v02.api.letsencrypt.org/acme/acct/1"));
    let (status, page, _) = post_form(&env, &c, "/persist", &fields).await;
    assert_eq!(status, 422);
    assert!(page.contains("id=\"persist-error\"") && page.contains("hashed URI"), "{page}");
    let regs = env.store.core().list_registrations(account).await.unwrap();
    assert!(regs.is_empty(), "nothing was created");

    // Made from the shareable values (draft §4.5): the draft's own hashed URI.
    let fields = [
        ("domain", "example.com"),
        ("issuer", "LetsEncrypt.org"),
        ("account_mode", "compute"),
        ("account_url", ACCOUNT_URL),
        ("jwk_thumbprint", THUMBPRINT),
        ("account_hash_prefix", PREFIX),
    ];
    let (status, _, location) = post_form(&env, &c, "/persist", &fields).await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert!(location.ends_with("?notice=persist_created"), "{location}");
    let sub = subdomain_in(&location);
    let reg = stored(&env, account, &sub).await;
    assert_eq!(reg.kind, RegistrationKind::Persist);
    let text = format!("letsencrypt.org; accounturi={HASHED}");
    let fulldomain = format!("{sub}.{ZONE}");
    let name = "_validation-persist.example.com";

    // The page: the exact TXT, the CNAME to create, the trade-off.
    let (status, page, _) = get(&c, &format!("{}/persist/{sub}", env.portal)).await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("id=\"txt\" class=\"mono\" readonly value=\"{text}\"")), "{page}");
    assert!(page.contains(&format!("id=\"cname-name\">{name}.</code>")), "the CNAME's name");
    assert!(page.contains(&format!("id=\"cname-target\">{fulldomain}.</code>")), "the CNAME's target");
    assert!(page.contains(&format!("{name}. 3600 IN CNAME {fulldomain}.")), "the zone-file line");
    assert!(page.contains(">_validation-persist</code>"), "relative to the zone");
    // The registrations page leads here; its own page for it redirects here.
    let (_, list, _) = get(&c, &format!("{}/registrations", env.portal)).await;
    assert!(list.contains("id=\"persist-link\""), "{list}");
    let (status, _, to) = get(&c, &format!("{}/registrations/{sub}", env.portal)).await;
    assert_eq!((status, to), (303, Some(format!("/persist/{sub}"))));

    // The check asks _validation-persist.<domain>.
    let (_, page, _) = get(&c, &format!("{}/persist/{sub}?check=1", env.portal)).await;
    assert!(page.contains("data-status=\"missing\""), "{page}");
    env.set_dns(name, RecordType::CNAME, vec![cname(&fulldomain)]);
    let (_, page, _) = get(&c, &format!("{}/persist/{sub}?check=1", env.portal)).await;
    assert!(page.contains("data-status=\"correct\""), "{page}");

    // The CA's view: a resolver following the CNAME gets the exact record.
    let cancel = CancellationToken::new();
    let responder = start_responder(&env, &cancel).await;
    let resolver = spawn_dns_following(env.dns.clone(), responder).await;
    answers(resolver, name, std::slice::from_ref(&text)).await;

    // Changed: wildcard and an expiry; answered at once.
    let change = [
        ("issuer", "letsencrypt.org"),
        ("account_mode", "hashed"),
        ("accounturi", HASHED),
        ("wildcard", "on"),
        ("persist_until", "2999-01-01"),
    ];
    let (status, _, location) = post_form(&env, &c, &format!("/persist/{sub}"), &change).await;
    assert_eq!((status, location), (303, Some(format!("/persist/{sub}?notice=persist_saved"))));
    let changed = format!("{text}; policy=wildcard; persistUntil=32472144000");
    answers(resolver, name, std::slice::from_ref(&changed)).await;

    // Refused changes say why and change nothing: an expiry in the past, a bad issuer.
    for (field, bad, why) in
        [("persist_until", "2001-01-01", "in the past"), ("issuer", "*.letsencrypt.org", "wildcard")]
    {
        let mut fields = change.to_vec();
        fields.retain(|(k, _)| *k != field);
        fields.push((field, bad));
        let (status, page, _) = post_form(&env, &c, &format!("/persist/{sub}"), &fields).await;
        assert_eq!(status, 422, "{field}={bad}");
        assert!(page.contains("id=\"persist-error\"") && page.contains(why), "{page}");
    }
    let state = env.store.core().txt_state(reg.subdomain, 1).await.unwrap().unwrap();
    assert_eq!(state.persist.unwrap().to_txt(), changed, "unchanged");

    // /update never writes it, even with the registration's credentials.
    let password = Secret::generate();
    assert!(
        env.store
            .core()
            .replace_registration_password_hash(account, reg.id, &reg.password_hash, &password.hash())
            .await
            .unwrap()
    );
    let value = "a".repeat(43);
    let r = reqwest::Client::new()
        .post(format!("{}/update", env.api))
        .header("X-Api-User", reg.username.to_string())
        .header("X-Api-Key", password.expose())
        .json(&json!({ "subdomain": sub, "txt": value }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "persist_record_not_updatable", "{body}");
    answers(resolver, name, std::slice::from_ref(&changed)).await;

    // Another account sees nothing of it and cannot change or remove it.
    let other = signup(&env, "other@example.com").await;
    for path in [format!("/persist/{sub}"), format!("/registrations/{sub}")] {
        let (status, page, _) = get(&other, &format!("{}{path}", env.portal)).await;
        assert_eq!(status, 404, "{path}");
        assert!(!page.contains(HASHED));
    }
    let (status, _, _) = post_form(&env, &other, &format!("/persist/{sub}"), &change).await;
    assert_eq!(status, 404);
    let (status, _, _) = post_form(&env, &other, &format!("/persist/{sub}/delete"), &[]).await;
    assert_eq!(status, 404);
    let (_, list, _) = get(&other, &format!("{}/persist", env.portal)).await;
    assert!(list.contains("id=\"no-records\""));

    // Audited: made (persist kind), each record it held.
    let created = events_of(&env, account, AuditKind::RegistrationCreated).await;
    assert!(created.iter().any(|e| e["kind"] == "persist" && e["subdomain"] == sub.as_str()), "{created:?}");
    let set = events_of(&env, account, AuditKind::PersistRecordSet).await;
    assert_eq!(set.len(), 2, "{set:?}");
    assert_eq!(set[0]["previous"], json!(text), "newest first, with what it replaced");
    assert_eq!((set[0]["wildcard"].clone(), set[0]["via"].clone()), (json!(true), json!("portal")));

    // Removed: no longer answered.
    let (status, _, location) = post_form(&env, &c, &format!("/persist/{sub}/delete"), &[]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/persist?notice=persist_deleted")));
    answers(resolver, name, &[]).await;
    let subdomain: Subdomain = sub.parse().unwrap();
    assert!(env.store.core().registration_by_subdomain(account, subdomain).await.unwrap().is_none());
    assert_eq!(events_of(&env, account, AuditKind::RegistrationDeleted).await.len(), 1);
    cancel.cancel();
}

async fn the_account_api_manages_persist_records_within_its_account(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "api@example.com").await;
    let account = account_id(&env, "api@example.com").await;
    let rw = portal_token(&env, &c, "automation", "read-write").await;

    // Refused: no account named, both forms at once, a plain account URL; nothing made.
    for (body, why) in [
        (json!({ "domain": "example.com", "issuer": "letsencrypt.org" }), "accounturi"),
        (
            json!({ "domain": "example.com", "issuer": "letsencrypt.org", "accounturi": HASHED, "account_url": ACCOUNT_URL }),
            "either",
        ),
        (json!({ "domain": "example.com", "issuer": "letsencrypt.org", "accounturi": ACCOUNT_URL }), "hashed URI"),
        (json!({ "domain": "*.example.com", "issuer": "letsencrypt.org", "accounturi": HASHED }), "wildcard"),
    ] {
        let (status, answer) = call(&env, "POST", "/persist-records", Some(&rw), Some(body.clone())).await;
        assert_eq!((status, answer["error"].as_str()), (422, Some("invalid")), "{body}");
        assert!(answer["message"].as_str().unwrap().contains(why), "{answer}");
    }
    assert!(env.store.core().list_registrations(account).await.unwrap().is_empty());

    // Made from the shareable values: the draft's vector.
    let body = json!({
        "domain": "example.com", "issuer": "letsencrypt.org", "account_url": ACCOUNT_URL,
        "jwk_thumbprint": THUMBPRINT, "account_hash_prefix": PREFIX, "wildcard": true,
    });
    let (status, made) = call(&env, "POST", "/persist-records", Some(&rw), Some(body)).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["accounturi"], HASHED);
    assert_eq!(made["txt"], format!("letsencrypt.org; accounturi={HASHED}; policy=wildcard"));
    assert_eq!(made["cname"]["name"], "_validation-persist.example.com");
    let sub = made["subdomain"].as_str().unwrap().to_owned();
    assert_eq!(made["cname"]["target"], format!("{sub}.{ZONE}"));
    let served = env.distribution.snapshot().await.unwrap();
    let state = served.states.iter().find(|s| s.subdomain.to_string() == sub).unwrap();
    assert_eq!(state.persist.as_ref().unwrap().to_txt(), made["txt"].as_str().unwrap(), "published at once");

    // A second record for the domain: 409, naming the first.
    let again = json!({ "domain": "example.com", "issuer": "pki.goog", "accounturi": HASHED });
    let (status, answer) = call(&env, "POST", "/persist-records", Some(&rw), Some(again)).await;
    assert_eq!((status, answer["error"].as_str()), (409, Some("persist_record_exists")));
    assert_eq!(answer["held_by"]["subdomain"], sub.as_str());

    // Replaced; a bad replacement or another domain changes nothing.
    let path = format!("/persist-records/{sub}");
    let new = json!({ "issuer": "pki.goog", "accounturi": HASHED, "persist_until": 32_472_144_000_i64 });
    let (status, replaced) = call(&env, "PUT", &path, Some(&rw), Some(new)).await;
    assert_eq!(status, 200, "{replaced}");
    let want = format!("pki.goog; accounturi={HASHED}; persistUntil=32472144000");
    assert_eq!(
        (replaced["txt"].as_str(), replaced["persist_until_at"].as_str()),
        (Some(want.as_str()), Some("2999-01-01T00:00:00Z"))
    );
    for bad in [
        json!({ "issuer": "pki.goog", "accounturi": HASHED, "persist_until": 1 }),
        json!({ "issuer": "pki.goog", "accounturi": format!("{HASHED}x") }),
        json!({ "domain": "other.example", "issuer": "pki.goog", "accounturi": HASHED }),
    ] {
        let (status, answer) = call(&env, "PUT", &path, Some(&rw), Some(bad.clone())).await;
        assert_eq!(status, 422, "{bad} {answer}");
    }
    let (_, read) = call(&env, "GET", &path, Some(&rw), None).await;
    assert_eq!(read["txt"], want.as_str(), "unchanged by the refusals");
    let (_, list) = call(&env, "GET", "/persist-records", Some(&rw), None).await;
    assert_eq!(list["persist_records"].as_array().unwrap().len(), 1);
    let (_, regs) = call(&env, "GET", "/registrations", Some(&rw), None).await;
    assert_eq!(regs["registrations"][0]["kind"], "dns-persist-01");
    assert_eq!(regs["registrations"][0]["cname"]["name"], "_validation-persist.example.com");
    let (status, _) =
        call(&env, "PUT", &format!("/registrations/{sub}/domain"), Some(&rw), Some(json!({ "domain": "x.example" })))
            .await;
    assert_eq!(status, 422, "a persist record's domain is fixed");

    // Another account's token: 404 for all of it, nothing changed.
    let other = signup(&env, "stranger@example.com").await;
    let theirs = portal_token(&env, &other, "theirs", "read-write").await;
    for (method, body) in
        [("GET", None), ("PUT", Some(json!({ "issuer": "evil.example", "accounturi": HASHED }))), ("DELETE", None)]
    {
        let (status, _) = call(&env, method, &path, Some(&theirs), body).await;
        assert_eq!(status, 404, "{method}");
    }
    let (_, theirs_list) = call(&env, "GET", "/persist-records", Some(&theirs), None).await;
    assert_eq!(theirs_list["persist_records"], json!([]));
    let (_, read) = call(&env, "GET", &path, Some(&rw), None).await;
    assert_eq!(read["txt"], want.as_str());

    // Audited with "via": "api"; removed with DELETE, then gone from the distribution.
    let set = events_of(&env, account, AuditKind::PersistRecordSet).await;
    assert!(set.len() == 2 && set.iter().all(|e| e["via"] == "api"), "{set:?}");
    let (status, _) = call(&env, "DELETE", &path, Some(&rw), None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&env, "GET", &path, Some(&rw), None).await;
    assert_eq!(status, 404);
    let served = env.distribution.snapshot().await.unwrap();
    assert!(!served.states.iter().any(|s| s.subdomain.to_string() == sub), "removed from what responders answer");
}
