//! `tls.acme`'s state: the ordering lease (one holder at a time, taken over once
//! it expires, extended by its holder, released early) and the stored values,
//! per scope.

use std::sync::Arc;

use certdns_store::{AcmeValue, Store};

use crate::store::open_store;

certdns_testkit::both_backends!(setup = open_store;
    one_holder_at_a_time_until_the_lease_expires,
    values_are_kept_per_scope,
);

async fn one_holder_at_a_time_until_the_lease_expires(store: Arc<dyn Store>) {
    let scope = "https://ca.example/dir";
    assert!(store.acme_take_lease(scope, "a", 100, 10).await.unwrap(), "a free lease is taken");
    assert!(!store.acme_take_lease(scope, "b", 100, 20).await.unwrap(), "held by a until 100");
    assert!(store.acme_take_lease(scope, "a", 150, 30).await.unwrap(), "its holder extends it");
    assert!(!store.acme_take_lease(scope, "b", 200, 149).await.unwrap());
    assert!(store.acme_take_lease(scope, "b", 300, 151).await.unwrap(), "expired: b takes over");
    assert!(!store.acme_take_lease(scope, "a", 400, 160).await.unwrap());
    store.acme_release_lease(scope, "a").await.unwrap();
    assert!(!store.acme_take_lease(scope, "a", 400, 160).await.unwrap(), "only the holder releases");
    store.acme_release_lease(scope, "b").await.unwrap();
    assert!(store.acme_take_lease(scope, "a", 400, 160).await.unwrap(), "released: free at once");
    // Another directory is another lease.
    assert!(store.acme_take_lease("https://other.example/dir", "b", 400, 160).await.unwrap());
}

async fn values_are_kept_per_scope(store: Arc<dyn Store>) {
    let (one, two) = ("https://one.example/dir", "https://two.example/dir");
    assert_eq!(store.acme_value(one, AcmeValue::Certificate).await.unwrap(), None);
    store.acme_set_value(one, AcmeValue::Account, "account-1", 1).await.unwrap();
    store.acme_set_value(one, AcmeValue::Certificate, "cert-1", 1).await.unwrap();
    store.acme_set_value(one, AcmeValue::Certificate, "cert-2", 2).await.unwrap();
    // A lease row made first keeps its values apart from the lease.
    assert!(store.acme_take_lease(two, "a", 100, 10).await.unwrap());
    store.acme_set_value(two, AcmeValue::Certificate, "cert-other", 3).await.unwrap();
    assert_eq!(store.acme_value(one, AcmeValue::Account).await.unwrap().as_deref(), Some("account-1"));
    assert_eq!(store.acme_value(one, AcmeValue::Certificate).await.unwrap().as_deref(), Some("cert-2"));
    assert_eq!(store.acme_value(two, AcmeValue::Certificate).await.unwrap().as_deref(), Some("cert-other"));
    assert_eq!(store.acme_value(two, AcmeValue::Account).await.unwrap(), None);
    assert!(!store.acme_take_lease(two, "b", 100, 20).await.unwrap(), "setting values leaves the lease");
}
