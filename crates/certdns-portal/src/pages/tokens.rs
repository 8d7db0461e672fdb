//! Personal access tokens for the account API (`/api/v1`): create (named,
//! scoped, with an expiry; shown once through [`reveal`]), list, revoke.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use certdns_core::access_token;
use certdns_core::{AuditKind, TokenId, TokenScope};
use serde::{Deserialize, Serialize};

use super::{NoticeQuery, Page, Shared, reveal, when, when_opt};
use crate::error::PageError;
use crate::session::{Ctx, CurrentUser, User};
use crate::state::AppState;
use crate::templates::{Layout, render};

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/tokens", get(tokens_page).post(create_token))
        .route("/tokens/created", get(created_page))
        .route("/tokens/{id}/revoke", post(revoke_token))
}

/// Expiries offered, in days (0: never). The default is the first.
const EXPIRIES: [u32; 4] = [90, 30, 365, 0];

struct TokenRow {
    id: String,
    name: String,
    scope: &'static str,
    created: String,
    expires: String,
    last_used: String,
    usable: bool,
    /// Why it no longer works: "revoked …" or "expired …".
    dead: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    layout: Layout,
    tokens: Vec<TokenRow>,
    error: Option<String>,
    name: String,
    api_base: String,
}

#[derive(Template)]
#[template(path = "token_created.html")]
struct CreatedPage {
    layout: Layout,
    name: String,
    scope: &'static str,
    expires: String,
    token: String,
    api_base: String,
}

#[derive(Deserialize)]
struct NewToken {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    expires_days: String,
}

/// `https://portal.example.net/api/v1`.
fn api_base(state: &AppState) -> String {
    format!("{}/api/v1", state.base_url.trim_end_matches('/'))
}

async fn rows(state: &AppState, user: &CurrentUser) -> Result<Vec<TokenRow>, PageError> {
    let now = certdns_core::now();
    let tokens = state.store.list_access_tokens(user.account.id).await?;
    Ok(tokens
        .iter()
        .map(|t| TokenRow {
            id: t.id.to_string(),
            name: t.name.clone(),
            scope: t.scope.as_str(),
            created: when(t.created_at),
            expires: when_opt(t.expires_at, "never"),
            last_used: when_opt(t.last_used_at, "never"),
            usable: t.is_usable(now),
            dead: match (t.revoked_at, t.expires_at) {
                (Some(at), _) => format!("revoked {}", when(at)),
                (None, Some(at)) if at <= now => format!("expired {}", when(at)),
                _ => String::new(),
            },
        })
        .collect())
}

async fn tokens_page(State(state): Shared, User(user, ctx): User, Query(q): Query<NoticeQuery>) -> Page {
    let tokens = rows(&state, &user).await?;
    let page = TokensPage {
        layout: Layout::of(&ctx).with_notice(q.text()),
        tokens,
        error: None,
        name: String::new(),
        api_base: api_base(&state),
    };
    Ok(render(StatusCode::OK, &page))
}

async fn refused(state: &AppState, user: &CurrentUser, ctx: &Ctx, name: String, error: &str) -> Page {
    let tokens = rows(state, user).await?;
    let page =
        TokensPage { layout: Layout::of(ctx), tokens, error: Some(error.into()), name, api_base: api_base(state) };
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

async fn create_token(State(state): Shared, User(user, ctx): User, Form(f): Form<NewToken>) -> Page {
    let Ok(scope) = f.scope.parse::<TokenScope>() else {
        return refused(&state, &user, &ctx, f.name.clone(), "Choose what the token may do.").await;
    };
    let days = match f.expires_days.parse::<u32>() {
        Ok(d) if EXPIRIES.contains(&d) => d,
        _ => return refused(&state, &user, &ctx, f.name.clone(), "Choose when the token expires.").await,
    };
    let lifetime = (days > 0).then(|| time::Duration::days(i64::from(days)));
    let Ok((token, text)) = access_token::issue(user.account.id, &f.name, scope, lifetime, certdns_core::now()) else {
        let error =
            "Name the token after what uses it (at most 80 characters), like “terraform” or “inventory script”.";
        return refused(&state, &user, &ctx, f.name.clone(), error).await;
    };
    state.store.create_access_token(&token).await?;
    let detail = serde_json::json!({
        "token": token.id.as_str(),
        "name": token.name,
        "scope": scope.as_str(),
        "expires_at": token.expires_at.map(time::OffsetDateTime::unix_timestamp),
        "via": "portal",
    });
    state.audit(Some(user.account.id), AuditKind::AccessTokenCreated, ctx.peer, detail).await;
    reveal::redirect(&state, &user, REVEAL_COOKIE, Carried { token: text }, "/tokens/created")
}

/// A new token on its way to `/tokens/created`.
#[derive(Serialize, Deserialize)]
struct Carried {
    token: String,
}

const REVEAL_COOKIE: &str = "certdns_reveal_token";

/// Shows a new token once; a reload or the back button says "already shown".
async fn created_page(State(state): Shared, User(user, ctx): User, headers: HeaderMap) -> Page {
    let carried: Option<Carried> = reveal::take(&state, &user, &headers, REVEAL_COOKIE);
    let presented = carried.as_ref().and_then(|c| access_token::parse_token(&c.token));
    let token = match &presented {
        Some((id, _)) => state.store.access_token(id).await?.filter(|t| t.account_id == user.account.id),
        None => None,
    };
    let response = match (token, presented) {
        (Some(t), Some((_, secret))) if t.secret_hash.verify(secret) => {
            let page = CreatedPage {
                layout: Layout::of(&ctx),
                name: t.name.clone(),
                scope: t.scope.as_str(),
                expires: when_opt(t.expires_at, "never"),
                token: carried.as_ref().map(|c| c.token.clone()).unwrap_or_default(),
                api_base: api_base(&state),
            };
            render(StatusCode::OK, &page)
        }
        _ => {
            let page = crate::templates::Message {
                layout: Layout::of(&ctx),
                title: "Token already shown".into(),
                message: "A token is shown once, right after it is created, and this one has been. If it was not \
                          copied, revoke it and create another."
                    .into(),
                link: Some(("/tokens".into(), "Back to API tokens".into())),
            };
            render(StatusCode::OK, &page)
        }
    };
    Ok(reveal::shown(&state, response, REVEAL_COOKIE))
}

async fn revoke_token(State(state): Shared, User(user, ctx): User, Path(id): Path<String>) -> Page {
    let id: TokenId = id.parse().map_err(|_| PageError::not_found(&ctx))?;
    let revoked = state.store.revoke_access_token(user.account.id, &id, certdns_core::now()).await;
    revoked.map_err(PageError::or_not_found(&ctx))?;
    let detail = serde_json::json!({ "token": id.as_str() });
    state.audit(Some(user.account.id), AuditKind::AccessTokenRevoked, ctx.peer, detail).await;
    Ok(Redirect::to("/tokens?notice=token_revoked").into_response())
}
