//! License keys: the list, create (shown once as a base URL), rotate, rename, revoke.
//!
//! Creating and rotating follow Post/Redirect/Get: the POST does the work and
//! redirects to `/keys/created`, carrying the new secret in a signed cookie
//! that that page clears as it shows it. A reload or the back button then shows
//! "already shown" instead of creating another key or rotating again.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use certdns_core::{AuditKind, KeyId, Secret};
use serde::{Deserialize, Serialize};

use super::onboarding::{Checklist, checklist};
use super::{NoticeQuery, Page, Shared, reveal, when, when_opt};
use crate::actions::{self, ActionError, Actor, clean_key_name};
use crate::error::PageError;
use crate::session::{Ctx, CurrentUser, User};
use crate::state::AppState;
use crate::templates::{Layout, render};

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/keys", get(keys_page).post(create_key))
        .route("/keys/created", get(key_created_page))
        .route("/keys/{id}/revoke", post(revoke_key))
        .route("/keys/{id}/rotate", post(rotate_key))
        .route("/keys/{id}/rename", post(rename_key))
        .route("/keys/{id}/storage", post(set_storage_access))
}

struct KeyRow {
    id: String,
    name: String,
    created: String,
    last_used: String,
    registrations: u64,
    active: bool,
    revoked: String,
    grace_until: Option<String>,
    /// lego's HTTP storage may read this key's registrations' passwords.
    storage_access: bool,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    layout: Layout,
    keys: Vec<KeyRow>,
    error: Option<String>,
    name: String,
    /// First steps, until they are all done.
    onboarding: Option<Checklist>,
}

#[derive(Template)]
#[template(path = "key_created.html")]
struct KeyCreatedPage {
    layout: Layout,
    name: String,
    id: String,
    base_url: String,
    /// The API without credentials: what update-only clients (cert-manager,
    /// Caddy) are given, so the license secret stays out of their configuration.
    api_url: String,
    /// The secret alone, for clients that ask for user and key separately.
    secret: String,
    rotated: bool,
    grace_until: String,
}

#[derive(Deserialize)]
struct KeyName {
    #[serde(default)]
    name: String,
}

/// The account's keys, active first, newest first.
async fn key_rows(state: &AppState, user: &CurrentUser) -> Result<Vec<KeyRow>, PageError> {
    let id = user.account.id;
    let (keys, counts) = tokio::try_join!(state.core.list_license_keys(id), state.store.registration_counts(id))?;
    let counts: HashMap<KeyId, u64> = counts.into_iter().collect();
    let now = certdns_core::now();
    let mut rows: Vec<KeyRow> = keys
        .iter()
        .map(|k| KeyRow {
            id: k.id.to_string(),
            name: k.name.clone(),
            created: when(k.created_at),
            last_used: when_opt(k.last_used_at, "never"),
            registrations: counts.get(&k.id).copied().unwrap_or(0),
            active: k.is_active(),
            revoked: when_opt(k.revoked_at, ""),
            grace_until: k.secret_hash.grace_until(now).map(when),
            storage_access: k.storage_access,
        })
        .collect();
    rows.sort_by(|a, b| b.active.cmp(&a.active).then(b.created.cmp(&a.created)));
    Ok(rows)
}

async fn keys_page(State(state): Shared, User(user, ctx): User, Query(q): Query<NoticeQuery>) -> Page {
    let keys = key_rows(&state, &user).await?;
    let onboarding = checklist(&state, user.account.id).await?;
    let page =
        KeysPage { layout: Layout::of(&ctx).with_notice(q.text()), keys, error: None, name: String::new(), onboarding };
    Ok(render(StatusCode::OK, &page))
}

