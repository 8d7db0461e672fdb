//! Personal access tokens (the account API's credentials), on both backends.

use std::sync::Arc;

use certdns_core::{AccessToken, AccountId, Secret, TokenId, TokenScope, now};
use certdns_store::{PortalStore, StoreError};
use time::Duration;

use crate::portal_store::{account, open_store};

certdns_testkit::both_backends!(setup = open_store;
    tokens_round_trip_and_are_listed_per_account,
    revoking_is_scoped_to_the_owner_and_happens_once,
    tokens_go_with_their_account,
);

fn token(account: AccountId, name: &str, scope: TokenScope) -> AccessToken {
    AccessToken {
        id: TokenId::generate(),
        account_id: account,
        name: name.into(),
        scope,
        secret_hash: Secret::generate().hash(),
        created_at: now(),
        expires_at: Some(now() + Duration::days(90)),
        last_used_at: None,
        revoked_at: None,
    }
}

async fn tokens_round_trip_and_are_listed_per_account(store: Arc<dyn PortalStore>) {
    let (a, b) = (account(&store, "a@example.com").await, account(&store, "b@example.com").await);
    let mut first = token(a, "ci", TokenScope::Read);
    first.created_at -= Duration::minutes(1);
    let mut second = token(a, "terraform", TokenScope::ReadWrite);
    second.expires_at = None;
    let other = token(b, "theirs", TokenScope::ReadWrite);
    for t in [&first, &second, &other] {
        store.create_access_token(t).await.unwrap();
    }
    assert_eq!(store.access_token(&first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(store.access_token(&TokenId::generate()).await.unwrap(), None);
    let listed: Vec<TokenId> = store.list_access_tokens(a).await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(listed, vec![second.id.clone(), first.id.clone()], "newest first, only a's");

    let used = now();
    store.touch_access_token(&second.id, used).await.unwrap();
    let read = store.access_token(&second.id).await.unwrap().unwrap();
    assert_eq!((read.last_used_at, read.expires_at, read.scope), (Some(used), None, TokenScope::ReadWrite));
}

async fn revoking_is_scoped_to_the_owner_and_happens_once(store: Arc<dyn PortalStore>) {
    let (a, b) = (account(&store, "a@example.com").await, account(&store, "b@example.com").await);
    let t = token(a, "ci", TokenScope::Read);
    store.create_access_token(&t).await.unwrap();
    let foreign = store.revoke_access_token(b, &t.id, now()).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)), "{foreign:?}");
    assert!(store.access_token(&t.id).await.unwrap().unwrap().revoked_at.is_none());
    let at = now();
    store.revoke_access_token(a, &t.id, at).await.unwrap();
    assert_eq!(store.access_token(&t.id).await.unwrap().unwrap().revoked_at, Some(at));
    assert!(!store.access_token(&t.id).await.unwrap().unwrap().is_usable(now()));
    let again = store.revoke_access_token(a, &t.id, now()).await;
    assert!(matches!(again, Err(StoreError::NotFound)), "a second revocation changes nothing");
    assert_eq!(store.access_token(&t.id).await.unwrap().unwrap().revoked_at, Some(at));
}

async fn tokens_go_with_their_account(store: Arc<dyn PortalStore>) {
    let a = account(&store, "a@example.com").await;
    let t = token(a, "ci", TokenScope::ReadWrite);
    store.create_access_token(&t).await.unwrap();
    store.delete_account(a).await.unwrap();
    assert_eq!(store.access_token(&t.id).await.unwrap(), None);
}
