//! Sessions (JWT cookie, revocable by session version), CSRF, the request guard.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use certdns_core::{Account, AccountId, AccountRole, AccountStatus};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::state::AppState;

/// Largest form body accepted (the biggest form is a few hundred bytes).
const MAX_FORM_BYTES: usize = 16 * 1024;

pub fn random_token(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    pub secure: bool,
    pub session_cookie: &'static str,
    pub csrf_cookie: &'static str,
}

impl Keys {
    pub fn new(secret: &[u8], secure: bool) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            secure,
            // `__Host-` makes browsers refuse the cookie unless it is Secure, has
            // Path=/ and no Domain: nothing on a sibling host can plant it.
            session_cookie: if secure { "__Host-certdns_session" } else { "certdns_session" },
            csrf_cookie: if secure { "__Host-certdns_csrf" } else { "certdns_csrf" },
        }
    }

    fn cookie(&self, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if self.secure {
            c.push_str("; Secure");
        }
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    ver: i64,
    csrf: String,
    /// This session's own id, so it alone can be signed out (sessions issued
    /// before it existed have none and end with "sign out everywhere" or expiry).
    #[serde(default)]
    sid: String,
    iat: i64,
    exp: i64,
}

/// The session a request came with: its id and when it expires (Unix seconds).
#[derive(Clone)]
pub struct SessionId {
    pub id: String,
    pub expires_at: i64,
}

/// The logged-in account of a request.
#[derive(Clone)]
pub struct CurrentUser {
    pub account: Account,
    pub email_verified: bool,
}

impl CurrentUser {
    pub fn is_operator(&self) -> bool {
        self.account.role == AccountRole::Operator
    }
}

/// What the guard found out about a request; handlers read it from extensions.
#[derive(Clone)]
pub struct Ctx {
    pub user: Option<CurrentUser>,
    /// The token forms must carry.
    pub csrf: String,
    pub peer: Option<IpAddr>,
    /// The signed-in session, for signing out this device alone.
    pub session: Option<SessionId>,
    /// The first segment of the request path (`keys` for `/keys/created`): the
    /// navigation marks that section as the current page.
    pub section: String,
    /// Billing is on: the navigation shows Billing and Pricing.
    pub billing: bool,
}

/// Extractor for pages that need a login: redirects to `/login` otherwise.
pub struct User(pub CurrentUser, pub Ctx);

impl<S: Send + Sync> FromRequestParts<S> for User {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let ctx = parts.extensions.get::<Ctx>().cloned();
        match ctx {
            Some(ctx) => match ctx.user.clone() {
                Some(u) => Ok(User(u, ctx)),
                None => Err(Redirect::to("/login").into_response()),
            },
            None => Err(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        }
    }
}

/// Extractor for the request context (logged in or not).
pub struct Context(pub Ctx);

impl<S: Send + Sync> FromRequestParts<S> for Context {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        parts
            .extensions
            .get::<Ctx>()
            .cloned()
            .map(Context)
            .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}

pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Issues a session cookie for `account` at `version`.
pub fn login_cookie(state: &AppState, account: AccountId, version: i64) -> HeaderValue {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ttl = i64::from(state.config.session_hours) * 3600;
    let claims = Claims {
        sub: account.to_string(),
        ver: version,
        csrf: random_token(24),
        sid: random_token(16),
        iat: now,
        exp: now + ttl,
    };
    match sign(state, &claims) {
        Some(token) => state.keys.cookie(state.keys.session_cookie, &token, Some(ttl)),
        None => logout_cookie(state),
    }
}

/// `claims` signed with the session key (HS256): a value the browser carries
/// that nobody else can forge. `None` only if signing itself fails.
pub fn sign<T: Serialize>(state: &AppState, claims: &T) -> Option<String> {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &state.keys.encoding)
        .map_err(|e| tracing::error!(error = %e, "cannot sign a cookie"))
        .ok()
}

/// The claims of a token made by [`sign`], if the signature holds and its `exp`
/// has not passed.
pub fn verified<T: serde::de::DeserializeOwned>(state: &AppState, token: &str) -> Option<T> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    jsonwebtoken::decode::<T>(token, &state.keys.decoding, &validation).ok().map(|data| data.claims)
}

