//! One behaviour suite for the `PortalStore` trait, run against SQLite and Postgres.

use std::sync::Arc;

use certdns_core::{
    Account, AccountId, AccountRole, AccountStatus, AllowFrom, Email, KeyId, LicenseKey, Registration, RegistrationId,
    Secret, Subdomain, TxtValue, Username, now,
};
use certdns_store::{PortalStore, StoreError, TokenKind};
use certdns_testkit::{Backend, TestDatabase};
use time::Duration;

certdns_testkit::both_backends!(setup = open_store;
    settings_first_writer_wins,
    session_versions_and_passwords,
    tokens_are_single_use_and_expire,
    rotation_keeps_the_old_secret_for_the_grace_period,
    rename_is_scoped_to_the_account,
    registration_counts_per_key,
    usage_is_summed_per_key_and_day_and_scoped,
    account_deletion_cascades_and_reports_subdomains,
    operator_summaries_count_keys_and_registrations,
);

pub(crate) async fn open_store(backend: Backend) -> (Arc<dyn PortalStore>, TestDatabase) {
    let db = TestDatabase::new(backend).await;
    let store = certdns_store::open_portal(db.url()).await.expect("open store");
    store.core().migrate().await.expect("migrate");
    (store, db)
}

pub(crate) async fn account(store: &Arc<dyn PortalStore>, email: &str) -> AccountId {
    let a = Account {
        id: AccountId::generate(),
        email: Email::parse(email).unwrap(),
        role: AccountRole::Customer,
        status: AccountStatus::Active,
        password_hash: Some("$argon2id$old".into()),
        created_at: now(),
    };
    store.core().create_account(&a).await.unwrap();
    a.id
}

pub(crate) async fn key(store: &Arc<dyn PortalStore>, account: AccountId) -> (KeyId, Secret) {
    let secret = Secret::generate();
    let k = LicenseKey {
        id: KeyId::generate(),
        account_id: account,
        name: "k".into(),
        secret_hash: secret.hash(),
        created_at: now(),
        last_used_at: None,
        revoked_at: None,
        storage_access: false,
    };
    store.core().create_license_key(&k).await.unwrap();
    (k.id, secret)
}

pub(crate) async fn registration(
    store: &Arc<dyn PortalStore>,
    account: AccountId,
    key: Option<&KeyId>,
) -> Registration {
    let r = Registration {
        id: RegistrationId::generate(),
        account_id: account,
        license_key_id: key.cloned(),
        username: Username::generate(),
        password_hash: Secret::generate().hash(),
        subdomain: Subdomain::generate(),
        allow_from: AllowFrom::default(),
        subject: Some("www.example.com".into()),
        domain: None,
        password_sealed: None,
        acme_account_url: None,
        kind: certdns_core::RegistrationKind::Challenge,
        created_at: now(),
        last_update_at: None,
    };
    store.core().create_registration(&r).await.unwrap();
    r
}

async fn settings_first_writer_wins(store: Arc<dyn PortalStore>) {
    assert_eq!(store.setting("s").await.unwrap(), None);
    assert_eq!(store.init_setting("s", "one").await.unwrap(), "one");
    assert_eq!(store.init_setting("s", "two").await.unwrap(), "one");
    assert_eq!(store.setting("s").await.unwrap().as_deref(), Some("one"));
}

async fn session_versions_and_passwords(store: Arc<dyn PortalStore>) {
    let a = account(&store, "a@example.com").await;
    assert_eq!(store.session_version(a).await.unwrap(), Some(0));
    assert_eq!(store.bump_session_version(a).await.unwrap(), 1);
    assert_eq!(store.set_password_hash(a, "$argon2id$new").await.unwrap(), 2);
    assert_eq!(store.session_version(a).await.unwrap(), Some(2));
    let reread = store.core().account(a).await.unwrap().unwrap();
    assert_eq!(reread.password_hash.as_deref(), Some("$argon2id$new"));
    let nobody = AccountId::generate();
    assert_eq!(store.session_version(nobody).await.unwrap(), None);
    assert!(matches!(store.bump_session_version(nobody).await, Err(StoreError::NotFound)));
    assert!(matches!(store.set_password_hash(nobody, "x").await, Err(StoreError::NotFound)));

    // One session signed out alone; twice is harmless; expired entries are forgotten.
    let later = now().unix_timestamp() + 3600;
    assert!(!store.session_revoked("s1").await.unwrap());
    store.revoke_session("s1", later).await.unwrap();
    store.revoke_session("s1", later).await.unwrap();
    assert!(store.session_revoked("s1").await.unwrap());
    assert!(!store.session_revoked("s2").await.unwrap());
    store.revoke_session("old", now().unix_timestamp() - 10).await.unwrap();
    store.revoke_session("s3", later).await.unwrap();
    assert!(!store.session_revoked("old").await.unwrap(), "an expired entry is pruned");
    assert!(store.session_revoked("s3").await.unwrap());

    assert_eq!(store.email_verified_at(a).await.unwrap(), None);
    let at = now();
    store.mark_email_verified(a, at).await.unwrap();
    store.mark_email_verified(a, at + Duration::hours(1)).await.unwrap();
    assert_eq!(store.email_verified_at(a).await.unwrap(), Some(at), "the first verification is kept");
}

