//! Persist registrations in the store: made with their record in one
//! statement, the record replaced as a new version within its account only,
//! read back by the reconcile pages, never written by any `/update` write
//! (fast batch, checked write, removal), never found by the by-domain lookups
//! of acme-dns clients, and sharing a domain with the dns-01 registration.

use std::sync::Arc;

use certdns_core::{AllowFrom, Domain, HashedAccountUri, PersistRecord, RegistrationKind, Secret, TxtState};
use certdns_store::{AuthorizedWrite, Store, StoreError};

use crate::store::{account, open_store, registration, txt};

certdns_testkit::both_backends!(setup = open_store;
    a_persist_record_is_kept_apart_from_update,
);

const HASHED: &str = "https://ca.example/account-hash/sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw";

fn record(issuer: &str, wildcard: bool) -> PersistRecord {
    PersistRecord::new(issuer, HashedAccountUri::parse(HASHED).unwrap(), wildcard, Some(32_472_144_000)).unwrap()
}

async fn a_persist_record_is_kept_apart_from_update(store: Arc<dyn Store>) {
    let a = account("a@example.com");
    let b = account("b@example.com");
    store.create_account(&a).await.unwrap();
    store.create_account(&b).await.unwrap();
    let example = Domain::parse("example.com").unwrap();
    // The dns-01 registration for the domain, and the persist one beside it.
    let mut plain = registration(a.id, None);
    plain.domain = Some(example.clone());
    store.create_registration(&plain).await.unwrap();
    let secret = Secret::generate();
    let mut p = registration(a.id, None);
    (p.kind, p.domain, p.password_hash, p.allow_from) =
        (RegistrationKind::Persist, Some(example.clone()), secret.hash(), AllowFrom::default());
    let first = TxtState {
        subdomain: p.subdomain,
        version: 1,
        values: vec![],
        persist: Some(record("letsencrypt.org", false)),
    };
    store.import_registration(&p, &first).await.unwrap();
    assert_eq!(store.txt_state(p.subdomain, 2).await.unwrap(), Some(first.clone()));
    assert_eq!(
        store.registration_by_subdomain(a.id, p.subdomain).await.unwrap().unwrap().kind,
        RegistrationKind::Persist
    );

    // One persist registration per domain and account.
    let mut twin = registration(a.id, None);
    (twin.kind, twin.domain) = (RegistrationKind::Persist, Some(example.clone()));
    assert!(matches!(store.import_registration(&twin, &first).await, Err(StoreError::Conflict(_))));

    // Replaced as a new version, within its account only.
    let second = record("pki.goog", true);
    assert!(matches!(
        store.set_persist_record(b.id, p.id, &second, certdns_core::now()).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        matches!(
            store.set_persist_record(a.id, plain.id, &second, certdns_core::now()).await,
            Err(StoreError::NotFound)
        ),
        "a challenge registration holds no record"
    );
    let state = store.set_persist_record(a.id, p.id, &second, certdns_core::now()).await.unwrap();
    assert_eq!((state.version, state.persist.as_ref()), (2, Some(&second)));
    let page = store.txt_states_page(None, 100, 2).await.unwrap();
    assert!(page.contains(&state), "the reconcile reads it back");

    // No /update write touches it, even with its credentials.
    let write = AuthorizedWrite {
        username: p.username,
        password_hash: secret.hash(),
        subdomain: p.subdomain,
        account: None,
        value: txt(7),
        daily_cap: None,
    };
    assert_eq!(store.put_txts_if_authorized(&[write], 2, certdns_core::now()).await.unwrap(), vec![None]);
    assert!(matches!(store.put_txt(p.id, &txt(7), 2, certdns_core::now()).await, Err(StoreError::NotFound)));
    assert!(matches!(store.remove_txt(p.id, &txt(7), 2, certdns_core::now()).await, Err(StoreError::NotFound)));
    assert_eq!(store.txt_state(p.subdomain, 2).await.unwrap(), Some(state));

    // acme-dns clients find the dns-01 registration by domain, never the persist one.
    assert_eq!(store.registration_by_domain(a.id, &example).await.unwrap().map(|r| r.id), Some(plain.id));
    let www = Domain::parse("www.example.com").unwrap();
    assert_eq!(store.closest_bound_registration(a.id, &www).await.unwrap().map(|r| r.id), Some(plain.id));
    assert_eq!(store.billing().count_registrations(a.id).await.unwrap(), 2, "counted for the plan like any");
}
