//! Signing up, in and out: sessions and their revocation, CSRF, login limits,
//! mailed reset and confirmation links, the session secret across restarts.

use certdns_core::{AuditKind, Subdomain};
use certdns_testkit::Backend;

use crate::support::*;

certdns_testkit::both_backends!(tokio(flavor = "multi_thread", worker_threads = 2);
    pages_need_a_login,
    signup_logout_and_revocation,
    bad_input_gets_helpful_errors,
    csrf_and_cross_site_posts_are_refused,
    password_change_revokes_other_sessions,
    reset_and_verification_links_by_mail,
    login_attempts_are_limited,
    login_limits_per_forwarded_address,
    generated_session_secret_survives_a_restart,
    account_deletion,
);

async fn pages_need_a_login(backend: Backend) {
    let env = start(backend).await;
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
    // Signed out, `/` is the landing page; signed in, the keys.
    let (status, page, _) = get(&c, &format!("{}/", env.portal)).await;
    assert_eq!(status, 200);
    assert!(page.contains("How delegation works") && page.contains("href=\"/signup\""), "{page}");
    let user = signup(&env, "home@example.com").await;
    let (status, _, location) = get(&user, &format!("{}/", env.portal)).await;
    assert_eq!((status, location.as_deref()), (303, Some("/keys")));
    let (status, _, location) = get(&user, &format!("{}/login", env.portal)).await;
    assert_eq!((status, location.as_deref()), (303, Some("/keys")), "signed-in users skip the login page");
}

