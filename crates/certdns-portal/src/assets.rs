//! The portal's stylesheet and script, compiled into the binary.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const CSS: &str = include_str!("../../../web/static/portal.css");
const JS: &str = include_str!("../../../web/static/portal.js");

pub async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], CSS)
        .into_response()
}

pub async fn js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], JS)
        .into_response()
}