/// A cookie of the portal's own with the session cookie's flags (HttpOnly,
/// SameSite=Lax, Secure unless turned off); `__Host-` prefixed when Secure.
pub fn own_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let name = if state.keys.secure { format!("__Host-{name}") } else { name.to_owned() };
    state.keys.cookie(&name, value, Some(max_age))
}

/// The value of a cookie set by [`own_cookie`].
pub fn own_cookie_value<'a>(state: &AppState, headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let name = if state.keys.secure { format!("__Host-{name}") } else { name.to_owned() };
    cookie_value(headers, &name)
}

pub fn logout_cookie(state: &AppState) -> HeaderValue {
    state.keys.cookie(state.keys.session_cookie, "", Some(0))
}

async fn load_session(state: &AppState, headers: &HeaderMap) -> Option<(CurrentUser, String, SessionId)> {
    let token = cookie_value(headers, state.keys.session_cookie)?;
    let claims: Claims = verified(state, token)?;
    let id: AccountId = claims.sub.parse().ok()?;
    // Revocation: the session must carry the account's current version.
    let version = state.store.session_version(id).await.ok()??;
    if version != claims.ver {
        return None;
    }
    // ...and must not have been signed out on its own.
    if !claims.sid.is_empty() && state.store.session_revoked(&claims.sid).await.ok()? {
        return None;
    }
    let account = state.core.account(id).await.ok()??;
    // Suspension bumps the version too; this also covers a session checked in
    // the instant between the two writes.
    if account.status != AccountStatus::Active {
        return None;
    }
    let email_verified = state.store.email_verified_at(id).await.ok()?.is_some();
    let session = SessionId { id: claims.sid, expires_at: claims.exp };
    Some((CurrentUser { account, email_verified }, claims.csrf, session))
}

fn forbidden(message: &str) -> Response {
    let page = crate::templates::Message {
        layout: crate::templates::Layout::anonymous(String::new()),
        title: "Request refused".into(),
        message: message.into(),
        link: Some(("/".into(), "Back to the portal".into())),
    };
    crate::templates::render(StatusCode::FORBIDDEN, &page)
}

/// Whether the request comes from a page of the portal itself.
fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Old browsers and non-browser clients send no Origin; the CSRF token decides.
        return true;
    };
    if origin == state.base_url {
        return true;
    }
    // Also accept the origin the request was addressed to (the portal reached
    // under another name than public_url, e.g. on localhost).
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
}

/// Loads the session, enforces CSRF and same-origin on state-changing requests,
/// and hands handlers a [`Ctx`].
pub async fn guard(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let socket_peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let peer = state.client_addr.client_addr(socket_peer, &parts.headers);
    let session = load_session(&state, &parts.headers).await;
    let browser_token = cookie_value(&parts.headers, state.keys.csrf_cookie)
        .filter(|t| t.len() >= 16 && t.len() <= 64)
        .map(str::to_owned);
    let (user, csrf, set_csrf_cookie, session) = match session {
        Some((user, token, session)) => (Some(user), token, None, Some(session)),
        None => match browser_token {
            Some(t) => (None, t, None, None),
            None => {
                let t = random_token(24);
                (None, t.clone(), Some(t), None)
            }
        },
    };

    let body = if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        body
    } else {
        if !same_origin(&state, &parts.headers) {
            return forbidden("Cross-site requests are not accepted. Open the portal directly and try again.");
        }
        let bytes = match to_bytes(body, MAX_FORM_BYTES).await {
            Ok(b) => b,
            Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response(),
        };
        let sent = url::form_urlencoded::parse(&bytes).find(|(k, _)| k == "csrf").map(|(_, v)| v.into_owned());
        let ok = sent.is_some_and(|s| set_csrf_cookie.is_none() && bool::from(s.as_bytes().ct_eq(csrf.as_bytes())));
        if !ok {
            return forbidden(
                "This form has expired or did not come from this portal (missing or wrong security token). \
                 Go back, reload the page and submit it again.",
            );
        }
        Body::from(bytes)
    };

    let section = parts.uri.path().trim_start_matches('/').split('/').next().unwrap_or_default().to_owned();
    let billing = state.billing.is_some();
    parts.extensions.insert(Ctx { user, csrf: csrf.clone(), peer, session, section, billing });
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Some(token) = set_csrf_cookie {
        let cookie = state.keys.cookie(state.keys.csrf_cookie, &token, None);
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
