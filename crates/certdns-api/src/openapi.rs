//! The OpenAPI document served at `/openapi.json`, generated from the handlers'
//! annotations and these schema types (which only describe; the handlers build
//! the wire bodies themselves to keep acme-dns's exact bytes).

use serde::Serialize;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

// The request schemas say what the server accepts as exactly as JSON Schema can,
// so a client (or a fuzzer: tests/fuzz/api.sh) generating schema-valid data gets
// it accepted, and schema-invalid data is refused.

#[derive(Serialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(schema_with = allow_from_schema)]
    pub allowfrom: Option<Vec<String>>,
    #[schema(schema_with = subject_schema)]
    pub subject: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UpdateRequest {
    /// The registration's subdomain, as `/register` gave it (`SubDomain` also accepted).
    #[schema(pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    pub subdomain: String,
    /// 43 characters of `[A-Za-z0-9_-]`: the DNS-01 digest (`Txt` also accepted).
    #[schema(pattern = "^[A-Za-z0-9_-]{43}$")]
    pub txt: String,
}

#[derive(Serialize, ToSchema)]
pub struct UpdateResponse {
    pub txt: String,
    /// Extension: seconds to wait before asking the CA to validate.
    #[serde(rename = "propagationDelaySeconds")]
    pub propagation_delay_seconds: u32,
}

/// With a license key the body must name the registration; with the
/// registration's own credentials it may be left out.
#[derive(Serialize, ToSchema)]
pub struct DeregisterRequest {
    /// The registration's subdomain (any UUID spelling).
    #[schema(format = "uuid")]
    pub subdomain: String,
}

#[derive(Serialize, ToSchema)]
pub struct DeregisterResponse {
    pub subdomain: String,
    pub deleted: bool,
}

/// Every error: `{"error": "<code>"}`; the extensions (`/storage`,
/// `/acmeproxy`) add a `message` saying what to do.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "forbidden")]
    pub error: String,
    pub message: Option<String>,
}

/// The acmeproxy body, as exactly as JSON Schema can say it: either `fqdn` +
/// `value` or RAW mode's `domain` + `keyAuth` (+ `token`), nothing else. The
/// name patterns describe a subset of the names the server accepts (LDH labels
/// without `--`, so no invalid punycode; at most 63 characters a label), so
/// every schema-valid body is one the server takes (then 404 until the domain is
/// bound; the server also takes U-labels and longer names).
pub struct ProxyRequest;

const LDH_DOMAIN: &str = r"([A-Za-z0-9]{1,20}(-[A-Za-z0-9]{1,20}){0,2}\.){1,3}[A-Za-z]{2,20}";

impl utoipa::PartialSchema for ProxyRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, AnyOfBuilder};
        let text = |pattern: String, description: &str, example: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(pattern))
                .description(Some(description))
                .examples([example])
        };
        let fqdn_form = ObjectBuilder::new()
            .property(
                "fqdn",
                text(
                    format!(r"^_acme-challenge\.{LDH_DOMAIN}\.?$"),
                    "`_acme-challenge.<domain>.` (also accepted: the delegation target `<subdomain>.<zone>.`)",
                    "_acme-challenge.www.example.com.",
                ),
            )
            .required("fqdn")
            .property(
                "value",
                text("^[A-Za-z0-9_-]{43}$".into(), "The TXT value", "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM"),
            )
            .required("value")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        let raw_form = ObjectBuilder::new()
            .property(
                "domain",
                text(format!(r"^(\*\.)?{LDH_DOMAIN}\.?$"), "RAW mode: the domain being certified", "www.example.com"),
            )
            .required("domain")
            .property(
                "keyAuth",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("RAW mode: the key authorization; the value is its SHA-256, base64url")),
            )
            .required("keyAuth")
            .property("token", ObjectBuilder::new().schema_type(Type::String).description(Some("RAW mode: unused")))
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        AnyOfBuilder::new().item(fqdn_form).item(raw_form).into()
    }
}

impl ToSchema for ProxyRequest {}

/// `allowfrom`: IPv4 or IPv6 networks in CIDR notation; `[` and `]` are ignored
/// (acme-dns's `[::1]/128`). Only spellings `AllowFrom::parse` accepts match; a
/// few it also accepts do not (IPv6 with an embedded IPv4 part).
fn allow_from_schema() -> ArrayBuilder {
    const OCTET: &str = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    const GROUP: &str = "[0-9A-Fa-f]{1,4}";
    let v4 = format!(r"{OCTET}(\.{OCTET}){{3}}");
    let g = GROUP;
    let v6 = [
        format!("({g}:){{7}}{g}"),
        format!("({g}:){{1,7}}:"),
        format!("({g}:){{1,6}}:{g}"),
        format!("({g}:){{1,5}}(:{g}){{1,2}}"),
        format!("({g}:){{1,4}}(:{g}){{1,3}}"),
        format!("({g}:){{1,3}}(:{g}){{1,4}}"),
        format!("({g}:){{1,2}}(:{g}){{1,5}}"),
        format!("{g}:(:{g}){{1,6}}"),
        format!(":((:{g}){{1,7}}|:)"),
    ]
    .join("|");
    let pattern = format!(r"^\[?{v4}\]?/(3[0-2]|[12]?[0-9])$|^\[?({v6})\]?/(12[0-8]|1[01][0-9]|[1-9]?[0-9])$");
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)))
        .description(Some(
            "CIDRs `/update` may come from (IPv4/IPv6, `[`/`]` ignored); any invalid entry rejects the request.",
        ))
        .examples([serde_json::json!(["192.0.2.0/24", "2001:db8::/32"])])
}

