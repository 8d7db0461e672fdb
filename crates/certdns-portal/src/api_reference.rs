//! The API reference page's model, read from an OpenAPI 3.1 document (the one
//! `/openapi.json` serves: the acme-dns API's with the account API's merged in):
//! every operation with its parameters, request body, responses and the shape of
//! each body, and the named schemas. Built once at start; descriptions are
//! Markdown, rendered with raw HTML shown as text.

use serde_json::Value;

use crate::docs::inline_markdown;

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

pub struct ApiReference {
    pub title: String,
    pub version: String,
    /// HTML.
    pub description: String,
    /// The document's own servers (a path may name its own).
    pub servers: Vec<String>,
    /// Each security scheme's name and, in HTML, what it is.
    pub schemes: Vec<(String, String)>,
    pub operations: Vec<Operation>,
    pub schemas: Vec<NamedSchema>,
}

pub struct Operation {
    pub method: String,
    pub path: String,
    /// The anchor, from method and path ([`anchor`]).
    pub anchor: String,
    pub operation_id: String,
    pub summary: String,
    /// HTML.
    pub description: String,
    pub servers: Vec<String>,
    /// How to authenticate: alternatives, each the schemes needed together
    /// (empty: none).
    pub security: Vec<String>,
    pub parameters: Vec<Field>,
    pub request: Option<Body>,
    pub responses: Vec<Response>,
}

/// A parameter or a property of an object.
pub struct Field {
    pub name: String,
    /// `path`, `query`, `header`, `body`.
    pub location: String,
    pub required: bool,
    pub shape: Shape,
    /// HTML.
    pub description: String,
}

/// A type as the page shows it: words, and the schema it names (a link).
pub struct Shape {
    pub text: String,
    pub schema: Option<String>,
}

pub struct Body {
    pub content_type: String,
    /// HTML.
    pub description: String,
    pub shape: Shape,
    /// The fields of an inline object body.
    pub fields: Vec<Field>,
}

pub struct Response {
    pub status: String,
    /// HTML.
    pub description: String,
    pub body: Option<Body>,
}

pub struct NamedSchema {
    pub name: String,
    /// HTML.
    pub description: String,
    pub shape: Shape,
    pub fields: Vec<Field>,
}

/// An operation's anchor: `post-api-v1-registrations-subdomain` for
/// `POST /api/v1/registrations/{subdomain}`.
fn anchor(method: &str, path: &str) -> String {
    let words: Vec<&str> = path.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    format!("{}-{}", method.to_ascii_lowercase(), words.join("-").to_ascii_lowercase())
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn servers(v: &Value) -> Vec<String> {
    let list = v.get("servers").and_then(Value::as_array);
    list.into_iter().flatten().filter_map(|s| s.get("url").and_then(Value::as_str)).map(str::to_owned).collect()
}

/// The name a `$ref` points to (`#/components/schemas/ErrorBody` → `ErrorBody`).
fn ref_name(v: &Value) -> Option<String> {
    let target = v.get("$ref")?.as_str()?;
    Some(target.rsplit('/').next().unwrap_or(target).to_owned())
}

/// A schema in words: `string`, `integer (int64)`, `array of ErrorBody`,
/// `one of: A, B`, `string or null`.
pub fn shape(schema: &Value) -> Shape {
    if let Some(name) = ref_name(schema) {
        return Shape { text: name.clone(), schema: Some(name) };
    }
    for (key, words) in [("oneOf", "one of"), ("anyOf", "any of"), ("allOf", "all of")] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let parts: Vec<Shape> = options.iter().map(shape).collect();
            let named = parts.iter().find_map(|p| p.schema.clone());
            let texts: Vec<String> = parts.into_iter().map(|p| p.text).collect();
            // `X or null` reads better than "one of: X, null".
            if texts.len() == 2 && texts.contains(&"null".to_owned()) {
                let other = texts.iter().find(|t| *t != "null").cloned().unwrap_or_default();
                return Shape { text: format!("{other} or null"), schema: named };
            }
            return Shape { text: format!("{words}: {}", texts.join(", ")), schema: named };
        }
    }
    let types: Vec<String> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ if schema.get("properties").is_some() => vec!["object".to_owned()],
        _ => vec!["any".to_owned()],
    };
    let mut named = None;
    let words: Vec<String> = types
        .iter()
        .map(|t| match t.as_str() {
            "array" => {
                let items = schema.get("items").map(shape).unwrap_or(Shape { text: "any".into(), schema: None });
                named = items.schema.clone();
                format!("array of {}", items.text)
            }
            t => match schema.get("format").and_then(Value::as_str) {
                Some(format) => format!("{t} ({format})"),
                None => t.to_owned(),
            },
        })
        .collect();
    let mut text = words.join(" or ");
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        text = format!("{text}, one of {}", values.join(" | "));
    }
    Shape { text, schema: named }
}

