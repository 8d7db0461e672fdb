//! "Add a domain": a registration made in the portal, bound to a domain under
//! one of the account's license keys, before any client runs. Its credentials
//! are shown once (Post/Redirect/Get, the reveal cookie of [`reveal`]) in the
//! formats clients read, with the CNAME to create and a link to check it.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Form, Router};
use certdns_core::{KeyId, LicenseKey, Registration, Subdomain};
use certdns_store::StoreError;
use serde::{Deserialize, Serialize};

use super::registrations::{Conflict, RegRow, conflict_with, reg_row};
use super::{Page, Shared, reveal};
use crate::actions::{self, ActionError, Actor};
use crate::error::PageError;
use crate::session::{Ctx, CurrentUser, User};
use crate::state::AppState;
use crate::templates::{Layout, render};

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/registrations/new", get(new_page).post(add_domain))
        .route("/registrations/created", get(created_page))
}

struct KeyChoice {
    id: String,
    name: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "registration_new.html")]
struct NewPage {
    layout: Layout,
    keys: Vec<KeyChoice>,
    domain: String,
    error: Option<String>,
    conflict: Option<Conflict>,
}

/// The credentials in each format clients read, ready to paste.
#[derive(Template)]
#[template(path = "registration_created.html")]
struct CreatedPage {
    layout: Layout,
    reg: RegRow,
    key_name: String,
    key_id: String,
    username: String,
    password: String,
    /// The API without credentials (`https://api.example.net`).
    api_url: String,
    /// Its host (and port), which Posh-ACME's `ACMEServer` takes.
    api_host: String,
    api_is_http: bool,
    /// The acme-dns storage file: `{"<domain>": {…}}`.
    storage_json: String,
    /// One account as lego's HTTP storage takes it (`POST /storage/<domain>`),
    /// and where: the key's base URL (its secret left for the user to fill in).
    storage_account: String,
    storage_url: String,
    /// The password is kept sealed: lego's HTTP storage gives it back already.
    password_kept: bool,
}

#[derive(Deserialize)]
struct NewFields {
    #[serde(default)]
    key: String,
    #[serde(default)]
    domain: String,
}

/// The account's active keys, `selected` pre-chosen (else the newest).
async fn key_choices(state: &AppState, user: &CurrentUser, selected: &str) -> Result<Vec<LicenseKey>, StoreError> {
    let mut keys: Vec<LicenseKey> =
        state.core.list_license_keys(user.account.id).await?.into_iter().filter(LicenseKey::is_active).collect();
    keys.sort_by(|a, b| {
        (a.id.as_str() != selected).cmp(&(b.id.as_str() != selected)).then(b.created_at.cmp(&a.created_at))
    });
    Ok(keys)
}

async fn new_page(State(state): Shared, User(user, ctx): User) -> Page {
    form_page(&state, &user, &ctx, NewFields { key: String::new(), domain: String::new() }, None, None, StatusCode::OK)
        .await
}

async fn form_page(
    state: &AppState,
    user: &CurrentUser,
    ctx: &Ctx,
    fields: NewFields,
    error: Option<String>,
    conflict: Option<Conflict>,
    status: StatusCode,
) -> Page {
    let keys = key_choices(state, user, &fields.key).await?;
    let keys = keys
        .iter()
        .enumerate()
        .map(|(i, k)| KeyChoice { id: k.id.to_string(), name: k.name.clone(), selected: i == 0 })
        .collect();
    let page = NewPage { layout: Layout::of(ctx), keys, domain: fields.domain, error, conflict };
    Ok(render(status, &page))
}

