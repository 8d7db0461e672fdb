//! Handler tests over real HTTP, on SQLite and on Postgres: auth, CSRF, tenancy,
//! key lifecycle through the real API, CNAME check, mail links, operator pages.

#![allow(clippy::unwrap_used)]

mod common;

use certdns_core::{
    Account, AccountId, AccountRole, AccountStatus, AuditKind, Email, NewAuditEvent, Subdomain, TxtValue, now,
};
use common::*;
use hickory_proto::rr::RecordType;

macro_rules! both_backends {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Kind::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Kind::Postgres).await;
                }
            )+
        }
    };
}

both_backends!(
    pages_need_a_login,
    signup_logout_and_revocation,
    bad_input_gets_helpful_errors,
    csrf_and_cross_site_posts_are_refused,
    key_lifecycle_through_the_api,
    tenancy_between_accounts,
    registration_delete_publishes_a_removal,
    cname_check_reports_every_case,
    caa_records_are_generated,
    password_change_revokes_other_sessions,
    reset_and_verification_links_by_mail,
    login_attempts_are_limited,
    login_limits_per_forwarded_address,
    generated_session_secret_survives_a_restart,
    account_deletion,
    operator_pages_and_suspension,
    audit_log_is_paginated_newest_first,
    usage_chart_counts_per_key,
    updates_through_the_api_are_counted,
);

async fn pages_need_a_login(kind: Kind) {
    let env = start(kind).await;
    let c = client();
    for path in [
        "/keys",
        "/registrations",
        "/registrations/5f2f6b1c-1c7e-4a39-8f7c-0d1e2f3a4b5c",
        "/audit",
        "/usage",
        "/account",
        "/admin/accounts",
    ] {
        let (status, _, location) = get(&c, &format!("{}{path}", env.portal)).await;
        assert_eq!((status, location.as_deref()), (303, Some("/login")), "{path}");
    }
    // A POST without a session has no valid token either.
    let (_, page, _) = get(&c, &format!("{}/login", env.portal)).await;
    let t = csrf(&page);
    for path in ["/keys", "/keys/abcdefghijklmnop/revoke", "/account/delete", "/admin/accounts/x/suspend"] {
        let (status, _, location) = post(&c, &format!("{}{path}", env.portal), &[("csrf", &t), ("name", "x")]).await;
        assert_eq!((status, location.as_deref()), (303, Some("/login")), "{path}");
    }
    let (status, body, _) = get(&c, &format!("{}/health", env.portal)).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body, _) = get(&c, &format!("{}/static/portal.css", env.portal)).await;
    assert_eq!(status, 200);
    assert!(body.contains(":root"));
    let (status, _, _) = get(&c, &format!("{}/nope", env.portal)).await;
    assert_eq!(status, 404);
    let (status, _, location) = get(&c, &format!("{}/", env.portal)).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
    let user = signup(&env, "home@example.com").await;
    let (status, _, location) = get(&user, &format!("{}/", env.portal)).await;
    assert_eq!((status, location.as_deref()), (303, Some("/keys")));
    let (status, _, location) = get(&user, &format!("{}/login", env.portal)).await;
    assert_eq!((status, location.as_deref()), (303, Some("/keys")), "signed-in users skip the login page");
}

