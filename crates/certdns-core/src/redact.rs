//! Showing a URL that may carry a secret (a database or SMTP password) without
//! the secret: for logs, errors, the banner and `certdns config`.

/// Query parameters whose values are secrets (matched case-insensitively, as a
/// part of the name: `password`, `sslpassword`, `auth_token`, `secret`, …).
const SECRET_PARAMS: &[&str] = &["pass", "secret", "token", "auth", "key"];

/// `url` with the password of its user information and the values of
/// secret-looking query parameters replaced by `***`. Not a URL: unchanged.
pub fn url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let (before_query, query) = match url[scheme_end..].find('?') {
        Some(i) => (&url[..scheme_end + i], Some(&url[scheme_end + i + 1..])),
        None => (url, None),
    };
    // The authority ends at the first '/' after the scheme; its userinfo at the last '@' in it.
    let authority_end = before_query[scheme_end..].find('/').map_or(before_query.len(), |i| scheme_end + i);
    let mut out = String::with_capacity(url.len());
    match before_query[scheme_end..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &before_query[scheme_end..scheme_end + at];
            out.push_str(&before_query[..scheme_end]);
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&before_query[scheme_end + at..]);
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_secret_param(name) => format!("{name}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|p| name.contains(p))
}

#[cfg(test)]
mod tests {
    use super::url;

    #[test]
    fn secrets_are_hidden() {
        assert_eq!(url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(url("redis://:secret@h:6379/0"), "redis://:***@h:6379/0");
        assert_eq!(
            url("postgres://h/db?user=u&password=secret&sslmode=require"),
            "postgres://h/db?user=u&password=***&sslmode=require"
        );
        assert_eq!(url("postgres://u:a%40b@h/db?PassWord=x"), "postgres://u:***@h/db?PassWord=***");
        assert_eq!(url("smtps://mailer:hunter2@smtp.example.net:465"), "smtps://mailer:***@smtp.example.net:465");
        assert_eq!(url("sqlite:certdns.sqlite3"), "sqlite:certdns.sqlite3");
        assert_eq!(url("sqlite:///data/certdns.sqlite3?mode=rwc"), "sqlite:///data/certdns.sqlite3?mode=rwc");
        assert_eq!(url("http://h/path@x"), "http://h/path@x", "an @ in the path is not userinfo");
    }
}
