//! The OpenAPI document served at `/openapi.json`, generated from the handlers'
//! annotations and these schema types (which only describe; the handlers build
//! the wire bodies themselves to keep acme-dns's exact bytes).

use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct RegisterRequest {
    /// CIDRs `/update` may come from (IPv4/IPv6, `[`/`]` ignored); any invalid entry rejects the request.
    #[schema(example = json!(["192.0.2.0/24", "2001:db8::/32"]))]
    pub allowfrom: Option<Vec<String>>,
    /// Extension: the domain this registration is for; stored as its label and echoed.
    #[schema(example = "*.example.com")]
    pub subject: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UpdateRequest {
    /// The registration's subdomain (`SubDomain` also accepted).
    pub subdomain: String,
    /// 43 characters of `[A-Za-z0-9_-]`: the DNS-01 digest (`Txt` also accepted).
    pub txt: String,
}

#[derive(Serialize, ToSchema)]
pub struct UpdateResponse {
    pub txt: String,
    /// Extension: seconds to wait before asking the CA to validate.
    #[serde(rename = "propagationDelaySeconds")]
    pub propagation_delay_seconds: u32,
}

#[derive(Serialize, ToSchema)]
pub struct DeregisterRequest {
    pub subdomain: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DeregisterResponse {
    pub subdomain: String,
    pub deleted: bool,
}

/// Every error: `{"error": "<code>"}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "forbidden")]
    pub error: String,
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

#[derive(OpenApi)]
#[openapi(
    info(title = "certdns acme-dns API", description = "acme-dns compatible DNS-01 API with license-key registration. See docs/api.md."),
    paths(crate::handlers::register, crate::handlers::update, crate::handlers::deregister, crate::handlers::health),
    components(schemas(
        RegisterRequest,
        crate::handlers::RegisterResponse,
        UpdateRequest,
        UpdateResponse,
        DeregisterRequest,
        DeregisterResponse,
        ErrorBody
    )),
    modifiers(&Security)
)]
pub struct ApiDoc;

/// The document as JSON, rendered once.
pub fn document() -> String {
    ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into())
}
