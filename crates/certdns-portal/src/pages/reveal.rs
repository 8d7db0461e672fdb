//! Showing a secret once, after Post/Redirect/Get: the POST that made it
//! redirects to the one page that shows it and carries it there in a signed
//! (HS256, the session key), short-lived, HttpOnly cookie bound to the account;
//! that page clears the cookie and is not stored by the browser, so a reload or
//! the back button finds it gone. The server never stores what it carries.
//! Used for new license-key secrets (`/keys/created`) and the credentials of a
//! registration added in the portal (`/registrations/created`).

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::PageError;
use crate::session::{self, CurrentUser};
use crate::state::AppState;

/// Long enough to follow the redirect on a slow connection; the page clears it.
const REVEAL_SECS: i64 = 300;

/// What the cookie carries: `secret` for `account`, until `exp`.
#[derive(Serialize, Deserialize)]
struct Sealed<T> {
    /// The account it was made for.
    sub: String,
    exp: i64,
    secret: T,
}

/// 303 to `to`, with `secret` in the cookie `cookie` for the user's account.
pub(super) fn redirect<T: Serialize>(
    state: &AppState,
    user: &CurrentUser,
    cookie: &str,
    secret: T,
    to: &str,
) -> Result<Response, PageError> {
    let sealed =
        Sealed { sub: user.account.id.to_string(), exp: certdns_core::now().unix_timestamp() + REVEAL_SECS, secret };
    let token = session::sign(state, &sealed).ok_or_else(|| PageError::Internal("signing the reveal cookie".into()))?;
    let mut response = Redirect::to(to).into_response();
    response.headers_mut().append(header::SET_COOKIE, session::own_cookie(state, cookie, &token, REVEAL_SECS));
    Ok(response)
}

/// What the cookie `cookie` carries, if it is signed by us, unexpired and made
/// for the user's account.
pub(super) fn take<T: DeserializeOwned>(
    state: &AppState,
    user: &CurrentUser,
    headers: &HeaderMap,
    cookie: &str,
) -> Option<T> {
    let token = session::own_cookie_value(state, headers, cookie)?;
    let sealed: Sealed<T> = session::verified(state, token)?;
    (sealed.sub == user.account.id.to_string()).then_some(sealed.secret)
}

/// Clears the cookie with this answer and keeps the page out of the browser's
/// cache: whatever happens next, the secret is not shown again.
pub(super) fn shown(state: &AppState, mut response: Response, cookie: &str) -> Response {
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, session::own_cookie(state, cookie, "", 0));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
