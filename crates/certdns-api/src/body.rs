//! Request bodies, decoded with acme-dns's (Go `encoding/json`) semantics: keys
//! match case-insensitively (`AllowFrom`, `SubDomain`, `Txt` from older clients),
//! unknown keys are ignored, and `/register` accepts an empty body or `null`.

use certdns_core::{AllowFrom, Username};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Longest `subject` kept (a DNS name is at most 253 characters; `*.` adds 2).
const MAX_SUBJECT: usize = 255;

#[derive(Debug, Default, PartialEq)]
pub struct RegisterBody {
    pub allow_from: AllowFrom,
    pub subject: Option<String>,
}

/// The last value among keys equal to `name` ignoring ASCII case.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// `/register`: the whole body must be one JSON value (Go `json.Unmarshal`): an
/// object, `null`, or nothing at all. Recognised keys with the wrong type make the
/// body malformed, as they do in acme-dns.
pub fn parse_register(bytes: &[u8]) -> Result<RegisterBody, ApiError> {
    if bytes.is_empty() {
        return Ok(RegisterBody::default());
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|_| ApiError::MalformedJson)?;
    let obj = match value {
        Value::Null => return Ok(RegisterBody::default()),
        Value::Object(obj) => obj,
        _ => return Err(ApiError::MalformedJson),
    };
    // Fields acme-dns decodes and then ignores; only their types matter.
    for name in ["password", "subdomain", "txt"] {
        if !matches!(field(&obj, name), None | Some(Value::Null | Value::String(_))) {
            return Err(ApiError::MalformedJson);
        }
    }
    match field(&obj, "username") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.parse::<Username>().is_ok() => {}
        Some(_) => return Err(ApiError::MalformedJson),
    }
    let allow_from = match field(&obj, "allowfrom") {
        None | Some(Value::Null) => AllowFrom::default(),
        Some(Value::Array(items)) => {
            let raw =
                items.iter().map(|v| v.as_str().ok_or(ApiError::MalformedJson)).collect::<Result<Vec<&str>, _>>()?;
            AllowFrom::parse(&raw).map_err(|_| ApiError::InvalidAllowFrom)?
        }
        Some(_) => return Err(ApiError::MalformedJson),
    };
    let subject = match field(&obj, "subject") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.len() > MAX_SUBJECT || certdns_core::text::has_control_or_format(s) || s.contains(['"', '\\']) {
                return Err(ApiError::BadSubject);
            }
            (!s.is_empty()).then(|| s.to_owned())
        }
        Some(_) => return Err(ApiError::MalformedJson),
    };
    Ok(RegisterBody { allow_from, subject })
}

#[derive(Debug, Default, PartialEq)]
pub struct UpdateBody {
    pub subdomain: String,
    pub txt: String,
}

/// `/update`: acme-dns reads only the first JSON value (a streaming decoder), so
/// trailing bytes are ignored, and a field of the wrong type is left empty while
/// the others are still read. Anything unreadable gives empty fields, which then
/// fail the ownership or TXT checks exactly as in acme-dns.
pub fn parse_update(bytes: &[u8]) -> UpdateBody {
    let first = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>().next();
    let Some(Ok(Value::Object(obj))) = first else {
        return UpdateBody::default();
    };
    let text = |name| match field(&obj, name) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    UpdateBody { subdomain: text("subdomain"), txt: text("txt") }
}

/// Deregistration body: an optional `subdomain`.
pub fn parse_subdomain(bytes: &[u8]) -> Result<Option<String>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|_| ApiError::MalformedJson)?;
    match value {
        Value::Null => Ok(None),
        Value::Object(obj) => match field(&obj, "subdomain") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::MalformedJson),
        },
        _ => Err(ApiError::MalformedJson),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_bodies_acme_dns_accepts() {
        for ok in ["", "null", "{}", " {} \n", r#"{"allowfrom":null}"#, r#"{"subject":"*.example.com","x":1}"#] {
            assert!(parse_register(ok.as_bytes()).is_ok(), "{ok:?}");
        }
        let b = parse_register(br#"{"AllowFrom":["10.0.0.0/8","[::1]/64"]}"#).unwrap();
        assert_eq!(b.allow_from.as_strings().collect::<Vec<_>>(), ["10.0.0.0/8", "::1/64"]);
        let b = parse_register(br#"{"subject":"*.example.com"}"#).unwrap();
        assert_eq!(b.subject.as_deref(), Some("*.example.com"));
    }

    #[test]
    fn register_bodies_acme_dns_rejects() {
        for bad in [
            r#"{"allowfrom': '1.1.1.1/32'}"#,
            r#""allowfrom": "1.1.1.1/32""#,
            r#"{"allowfrom": "[1.1.1.1/32]""#,
            r#""allowfrom": "1.1.1.1/32"}"#,
            r#"{allowfrom: "1.2.3.4"}"#,
            r#"{allowfrom: [1.2.3.4]}"#,
            "whatever that's not a json payload",
            "   ",
            "{} {}",
            "[]",
            r#"{"allowfrom":"10.0.0.0/8"}"#,
            r#"{"allowfrom":[1]}"#,
            r#"{"username":"x"}"#,
            r#"{"txt":5}"#,
            r#"{"subject":5}"#,
        ] {
            assert_eq!(parse_register(bad.as_bytes()), Err(ApiError::MalformedJson), "{bad:?}");
        }
        assert_eq!(parse_register(br#"{"allowfrom":["1.2.3.4"]}"#), Err(ApiError::InvalidAllowFrom));
        // A right-to-left override (shown as "www.example.com"), a zero-width space.
        assert_eq!(parse_register(br#"{"subject":"moc.elpmaxe\u202e.www"}"#), Err(ApiError::BadSubject));
        assert_eq!(parse_register(br#"{"subject":"www.exa\u200bmple.com"}"#), Err(ApiError::BadSubject));
    }

    #[test]
    fn update_bodies_follow_the_streaming_decoder() {
        let t = "a".repeat(43);
        let want = UpdateBody { subdomain: "s".into(), txt: t.clone() };
        assert_eq!(parse_update(format!(r#"{{"SubDomain":"s","Txt":"{t}"}}"#).as_bytes()), want);
        assert_eq!(parse_update(format!("{{\"subdomain\":\"s\", \"txt\": \"{t}\"}}\n").as_bytes()), want);
        assert_eq!(parse_update(format!(r#"{{"subdomain":"s","txt":"{t}"}} trailing"#).as_bytes()), want);
        assert_eq!(parse_update(br#"{"subdomain":"s","txt":1234567890}"#).txt, "");
        assert_eq!(parse_update(br#"{"subdomain":"s","txt":1234567890}"#).subdomain, "s");
        assert_eq!(parse_update(b"garbage"), UpdateBody::default());
        assert_eq!(parse_update(b""), UpdateBody::default());
    }
}