async fn tokens_are_single_use_and_expire(store: Arc<dyn PortalStore>) {
    let a = account(&store, "a@example.com").await;
    let t = now();
    store.create_token(TokenKind::VerifyEmail, "h1", a, t, t + Duration::hours(1)).await.unwrap();
    // Looking does not spend it; wrong kind, unknown hash or past expiry find nothing.
    assert_eq!(store.token_account(TokenKind::VerifyEmail, "h1", t).await.unwrap(), Some(a));
    assert_eq!(store.token_account(TokenKind::ResetPassword, "h1", t).await.unwrap(), None);
    assert_eq!(store.token_account(TokenKind::VerifyEmail, "nope", t).await.unwrap(), None);
    assert_eq!(store.token_account(TokenKind::VerifyEmail, "h1", t + Duration::hours(2)).await.unwrap(), None);
    // Wrong kind: not accepted (and the token is still there for the right kind).
    assert_eq!(store.consume_token(TokenKind::ResetPassword, "h1", t).await.unwrap(), None);
    assert_eq!(store.consume_token(TokenKind::VerifyEmail, "h1", t).await.unwrap(), Some(a));
    assert_eq!(store.consume_token(TokenKind::VerifyEmail, "h1", t).await.unwrap(), None, "single use");

    store.create_token(TokenKind::ResetPassword, "h2", a, t, t + Duration::hours(1)).await.unwrap();
    assert_eq!(store.consume_token(TokenKind::ResetPassword, "h2", t + Duration::hours(2)).await.unwrap(), None);

    // A newer token of the same kind replaces the older one.
    store.create_token(TokenKind::ResetPassword, "h3", a, t, t + Duration::hours(1)).await.unwrap();
    store.create_token(TokenKind::ResetPassword, "h4", a, t, t + Duration::hours(1)).await.unwrap();
    assert_eq!(store.consume_token(TokenKind::ResetPassword, "h3", t).await.unwrap(), None);
    assert_eq!(store.consume_token(TokenKind::ResetPassword, "h4", t).await.unwrap(), Some(a));
}

async fn rotation_keeps_the_old_secret_for_the_grace_period(store: Arc<dyn PortalStore>) {
    let a = account(&store, "a@example.com").await;
    let b = account(&store, "b@example.com").await;
    let (id, old) = key(&store, a).await;
    let new = Secret::generate();
    let t = now();
    assert!(matches!(
        store.rotate_license_key(b, &id, &new.hash(), t + Duration::days(1)).await,
        Err(StoreError::NotFound)
    ));
    store.rotate_license_key(a, &id, &new.hash(), t + Duration::days(1)).await.unwrap();
    let k = store.core().license_key(&id).await.unwrap().unwrap();
    assert!(k.verify_secret(new.expose(), t));
    assert!(k.verify_secret(old.expose(), t));
    assert!(!k.verify_secret(old.expose(), t + Duration::days(2)));
    assert!(k.secret_hash.verify(new.expose()));
    assert!(!k.secret_hash.verify(old.expose()));

    store.core().revoke_license_key(a, &id, t).await.unwrap();
    assert!(matches!(store.rotate_license_key(a, &id, &Secret::generate().hash(), t).await, Err(StoreError::NotFound)));
}

async fn rename_is_scoped_to_the_account(store: Arc<dyn PortalStore>) {
    let a = account(&store, "a@example.com").await;
    let b = account(&store, "b@example.com").await;
    let (id, _) = key(&store, a).await;
    assert!(matches!(store.rename_license_key(b, &id, "evil").await, Err(StoreError::NotFound)));
    store.rename_license_key(a, &id, "web servers").await.unwrap();
    assert_eq!(store.core().license_key(&id).await.unwrap().unwrap().name, "web servers");
}

async fn registration_counts_per_key(store: Arc<dyn PortalStore>) {
    let a = account(&store, "a@example.com").await;
    let b = account(&store, "b@example.com").await;
    let (k1, _) = key(&store, a).await;
    let (k2, _) = key(&store, a).await;
    let (kb, _) = key(&store, b).await;
    registration(&store, a, Some(&k1)).await;
    registration(&store, a, Some(&k1)).await;
    registration(&store, a, Some(&k2)).await;
    registration(&store, a, None).await;
    registration(&store, b, Some(&kb)).await;
    let mut counts = store.registration_counts(a).await.unwrap();
    counts.sort();
    let mut want = vec![(k1, 2), (k2, 1)];
    want.sort();
    assert_eq!(counts, want);
}

