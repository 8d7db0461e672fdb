//! Who is calling the account API: `Authorization: Bearer cdpat_…`, a personal
//! access token of an active account. Bad tokens spend a per-address budget;
//! once it is gone the address is refused before any lookup. Every bad token
//! gets the same answer (mistyped, unknown, revoked and expired look alike),
//! and an unknown id still costs a hash comparison, so timing says nothing.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use certdns_core::access_token::parse_token;
use certdns_core::{AccessToken, Account, AccountStatus, SecretHash, TokenScope};

use super::error::ApiError;
use crate::actions::Actor;
use crate::state::AppState;

/// `last_used_at` is written at most this often per token.
const TOUCH_EVERY: time::Duration = time::Duration::minutes(1);

pub(crate) struct Caller {
    pub account: Account,
    pub token: AccessToken,
    pub peer: Option<IpAddr>,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor { account: self.account.id, peer: self.peer, via: "api" }
    }

    /// Refuses with 403 `insufficient_scope` unless the token may do `needed`.
    pub fn require(&self, needed: TokenScope) -> Result<(), ApiError> {
        if self.token.scope.allows(needed) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("This token's scope is \"{}\"; this needs a \"{}\" token.", self.token.scope, needed),
        ))
    }
}

fn invalid_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "The access token is not valid: mistyped, revoked or expired. Create one in the portal under Account → \
         Access tokens.",
    )
}

fn too_many(wait: std::time::Duration) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_failures",
        "Too many requests with a bad access token from this address; wait and try again.",
    );
    e.retry_after = Some(wait.as_secs().max(1));
    e
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let socket = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let peer = state.client_addr.client_addr(socket, &parts.headers);
        state.limits.token_allowed(peer).map_err(too_many)?;
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let Some(presented) = presented else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_required",
                "Send a personal access token as `Authorization: Bearer cdpat_…`.",
            ));
        };
        let now = certdns_core::now();
        let found = match parse_token(presented) {
            Some((id, secret)) => {
                let token = state.store.access_token(&id).await?;
                let hash = token.as_ref().map(|t| t.secret_hash.clone()).unwrap_or_else(SecretHash::decoy);
                token.filter(|t| hash.verify(secret) && t.is_usable(now))
            }
            None => None,
        };
        let Some(token) = found else {
            return Err(match state.limits.token_failed(peer) {
                Ok(()) => invalid_token(),
                Err(wait) => too_many(wait),
            });
        };
        let account = match state.core.account(token.account_id).await? {
            Some(a) => a,
            None => return Err(invalid_token()),
        };
        if account.status != AccountStatus::Active {
            let (words, reason) = crate::suspension::words(state, account.id).await?;
            let refused = ApiError::new(StatusCode::FORBIDDEN, "account_suspended", words);
            return Err(refused.with_extra(serde_json::json!({ "reason": reason })));
        }
        if token.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY)
            && let Err(e) = state.store.touch_access_token(&token.id, now).await
        {
            tracing::warn!(error = %e, "cannot note an access token's use");
        }
        Ok(Caller { account, token, peer })
    }
}
