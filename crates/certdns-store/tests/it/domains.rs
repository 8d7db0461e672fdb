//! Domains bound to registrations, sealed passwords, storage access and removing
//! one TXT value: the store's part of lego's HTTP storage and the acmeproxy dialect.

use std::sync::Arc;

use certdns_core::{Domain, Registration, now};
use certdns_store::{Store, StoreError};

use crate::store::{account, key, open_store, registration, txt};

certdns_testkit::both_backends!(setup = open_store;
    a_domain_is_bound_once_per_account,
    sealed_passwords_and_storage_access_are_tenant_scoped,
    the_closest_bound_parent_is_found_in_one_query,
    remove_txt_takes_out_exactly_one_value,
);

async fn stored(store: &Arc<dyn Store>, r: &Registration) -> Registration {
    store.registration_by_username(r.username).await.unwrap().unwrap()
}

async fn a_domain_is_bound_once_per_account(store: Arc<dyn Store>) {
    let (a, b) = (account("a@example.com"), account("b@example.com"));
    store.create_account(&a).await.unwrap();
    store.create_account(&b).await.unwrap();
    let example = Domain::parse("example.com").unwrap();
    let (r1, r2, other) = (registration(a.id, None), registration(a.id, None), registration(b.id, None));
    for r in [&r1, &r2, &other] {
        store.create_registration(r).await.unwrap();
    }
    store.set_registration_domain(a.id, r1.id, Some(&example), false).await.unwrap();
    assert_eq!(stored(&store, &r1).await.domain, Some(example.clone()));
    assert_eq!(store.registration_by_domain(a.id, &example).await.unwrap().map(|r| r.id), Some(r1.id));

    // The same domain in another account is that tenant's business.
    store.set_registration_domain(b.id, other.id, Some(&example), false).await.unwrap();
    assert_eq!(store.registration_by_domain(b.id, &example).await.unwrap().map(|r| r.id), Some(other.id));
    // A second registration of the account: refused, unless moved on purpose.
    let refused = store.set_registration_domain(a.id, r2.id, Some(&example), false).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    assert_eq!(stored(&store, &r1).await.domain, Some(example.clone()), "nothing changed");
    store.set_registration_domain(a.id, r2.id, Some(&example), true).await.unwrap();
    assert_eq!(stored(&store, &r1).await.domain, None);
    assert_eq!(stored(&store, &r2).await.domain, Some(example.clone()));
    // Another tenant's registration is not found; unbinding works.
    let foreign = store.set_registration_domain(a.id, other.id, None, false).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)));
    store.set_registration_domain(a.id, r2.id, None, false).await.unwrap();
    assert_eq!(store.registration_by_domain(a.id, &example).await.unwrap(), None);

    // Created with a domain already held: a conflict, no row.
    let mut r3 = registration(b.id, None);
    r3.domain = Some(example.clone());
    assert!(matches!(store.create_registration(&r3).await, Err(StoreError::Conflict(_))));
    assert!(store.registration_by_username(r3.username).await.unwrap().is_none());
}

async fn sealed_passwords_and_storage_access_are_tenant_scoped(store: Arc<dyn Store>) {
    let (a, b) = (account("a@example.com"), account("b@example.com"));
    store.create_account(&a).await.unwrap();
    store.create_account(&b).await.unwrap();
    let (k, _) = key(a.id);
    store.create_license_key(&k).await.unwrap();
    assert!(!store.license_key(&k.id).await.unwrap().unwrap().storage_access, "off by default");
    store.set_license_key_storage_access(a.id, &k.id, true).await.unwrap();
    assert!(store.license_key(&k.id).await.unwrap().unwrap().storage_access);
    let foreign = store.set_license_key_storage_access(b.id, &k.id, false).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)));
    assert!(store.license_key(&k.id).await.unwrap().unwrap().storage_access);

    let r = registration(a.id, Some(k.id.clone()));
    store.create_registration(&r).await.unwrap();
    store.set_registration_password_sealed(a.id, r.id, Some("v1.sealed")).await.unwrap();
    assert_eq!(stored(&store, &r).await.password_sealed.as_deref(), Some("v1.sealed"));
    let foreign = store.set_registration_password_sealed(b.id, r.id, None).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)));
    assert_eq!(stored(&store, &r).await.password_sealed.as_deref(), Some("v1.sealed"));
}

async fn remove_txt_takes_out_exactly_one_value(store: Arc<dyn Store>) {
    let a = account("a@example.com");
    store.create_account(&a).await.unwrap();
    let r = registration(a.id, None);
    store.create_registration(&r).await.unwrap();
    for i in 0..4 {
        store.put_txt(r.id, &txt(i), 10, now()).await.unwrap();
    }
    let before = store.txt_state(r.subdomain, 10).await.unwrap().unwrap();
    let after = store.remove_txt(r.id, &txt(1), 10, now()).await.unwrap().expect("a new version");
    assert_eq!(after.version, before.version + 1);
    assert_eq!(after.values, [txt(3), txt(2), txt(0)]);
    assert_eq!(store.remove_txt(r.id, &txt(1), 10, now()).await.unwrap(), None, "nothing to remove, nothing written");
    assert_eq!(store.txt_state(r.subdomain, 10).await.unwrap().unwrap(), after);
    for i in [0, 2, 3] {
        store.remove_txt(r.id, &txt(i), 10, now()).await.unwrap();
    }
    assert!(store.txt_state(r.subdomain, 10).await.unwrap().unwrap().values.is_empty());
    // Concurrent removals and writes: every write survives, every removal applies.
    let tasks: Vec<_> = (10..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store.put_txt(r.id, &txt(i), 10, now()).await.unwrap();
                store.remove_txt(r.id, &txt(i), 10, now()).await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(store.txt_state(r.subdomain, 10).await.unwrap().unwrap().values.is_empty());
    assert!(matches!(
        store.remove_txt(certdns_core::RegistrationId::generate(), &txt(1), 10, now()).await,
        Err(StoreError::NotFound)
    ));
}

async fn the_closest_bound_parent_is_found_in_one_query(store: Arc<dyn Store>) {
    let (a, b) = (account("a@example.com"), account("b@example.com"));
    store.create_account(&a).await.unwrap();
    store.create_account(&b).await.unwrap();
    let bind = |account, name: &str| {
        let mut r = registration(account, None);
        r.domain = Some(Domain::parse(name).unwrap());
        r
    };
    let (apex, shop, foreign) =
        (bind(a.id, "example.com"), bind(a.id, "shop.example.com"), bind(b.id, "x.shop.example.com"));
    for r in [&apex, &shop, &foreign] {
        store.create_registration(r).await.unwrap();
    }
    let closest = |name: &str| {
        let store = store.clone();
        let domain = Domain::parse(name).unwrap();
        async move { store.closest_bound_registration(a.id, &domain).await.unwrap().map(|r| r.id) }
    };
    assert_eq!(closest("shop.example.com").await, Some(shop.id), "the name itself");
    assert_eq!(closest("x.shop.example.com").await, Some(shop.id), "another account's binding is not seen");
    assert_eq!(closest("a.b.c.d.example.com").await, Some(apex.id));
    assert_eq!(closest("example.org").await, None);
    let deep = format!("{}example.com", "a.".repeat(120));
    assert_eq!(closest(&deep).await, Some(apex.id), "a name of 122 labels is one query");
}
