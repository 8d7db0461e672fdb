//! The `/update` fast path's writes as the store tests make them.

use certdns_core::{AccountId, AllowFrom, KeyId, Registration, Secret, SecretHash, Subdomain, Username};
use certdns_store::{AuthorizedWrite, Store};

use crate::store::{registration, txt};

/// The `i`-th value for a registration, with no daily cap.
pub(crate) fn fast(
    user: Username,
    hash: &SecretHash,
    sub: Subdomain,
    account: Option<AccountId>,
    i: usize,
) -> AuthorizedWrite {
    AuthorizedWrite {
        username: user,
        password_hash: hash.clone(),
        subdomain: sub,
        account,
        value: txt(i),
        daily_cap: None,
    }
}

/// A registration the fast path may write: no allow-from list, this secret.
pub(crate) async fn fast_registration(
    store: &dyn Store,
    account: AccountId,
    key: Option<KeyId>,
    secret: &Secret,
) -> Registration {
    let mut r = registration(account, key);
    r.password_hash = secret.hash();
    r.allow_from = AllowFrom::default();
    store.create_registration(&r).await.unwrap();
    r
}
