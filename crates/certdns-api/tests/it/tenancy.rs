//! License keys, accounts and registration modes: who may register and update,
//! and that no tenant reaches another's registrations.

use certdns_api::{ApiConfig, RegistrationMode};
use certdns_core::{AccountRole, AccountStatus};
use certdns_testkit::Backend;

use crate::support::*;

certdns_testkit::both_backends!(
    register_requires_an_active_license_key,
    update_refuses_revoked_keys_and_suspended_accounts,
    tenants_cannot_touch_each_other,
    registration_modes,
);

/// /register needs an active license key: missing (401 with a Basic challenge),
/// wrong, revoked, or of a suspended account.
async fn register_requires_an_active_license_key(backend: Backend) {
    let env = Env::start(backend).await;
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

async fn update_refuses_revoked_keys_and_suspended_accounts(backend: Backend) {
    let env = Env::start(backend).await;
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
    let env = Env::start(backend).await;
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
async fn tenants_cannot_touch_each_other(backend: Backend) {
    let env = Env::start(backend).await;
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

async fn registration_modes(backend: Backend) {
    let env =
        Env::with_config(backend, ApiConfig { registration: RegistrationMode::Disabled, ..ApiConfig::default() }).await;
    let r = env.post("/register").header("authorization", env.basic()).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), "404 page not found\n");
    assert_eq!(env.post("//register").send().await.unwrap().status(), 404);

    let env =
        Env::with_config(backend, ApiConfig { registration: RegistrationMode::Open, ..ApiConfig::default() }).await;
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
