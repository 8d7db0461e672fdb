//! The account API's bodies: what it answers (and, through `ToSchema`, what
//! its OpenAPI document says it answers). Times are RFC 3339 in UTC.

use certdns_core::{AuditEvent, Domain, LicenseKey, Registration, RegistrationKind};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::state::AppState;

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The record the customer creates in their zone.
#[derive(Serialize, ToSchema)]
pub(crate) struct CnameRecord {
    /// `_acme-challenge.<domain>`, dns-account-01's
    /// `_<label>._acme-challenge.<domain>` or `_validation-persist.<domain>`
    #[schema(example = "_acme-challenge.www.example.com")]
    pub name: String,
    #[schema(example = "CNAME")]
    pub r#type: String,
    /// `<subdomain>.<zone>`
    pub target: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct RegistrationView {
    #[schema(format = "uuid")]
    pub subdomain: String,
    /// `<subdomain>.<zone>`: where the CNAME points.
    pub fulldomain: String,
    /// The domain as DNS carries it (A-labels); `null` until one is set.
    #[schema(example = "www.example.com")]
    pub domain: Option<String>,
    /// The same as people read it (U-labels).
    pub domain_unicode: Option<String>,
    /// What the client sent as `subject` on `/register`, if anything.
    pub subject: Option<String>,
    /// The license key it was made with.
    pub key_id: Option<String>,
    /// Networks `/update` is accepted from (empty: any).
    pub allowfrom: Vec<String>,
    /// `no_domain` (set one to get its CNAME), `awaiting_first_update`,
    /// `in_use`; `persist` for a dns-persist-01 record (see
    /// `/api/v1/persist-records`).
    #[schema(example = "in_use")]
    pub status: String,
    /// `dns-01`, `dns-account-01` (an ACME account's own label) or
    /// `dns-persist-01` (a record managed under `/api/v1/persist-records`).
    #[schema(example = "dns-01")]
    pub kind: String,
    pub created_at: String,
    pub last_update_at: Option<String>,
    /// The password is kept sealed (made under a key with storage access), so
    /// `GET …/credentials` can give it back.
    pub credentials_kept: bool,
    /// The CNAME to create; `null` without a domain.
    pub cname: Option<CnameRecord>,
    /// What the background monitor last found; `null` without a domain.
    pub delegation: Option<DelegationView>,
}

/// The background monitor's last check of the CNAME.
#[derive(Serialize, ToSchema)]
pub(crate) struct DelegationView {
    /// `pending` (not checked yet), `correct`, `missing`, `elsewhere`, `shadowed` or `unknown`.
    #[schema(example = "correct")]
    pub status: String,
    pub detail: String,
    pub checked_at: Option<String>,
    /// When `status` last changed.
    pub changed_at: Option<String>,
}

impl DelegationView {
    /// The monitor's last finding about `domain` (`pending` before any).
    pub fn of(status: Option<&certdns_store::DelegationStatus>, domain: &Domain) -> Self {
        match status.filter(|s| s.domain == domain.as_str()) {
            Some(s) => DelegationView {
                status: s.status.clone(),
                detail: s.detail.clone(),
                checked_at: unix(s.checked_at),
                changed_at: unix(s.changed_at),
            },
            None => {
                DelegationView { status: "pending".into(), detail: String::new(), checked_at: None, changed_at: None }
            }
        }
    }
}

fn unix(secs: i64) -> Option<String> {
    (secs > 0).then(|| OffsetDateTime::from_unix_timestamp(secs).ok().map(rfc3339)).flatten()
}

impl RegistrationView {
    pub fn of(state: &AppState, r: &Registration, status: Option<&certdns_store::DelegationStatus>) -> Self {
        let delegation = r.domain.as_ref().map(|d| DelegationView::of(status, d));
        let fulldomain = state.fulldomain(r.subdomain);
        let status = match (&r.domain, r.last_update_at) {
            _ if r.kind == RegistrationKind::Persist => "persist",
            (None, _) => "no_domain",
            (Some(_), None) => "awaiting_first_update",
            (Some(_), Some(_)) => "in_use",
        };
        Self {
            subdomain: r.subdomain.to_string(),
            domain: r.domain.as_ref().map(|d| d.as_str().to_owned()),
            domain_unicode: r.domain.as_ref().map(Domain::unicode),
            subject: r.subject.clone(),
            key_id: r.license_key_id.as_ref().map(ToString::to_string),
            allowfrom: r.allow_from.as_strings().map(|n| n.to_string()).collect(),
            status: status.into(),
            created_at: rfc3339(r.created_at),
            last_update_at: r.last_update_at.map(rfc3339),
            credentials_kept: r.password_sealed.is_some(),
            kind: match (r.kind, &r.acme_account_url) {
                (RegistrationKind::Persist, _) => "dns-persist-01",
                (RegistrationKind::Challenge, Some(_)) => "dns-account-01",
                (RegistrationKind::Challenge, None) => "dns-01",
            }
            .into(),
            cname: r.challenge_name().map(|name| CnameRecord {
                name,
                r#type: "CNAME".into(),
                target: fulldomain.clone(),
            }),
            fulldomain,
            delegation,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct RegistrationList {
    pub registrations: Vec<RegistrationView>,
}

/// A registration's credentials in the acme-dns account format (the storage
/// file's fields), plus the API to use them with.
#[derive(Serialize, ToSchema)]
pub(crate) struct Credentials {
    #[schema(format = "uuid")]
    pub username: String,
    pub password: String,
    pub fulldomain: String,
    #[schema(format = "uuid")]
    pub subdomain: String,
    pub allowfrom: Vec<String>,
    /// The acme-dns API (without credentials).
    pub server_url: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct CreatedRegistration {
    pub registration: RegistrationView,
    /// Shown once: the password is not kept unless the key has storage access.
    pub credentials: Credentials,
}

// The patterns describe a subset of what the server accepts (LDH names without
// `--`, ASCII key names), so every schema-valid body is one it takes; the
// server also takes IDNs in U-labels and other printable names.

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewRegistration {
    /// One of the account's active license keys.
    #[schema(example = "k3y1d0f16charsxx", pattern = "^[a-z0-9]{16}$")]
    pub key_id: String,
    /// The domain (IDNs as U- or A-labels; one leading `*.` binds to its base).
    #[schema(
        example = "www.example.com",
        pattern = r"^(\*\.)?([A-Za-z0-9]{1,20}(-[A-Za-z0-9]{1,20}){0,2}\.){1,3}[A-Za-z]{2,20}$"
    )]
    pub domain: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DomainChange {
    /// The new domain, or `null` to clear it.
    #[schema(pattern = r"^(\*\.)?([A-Za-z0-9]{1,20}(-[A-Za-z0-9]{1,20}){0,2}\.){1,3}[A-Za-z]{2,20}$")]
    pub domain: Option<String>,
    /// Move the domain here from the registration that holds it.
    #[serde(default)]
    pub take_over: bool,
}

/// A CNAME check, asked of the portal's resolver now.
#[derive(Serialize, ToSchema)]
pub(crate) struct CnameCheck {
    /// `correct`, `missing`, `elsewhere`, `shadowed` or `unknown`.
    #[schema(example = "correct")]
    pub status: String,
    pub headline: String,
    pub detail: String,
    pub fix: String,
    pub cname: CnameRecord,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct KeyView {
    pub id: String,
    pub name: String,
    /// Not revoked.
    pub active: bool,
    /// May read its registrations' kept passwords (lego's HTTP storage).
    pub storage_access: bool,
    pub registrations: u64,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// Until when an earlier secret still works after a rotation.
    pub grace_until: Option<String>,
}

impl KeyView {
    pub fn of(k: &LicenseKey, registrations: u64, now: OffsetDateTime) -> Self {
        Self {
            id: k.id.to_string(),
            name: k.name.clone(),
            active: k.is_active(),
            storage_access: k.storage_access,
            registrations,
            created_at: rfc3339(k.created_at),
            last_used_at: k.last_used_at.map(rfc3339),
            revoked_at: k.revoked_at.map(rfc3339),
            grace_until: k.secret_hash.grace_until(now).map(rfc3339),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct KeyList {
    pub keys: Vec<KeyView>,
}

/// A new secret, shown once.
#[derive(Serialize, ToSchema)]
pub(crate) struct KeySecret {
    pub key: KeyView,
    pub secret: String,
    /// `https://KEYID:SECRET@api.example.net`: what clients are given.
    pub base_url: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewKey {
    /// Trimmed, then 1–80 characters without control or format characters.
    #[schema(schema_with = key_name_schema)]
    pub name: String,
}

/// A key name's pattern, from the rule the server applies
/// (`actions::clean_key_name`), so a schema-valid name is accepted and an
/// invalid one refused.
fn key_name_schema() -> utoipa::openapi::schema::ObjectBuilder {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    static PATTERN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        certdns_core::text::trimmed_text_pattern(certdns_core::text::is_control_or_format, crate::actions::KEY_NAME_MAX)
    });
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern.clone())).examples(["web servers"])
}

#[derive(Serialize, ToSchema)]
pub(crate) struct AuditEventView {
    pub id: i64,
    pub at: String,
    #[schema(example = "registration.created")]
    pub kind: String,
    pub client_addr: Option<String>,
    pub detail: serde_json::Value,
}

impl From<&AuditEvent> for AuditEventView {
    fn from(e: &AuditEvent) -> Self {
        Self {
            id: e.id,
            at: rfc3339(e.at),
            kind: e.kind.as_str().to_owned(),
            client_addr: e.client_addr.map(|a| a.to_string()),
            detail: e.detail.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct AuditPage {
    /// Newest first.
    pub events: Vec<AuditEventView>,
    /// Pass as `before` for the next (older) page; `null` at the end.
    pub next_before: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    #[schema(example = "invalid_token")]
    pub error: String,
    pub message: String,
}