/// The keys page again, with `error` at the form and the name typed kept.
async fn key_form_refused(state: &AppState, user: &CurrentUser, ctx: &Ctx, name: String, error: String) -> Page {
    let keys = key_rows(state, user).await?;
    let onboarding = checklist(state, user.account.id).await?;
    let page = KeysPage { layout: Layout::of(ctx), keys, error: Some(error), name, onboarding };
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

/// `https://KEYID:SECRET@api.example.net`: what the customer pastes into a client.
fn base_url_with(state: &AppState, id: &KeyId, secret: &str) -> String {
    let mut url = state.api_url.clone();
    let _ = url.set_username(id.as_str());
    let _ = url.set_password(Some(secret));
    url.as_str().trim_end_matches('/').to_owned()
}

fn parse_key(id: &str, ctx: &Ctx) -> Result<KeyId, PageError> {
    id.parse().map_err(|_| PageError::not_found(ctx))
}

async fn create_key(State(state): Shared, User(user, ctx): User, Form(f): Form<KeyName>) -> Page {
    match actions::create_key(&state, actor(&user, &ctx), &f.name).await {
        Ok((key, secret)) => reveal_once(&state, &user, &key.id, &secret, None),
        Err(ActionError::Invalid(e) | ActionError::Refused { message: e, .. }) => {
            key_form_refused(&state, &user, &ctx, f.name, e).await
        }
        Err(e) => Err(PageError::from_action(&ctx, e)),
    }
}

/// The signed-in user acting in the portal.
fn actor(user: &CurrentUser, ctx: &Ctx) -> Actor {
    Actor { account: user.account.id, peer: ctx.peer, via: "portal" }
}

async fn revoke_key(State(state): Shared, User(user, ctx): User, Path(id): Path<String>) -> Page {
    let id = parse_key(&id, &ctx)?;
    actions::revoke_key(&state, actor(&user, &ctx), &id).await.map_err(|e| PageError::from_action(&ctx, e))?;
    Ok(Redirect::to("/keys?notice=revoked").into_response())
}

async fn rotate_key(State(state): Shared, User(user, ctx): User, Path(id): Path<String>) -> Page {
    let id = parse_key(&id, &ctx)?;
    match actions::rotate_key(&state, actor(&user, &ctx), &id).await {
        Ok((_, secret, until)) => reveal_once(&state, &user, &id, &secret, Some(until)),
        Err(ActionError::TooManyRotations { next_ends }) => {
            let name = state.core.license_key(&id).await?.map(|k| k.name).unwrap_or_default();
            let error = format!(
                "“{name}” already has {} earlier secrets in their grace period. Rotate again after {}, or revoke \
                 the key and create a new one.",
                certdns_core::secret::MAX_IN_GRACE,
                when(next_ends)
            );
            key_form_refused(&state, &user, &ctx, String::new(), error).await
        }
        Err(e) => Err(PageError::from_action(&ctx, e)),
    }
}

/// A new key secret on its way to `/keys/created` (see [`reveal`]).
#[derive(Serialize, Deserialize)]
struct KeyReveal {
    key: String,
    secret: String,
    /// A rotation: until when the previous secret works.
    grace_until: Option<i64>,
}

const REVEAL_COOKIE: &str = "certdns_reveal";

/// 303 to `/keys/created`, the secret in the reveal cookie.
fn reveal_once(
    state: &AppState,
    user: &CurrentUser,
    id: &KeyId,
    secret: &Secret,
    grace_until: Option<time::OffsetDateTime>,
) -> Page {
    let carried = KeyReveal {
        key: id.to_string(),
        secret: secret.expose().to_owned(),
        grace_until: grace_until.map(time::OffsetDateTime::unix_timestamp),
    };
    reveal::redirect(state, user, REVEAL_COOKIE, carried, "/keys/created")
}

/// Shows a new secret once: the cookie is cleared with this answer, and the
/// page is not stored by the browser, so a reload or the back button finds it
/// gone.
async fn key_created_page(State(state): Shared, User(user, ctx): User, headers: HeaderMap) -> Page {
    let reveal: Option<KeyReveal> = reveal::take(&state, &user, &headers, REVEAL_COOKIE);
    let key = match &reveal {
        Some(r) => match r.key.parse::<KeyId>() {
            Ok(id) => state.core.license_key(&id).await?.filter(|k| k.account_id == user.account.id),
            Err(_) => None,
        },
        None => None,
    };
    let response = match (reveal, key) {
        (Some(reveal), Some(key)) => {
            let grace = reveal.grace_until.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok());
            let page = KeyCreatedPage {
                layout: Layout::of(&ctx),
                name: key.name,
                id: key.id.to_string(),
                base_url: base_url_with(&state, &key.id, &reveal.secret),
                api_url: state.api_url.as_str().trim_end_matches('/').to_owned(),
                secret: reveal.secret.clone(),
                rotated: grace.is_some(),
                grace_until: grace.map(when).unwrap_or_default(),
            };
            render(StatusCode::OK, &page)
        }
        _ => {
            let page = crate::templates::Message {
                layout: Layout::of(&ctx),
                title: "Secret already shown".into(),
                message: "A key's secret is shown once, right after it is created or rotated, and this one has \
                          been. If it was not copied, rotate the key to get a new secret."
                    .into(),
                link: Some(("/keys".into(), "Back to my keys".into())),
            };
            render(StatusCode::OK, &page)
        }
    };
    Ok(reveal::shown(&state, response, REVEAL_COOKIE))
}

