//! What a suspended customer is told, on the sign-in page and in the account
//! API's 403: that the operator suspended the account, why (the reason the
//! operator gave, when there is one), and what follows.

use certdns_core::AccountId;
use certdns_store::StoreError;

use crate::state::AppState;

/// The words, with the reason when the operator gave one (also returned on its
/// own). Told only to whoever proved they own the account (a password or a token).
pub(crate) async fn words(state: &AppState, account: AccountId) -> Result<(String, Option<String>), StoreError> {
    let reason = state.store.suspension_reason(account).await?;
    let mut text = "This account is suspended by the operator of this service.".to_owned();
    if let Some(reason) = &reason {
        text.push_str(&format!(" Reason: {}.", reason.trim_end_matches('.')));
    }
    text.push_str(
        " Its tokens, keys and registrations are refused until it is reactivated; contact the operator to restore it.",
    );
    Ok((text, reason))
}
