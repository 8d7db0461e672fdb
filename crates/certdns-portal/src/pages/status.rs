//! The public status page, `/status`, and its JSON form, `/status.json` (see
//! [`crate::status`] for where each fact comes from).

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use time::OffsetDateTime;

use super::{Shared, when_ago};
use crate::session::Context;
use crate::state::AppState;
use crate::status::Status;
use crate::templates::{Layout, render};

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/status", get(status_page)).route("/status.json", get(status_json))
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    layout: Layout,
    s: Arc<Status>,
    checked: String,
    newest: String,
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

async fn status_page(axum::extract::State(state): Shared, Context(ctx): Context) -> Response {
    let s = state.status.get(&state).await;
    let now = certdns_core::now();
    let checked = when_ago(at(s.checked_at), now);
    let newest = s.propagation.figures.as_ref().map(|f| when_ago(at(f.newest_at), now)).unwrap_or_default();
    render(StatusCode::OK, &StatusPage { layout: Layout::of(&ctx), s, checked, newest })
}

async fn status_json(axum::extract::State(state): Shared) -> Response {
    let s = state.status.get(&state).await;
    let body = serde_json::to_string_pretty(&*s).unwrap_or_else(|_| "{}".into());
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
