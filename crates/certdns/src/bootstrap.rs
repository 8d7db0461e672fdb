//! First start: an empty database gets an operator account and a license key, shown
//! once, so a newcomer can point an ACME client at the server straight away.

use certdns_core::{AccountRole, Secret};
use certdns_store::Store;

use crate::admin::{create_account, create_license_key};
use crate::config;

pub struct FirstStart {
    pub login: String,
    pub password: String,
    pub base_url: String,
}

/// Creates the operator and a key if the database has no account yet.
pub async fn first_start(store: &dyn Store, zone: &str, public_api_url: &str) -> anyhow::Result<Option<FirstStart>> {
    if store.count_accounts().await? > 0 {
        return Ok(None);
    }
    let login = format!("operator@{}", zone.trim_end_matches('.'));
    // A generated secret doubles as a strong portal password.
    let password = Secret::generate().expose().to_owned();
    let account = create_account(store, &login, AccountRole::Operator, Some(password.clone())).await?;
    let (key, secret) = create_license_key(store, account.id, "first key").await?;
    let base_url = config::base_url_with_credentials(public_api_url, key.id.as_str(), secret.expose());
    Ok(Some(FirstStart { login: account.email.to_string(), password, base_url }))
}
