//! The plain-HTTP listener beside an HTTPS one: it sends browsers and
//! `curl http://…` to HTTPS and serves nothing itself.
//!
//! GET and HEAD get a 308 to the same host and path on the HTTPS port. Anything
//! else (a `POST /update` from a client configured with `http://`) is refused
//! with 403 `https_required`: following a redirect would hide that the
//! credentials have just crossed the network in clear, and the client's
//! configuration must be fixed instead.

use axum::Router;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// The redirecting router; `https_port` is where the HTTPS listener is.
pub fn to_https(https_port: u16) -> Router {
    Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| async move {
        redirect(https_port, &method, &uri, &headers)
    })
}

fn json(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn redirect(https_port: u16, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return json(StatusCode::FORBIDDEN, r#"{"error": "https_required"}"#);
    }
    let Some(host) = request_host(uri, headers) else {
        return json(StatusCode::BAD_REQUEST, r#"{"error": "bad_host"}"#);
    };
    let port = if https_port == 443 { String::new() } else { format!(":{https_port}") };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let location = format!("https://{host}{port}{path}");
    match header::HeaderValue::from_str(&location) {
        Ok(location) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, location)]).into_response(),
        Err(_) => json(StatusCode::BAD_REQUEST, r#"{"error": "bad_host"}"#),
    }
}

/// The host the client asked for, without its port: a DNS name, an IPv4
/// address or a bracketed IPv6 address. Anything else (a Host header carrying a
/// path, credentials or odd bytes) gets no redirect.
fn request_host(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let authority = match uri.authority() {
        Some(authority) => authority.clone(),
        None => headers.get(header::HOST)?.to_str().ok()?.parse::<axum::http::uri::Authority>().ok()?,
    };
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host();
    let valid = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host.len() <= 253
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    valid.then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn location(https_port: u16, method: Method, uri: &str, host: Option<&str>) -> (u16, Option<String>) {
        let mut headers = HeaderMap::new();
        if let Some(host) = host {
            headers.insert(header::HOST, host.parse().unwrap());
        }
        let response = redirect(https_port, &method, &uri.parse().unwrap(), &headers);
        let location = response.headers().get(header::LOCATION).map(|l| l.to_str().unwrap().to_owned());
        (response.status().as_u16(), location)
    }

    #[test]
    fn redirects_reads_and_refuses_writes() {
        let to = |l: &str| Some(l.to_owned());
        assert_eq!(location(443, Method::GET, "/", Some("Api.Example.net")), (308, to("https://api.example.net/")));
        assert_eq!(
            location(8443, Method::HEAD, "/health?x=1", Some("api.example.net:80")),
            (308, to("https://api.example.net:8443/health?x=1"))
        );
        assert_eq!(location(443, Method::GET, "/", Some("[::1]:80")), (308, to("https://[::1]/")));
        assert_eq!(location(443, Method::POST, "/update", Some("api.example.net")), (403, None));
        assert_eq!(location(443, Method::PUT, "/", Some("api.example.net")), (403, None));
        for bad in [None, Some("user@evil.example"), Some("evil.example/x"), Some("a b"), Some("[zz]")] {
            assert_eq!(location(443, Method::GET, "/", bad), (400, None), "{bad:?}");
        }
    }
}