/// Creates the registration, bound to the domain (see [`actions::add_domain`]),
/// then redirects to the page that shows its credentials once.
async fn add_domain(State(state): Shared, User(user, ctx): User, Form(f): Form<NewFields>) -> Page {
    let who = Actor { account: user.account.id, peer: ctx.peer, via: "portal" };
    let Ok(key) = f.key.parse::<KeyId>() else {
        let error = "Choose one of your active license keys.".to_owned();
        return form_page(&state, &user, &ctx, f, Some(error), None, StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    let (registration, password) = match actions::add_domain(&state, who, &key, &f.domain).await {
        Ok(made) => made,
        Err(ActionError::NotFound) => {
            let error = "Choose one of your active license keys.".to_owned();
            return form_page(&state, &user, &ctx, f, Some(error), None, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
        Err(ActionError::Invalid(error) | ActionError::Refused { message: error, .. }) => {
            return form_page(&state, &user, &ctx, f, Some(error), None, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
        Err(ActionError::DomainTaken(other)) => {
            let conflict = other.domain.as_ref().map(|d| conflict_with(&state, d, &other));
            return form_page(&state, &user, &ctx, f, None, conflict, StatusCode::CONFLICT).await;
        }
        Err(e) => return Err(PageError::from_action(&ctx, e)),
    };
    let carried = Credentials {
        subdomain: registration.subdomain.to_string(),
        username: registration.username.to_string(),
        password: password.expose().to_owned(),
    };
    reveal::redirect(&state, &user, REVEAL_COOKIE, carried, "/registrations/created")
}

/// One account of the acme-dns storage file, in acme-dns's field order.
#[derive(Serialize)]
struct AcmeDnsAccount<'a> {
    username: &'a str,
    password: &'a str,
    fulldomain: &'a str,
    subdomain: &'a str,
    allowfrom: Vec<String>,
}

/// One account as lego's HTTP storage keeps it.
#[derive(Serialize)]
struct LegoAccount<'a> {
    fulldomain: &'a str,
    subdomain: &'a str,
    username: &'a str,
    password: &'a str,
    server_url: &'a str,
}

/// A new registration's credentials on their way to `/registrations/created`.
#[derive(Serialize, Deserialize)]
struct Credentials {
    subdomain: String,
    username: String,
    password: String,
}

const REVEAL_COOKIE: &str = "certdns_reveal_registration";

/// Shows a new registration's credentials once; a reload says "already shown".
async fn created_page(State(state): Shared, User(user, ctx): User, headers: HeaderMap) -> Page {
    let carried: Option<Credentials> = reveal::take(&state, &user, &headers, REVEAL_COOKIE);
    let reg = match carried.as_ref().and_then(|c| c.subdomain.parse::<Subdomain>().ok()) {
        Some(sub) => state.core.registration_by_subdomain(user.account.id, sub).await?,
        None => None,
    };
    let response = match (carried, reg) {
        (Some(c), Some(reg)) if reg.username.to_string() == c.username => {
            let page = created(&state, &ctx, &reg, c).await?;
            render(StatusCode::OK, &page)
        }
        _ => {
            let page = crate::templates::Message {
                layout: Layout::of(&ctx),
                title: "Credentials already shown".into(),
                message: "A registration's password is shown once, right after it is added, and this one has been. \
                          If it was not copied, delete the registration and add the domain again."
                    .into(),
                link: Some(("/registrations".into(), "Back to my registrations".into())),
            };
            render(StatusCode::OK, &page)
        }
    };
    Ok(reveal::shown(&state, response, REVEAL_COOKIE))
}

async fn created(state: &AppState, ctx: &Ctx, reg: &Registration, c: Credentials) -> Result<CreatedPage, StoreError> {
    let key = match &reg.license_key_id {
        Some(id) => state.core.license_key(id).await?,
        None => None,
    };
    let row = reg_row(state, reg);
    let api_url = state.api_url.as_str().trim_end_matches('/').to_owned();
    let api_host = match (state.api_url.host_str(), state.api_url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => api_url.clone(),
    };
    let account = AcmeDnsAccount {
        username: &c.username,
        password: &c.password,
        fulldomain: &row.fulldomain,
        subdomain: &row.subdomain,
        allowfrom: Vec::new(),
    };
    let file = std::collections::BTreeMap::from([(row.domain.as_str(), account)]);
    let storage_json = serde_json::to_string_pretty(&file).unwrap_or_default();
    let storage_account = serde_json::to_string(&LegoAccount {
        fulldomain: &row.fulldomain,
        subdomain: &row.subdomain,
        username: &c.username,
        password: &c.password,
        server_url: &api_url,
    })
    .unwrap_or_default();
    let storage_url = match &key {
        Some(k) => {
            let mut url = state.api_url.clone();
            let _ = url.set_username(k.id.as_str());
            let _ = url.set_password(Some("KEY-SECRET"));
            let base = url.as_str().trim_end_matches('/').replace("KEY-SECRET", "<key secret>");
            format!("{base}/storage/{}", row.domain)
        }
        None => String::new(),
    };
    Ok(CreatedPage {
        layout: Layout::of(ctx),
        key_name: key.as_ref().map(|k| k.name.clone()).unwrap_or_default(),
        key_id: key.as_ref().map(|k| k.id.to_string()).unwrap_or_default(),
        reg: row,
        username: c.username,
        password: c.password,
        api_is_http: state.api_url.scheme() == "http",
        api_url,
        api_host,
        storage_json,
        storage_account,
        storage_url,
        password_kept: reg.password_sealed.is_some(),
    })
}
