//! Path handling in acme-dns's spirit: exact routes first; otherwise the path is
//! cleaned (doubled slashes, `.`/`..`, trailing slash, letter case, the optional
//! configured prefix) and, if that names a route, served directly. Serving instead
//! of redirecting works for every client, including those that do not follow a
//! 307 with the body (`//register` from a base URL ending in `/`).

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

/// The canonical form of `path`: no empty or `.` segments, `..` applied, lower case.
pub fn clean(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    format!("/{}", segments.join("/")).to_ascii_lowercase()
}

/// Where a request that matched no route should go, if anywhere.
pub fn canonical(path: &str, prefix: &str, routes: &[&str]) -> Option<String> {
    let mut cleaned = clean(path);
    let prefix = prefix.to_ascii_lowercase();
    if !prefix.is_empty()
        && let Some(rest) = cleaned.strip_prefix(&prefix)
        && rest.starts_with('/')
    {
        cleaned = rest.to_owned();
    }
    (routes.iter().any(|r| route_matches(r, &cleaned)) && cleaned != path).then_some(cleaned)
}

/// A route is a path, or a path ending in `/*`: any one more segment.
fn route_matches(route: &str, path: &str) -> bool {
    match route.strip_suffix('*') {
        Some(stem) => path.strip_prefix(stem).is_some_and(|rest| !rest.is_empty() && !rest.contains('/')),
        None => route == path,
    }
}

pub fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found\n")
}

pub fn method_not_allowed(allow: &'static str) -> Response {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], body).into_response()
}

/// The fallback: re-dispatch a cleaned path to `inner`, or 404 like acme-dns.
pub async fn dispatch(inner: Router, prefix: String, routes: Vec<&'static str>, mut req: Request) -> Response {
    let Some(path) = canonical(req.uri().path(), &prefix, &routes) else {
        metrics::counter!("certdns_api_requests_total", "route" => "unmatched", "status" => "404").increment(1);
        return not_found();
    };
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    match Uri::from_parts(parts) {
        Ok(uri) => *req.uri_mut() = uri,
        Err(_) => return not_found(),
    }
    match inner.oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &[&str] = &["/register", "/update", "/health"];

    #[test]
    fn cleans_like_httprouter() {
        assert_eq!(canonical("//register", "", ROUTES).as_deref(), Some("/register"));
        assert_eq!(canonical("/register/", "", ROUTES).as_deref(), Some("/register"));
        assert_eq!(canonical("/./register", "", ROUTES).as_deref(), Some("/register"));
        assert_eq!(canonical("/x/../register", "", ROUTES).as_deref(), Some("/register"));
        assert_eq!(canonical("/REGISTER", "", ROUTES).as_deref(), Some("/register"));
        assert_eq!(canonical("/register", "", ROUTES), None, "already canonical: not a fallback case");
        assert_eq!(canonical("/p//update", "", ROUTES), None, "a prefix is 404 unless configured");
        assert_eq!(canonical("/p//update", "/p", ROUTES).as_deref(), Some("/update"));
        assert_eq!(canonical("/p/update/", "/p", ROUTES).as_deref(), Some("/update"));
        assert_eq!(canonical("/pp/update", "/p", ROUTES), None);
        assert_eq!(canonical("/nope", "", ROUTES), None);
    }

    #[test]
    fn a_star_route_takes_one_segment() {
        let routes = &["/storage", "/storage/*"];
        assert_eq!(canonical("/p/storage/www.example.com", "/p", routes).as_deref(), Some("/storage/www.example.com"));
        assert_eq!(canonical("/p/storage", "/p", routes).as_deref(), Some("/storage"));
        assert_eq!(canonical("/p/storage/a/b", "/p", routes), None);
    }
}
