//! License keys through their whole life, used by the real API, and the walls
//! between accounts.

use certdns_core::{AccountStatus, AuditKind, Subdomain, now};
use certdns_testkit::Backend;

use crate::support::*;

certdns_testkit::both_backends!(tokio(flavor = "multi_thread", worker_threads = 2);
    key_lifecycle_through_the_api,
    tenancy_between_accounts,
);

async fn key_lifecycle_through_the_api(backend: Backend) {
    let env = start(backend).await;
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
    assert!(page.contains(">_acme-challenge.www.example.com.</code>"), "the CNAME's name, copyable");
    assert!(page.contains(&format!(">{fulldomain}.</code>")), "its target, copyable");
    let sub = reg["subdomain"].as_str().unwrap();
    let (_, detail, _) = get(&c, &format!("{}/registrations/{sub}", env.portal)).await;
    assert!(detail.contains("relative to the zone example.com"), "{detail}");
    assert!(detail.contains(">_acme-challenge.www</code>"));
    assert!(detail.contains(&format!("_acme-challenge.www.example.com. 3600 IN CNAME {fulldomain}.")));
    let (_, page, _) = get(&c, &format!("{}/keys", env.portal)).await;
    assert!(page.contains(&format!("<a href=\"/registrations#key-{id}\">1</a>")), "registrations count");

    // Reloading the page that showed the secret creates nothing.
    let keys_before = env.store.core().list_license_keys(account_of(&env, &id).await).await.unwrap().len();
    let (_, again, _) = get(&c, &format!("{}/keys/created", env.portal)).await;
    assert!(again.contains("Secret already shown"));
    assert_eq!(env.store.core().list_license_keys(account_of(&env, &id).await).await.unwrap().len(), keys_before);

    // Rotate: a new URL; the old secret stays valid for the grace period.
    let t = token(&env, &c).await;
    let (status, _, location) = post(&c, &format!("{}/keys/{id}/rotate", env.portal), &[("csrf", &t)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/keys/created")));
    let page = shown_once(&env, &c).await;
    assert!(page.contains("The previous secret keeps working until"));
    // A snippet per common client; the update-only ones get the API without the key.
    for client in
        ["certbot", "lego", "acme.sh", "cert-manager", "Certify The Web", "Posh-ACME", "win-acme", "Caddy", "Traefik"]
    {
        assert!(page.contains(&format!("<h3>{client}")), "{client} snippet");
    }
    assert!(page.contains(&format!("host: \"{}\"", env.api)), "cert-manager's issuer names the plain API");
    assert!(page.contains(&format!("server_url {}", env.api)), "Caddy names the plain API");
    let old_secret = url.split('@').next().unwrap().rsplit(':').next().unwrap().to_owned();
    let key = env.store.core().license_key(&id.parse().unwrap()).await.unwrap().unwrap();
    assert!(key.verify_secret(&old_secret, now()));
    assert!(!key.secret_hash.verify(&old_secret));
    let (_, new_url) = base_url_on(&page);
    assert_ne!(new_url, url);
    // A second rotation (say, the new URL was lost) cuts no grace short: the
    // original secret keeps working until its own deadline.
    let (status, _, _) = post(&c, &format!("{}/keys/{id}/rotate", env.portal), &[("csrf", &t)]).await;
    assert_eq!(status, 303);
    let (_, newest_url) = base_url_on(&shown_once(&env, &c).await);
    let key = env.store.core().license_key(&id.parse().unwrap()).await.unwrap().unwrap();
    let new_secret = new_url.split('@').next().unwrap().rsplit(':').next().unwrap().to_owned();
    let newest_secret = newest_url.split('@').next().unwrap().rsplit(':').next().unwrap().to_owned();
    for (which, secret) in [("original", &old_secret), ("first rotation's", &new_secret), ("newest", &newest_secret)] {
        assert!(key.verify_secret(secret, now()), "the {which} secret works");
    }
    // A third in grace is the limit; a fourth rotation is refused and says until when.
    let (status, _, _) = post(&c, &format!("{}/keys/{id}/rotate", env.portal), &[("csrf", &t)]).await;
    assert_eq!(status, 303);
    let _ = shown_once(&env, &c).await;
    let (status, page, _) = post(&c, &format!("{}/keys/{id}/rotate", env.portal), &[("csrf", &t)]).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("earlier secrets in their grace period"), "{page}");
    let key = env.store.core().license_key(&id.parse().unwrap()).await.unwrap().unwrap();
    assert!(key.verify_secret(&old_secret, now()), "the refused rotation changed nothing");
    assert_eq!(key.secret_hash.previous_all().len(), 3);
    let new_url = newest_url;
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

async fn account_of(env: &Env, key: &str) -> certdns_core::AccountId {
    env.store.core().license_key(&key.parse().unwrap()).await.unwrap().unwrap().account_id
}

async fn tenancy_between_accounts(backend: Backend) {
    let env = start(backend).await;
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
    assert!(key.secret_hash.previous_all().is_empty());
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
