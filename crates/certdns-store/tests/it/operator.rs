//! The operator's search and suspension reasons, and the instances' heartbeats,
//! on both backends.

use std::sync::Arc;

use certdns_core::{AccountStatus, Domain, now};
use certdns_store::{Heartbeat, MatchedBy, PortalStore, StoreError};

use crate::portal_store::{account, key, open_store, registration};

certdns_testkit::both_backends!(setup = open_store;
    search_finds_accounts_by_each_field_and_nothing_else,
    a_suspension_keeps_its_reason_until_reactivated,
    heartbeats_are_replaced_listed_by_age_and_forgotten,
);

async fn search_finds_accounts_by_each_field_and_nothing_else(store: Arc<dyn PortalStore>) {
    let alice = account(&store, "alice@shop.example").await;
    let bob = account(&store, "bob@other.example").await;
    let (alice_key, _) = key(&store, alice).await;
    let (bob_key, _) = key(&store, bob).await;
    let alice_reg = registration(&store, alice, Some(&alice_key)).await;
    let bob_reg = registration(&store, bob, Some(&bob_key)).await;
    let domain = Domain::parse("www.shop.example").unwrap();
    store.core().set_registration_domain(alice, alice_reg.id, Some(&domain), false).await.unwrap();

    let find = |q: &'static str| {
        let store = store.clone();
        async move { store.search_accounts(q, 20).await.unwrap() }
    };
    // E-mail, any part, any case.
    let by_email = find("ALICE@").await;
    assert_eq!(by_email.len(), 1);
    assert_eq!((by_email[0].account_id, by_email[0].matched_by), (alice, MatchedBy::Email));
    assert_eq!(by_email[0].value, "alice@shop.example");
    // A registration's domain, also as the CNAME name customers paste.
    for q in ["www.shop.example", "_acme-challenge.www.shop.example.", "shop.example"] {
        let found = store.search_accounts(q, 20).await.unwrap();
        assert!(found.iter().any(|m| m.account_id == alice), "{q}: {found:?}");
        assert!(found.iter().all(|m| m.account_id != bob), "{q}: {found:?}");
    }
    let by_domain = find("www.shop").await;
    assert_eq!((by_domain[0].matched_by, by_domain[0].value.as_str()), (MatchedBy::Domain, "www.shop.example"));
    // A registration's subdomain, bare or as the CNAME target; its username.
    let sub = bob_reg.subdomain.to_string();
    for q in [sub.clone(), format!("{sub}.auth.example.net"), bob_reg.username.to_string()] {
        let found = store.search_accounts(&q, 20).await.unwrap();
        assert_eq!(found.len(), 1, "{q}: {found:?}");
        assert_eq!((found[0].account_id, found[0].matched_by), (bob, MatchedBy::Registration));
    }
    // A license key's id, and the account id itself.
    let found = store.search_accounts(bob_key.as_str(), 20).await.unwrap();
    assert_eq!((found[0].account_id, found[0].matched_by), (bob, MatchedBy::LicenseKey));
    let found = store.search_accounts(&alice.to_string(), 20).await.unwrap();
    assert_eq!((found[0].account_id, found[0].matched_by), (alice, MatchedBy::Account));
    // LIKE's wildcards are plain characters; nothing matches nothing.
    assert!(find("%").await.is_empty() && find("_").await.is_empty());
    assert!(find("   ").await.is_empty() && find("nobody.example").await.is_empty());
    // Both match ".example"; the limit holds.
    assert_eq!(find(".example").await.len(), 2);
    assert_eq!(store.search_accounts(".example", 1).await.unwrap().len(), 1);
}

async fn a_suspension_keeps_its_reason_until_reactivated(store: Arc<dyn PortalStore>) {
    let a = account(&store, "a@example.com").await;
    assert_eq!(store.suspension_reason(a).await.unwrap(), None);
    store.suspend_account(a, "Unpaid invoice #42").await.unwrap();
    assert_eq!(store.core().account(a).await.unwrap().unwrap().status, AccountStatus::Suspended);
    assert_eq!(store.suspension_reason(a).await.unwrap().as_deref(), Some("Unpaid invoice #42"));
    // Reactivating clears it; a later suspension without a reason has none.
    store.core().set_account_status(a, AccountStatus::Active).await.unwrap();
    assert_eq!(store.suspension_reason(a).await.unwrap(), None);
    store.core().set_account_status(a, AccountStatus::Suspended).await.unwrap();
    assert_eq!(store.suspension_reason(a).await.unwrap(), None);
    let nobody = certdns_core::AccountId::generate();
    assert!(matches!(store.suspend_account(nobody, "x").await, Err(StoreError::NotFound)));
}

async fn heartbeats_are_replaced_listed_by_age_and_forgotten(store: Arc<dyn PortalStore>) {
    let fleet = store.core().fleet();
    let t = now().unix_timestamp();
    let beat = |id: &str, role: &str, seen_at: i64, detail: serde_json::Value| Heartbeat {
        instance_id: id.into(),
        role: role.into(),
        name: format!("host-{id}"),
        started_at: t - 100,
        seen_at,
        detail,
    };
    fleet.put_heartbeat(&beat("a", "api", t - 50, serde_json::json!({"n": 1})), t - 3600).await.unwrap();
    fleet.put_heartbeat(&beat("b", "portal", t - 5, serde_json::json!({})), t - 3600).await.unwrap();
    // The same instance again: replaced, not added.
    fleet.put_heartbeat(&beat("a", "api", t - 1, serde_json::json!({"n": 2})), t - 3600).await.unwrap();
    let all = fleet.heartbeats(t - 3600).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!((all[0].role.as_str(), all[0].seen_at, &all[0].detail), ("api", t - 1, &serde_json::json!({"n": 2})));
    assert_eq!(all[0].started_at, t - 100, "started_at is the first heartbeat's");
    assert_eq!(fleet.heartbeats(t - 2).await.unwrap().len(), 1, "seen since");
    // A writer forgets instances gone for longer than it keeps them.
    fleet.put_heartbeat(&beat("c", "api", t, serde_json::json!({})), t - 3).await.unwrap();
    let ids: Vec<String> = fleet.heartbeats(0).await.unwrap().into_iter().map(|b| b.instance_id).collect();
    assert_eq!(ids, ["a", "c"]);
    // An instance that stops cleanly takes its row with it.
    fleet.remove_heartbeat("a").await.unwrap();
    assert_eq!(fleet.heartbeats(0).await.unwrap().len(), 1);
}