/// `subject`: trimmed, at most 255 bytes, no control or format character, no `"`
/// or `\` (the rules of `parse_register` in body.rs). The pattern is built from
/// the same predicate the server uses, so the two cannot drift apart; whitespace
/// (control characters such as tab included) may surround the text, as it is
/// trimmed first. JSON Schema counts characters, not bytes: `maxLength` is exact
/// for ASCII only.
fn subject_schema() -> ObjectBuilder {
    let never = |c: char| certdns_core::text::is_control_or_format(c) || c == '"' || c == '\\';
    let space = char::is_whitespace;
    // Any whitespace, then one allowed non-space character, or two with allowed
    // characters between them, then any whitespace.
    let around = certdns_core::text::regex_class(space, false);
    let edge = certdns_core::text::regex_class(|c| never(c) || space(c), true);
    let inner = certdns_core::text::regex_class(never, true);
    let pattern = format!("^{around}*({edge}({inner}*{edge})?)?{around}*$");
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(255))
        .pattern(Some(pattern))
        .description(Some(
            "Extension: the domain this registration is for; stored as its label and echoed. \
             Trimmed; at most 255 bytes of UTF-8; no control or format characters, `\"` or `\\`.",
        ))
        .examples(["*.example.com"])
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "license_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("KEYID:SECRET of a license key (standard or URL-safe base64)"))
                    .build(),
            ),
        );
        components
            .add_security_scheme("api_user", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-User"))));
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))));
    }
}

/// utoipa 5.5 writes a link's `operationRef`, `operationId` and `requestBody` in
/// snake case, which OpenAPI tools do not read: write the links out with the
/// right names instead (as a field of the response object, through the
/// flattened extensions map).
struct LinkNames;

impl Modify for LinkNames {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        for item in openapi.paths.paths.values_mut() {
            let operations =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.options];
            for operation in operations.into_iter().flatten() {
                for response in operation.responses.responses.values_mut() {
                    let RefOr::T(response) = response else { continue };
                    if response.links.is_empty() {
                        continue;
                    }
                    let links: serde_json::Map<String, serde_json::Value> = std::mem::take(&mut response.links)
                        .into_iter()
                        .map(|(name, link)| {
                            let mut link = serde_json::to_value(link).unwrap_or_default();
                            if let serde_json::Value::Object(fields) = &mut link {
                                for (from, to) in [
                                    ("operation_ref", "operationRef"),
                                    ("operation_id", "operationId"),
                                    ("request_body", "requestBody"),
                                ] {
                                    if let Some(value) = fields.remove(from) {
                                        fields.insert(to.into(), value);
                                    }
                                }
                            }
                            (name, link)
                        })
                        .collect();
                    response.extensions.get_or_insert_with(Default::default).insert("links".into(), links.into());
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "certdns acme-dns API", description = "acme-dns compatible DNS-01 API with license-key registration. See docs/api.md."),
    paths(
        crate::handlers::register,
        crate::handlers::update,
        crate::handlers::deregister,
        crate::handlers::health,
        crate::handlers::fetch_all,
        crate::handlers::fetch,
        crate::handlers::put,
        crate::handlers::present,
        crate::handlers::cleanup,
    ),
    components(schemas(
        RegisterRequest,
        crate::handlers::RegisterResponse,
        UpdateRequest,
        UpdateResponse,
        DeregisterRequest,
        DeregisterResponse,
        crate::handlers::StorageAccount,
        ProxyRequest,
        ErrorBody
    )),
    modifiers(&Security, &LinkNames)
)]
pub struct ApiDoc;

/// The document as JSON.
pub fn document() -> String {
    document_with(None)
}

/// The document with `other`'s paths, components and tags merged in (the
/// portal's account API: its paths name their own server).
pub fn document_with(other: Option<utoipa::openapi::OpenApi>) -> String {
    merged(other).to_json().unwrap_or_else(|_| "{}".into())
}

/// The document with `other` merged in, as a value (the portal's API reference
/// page renders the same document `/openapi.json` serves).
pub fn merged(other: Option<utoipa::openapi::OpenApi>) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    if let Some(other) = other {
        doc.merge(other);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_written_with_openapi_names() {
        let doc: serde_json::Value = serde_json::from_str(&document()).unwrap();
        let links = &doc["paths"]["/register"]["post"]["responses"]["201"]["links"];
        for (name, body_key) in [("update", "txt"), ("deregister", "subdomain")] {
            assert_eq!(links[name]["operationId"], name);
            assert_eq!(links[name]["parameters"]["header.X-Api-User"], "$response.body#/username");
            assert!(links[name]["requestBody"][body_key].is_string(), "{name}");
            assert!(links[name].get("operation_id").is_none() && links[name].get("request_body").is_none());
        }
    }
}