async fn rename_key(
    State(state): Shared,
    User(user, ctx): User,
    Path(id): Path<String>,
    Form(f): Form<KeyName>,
) -> Page {
    let id = parse_key(&id, &ctx)?;
    let name = match clean_key_name(&f.name) {
        Ok(n) => n,
        Err(e) => return key_form_refused(&state, &user, &ctx, String::new(), e).await,
    };
    state.store.rename_license_key(user.account.id, &id, &name).await.map_err(PageError::or_not_found(&ctx))?;
    let detail = serde_json::json!({ "key": id.to_string(), "name": name });
    state.audit(Some(user.account.id), AuditKind::LicenseKeyRenamed, ctx.peer, detail).await;
    Ok(Redirect::to("/keys?notice=renamed").into_response())
}

#[derive(Deserialize)]
struct StorageSwitch {
    /// `on` or `off`.
    #[serde(default)]
    to: String,
}

/// Switches a key's storage access: with it, anyone holding the key can read
/// the passwords of the registrations made with it (lego's HTTP storage).
async fn set_storage_access(
    State(state): Shared,
    User(user, ctx): User,
    Path(id): Path<String>,
    Form(f): Form<StorageSwitch>,
) -> Page {
    let id = parse_key(&id, &ctx)?;
    let on = match f.to.as_str() {
        "on" => true,
        "off" => false,
        _ => return Err(PageError::not_found(&ctx)),
    };
    match state.core.license_key(&id).await? {
        Some(k) if k.account_id == user.account.id && k.is_active() => {}
        _ => return Err(PageError::not_found(&ctx)),
    }
    let switched = state.core.set_license_key_storage_access(user.account.id, &id, on).await;
    switched.map_err(PageError::or_not_found(&ctx))?;
    let detail = serde_json::json!({ "key_id": id.to_string(), "on": on });
    state.audit(Some(user.account.id), AuditKind::LicenseKeyStorageAccess, ctx.peer, detail).await;
    let notice = if on { "storage_on" } else { "storage_off" };
    Ok(Redirect::to(&format!("/keys?notice={notice}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names() {
        assert_eq!(clean_key_name("  web servers "), Ok("web servers".into()));
        assert!(clean_key_name("   ").is_err());
        assert!(clean_key_name(&"x".repeat(81)).is_err());
        assert!(clean_key_name("a\u{7}b").is_err());
        assert!(clean_key_name("web\u{202e}srevres").is_err());
    }
}