async fn signup_logout_and_revocation(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "alice@example.com").await;
    let (status, page, _) = get(&c, &format!("{}/keys?notice=welcome", env.portal)).await;
    assert_eq!(status, 200);
    assert!(page.contains("alice@example.com"));
    assert!(page.contains("No keys yet"), "helpful empty state");
    // Two more sessions (two devices). "Sign out" ends the one it is sent from,
    // server-side (its cookie, replayed, is refused); the other keeps working.
    let keys = format!("{}/keys", env.portal);
    let (a, b) = (session_cookie(&env, "alice@example.com").await, session_cookie(&env, "alice@example.com").await);
    let raw = client();
    let with = |cookie: &str| raw.get(&keys).header("cookie", cookie.to_owned());
    let page_a = with(&a).send().await.unwrap().text().await.unwrap();
    let r = raw.post(format!("{}/logout", env.portal)).header("cookie", a.as_str()).form(&[("csrf", csrf(&page_a))]);
    let r = r.send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/login"));
    assert_eq!(with(&a).send().await.unwrap().status().as_u16(), 303, "a signed-out session is revoked server-side");
    assert_eq!(with(&b).send().await.unwrap().status().as_u16(), 200, "the other device stays signed in");
    // "Sign out everywhere" (from the account page) ends every session.
    let (_, account, _) = get(&c, &format!("{}/account", env.portal)).await;
    assert!(account.contains("Sign out everywhere"));
    let t = csrf(&page);
    let (status, _, location) = post(&c, &format!("{}/logout/everywhere", env.portal), &[("csrf", &t)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/login?notice=signed_out_everywhere")));
    assert_eq!(with(&b).send().await.unwrap().status().as_u16(), 303, "every session ended");
    let (_, login, _) = get(&c, &format!("{}/login?notice=signed_out_everywhere", env.portal)).await;
    assert!(login.contains("Signed out on every device"));

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

async fn bad_input_gets_helpful_errors(backend: Backend) {
    let env = start(backend).await;
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
    // Same e-mail again: the same answer as for a new address (nobody learns who
    // has an account), no session, and the owner is told by mail.
    let sign_up = |email: &'static str| {
        let url = url.clone();
        async move {
            let again = client();
            let (_, page, _) = get(&again, &url).await;
            let t = csrf(&page);
            let form = [("csrf", t.as_str()), ("email", email), ("password", PASSWORD), ("password_confirm", PASSWORD)];
            let r = again.post(&url).form(&form).send().await.unwrap();
            let session = r.headers().get_all("set-cookie").iter().any(|v| v.to_str().unwrap().contains("session"));
            let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
            (r.status().as_u16(), session, format!("{location} {}", r.text().await.unwrap()))
        }
    };
    let (status, session, taken) = sign_up("BOB@example.com").await;
    let (fresh_status, _, fresh) = sign_up("newcomer@example.com").await;
    assert_eq!((status, session, fresh_status), (303, false, 303));
    assert_eq!(taken.replace("bob@example.com", "X"), fresh.replace("newcomer@example.com", "X"), "indistinguishable");
    assert!(env.outbox().contains("Subject: Sign-up attempt for your certdns account"));
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

async fn csrf_and_cross_site_posts_are_refused(backend: Backend) {
    let env = start(backend).await;
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
    assert_eq!(r.status().as_u16(), 303);
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

async fn password_change_revokes_other_sessions(backend: Backend) {
    let env = start(backend).await;
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

async fn reset_and_verification_links_by_mail(backend: Backend) {
    let env = start(backend).await;
    // Signed up, but signed in with the password instead of the mailed link.
    let anon = client();
    let (_, page, _) = get(&anon, &format!("{}/signup", env.portal)).await;
    let t = csrf(&page);
    let form =
        [("csrf", t.as_str()), ("email", "ivy@example.com"), ("password", PASSWORD), ("password_confirm", PASSWORD)];
    assert_eq!(post(&anon, &format!("{}/signup", env.portal), &form).await.0, 303);
    let c = login(&env, "ivy@example.com", PASSWORD).await.unwrap();
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

    let (_, page, _) = get(&anon, &format!("{}/forgot-password", env.portal)).await;
    let t = csrf(&page);
    let (status, _, location) =
        post(&anon, &format!("{}/forgot-password", env.portal), &[("csrf", &t), ("email", "ivy@example.com")]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/forgot-password/sent")));
    let (status, page, _) = get(&anon, &format!("{}/forgot-password/sent", env.portal)).await;
    assert_eq!(status, 200);
    assert!(page.contains("If an account uses that address"));
    // Unknown address: same answer, no mail.
    let before = env.outbox().len();
    let (status2, _, location2) =
        post(&anon, &format!("{}/forgot-password", env.portal), &[("csrf", &t), ("email", "nobody@example.com")]).await;
    assert_eq!((status2, location2.as_deref()), (303, Some("/forgot-password/sent")));
    assert_eq!(env.outbox().len(), before);

    let reset = link_in(&env.outbox(), "/reset-password?token=");
    let token = reset.split("token=").nth(1).unwrap().to_owned();
    let (status, page, _) = get(&anon, &format!("{}{reset}", env.portal)).await;
    assert_eq!(status, 200);
    let t = csrf(&page);
    let new = "reset passphrase works";
    let url = format!("{}/reset-password", env.portal);
    let (status, page, location) =
        post(&anon, &url, &[("csrf", &t), ("token", &token), ("password", new), ("password_confirm", new)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/reset-password/done")), "{page}");
    let (_, page, _) = get(&anon, &format!("{}/reset-password/done", env.portal)).await;
    assert!(page.contains("Password changed"));
    let (status, _, _) = get(&c, &format!("{}/keys", env.portal)).await;
    assert_eq!(status, 303, "sessions are revoked by a reset");
    let (status, _, _) =
        post(&anon, &url, &[("csrf", &t), ("token", &token), ("password", new), ("password_confirm", new)]).await;
    assert_eq!(status, 400, "reset links work once");
    assert!(login(&env, "ivy@example.com", new).await.is_some());
}

/// Failed sign-ins slow the attacker's address without locking the owner out,
/// and the forgotten-password form cannot be used to mail-bomb the owner.
async fn login_attempts_are_limited(backend: Backend) {
    let env = start_with(backend, |c| c.client_ip_header = Some("X-Forwarded-For".parse().unwrap())).await;
    let _ = signup(&env, "jack@example.com").await;
    let c = client();
    let (_, page, _) = get(&c, &format!("{}/login", env.portal)).await;
    let t = csrf(&page);
    let attempt = |from: &'static str, password: &'static str| {
        let (c, t, url) = (c.clone(), t.clone(), format!("{}/login", env.portal));
        async move {
            let form = [("csrf", t.as_str()), ("email", "jack@example.com"), ("password", password)];
            let r = c.post(url).header("x-forwarded-for", from).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(attempt("203.0.113.66", "not the password").await.0);
    }
    // Three free failures, a fourth that starts the back-off, then refusals
    // without any password check.
    assert_eq!(&statuses[..4], &[401, 401, 401, 401], "{statuses:?}");
    assert!(statuses[4..].iter().all(|s| *s == 429), "{statuses:?}");
    // The attacker's address cannot even try the right password now ...
    let (status, page) = attempt("203.0.113.66", PASSWORD).await;
    assert_eq!(status, 429);
    assert!(page.contains("Too many failed sign-ins"), "{page}");
    // ... while the owner, from another address (and browser), signs in.
    assert_eq!(owner_signs_in(&env).await, 303, "the owner is not locked out");

    // Forgotten password, eleven times from the attacker: a budget of its own, and
    // at most three reset mails an hour to the owner.
    let before = env.outbox().matches("/reset-password?token=").count();
    let mut statuses = Vec::new();
    for i in 0..11 {
        let from = if i < 5 { "203.0.113.66" } else { "203.0.113.67" };
        let r = c
            .post(format!("{}/forgot-password", env.portal))
            .header("x-forwarded-for", from)
            .form(&[("csrf", t.as_str()), ("email", "jack@example.com")])
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(&statuses[..5], &[303; 5], "{statuses:?}");
    assert_eq!(statuses[5..].iter().filter(|s| **s == 303).count(), 5, "another address has its own budget");
    assert_eq!(env.outbox().matches("/reset-password?token=").count() - before, 3, "three mails an hour");
    assert_eq!(owner_signs_in(&env).await, 303, "still not locked out");
}

/// jack signs in from 198.51.100.20 in a browser of his own.
async fn owner_signs_in(env: &Env) -> u16 {
    let owner = client();
    let (_, page, _) = get(&owner, &format!("{}/login", env.portal)).await;
    let form = [("csrf", csrf(&page)), ("email", "jack@example.com".into()), ("password", PASSWORD.into())];
    let r = owner.post(format!("{}/login", env.portal)).header("x-forwarded-for", "198.51.100.20").form(&form);
    r.send().await.unwrap().status().as_u16()
}

async fn login_limits_per_forwarded_address(backend: Backend) {
    let env = start_with(backend, |c| {
        c.login_failures_per_minute_per_address = 2;
        c.client_ip_header = Some("X-Forwarded-For".parse().unwrap());
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

async fn generated_session_secret_survives_a_restart(backend: Backend) {
    let env = start(backend).await;
    let _ = signup(&env, "pat@example.com").await;
    let cookie = session_cookie(&env, "pat@example.com").await;
    let secret = env.store.setting("portal.session_secret").await.unwrap().expect("generated and stored");
    assert!(secret.len() >= 40);
    // A second portal over the same database (a restart, or another instance).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = certdns_portal::router(certdns_portal::PortalDeps {
        store: env.store.clone(),
        sync: env.sync.clone(),
        config: certdns_portal::PortalConfig { secure_cookies: false, ..Default::default() },
        public_api_url: env.api.clone(),
        zone_domain: ZONE.into(),
        data_dir: env.data_dir.path().to_owned(),
        credentials_key: None,
        billing: Default::default(),
        api_document: None,
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
        sync: env.sync.clone(),
        config: certdns_portal::PortalConfig {
            secure_cookies: false,
            session_secret: Some("x".repeat(40)),
            ..Default::default()
        },
        public_api_url: env.api.clone(),
        zone_domain: ZONE.into(),
        data_dir: env.data_dir.path().to_owned(),
        credentials_key: None,
        billing: Default::default(),
        api_document: None,
    })
    .await
    .unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap();
    });
    let r = client().get(format!("http://{addr}/keys")).header("cookie", cookie.as_str()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
}

async fn account_deletion(backend: Backend) {
    let env = start(backend).await;
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
