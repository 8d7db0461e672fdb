//! The OpenAPI schemas of `/api/v1/persist-records`' bodies, written out by
//! hand: the account is named one of two ways (`oneOf`), which the flat
//! `PersistFields` the server reads cannot say. As with the other bodies, the
//! patterns describe a subset of what the server takes (LDH names, `https`
//! URLs, `sha-256` digests, expiries from 2100 on), so every schema-valid body
//! is one it accepts; the server also takes IDNs, other hashes the CA
//! documents and any future expiry.

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{RefOr, schema::AdditionalProperties};

const NAME: &str = r"^([a-z0-9]{1,20}(-[a-z0-9]{1,20}){0,2}\.){1,3}[a-z]{2,20}$";
const HOST: &str = r"https://[a-z0-9]{1,20}(\.[a-z0-9]{1,20}){1,3}";
/// 43 characters of base64url whose last carries no stray bits (32 bytes).
const DIGEST: &str = r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]";
/// 2100-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
const UNTIL_MIN: f64 = 4_102_444_800.0;
const UNTIL_MAX: f64 = 253_402_300_799.0;

fn text(pattern: String, description: &str, example: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .examples([example])
}

/// One way of naming the account, with the common fields; `domain` when making one.
fn variant(with_domain: bool, computed: bool) -> Schema {
    let mut o = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .property(
            "issuer",
            text(
                NAME.to_owned(),
                "The CA's issuer domain name (its directory's issuerDomainNames).",
                "letsencrypt.org",
            ),
        )
        .required("issuer")
        .property(
            "wildcard",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .description(Some("policy=wildcard: also subdomains and wildcard certificates.")),
        )
        .property(
            "persist_until",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
                .minimum(Some(UNTIL_MIN))
                .maximum(Some(UNTIL_MAX))
                .description(Some("persistUntil, Unix seconds; absent or null: no expiry. Any future time is taken.")),
        );
    if with_domain {
        let d = text(
            NAME.to_owned(),
            "The validated domain (for *.example.com: example.com with wildcard).",
            "example.com",
        );
        o = o.property("domain", d).required("domain");
    }
    if computed {
        o = o
            .property(
                "account_url",
                text(
                    format!(r"^{HOST}(/[A-Za-z0-9_-]{{1,20}}){{1,4}}$"),
                    "The ACME account URL.",
                    "https://ca.example/acct/123",
                ),
            )
            .required("account_url")
            .property(
                "jwk_thumbprint",
                text(
                    format!("^{DIGEST}$"),
                    "The account key's SHA-256 JWK thumbprint (base64url).",
                    "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
                ),
            )
            .required("jwk_thumbprint")
            .property(
                "account_hash_prefix",
                text(
                    format!(r"^{HOST}/([A-Za-z0-9_-]{{1,20}}/){{0,3}}$"),
                    "The CA's accountHashPrefix.",
                    "https://ca.example/account-hash/",
                ),
            )
            .required("account_hash_prefix")
            .property(
                "any_domain",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .description(Some("Compute over `*`: reusable across domains, which links them.")),
            );
    } else {
        let uri = format!(r"^{HOST}/([A-Za-z0-9_-]{{1,20}}/){{0,3}}sha-256/{DIGEST}$");
        let example = "https://ca.example/account-hash/sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw";
        o = o
            .property("accounturi", text(uri, "The hashed account URI (draft-ietf-acme-dns-persist-02 §4.1).", example))
            .required("accounturi");
    }
    o.into()
}

fn one_of(with_domain: bool, description: &str) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(variant(with_domain, false))
        .item(variant(with_domain, true))
        .description(Some(description))
        .into()
}

/// `POST /api/v1/persist-records`.
pub(crate) struct NewPersistRecord;

impl utoipa::PartialSchema for NewPersistRecord {
    fn schema() -> RefOr<Schema> {
        one_of(true, "A record for a domain: the account as `accounturi`, or the three values it is computed from.")
    }
}

impl utoipa::ToSchema for NewPersistRecord {}

/// `PUT /api/v1/persist-records/{subdomain}` (the domain stays).
pub(crate) struct PersistChange;

impl utoipa::PartialSchema for PersistChange {
    fn schema() -> RefOr<Schema> {
        one_of(
            false,
            "Every field of the record anew: the account as `accounturi`, or the three values it is computed from.",
        )
    }
}

impl utoipa::ToSchema for PersistChange {}
