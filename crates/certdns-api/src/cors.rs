//! CORS as acme-dns configures rs/cors: origins from `api.cors_origins` (`*`, or
//! patterns with one `*`, matched case-insensitively), methods GET and POST, only
//! the default simple request headers, no credentials. `X-Api-User`/`X-Api-Key`
//! are deliberately not allowed, so browsers cannot call `/update` cross-origin.

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

fn matches(pattern: &str, origin: &str) -> bool {
    let (pattern, origin) = (pattern.to_ascii_lowercase(), origin.to_ascii_lowercase());
    match pattern.split_once('*') {
        None => pattern == origin,
        Some((head, tail)) => {
            origin.len() >= head.len() + tail.len() && origin.starts_with(head) && origin.ends_with(tail)
        }
    }
}

pub fn layer(origins: &[String]) -> CorsLayer {
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let origins = origins.to_vec();
        AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin.to_str().is_ok_and(|o| origins.iter().any(|p| matches(p, o)))
        })
    };
    CorsLayer::new().allow_origin(allow_origin).allow_methods([Method::GET, Method::POST]).allow_headers([
        header::ORIGIN,
        header::ACCEPT,
        header::CONTENT_TYPE,
        HeaderName::from_static("x-requested-with"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_patterns() {
        assert!(matches("https://*.example.com", "https://a.example.com"));
        assert!(matches("https://*.example.com", "HTTPS://A.EXAMPLE.COM"));
        assert!(!matches("https://*.example.com", "https://example.org"));
        assert!(matches("https://app.example", "https://app.example"));
        assert!(!matches("https://app.example", "https://app.example.evil"));
    }
}