async fn signup_logout_and_revocation(kind: Kind) {
    let env = start(kind).await;
    let c = signup(&env, "alice@example.com").await;
    let (status, page, _) = get(&c, &format!("{}/keys?notice=welcome", env.portal)).await;
    assert_eq!(status, 200);
    assert!(page.contains("alice@example.com"));
    assert!(page.contains("No keys yet"), "helpful empty state");
    // A second session, to replay after logout.
    let cookie = session_cookie(&env, "alice@example.com").await;
    let replay = client();
    let r = replay.get(format!("{}/keys", env.portal)).header("cookie", cookie.as_str()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "the second session works");
    let t = csrf(&page);
    let (status, _, location) = post(&c, &format!("{}/logout", env.portal), &[("csrf", &t)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
    let r = replay.get(format!("{}/keys", env.portal)).header("cookie", cookie.as_str()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "a logged-out session is revoked server-side");

    // Log in again.
    let (_, page, _) = get(&c, &format!("{}/login", env.portal)).await;
    let t = csrf(&page);
    let (status, _, location) = post(
        &c,
        &format!("{}/login", env.portal),
        &[("csrf", &t), ("email", "Alice@Example.com"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!((status, location.as_deref()), (303, Some("/keys")));
    let (status, _, _) = get(&c, &format!("{}/keys", env.portal)).await;
    assert_eq!(status, 200);
    // Wrong password: generic message, 401.
    let other = client();
    let (_, page, _) = get(&other, &format!("{}/login", env.portal)).await;
    let t = csrf(&page);
    let (status, page, _) = post(
        &other,
        &format!("{}/login", env.portal),
        &[("csrf", &t), ("email", "alice@example.com"), ("password", "wrong password!")],
    )
    .await;
    assert_eq!(status, 401);
    assert!(page.contains("do not match an account"));
    assert!(page.contains("value=\"alice@example.com\""), "the e-mail is kept in the form");
}

/// Logs in without a cookie jar; returns the `Cookie:` header value of the session.
async fn session_cookie(env: &Env, email: &str) -> String {
    let c = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = c.get(format!("{}/login", env.portal)).send().await.unwrap();
    let set = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    let csrf_cookie = set.split(';').next().unwrap().to_owned();
    let page = r.text().await.unwrap();
    let t = csrf(&page);
    let r = c
        .post(format!("{}/login", env.portal))
        .header("cookie", &csrf_cookie)
        .form(&[("csrf", t.as_str()), ("email", email), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let set = r.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Max-Age="), "{set}");
    set.split(';').next().unwrap().to_owned()
}

async fn bad_input_gets_helpful_errors(kind: Kind) {
    let env = start(kind).await;
    let c = client();
    let (_, page, _) = get(&c, &format!("{}/signup", env.portal)).await;
    let t = csrf(&page);
    let url = format!("{}/signup", env.portal);
    let cases: [(&str, &str, &str, &str); 4] = [
        ("not-an-email", PASSWORD, PASSWORD, "Enter your e-mail address"),
        ("bob@example.com", "short", "short", "Choose a password of 10"),
        ("bob@example.com", PASSWORD, "something else entirely", "do not match"),
        ("bob@example.com", "aaaaaaaaaaaa", "aaaaaaaaaaaa", "too easy to guess"),
    ];
    for (email, pw, pw2, message) in cases {
        let (status, page, _) =
            post(&c, &url, &[("csrf", &t), ("email", email), ("password", pw), ("password_confirm", pw2)]).await;
        assert_eq!(status, 422, "{email}/{pw}");
        assert!(page.contains(message), "{message} not in page");
    }
    let c = signup(&env, "bob@example.com").await;
    // Same e-mail again.
    let again = client();
    let (_, page, _) = get(&again, &url).await;
    let t = csrf(&page);
    let (status, page, _) = post(
        &again,
        &url,
        &[("csrf", &t), ("email", "BOB@example.com"), ("password", PASSWORD), ("password_confirm", PASSWORD)],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("already exists"));
    // Empty key name.
    let t = token(&env, &c).await;
    let (status, page, _) = post(&c, &format!("{}/keys", env.portal), &[("csrf", &t), ("name", "   ")]).await;
    assert_eq!(status, 422);
    assert!(page.contains("Give the key a name"));
    // Garbage ids are 404, not errors.
    let (status, _, _) = get(&c, &format!("{}/registrations/not-a-uuid", env.portal)).await;
    assert_eq!(status, 404);
    let (status, _, _) = post(&c, &format!("{}/keys/NOT-A-KEY/revoke", env.portal), &[("csrf", &t)]).await;
    assert_eq!(status, 404);
}

async fn csrf_and_cross_site_posts_are_refused(kind: Kind) {
    let env = start(kind).await;
    let c = signup(&env, "carol@example.com").await;
    let t = token(&env, &c).await;
    let url = format!("{}/keys", env.portal);
    let (status, page, _) = post(&c, &url, &[("name", "no token")]).await;
    assert_eq!(status, 403);
    assert!(page.contains("reload the page"));
    let (status, _, _) = post(&c, &url, &[("csrf", "wrong-token-wrong-token"), ("name", "bad")]).await;
    assert_eq!(status, 403);
    let r = c.post(&url).header("origin", "https://evil.example").form(&[("csrf", t.as_str()), ("name", "x")]);
    assert_eq!(r.send().await.unwrap().status().as_u16(), 403);
    let r = c.post(&url).header("sec-fetch-site", "cross-site").form(&[("csrf", t.as_str()), ("name", "x")]);
    assert_eq!(r.send().await.unwrap().status().as_u16(), 403);
    let r = c.post(&url).header("origin", env.portal.as_str()).header("sec-fetch-site", "same-origin");
    let r = r.form(&[("csrf", t.as_str()), ("name", "good")]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Nothing was created by the refused posts.
    let (_, page, _) = get(&c, &url).await;
    assert!(page.contains(">good<"));
    assert!(!page.contains(">bad<") && !page.contains(">no token<"));
    // Login forms need the browser's token cookie too.
    let fresh = client();
    let (status, _, _) = post(
        &fresh,
        &format!("{}/login", env.portal),
        &[("csrf", "made-up-token-made-up"), ("email", "carol@example.com"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(status, 403);
}

async fn key_lifecycle_through_the_api(kind: Kind) {
    let env = start(kind).await;
    let c = signup(&env, "dave@example.com").await;
    let (id, url) = create_key(&env, &c, "web servers").await;
    let api_host = env.api.trim_start_matches("http://");
    assert!(url.starts_with(&format!("http://{id}:")) && url.ends_with(&format!("@{api_host}")), "{url}");
    let (_, page, _) = get(&c, &format!("{}/keys", env.portal)).await;
    assert!(page.contains("web servers") && page.contains(&id));
    assert!(!page.contains(url.split('@').next().unwrap().rsplit(':').next().unwrap()), "the secret is shown once");

    let (status, reg) = register(&url, "www.example.com").await;
    assert_eq!(status, 201, "{reg}");
    let fulldomain = reg["fulldomain"].as_str().unwrap().to_owned();
    let (_, page, _) = get(&c, &format!("{}/registrations", env.portal)).await;
    assert!(page.contains("www.example.com"));
    assert!(page.contains(&format!("_acme-challenge.www.example.com. CNAME {fulldomain}.")));
    let (_, page, _) = get(&c, &format!("{}/keys", env.portal)).await;
    assert!(page.contains(&format!("<a href=\"/registrations#key-{id}\">1</a>")), "registrations count");

    // Rotate: a new URL; the old secret stays valid for the grace period.
    let t = token(&env, &c).await;
    let (status, page, _) = post(&c, &format!("{}/keys/{id}/rotate", env.portal), &[("csrf", &t)]).await;
    assert_eq!(status, 200);
    assert!(page.contains("The previous secret keeps working until"));
    let old_secret = url.split('@').next().unwrap().rsplit(':').next().unwrap().to_owned();
    let key = env.store.core().license_key(&id.parse().unwrap()).await.unwrap().unwrap();
    assert!(key.verify_secret(&old_secret, now()));
    assert!(!key.secret_hash.verify(&old_secret));
    let marker = "readonly value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    let new_url = page[start..start + page[start..].find('"').unwrap()].to_owned();
    assert_ne!(new_url, url);
    // The API caches keys for KEY_CACHE_TTL; the new secret works once that passed.
    tokio::time::sleep(certdns_api::KEY_CACHE_TTL + std::time::Duration::from_millis(200)).await;
    let (status, _) = register(&new_url, "api.example.com").await;
    assert_eq!(status, 201);
    let (_, page, _) = get(&c, &format!("{}/keys", env.portal)).await;
    assert!(page.contains("old secret valid until"));

    // Rename, then revoke: the API refuses the key.
    let (status, _, location) =
        post(&c, &format!("{}/keys/{id}/rename", env.portal), &[("csrf", &t), ("name", "edge")]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/keys?notice=renamed")));
    let (status, _, location) = post(&c, &format!("{}/keys/{id}/revoke", env.portal), &[("csrf", &t)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/keys?notice=revoked")));
    tokio::time::sleep(certdns_api::KEY_CACHE_TTL + std::time::Duration::from_millis(200)).await;
    let (status, _) = register(&new_url, "late.example.com").await;
    assert!(status == 401 || status == 403, "revoked key refused, got {status}");
    let (_, page, _) = get(&c, &format!("{}/keys", env.portal)).await;
    assert!(page.contains("revoked"));
    let events = env.store.core().audit_events(key.account_id, None, 50).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    for k in [
        AuditKind::LicenseKeyCreated,
        AuditKind::LicenseKeyRotated,
        AuditKind::LicenseKeyRenamed,
        AuditKind::LicenseKeyRevoked,
        AuditKind::AccountCreated,
    ] {
        assert!(kinds.contains(&k), "{k:?} audited");
    }
}

async fn tenancy_between_accounts(kind: Kind) {
    let env = start(kind).await;
    let a = signup(&env, "a@example.com").await;
    let b = signup(&env, "b@example.com").await;
    let (key_a, url_a) = create_key(&env, &a, "alpha-key").await;
    let (status, reg) = register(&url_a, "secret-project.example.com").await;
    assert_eq!(status, 201);
    let sub = reg["subdomain"].as_str().unwrap().to_owned();
    let account_a = env.store.core().license_key(&key_a.parse().unwrap()).await.unwrap().unwrap().account_id;
    env.store.add_usage(&[(key_a.parse().unwrap(), now().date(), 7)]).await.unwrap();

    let tb = token(&env, &b).await;
    for path in ["/keys", "/registrations", "/usage", "/audit"] {
        let (status, page, _) = get(&b, &format!("{}{path}", env.portal)).await;
        assert_eq!(status, 200);
        for secret in [key_a.as_str(), "alpha-key", "secret-project", sub.as_str()] {
            assert!(!page.contains(secret), "{path} of B shows {secret}");
        }
    }
    let (status, _, _) = get(&b, &format!("{}/registrations/{sub}", env.portal)).await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&b, &format!("{}/registrations/{sub}?check=1", env.portal)).await;
    assert_eq!(status, 404);
    for path in ["revoke", "rotate", "rename"] {
        let (status, _, _) =
            post(&b, &format!("{}/keys/{key_a}/{path}", env.portal), &[("csrf", &tb), ("name", "pwned")]).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _, _) = post(&b, &format!("{}/registrations/{sub}/delete", env.portal), &[("csrf", &tb)]).await;
    assert_eq!(status, 404);
    let account_b = env.store.core().account_by_email("b@example.com").await.unwrap().unwrap().id;
    let (status, _, _) =
        post(&b, &format!("{}/admin/accounts/{account_a}/suspend", env.portal), &[("csrf", &tb)]).await;
    assert_eq!(status, 403, "customers cannot suspend anyone");
    assert_eq!(env.store.core().account(account_a).await.unwrap().unwrap().status, AccountStatus::Active);
    let _ = account_b;
    // Nothing changed for A.
    let key = env.store.core().license_key(&key_a.parse().unwrap()).await.unwrap().unwrap();
    assert!(key.is_active());
    assert_eq!(key.name, "alpha-key");
    assert!(key.secret_hash.previous().is_none());
    let subdomain: Subdomain = sub.parse().unwrap();
    assert!(env.store.core().registration_by_subdomain(account_a, subdomain).await.unwrap().is_some());
    // A's token does not work in B's session, and the reverse.
    let ta = token(&env, &a).await;
    let (status, _, _) = post(&b, &format!("{}/keys", env.portal), &[("csrf", &ta), ("name", "x")]).await;
    assert_eq!(status, 403);
    // B is not an operator.
    let (status, _, _) = get(&b, &format!("{}/admin/accounts", env.portal)).await;
    assert_eq!(status, 403);
}

async fn registration_delete_publishes_a_removal(kind: Kind) {
    let env = start(kind).await;
    let c = signup(&env, "erin@example.com").await;
    let (_, url) = create_key(&env, &c, "k").await;
    let (_, reg) = register(&url, "mail.example.com").await;
    let sub = reg["subdomain"].as_str().unwrap().to_owned();
    let r = reqwest::Client::new()
        .post(format!("{}/update", env.api))
        .header("X-Api-User", reg["username"].as_str().unwrap())
        .header("X-Api-Key", reg["password"].as_str().unwrap())
        .json(&serde_json::json!({ "subdomain": sub, "txt": "a".repeat(43) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let subdomain: Subdomain = sub.parse().unwrap();
    let snapshot = env.distribution.snapshot().await.unwrap();
    assert!(snapshot.states.iter().any(|s| s.subdomain == subdomain));

    let (status, page, _) = get(&c, &format!("{}/registrations/{sub}", env.portal)).await;
    assert_eq!(status, 200);
    let t = csrf(&page);
    let (status, _, location) = post(&c, &format!("{}/registrations/{sub}/delete", env.portal), &[("csrf", &t)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/registrations?notice=deleted")));
    let snapshot = env.distribution.snapshot().await.unwrap();
    assert!(!snapshot.states.iter().any(|s| s.subdomain == subdomain), "DNS stops answering");
    let (_, page, _) = get(&c, &format!("{}/registrations?notice=deleted", env.portal)).await;
    assert!(!page.contains("mail.example.com"));
    assert!(page.contains("Registration deleted"));
    let (status, _, _) = get(&c, &format!("{}/registrations/{sub}", env.portal)).await;
    assert_eq!(status, 404);
}

async fn cname_check_reports_every_case(kind: Kind) {
    let env = start(kind).await;
    let c = signup(&env, "frank@example.com").await;
    let (_, url) = create_key(&env, &c, "k").await;
    let mut subs = Vec::new();
    for subject in [
        "ok.example.com",
        "missing.example.com",
        "wrong.example.com",
        "shadow.example.com",
        "*.wild.example.com",
        "big.example.com",
    ] {
        let (status, reg) = register(&url, subject).await;
        assert_eq!(status, 201, "{reg}");
        subs.push((reg["subdomain"].as_str().unwrap().to_owned(), reg["fulldomain"].as_str().unwrap().to_owned()));
    }
    env.set_dns("_acme-challenge.ok.example.com", RecordType::CNAME, vec![cname(&subs[0].1.to_uppercase())]);
    env.set_dns("_acme-challenge.wrong.example.com", RecordType::CNAME, vec![cname("old.acme-dns.example.net")]);
    env.set_dns("_acme-challenge.shadow.example.com", RecordType::TXT, vec![txt("leftover-token")]);
    env.set_dns("_acme-challenge.wild.example.com", RecordType::CNAME, vec![cname(&subs[4].1)]);
    // Truncated over UDP: only TCP gives the answer.
    env.set_dns("_acme-challenge.big.example.com", RecordType::CNAME, vec![cname(&subs[5].1)]);
    let expect = [
        ("correct", "CNAME present and correct"),
        ("missing", "Create this record in your DNS zone"),
        ("elsewhere", "old.acme-dns.example.net"),
        ("shadowed", "Delete the TXT record"),
        ("correct", "CNAME present and correct"),
        ("correct", "CNAME present and correct"),
    ];
    for ((sub, fulldomain), (code, text)) in subs.iter().zip(expect) {
        let (status, page, _) = get(&c, &format!("{}/registrations/{sub}?check=1", env.portal)).await;
        assert_eq!(status, 200);
        assert!(page.contains(&format!("data-status=\"{code}\"")), "{sub}: expected {code}");
        assert!(page.contains(text), "{sub}: {text}");
        if code == "missing" {
            assert!(page.contains(&format!("CNAME {fulldomain}.")), "the fix names the record");
        }
    }
}

async fn caa_records_are_generated(kind: Kind) {
    let env = start(kind).await;
    let c = signup(&env, "gina@example.com").await;
    let (_, url) = create_key(&env, &c, "k").await;
    let (_, reg) = register(&url, "shop.example.com").await;
    let sub = reg["subdomain"].as_str().unwrap();
    let acct = "https://acme-v02.api.letsencrypt.org/acme/acct/123456789";
    let page = c
        .get(format!("{}/registrations/{sub}", env.portal))
        .query(&[("account_uri", acct)])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for tag in ["issue", "issuewild"] {
        let want = format!(
            "shop.example.com. CAA 0 {tag} &quot;letsencrypt.org; accounturi={acct}; validationmethods=dns-01&quot;"
        );
        assert!(page.contains(&want) || page.contains(&want.replace("&quot;", "&#34;")), "{tag} record in page");
    }
    let page = c
        .get(format!("{}/registrations/{sub}", env.portal))
        .query(&[("account_uri", "https://acme.example.org/acct/1")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("We do not know this CA"));
    let page = c
        .get(format!("{}/registrations/{sub}", env.portal))
        .query(&[("account_uri", "https://acme.example.org/acct/1"), ("ca", "example.org")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("CAA 0 issue"));
    let page = c
        .get(format!("{}/registrations/{sub}", env.portal))
        .query(&[("account_uri", "not a url")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Paste your ACME account URL"));
}

async fn password_change_revokes_other_sessions(kind: Kind) {
    let env = start(kind).await;
    let first = signup(&env, "hank@example.com").await;
    let second = login(&env, "hank@example.com", PASSWORD).await.unwrap();
    let (_, page, _) = get(&first, &format!("{}/account", env.portal)).await;
    let t = csrf(&page);
    let url = format!("{}/account/password", env.portal);
    let new = "a much better passphrase";
    let (status, page, _) =
        post(&first, &url, &[("csrf", &t), ("current", "wrong"), ("password", new), ("password_confirm", new)]).await;
    assert_eq!(status, 422);
    assert!(page.contains("current password is not right"));
    let (status, _, location) =
        post(&first, &url, &[("csrf", &t), ("current", PASSWORD), ("password", new), ("password_confirm", new)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/account?notice=password_changed")));
    let (status, _, _) = get(&first, &format!("{}/keys", env.portal)).await;
    assert_eq!(status, 200, "this session continues");
    let (status, _, _) = get(&second, &format!("{}/keys", env.portal)).await;
    assert_eq!(status, 303, "the other session is revoked");
    assert!(login(&env, "hank@example.com", PASSWORD).await.is_none());
    assert!(login(&env, "hank@example.com", new).await.is_some());
}

async fn login(env: &Env, email: &str, password: &str) -> Option<reqwest::Client> {
    let c = client();
    let (_, page, _) = get(&c, &format!("{}/login", env.portal)).await;
    let t = csrf(&page);
    let (status, _, _) =
        post(&c, &format!("{}/login", env.portal), &[("csrf", &t), ("email", email), ("password", password)]).await;
    (status == 303).then_some(c)
}

fn link_in(outbox: &str, path: &str) -> String {
    let start = outbox.rfind(path).unwrap();
    let rest = &outbox[start..];
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    rest[..end].to_owned()
}

async fn reset_and_verification_links_by_mail(kind: Kind) {
    let env = start(kind).await;
    let c = signup(&env, "ivy@example.com").await;
    let outbox = env.outbox();
    assert!(outbox.contains("To: ivy@example.com"), "{outbox}");
    let verify = link_in(&outbox, "/verify-email?token=");
    let (_, page, _) = get(&c, &format!("{}/keys", env.portal)).await;
    assert!(page.contains("Please confirm your e-mail"));
    // Asking for a new link replaces the first one.
    let (_, page, _) = get(&c, &format!("{}/account", env.portal)).await;
    let t = csrf(&page);
    let (status, _, location) = post(&c, &format!("{}/verify-email/resend", env.portal), &[("csrf", &t)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/account?notice=verification_sent")));
    let (status, _, _) = get(&c, &format!("{}{verify}", env.portal)).await;
    assert_eq!(status, 400, "the older link is void");
    let verify = link_in(&env.outbox(), "/verify-email?token=");
    let (status, page, _) = get(&c, &format!("{}{verify}", env.portal)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("E-mail confirmed"));
    let (status, _, _) = get(&c, &format!("{}{verify}", env.portal)).await;
    assert_eq!(status, 400, "single use");
    let (_, page, _) = get(&c, &format!("{}/keys", env.portal)).await;
    assert!(!page.contains("Please confirm your e-mail"));

    let anon = client();
    let (_, page, _) = get(&anon, &format!("{}/forgot-password", env.portal)).await;
    let t = csrf(&page);
    let (status, page, _) =
        post(&anon, &format!("{}/forgot-password", env.portal), &[("csrf", &t), ("email", "ivy@example.com")]).await;
    assert_eq!(status, 200);
    assert!(page.contains("If an account uses that address"));
    // Unknown address: same answer, no mail.
    let before = env.outbox().len();
    let (_, page2, _) =
        post(&anon, &format!("{}/forgot-password", env.portal), &[("csrf", &t), ("email", "nobody@example.com")]).await;
    assert!(page2.contains("If an account uses that address"));
    assert_eq!(env.outbox().len(), before);

    let reset = link_in(&env.outbox(), "/reset-password?token=");
    let token = reset.split("token=").nth(1).unwrap().to_owned();
    let (status, page, _) = get(&anon, &format!("{}{reset}", env.portal)).await;
    assert_eq!(status, 200);
    let t = csrf(&page);
    let new = "reset passphrase works";
    let url = format!("{}/reset-password", env.portal);
    let (status, page, _) =
        post(&anon, &url, &[("csrf", &t), ("token", &token), ("password", new), ("password_confirm", new)]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Password changed"));
    let (status, _, _) = get(&c, &format!("{}/keys", env.portal)).await;
    assert_eq!(status, 303, "sessions are revoked by a reset");
    let (status, _, _) =
        post(&anon, &url, &[("csrf", &t), ("token", &token), ("password", new), ("password_confirm", new)]).await;
    assert_eq!(status, 400, "reset links work once");
    assert!(login(&env, "ivy@example.com", new).await.is_some());
}

async fn login_attempts_are_limited(kind: Kind) {
    let env = start_with(kind, |c| c.login_per_minute_per_account = 3).await;
    let _ = signup(&env, "jack@example.com").await;
    let c = client();
    let (_, page, _) = get(&c, &format!("{}/login", env.portal)).await;
    let t = csrf(&page);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (status, _, _) = post(
            &c,
            &format!("{}/login", env.portal),
            &[("csrf", &t), ("email", "jack@example.com"), ("password", "not the password")],
        )
        .await;
        statuses.push(status);
    }
    assert_eq!(&statuses[..3], &[401, 401, 401]);
    assert_eq!(&statuses[3..], &[429, 429]);
    // Even the right password is refused while limited.
    let (status, page, _) = post(
        &c,
        &format!("{}/login", env.portal),
        &[("csrf", &t), ("email", "jack@example.com"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(status, 429);
    assert!(page.contains("Too many sign-in attempts"));
}

async fn login_limits_per_forwarded_address(kind: Kind) {
    let env = start_with(kind, |c| {
        c.login_per_minute_per_address = 2;
        c.client_ip_header = Some("X-Forwarded-For".into());
    })
    .await;
    let c = client();
    let (_, page, _) = get(&c, &format!("{}/login", env.portal)).await;
    let t = csrf(&page);
    let attempt = |xff: &'static str, email: &'static str| {
        let c = c.clone();
        let url = format!("{}/login", env.portal);
        let t = t.clone();
        async move {
            c.post(url)
                .header("x-forwarded-for", xff)
                .form(&[("csrf", t.as_str()), ("email", email), ("password", "wrong password")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Behind a trusted (loopback) proxy, each forwarded client has its own budget.
    assert_eq!(attempt("198.51.100.1", "u1@example.com").await, 401);
    assert_eq!(attempt("198.51.100.1", "u2@example.com").await, 401);
    assert_eq!(attempt("198.51.100.1", "u3@example.com").await, 429);
    assert_eq!(attempt("203.0.113.9, 198.51.100.7", "u4@example.com").await, 401);
    // Audit entries carry the forwarded address.
    let _ = signup(&env, "olga@example.com").await;
    let me = env.store.core().account_by_email("olga@example.com").await.unwrap().unwrap();
    assert_eq!(attempt("192.0.2.44", "olga@example.com").await, 401);
    let events = env.store.core().audit_events(me.id, None, 10).await.unwrap();
    let failed = events.iter().find(|e| e.kind == AuditKind::LoginFailed).unwrap();
    assert_eq!(failed.client_addr, Some("192.0.2.44".parse().unwrap()));
}

async fn generated_session_secret_survives_a_restart(kind: Kind) {
    let env = start(kind).await;
    let _ = signup(&env, "pat@example.com").await;
    let cookie = session_cookie(&env, "pat@example.com").await;
    let secret = env.store.setting("portal.session_secret").await.unwrap().expect("generated and stored");
    assert!(secret.len() >= 40);
    // A second portal over the same database (a restart, or another instance).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = certdns_portal::router(certdns_portal::PortalDeps {
        store: env.store.clone(),
        distribution: env.distribution.clone(),
        config: certdns_portal::PortalConfig { secure_cookies: false, ..Default::default() },
        public_api_url: env.api.clone(),
        zone_domain: ZONE.into(),
        data_dir: env.data_dir.path().to_owned(),
    })
    .await
    .unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap();
    });
    let r = client().get(format!("http://{addr}/keys")).header("cookie", cookie.as_str()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "the session is valid on the restarted portal");
    assert_eq!(env.store.setting("portal.session_secret").await.unwrap(), Some(secret));
    // A configured secret replaces it: old sessions are then invalid.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = certdns_portal::router(certdns_portal::PortalDeps {
        store: env.store.clone(),
        distribution: env.distribution.clone(),
        config: certdns_portal::PortalConfig {
            secure_cookies: false,
            session_secret: Some("x".repeat(40)),
            ..Default::default()
        },
        public_api_url: env.api.clone(),
        zone_domain: ZONE.into(),
        data_dir: env.data_dir.path().to_owned(),
    })
    .await
    .unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap();
    });
    let r = client().get(format!("http://{addr}/keys")).header("cookie", cookie.as_str()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
}

async fn account_deletion(kind: Kind) {
    let env = start(kind).await;
    let c = signup(&env, "kate@example.com").await;
    let (key, url) = create_key(&env, &c, "k").await;
    let (_, reg) = register(&url, "www.kate.example").await;
    let subdomain: Subdomain = reg["subdomain"].as_str().unwrap().parse().unwrap();
    let (_, page, _) = get(&c, &format!("{}/account", env.portal)).await;
    let t = csrf(&page);
    let del = format!("{}/account/delete", env.portal);
    let (status, page, _) =
        post(&c, &del, &[("csrf", &t), ("confirm_email", "someone@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(status, 422);
    assert!(page.contains("Type your e-mail address exactly"));
    let (status, page, _) =
        post(&c, &del, &[("csrf", &t), ("confirm_email", "kate@example.com"), ("password", "wrong one!")]).await;
    assert_eq!(status, 422);
    assert!(page.contains("password is not right"));
    let (status, page, _) =
        post(&c, &del, &[("csrf", &t), ("confirm_email", "kate@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(status, 200);
    assert!(page.contains("Account deleted"));
    assert!(env.store.core().account_by_email("kate@example.com").await.unwrap().is_none());
    assert!(env.store.core().license_key(&key.parse().unwrap()).await.unwrap().is_none());
    let snapshot = env.distribution.snapshot().await.unwrap();
    assert!(!snapshot.states.iter().any(|s| s.subdomain == subdomain));
    let (status, _, _) = get(&c, &format!("{}/keys", env.portal)).await;
    assert_eq!(status, 303);
    assert!(login(&env, "kate@example.com", PASSWORD).await.is_none());
    let _ = url;
}

async fn create_operator(env: &Env, email: &str) -> AccountId {
    let hash = certdns_core::password::hash(PASSWORD).unwrap();
    let account = Account {
        id: AccountId::generate(),
        email: Email::parse(email).unwrap(),
        role: AccountRole::Operator,
        status: AccountStatus::Active,
        password_hash: Some(hash),
        created_at: now(),
    };
    env.store.core().create_account(&account).await.unwrap();
    account.id
}

async fn operator_pages_and_suspension(kind: Kind) {
    let env = start(kind).await;
    let customer = signup(&env, "lena@example.com").await;
    let (_, url) = create_key(&env, &customer, "k").await;
    let (status, _) = register(&url, "a.lena.example").await;
    assert_eq!(status, 201);
    let operator_id = create_operator(&env, "ops@example.com").await;
    let ops = login(&env, "ops@example.com", PASSWORD).await.unwrap();
    let (status, page, _) = get(&ops, &format!("{}/admin/accounts", env.portal)).await;
    assert_eq!(status, 200);
    assert!(page.contains("lena@example.com") && page.contains("ops@example.com"));
    let lena = env.store.core().account_by_email("lena@example.com").await.unwrap().unwrap();
    assert!(page.contains(&format!("/admin/accounts/{}/suspend", lena.id)));
    assert!(!page.contains(&format!("/admin/accounts/{operator_id}/suspend")), "no self-suspension button");
    let t = csrf(&page);
    let (status, _, location) =
        post(&ops, &format!("{}/admin/accounts/{}/suspend", env.portal, lena.id), &[("csrf", &t)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/admin/accounts?notice=suspended")));
    // The API's key cache lives a few seconds; a fresh registration must be refused after it.
    let mut refused = false;
    for _ in 0..40 {
        let (status, _) = register(&url, "b.lena.example").await;
        if status == 401 || status == 403 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(refused, "a suspended account's key is refused at the API");
    let (_, page, _) = get(&customer, &format!("{}/keys", env.portal)).await;
    assert!(page.contains("This account is suspended"));
    let (status, _, _) =
        post(&ops, &format!("{}/admin/accounts/{operator_id}/suspend", env.portal), &[("csrf", &t)]).await;
    assert_eq!(status, 422);
    let (status, _, _) =
        post(&ops, &format!("{}/admin/accounts/{}/unsuspend", env.portal, lena.id), &[("csrf", &t)]).await;
    assert_eq!(status, 303);
    assert_eq!(env.store.core().account(lena.id).await.unwrap().unwrap().status, AccountStatus::Active);
    let events = env.store.core().audit_events(lena.id, None, 50).await.unwrap();
    assert!(events.iter().any(|e| e.kind == AuditKind::AccountSuspended));
    assert!(events.iter().any(|e| e.kind == AuditKind::AccountReactivated));
}

async fn audit_log_is_paginated_newest_first(kind: Kind) {
    let env = start(kind).await;
    let c = signup(&env, "mia@example.com").await;
    let me = env.store.core().account_by_email("mia@example.com").await.unwrap().unwrap();
    for i in 0..30 {
        let e = NewAuditEvent {
            account_id: Some(me.id),
            kind: AuditKind::RegistrationCreated,
            client_addr: None,
            detail: serde_json::json!({ "subdomain": format!("marker-{i:02}") }),
        };
        env.store.core().append_audit(&e, now()).await.unwrap();
    }
    let (status, page, _) = get(&c, &format!("{}/audit", env.portal)).await;
    assert_eq!(status, 200);
    assert!(page.contains("marker-29") && page.contains("marker-05") && !page.contains("marker-04"));
    assert!(page.find("marker-29").unwrap() < page.find("marker-28").unwrap(), "newest first");
    let marker = "/audit?before=";
    let start = page.find(marker).unwrap();
    let end = page[start..].find('"').unwrap() + start;
    let (status, page2, _) = get(&c, &format!("{}{}", env.portal, &page[start..end])).await;
    assert_eq!(status, 200);
    assert!(page2.contains("marker-04") && page2.contains("marker-00") && !page2.contains("marker-05"));
    assert!(page2.contains("Account created"));
    assert!(!page2.contains(marker), "last page");
}

async fn usage_chart_counts_per_key(kind: Kind) {
    let env = start(kind).await;
    let c = signup(&env, "nina@example.com").await;
    let (_, page, _) = get(&c, &format!("{}/usage", env.portal)).await;
    assert!(page.contains("No keys yet"));
    let (k1, _) = create_key(&env, &c, "first <key>").await;
    let (k2, _) = create_key(&env, &c, "second").await;
    let today = now().date();
    env.store
        .add_usage(&[
            (k1.parse().unwrap(), today, 5),
            (k1.parse().unwrap(), today - time::Duration::days(3), 2),
            (k2.parse().unwrap(), today - time::Duration::days(40), 9),
        ])
        .await
        .unwrap();
    let (status, page, _) = get(&c, &format!("{}/usage", env.portal)).await;
    assert_eq!(status, 200);
    assert_eq!(page.matches("<svg").count(), 2);
    assert_eq!(page.matches("<rect").count(), 60, "30 days per key");
    assert!(page.contains("7 updates in 30 days"));
    assert!(page.contains("0 updates in 30 days"));
    assert!(page.contains("first &lt;key&gt;") || page.contains("first &#60;key&#62;"));
    assert!(!page.contains("first <key>"));
    let _ = TxtValue::try_from("a".repeat(43)).unwrap();
}

/// The API counts each successful /update against the license key the
/// registration was made with, and the usage page shows it.
async fn updates_through_the_api_are_counted(kind: Kind) {
    let env = start(kind).await;
    let c = signup(&env, "olga@example.com").await;
    let (_, url) = create_key(&env, &c, "counted").await;
    let (status, reg) = register(&url, "count.example.com").await;
    assert_eq!(status, 201);
    for i in 0..3 {
        let r = client()
            .post(format!("{}/update", env.api))
            .header("X-Api-User", reg["username"].as_str().unwrap())
            .header("X-Api-Key", reg["password"].as_str().unwrap())
            .body(format!(
                r#"{{"subdomain":"{}","txt":"{}"}}"#,
                reg["subdomain"].as_str().unwrap(),
                format!("{i}").repeat(43)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let deadline = std::time::Instant::now() + certdns_api::USAGE_FLUSH_EVERY * 4;
    loop {
        let (_, page, _) = get(&c, &format!("{}/usage", env.portal)).await;
        if page.contains("3 updates in 30 days") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "usage never showed the 3 updates");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}
