//! Registrations moved here from acme-dns (inserted whole with their TXT state,
//! their imported hash swapped once) and dns-account-01 registrations (one
//! domain held by several ACME accounts of one tenant).

use std::sync::Arc;

use certdns_core::{AcmeAccountUrl, Domain, Secret, SecretHash, TxtState};
use certdns_store::{Store, StoreError};

use crate::store::{account, open_store, registration, txt};

certdns_testkit::both_backends!(setup = open_store;
    an_imported_registration_lands_whole_and_its_hash_is_swapped_once,
    several_acme_accounts_hold_one_domain,
);

async fn an_imported_registration_lands_whole_and_its_hash_is_swapped_once(store: Arc<dyn Store>) {
    let a = account("a@example.com");
    store.create_account(&a).await.unwrap();
    let password = Secret::generate();
    let mut r = registration(a.id, None);
    r.password_hash = SecretHash::imported(&bcrypt::hash(password.expose(), 4).unwrap()).unwrap();
    let state = TxtState::values(r.subdomain, 2, vec![txt(2), txt(1)]);
    store.import_registration(&r, &state).await.unwrap();
    assert_eq!(store.txt_state(r.subdomain, 2).await.unwrap(), Some(state.clone()));
    let stored = store.registration_by_username(r.username).await.unwrap().unwrap();
    assert!(stored.password_hash.is_imported());

    // The same username or subdomain again: a conflict and no second row.
    let mut again = registration(a.id, None);
    again.username = r.username;
    assert!(matches!(store.import_registration(&again, &state).await, Err(StoreError::Conflict(_))));
    assert!(store.txt_state(again.subdomain, 2).await.unwrap().is_none(), "nothing of it was written");

    // Swapped only while it is still the imported hash, and only in its account.
    let own = password.hash();
    let other = account("b@example.com");
    store.create_account(&other).await.unwrap();
    let foreign = store.replace_registration_password_hash(other.id, r.id, &r.password_hash, &own).await;
    assert!(!foreign.unwrap());
    assert!(store.replace_registration_password_hash(a.id, r.id, &r.password_hash, &own).await.unwrap());
    assert!(!store.replace_registration_password_hash(a.id, r.id, &r.password_hash, &own).await.unwrap());
    assert_eq!(store.registration_by_username(r.username).await.unwrap().unwrap().password_hash, own);
}

async fn several_acme_accounts_hold_one_domain(store: Arc<dyn Store>) {
    let a = account("a@example.com");
    store.create_account(&a).await.unwrap();
    let example = Domain::parse("example.com").unwrap();
    let cdn = AcmeAccountUrl::parse("https://ca.example/acme/acct/cdn").unwrap();
    let origin = AcmeAccountUrl::parse("https://ca.example/acme/acct/origin").unwrap();
    let (plain, r_cdn, r_origin, r_dup) =
        (registration(a.id, None), registration(a.id, None), registration(a.id, None), registration(a.id, None));
    for r in [&plain, &r_cdn, &r_origin, &r_dup] {
        store.create_registration(r).await.unwrap();
    }
    store.set_registration_domain(a.id, plain.id, Some(&example), false).await.unwrap();
    for (r, url) in [(&r_cdn, &cdn), (&r_origin, &origin), (&r_dup, &cdn)] {
        store.set_registration_acme_account(a.id, r.id, Some(url)).await.unwrap();
    }
    // dns-01 and two ACME accounts hold the domain side by side.
    store.set_registration_domain(a.id, r_cdn.id, Some(&example), false).await.unwrap();
    store.set_registration_domain(a.id, r_origin.id, Some(&example), false).await.unwrap();
    let stored = store.registration_by_username(r_cdn.username).await.unwrap().unwrap();
    assert_eq!((stored.domain.as_ref(), stored.acme_account_url.as_ref()), (Some(&example), Some(&cdn)));
    // The dns-01 lookups (acmeproxy, lego's storage) see only the dns-01 binding.
    assert_eq!(store.registration_by_domain(a.id, &example).await.unwrap().map(|r| r.id), Some(plain.id));
    let www = Domain::parse("www.example.com").unwrap();
    assert_eq!(store.closest_bound_registration(a.id, &www).await.unwrap().map(|r| r.id), Some(plain.id));

    // A second registration for the same ACME account: refused, or moved on purpose
    // from that account's holder only.
    let refused = store.set_registration_domain(a.id, r_dup.id, Some(&example), false).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    store.set_registration_domain(a.id, r_dup.id, Some(&example), true).await.unwrap();
    let domain_of = |r: &certdns_core::Registration| {
        let (store, username) = (store.clone(), r.username);
        async move { store.registration_by_username(username).await.unwrap().unwrap().domain }
    };
    assert_eq!(domain_of(&r_cdn).await, None, "taken from the same ACME account's registration");
    assert_eq!(domain_of(&r_origin).await, Some(example.clone()), "the other ACME account keeps it");
    assert_eq!(domain_of(&plain).await, Some(example.clone()), "the dns-01 binding too");
    // Switching the holder to an ACME account that already has it: a conflict.
    let clash = store.set_registration_acme_account(a.id, r_origin.id, Some(&cdn)).await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
}
