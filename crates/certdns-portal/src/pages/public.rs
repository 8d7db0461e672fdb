//! The pages for everyone, signed in or not: the landing page at `/` (signed-in
//! users go on to their keys, as before), the docs rendered from `docs/`, and
//! the API reference rendered from the OpenAPI document.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::{Page, Shared};
use crate::api_reference::ApiReference;
use crate::docs::{DOCS, SECTIONS};
use crate::error::PageError;
use crate::session::{Context, Ctx};
use crate::state::AppState;
use crate::templates::{Layout, render};

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(home))
        .route("/docs", get(docs_index))
        .route("/docs/{*slug}", get(doc))
        .route("/api-reference", get(api_reference))
}

#[derive(Template)]
#[template(path = "landing.html")]
struct Landing {
    layout: Layout,
    zone: String,
    signup_open: bool,
    /// (URL, name) of each client's page.
    clients: Vec<(String, String)>,
}

async fn home(axum::extract::State(state): Shared, Context(ctx): Context) -> Response {
    if ctx.user.is_some() {
        return Redirect::to("/keys").into_response();
    }
    let clients = DOCS
        .pages
        .iter()
        .filter(|d| d.section == "Clients" && d.slug != "clients")
        .map(|d| (d.url(), d.title.clone()))
        .collect();
    let page = Landing {
        layout: Layout::of(&ctx),
        zone: state.zone_domain.clone(),
        signup_open: state.config.signup == crate::config::Signup::Open,
        clients,
    };
    render(StatusCode::OK, &page)
}

/// A link in the docs' navigation.
struct NavLink {
    url: String,
    title: String,
    current: bool,
}

/// The navigation: each group with its links, `current` marked.
fn nav(current: Option<&str>) -> Vec<(&'static str, Vec<NavLink>)> {
    SECTIONS
        .iter()
        .map(|section| {
            let links = DOCS
                .pages
                .iter()
                .filter(|d| d.section == *section)
                .map(|d| NavLink { url: d.url(), title: d.title.clone(), current: Some(d.slug.as_str()) == current })
                .collect();
            (*section, links)
        })
        .filter(|(_, links): &(&str, Vec<NavLink>)| !links.is_empty())
        .collect()
}

#[derive(Template)]
#[template(path = "docs_index.html")]
struct DocsIndex {
    layout: Layout,
    nav: Vec<(&'static str, Vec<NavLink>)>,
}

async fn docs_index(Context(ctx): Context) -> Response {
    render(StatusCode::OK, &DocsIndex { layout: Layout::of(&ctx), nav: nav(None) })
}

#[derive(Template)]
#[template(path = "doc.html")]
struct DocPage {
    layout: Layout,
    nav: Vec<(&'static str, Vec<NavLink>)>,
    title: String,
    /// Rendered from our own Markdown, raw HTML escaped (`docs::render`).
    html: String,
}

async fn doc(Context(ctx): Context, Path(slug): Path<String>) -> Page {
    let slug = slug.trim_end_matches('/');
    let Some(doc) = DOCS.get(slug) else { return Err(no_such_doc(&ctx)) };
    let page =
        DocPage { layout: Layout::of(&ctx), nav: nav(Some(slug)), title: doc.title.clone(), html: doc.html.clone() };
    Ok(render(StatusCode::OK, &page))
}

fn no_such_doc(ctx: &Ctx) -> PageError {
    let text = "There is no such page in the documentation. The index lists every page.";
    PageError::page(crate::error::message(
        ctx,
        StatusCode::NOT_FOUND,
        "Page not found",
        text,
        Some(("/docs", "Documentation")),
    ))
}

#[derive(Template)]
#[template(path = "api_reference.html")]
struct ApiReferencePage<'a> {
    layout: Layout,
    nav: Vec<(&'static str, Vec<NavLink>)>,
    api: &'a ApiReference,
}

async fn api_reference(axum::extract::State(state): Shared, Context(ctx): Context) -> Response {
    let page = ApiReferencePage { layout: Layout::of(&ctx), nav: nav(None), api: &state.api_reference };
    render(StatusCode::OK, &page)
}