/// The properties of an object schema (none for anything else).
fn fields(schema: &Value) -> Vec<Field> {
    let required: Vec<&str> =
        schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return Vec::new() };
    properties
        .iter()
        .map(|(name, property)| Field {
            name: name.clone(),
            location: "body".into(),
            required: required.contains(&name.as_str()),
            shape: shape(property),
            description: inline_markdown(&text(property, "description")),
        })
        .collect()
}

/// The first content of a request body or response.
fn body(v: &Value) -> Option<Body> {
    let (content_type, media) = v.get("content")?.as_object()?.iter().next()?;
    let schema = media.get("schema").cloned().unwrap_or(Value::Null);
    Some(Body {
        content_type: content_type.clone(),
        description: inline_markdown(&text(v, "description")),
        shape: shape(&schema),
        fields: fields(&schema),
    })
}

fn parameter(p: &Value) -> Field {
    Field {
        name: text(p, "name"),
        location: text(p, "in"),
        required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
        shape: p.get("schema").map(shape).unwrap_or(Shape { text: "string".into(), schema: None }),
        description: inline_markdown(&text(p, "description")),
    }
}

/// The alternatives of a security requirement, each the schemes it needs
/// together (`api_user + api_key`); an empty object is "no authentication".
fn security(v: Option<&Value>) -> Option<Vec<String>> {
    let list = v?.as_array()?;
    Some(
        list.iter()
            .filter_map(Value::as_object)
            .map(|o| if o.is_empty() { "none".to_owned() } else { o.keys().cloned().collect::<Vec<_>>().join(" + ") })
            .collect(),
    )
}

/// Each security scheme, in words: `api_user`: "header `X-Api-User`".
fn schemes(doc: &Value) -> Vec<(String, String)> {
    let Some(schemes) = doc.pointer("/components/securitySchemes").and_then(Value::as_object) else {
        return Vec::new();
    };
    schemes
        .iter()
        .map(|(name, s)| {
            let how = match (text(s, "type").as_str(), text(s, "scheme").as_str()) {
                ("apiKey", _) => format!("the `{}` {}", text(s, "name"), text(s, "in")),
                ("http", "basic") => "HTTP Basic authentication".to_owned(),
                ("http", "bearer") => match text(s, "bearerFormat") {
                    f if f.is_empty() => "a bearer token".to_owned(),
                    f => format!("a bearer token (`{f}`)"),
                },
                (kind, _) => kind.to_owned(),
            };
            let description = text(s, "description");
            let words = if description.is_empty() { how } else { format!("{how}: {description}") };
            (name.clone(), inline_markdown(&words))
        })
        .collect()
}

impl ApiReference {
    pub fn from_document(doc: &Value) -> Self {
        let info = doc.get("info").cloned().unwrap_or(Value::Null);
        let default_security = security(doc.get("security")).unwrap_or_default();
        let mut operations = Vec::new();
        for (path, item) in doc.get("paths").and_then(Value::as_object).into_iter().flatten() {
            let path_servers = servers(item);
            let shared: Vec<&Value> = item.get("parameters").and_then(Value::as_array).into_iter().flatten().collect();
            for method in METHODS {
                let Some(op) = item.get(*method) else { continue };
                let operation_id = text(op, "operationId");
                // Operation ids repeat across the merged APIs (`list`, `create`):
                // method and path are unique.
                let anchor = anchor(method, path);
                let own = op.get("parameters").and_then(Value::as_array).into_iter().flatten();
                let mut responses: Vec<Response> = op
                    .get("responses")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .map(|(status, r)| Response {
                        status: status.clone(),
                        description: inline_markdown(&text(r, "description")),
                        body: body(r),
                    })
                    .collect();
                responses.sort_by(|a, b| a.status.cmp(&b.status));
                operations.push(Operation {
                    method: method.to_uppercase(),
                    path: path.clone(),
                    anchor,
                    operation_id,
                    summary: text(op, "summary"),
                    description: inline_markdown(&text(op, "description")),
                    servers: if servers(op).is_empty() { path_servers.clone() } else { servers(op) },
                    security: security(op.get("security")).unwrap_or_else(|| default_security.clone()),
                    parameters: shared.iter().copied().chain(own).map(parameter).collect(),
                    request: op.get("requestBody").and_then(body),
                    responses,
                });
            }
        }
        let schemas = doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(name, schema)| NamedSchema {
                name: name.clone(),
                description: inline_markdown(&text(schema, "description")),
                shape: shape(schema),
                fields: fields(schema),
            })
            .collect();
        ApiReference {
            title: text(&info, "title"),
            version: text(&info, "version"),
            description: inline_markdown(&text(&info, "description")),
            servers: servers(doc),
            schemes: schemes(doc),
            operations,
            schemas,
        }
    }
}