async fn usage_is_summed_per_key_and_day_and_scoped(store: Arc<dyn PortalStore>) {
    let a = account(&store, "a@example.com").await;
    let b = account(&store, "b@example.com").await;
    let (ka, _) = key(&store, a).await;
    let (kb, _) = key(&store, b).await;
    let today = now().date();
    let yesterday = today.previous_day().unwrap();
    let long_ago = today - Duration::days(40);
    store
        .add_usage(&[
            (ka.clone(), today, 3),
            (ka.clone(), today, 2),
            (ka.clone(), yesterday, 1),
            (ka.clone(), long_ago, 9),
            (kb.clone(), today, 7),
            (KeyId::generate(), today, 1),
        ])
        .await
        .unwrap();
    store.add_usage(&[]).await.unwrap();
    let usage = store.usage_since(a, today - Duration::days(29)).await.unwrap();
    let got: Vec<_> = usage.iter().map(|u| (u.key.clone(), u.day, u.updates)).collect();
    assert_eq!(got, vec![(ka.clone(), yesterday, 1), (ka.clone(), today, 5)]);
    let usage_b = store.usage_since(b, long_ago).await.unwrap();
    assert_eq!(usage_b.len(), 1);
    assert_eq!(usage_b[0].key, kb);
}

async fn account_deletion_cascades_and_reports_subdomains(store: Arc<dyn PortalStore>) {
    let a = account(&store, "a@example.com").await;
    let b = account(&store, "b@example.com").await;
    let (ka, _) = key(&store, a).await;
    let (kb, _) = key(&store, b).await;
    let r1 = registration(&store, a, Some(&ka)).await;
    let r2 = registration(&store, a, None).await;
    let rb = registration(&store, b, Some(&kb)).await;
    let v = TxtValue::try_from("a".repeat(43)).unwrap();
    store.core().put_txt(r1.id, &v, 2, now()).await.unwrap();
    store.core().put_txt(r1.id, &v, 2, now()).await.unwrap();
    store.add_usage(&[(ka.clone(), now().date(), 1)]).await.unwrap();
    store.create_token(TokenKind::VerifyEmail, "t", a, now(), now() + Duration::hours(1)).await.unwrap();

    let mut removed = store.delete_account(a).await.unwrap();
    removed.sort_by_key(|r| r.subdomain.to_string());
    let mut want = vec![(r1.subdomain, 2u64), (r2.subdomain, 0u64)];
    want.sort_by_key(|(s, _)| s.to_string());
    assert_eq!(removed.iter().map(|r| (r.subdomain, r.version)).collect::<Vec<_>>(), want);

    let core = store.core();
    assert!(core.account(a).await.unwrap().is_none());
    assert!(core.license_key(&ka).await.unwrap().is_none());
    assert!(core.txt_state(r1.subdomain, 2).await.unwrap().is_none());
    assert!(core.list_registrations(a).await.unwrap().is_empty());
    assert_eq!(store.consume_token(TokenKind::VerifyEmail, "t", now()).await.unwrap(), None);
    // The other account is untouched.
    assert!(core.license_key(&kb).await.unwrap().is_some());
    assert!(core.registration_by_subdomain(b, rb.subdomain).await.unwrap().is_some());
    assert!(matches!(store.delete_account(a).await, Err(StoreError::NotFound)));
}

async fn operator_summaries_count_keys_and_registrations(store: Arc<dyn PortalStore>) {
    let a = account(&store, "a@example.com").await;
    let b = account(&store, "b@example.com").await;
    let (k1, _) = key(&store, a).await;
    let (k2, _) = key(&store, a).await;
    store.core().revoke_license_key(a, &k2, now()).await.unwrap();
    registration(&store, a, Some(&k1)).await;
    store.add_usage(&[(k1.clone(), now().date(), 4), (k2.clone(), now().date(), 1)]).await.unwrap();
    let all = store.account_summaries(now().date() - Duration::days(29)).await.unwrap();
    assert_eq!(all.len(), 2);
    let sa = all.iter().find(|s| s.account.id == a).unwrap();
    assert_eq!((sa.active_keys, sa.registrations, sa.updates), (1, 1, 5));
    let sb = all.iter().find(|s| s.account.id == b).unwrap();
    assert_eq!((sb.active_keys, sb.registrations, sb.updates), (0, 0, 0));
}
