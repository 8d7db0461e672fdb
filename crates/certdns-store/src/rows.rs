//! Rows as the SQL store reads them, and their conversion into domain types
//! (a value that does not parse is `StoreError::Corrupt`, never a panic).

use certdns_core::{
    Account, AccountId, AcmeAccountUrl, AllowFrom, AuditEvent, Domain, Email, KeyId, LicenseKey, PersistRecord,
    Registration, RegistrationId, SecretHash, Subdomain, TxtState, TxtValue, Username,
};
use std::net::IpAddr;

use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Result, StoreError};

#[derive(FromRow)]
pub(crate) struct AccountRow {
    id: Uuid,
    email: String,
    role: String,
    status: String,
    password_hash: Option<String>,
    created_at: OffsetDateTime,
}

#[derive(FromRow)]
pub(crate) struct LicenseKeyRow {
    id: String,
    account_id: Uuid,
    name: String,
    secret_hash: String,
    created_at: OffsetDateTime,
    last_used_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
    storage_access: bool,
}

#[derive(FromRow)]
pub(crate) struct RegistrationRow {
    id: Uuid,
    account_id: Uuid,
    license_key_id: Option<String>,
    username: Uuid,
    password_hash: String,
    subdomain: Uuid,
    allow_from: String,
    subject: Option<String>,
    domain: Option<String>,
    password_sealed: Option<String>,
    acme_account_url: Option<String>,
    kind: String,
    created_at: OffsetDateTime,
    last_update_at: Option<OffsetDateTime>,
}

#[derive(FromRow)]
pub(crate) struct RegistrationStatusRow {
    #[sqlx(flatten)]
    pub(crate) registration: RegistrationRow,
    pub(crate) account_status: String,
}

/// A registration's TXT state as stored: `txt_recent` holds its most recent
/// values, newest first, separated by single spaces; `persist_record` a
/// persist registration's record. The statements of the `/update` paths touch
/// challenge registrations only and leave the record out (it is `NULL` there).
#[derive(FromRow)]
pub(crate) struct TxtRow {
    pub(crate) subdomain: Uuid,
    pub(crate) txt_version: i64,
    pub(crate) txt_recent: String,
    #[sqlx(default)]
    pub(crate) persist_record: Option<String>,
}

#[derive(FromRow)]
pub(crate) struct AuditRow {
    id: i64,
    at: OffsetDateTime,
    account_id: Option<Uuid>,
    kind: String,
    client_addr: Option<String>,
    detail: String,
}

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> Result<Self> {
        Ok(Account {
            id: AccountId::from_uuid(r.id),
            email: Email::parse(&r.email).map_err(|e| corrupt("accounts.email", e))?,
            role: r.role.parse().map_err(|e| corrupt("accounts.role", e))?,
            status: r.status.parse().map_err(|e| corrupt("accounts.status", e))?,
            password_hash: r.password_hash,
            created_at: r.created_at,
        })
    }
}

impl TryFrom<LicenseKeyRow> for LicenseKey {
    type Error = StoreError;
    fn try_from(r: LicenseKeyRow) -> Result<Self> {
        Ok(LicenseKey {
            id: r.id.parse().map_err(|e| corrupt("license_keys.id", e))?,
            account_id: AccountId::from_uuid(r.account_id),
            name: r.name,
            secret_hash: SecretHash::from_stored(r.secret_hash),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
            storage_access: r.storage_access,
        })
    }
}

impl TryFrom<RegistrationRow> for Registration {
    type Error = StoreError;
    fn try_from(r: RegistrationRow) -> Result<Self> {
        Ok(Registration {
            id: RegistrationId::from_uuid(r.id),
            account_id: AccountId::from_uuid(r.account_id),
            license_key_id: r
                .license_key_id
                .map(|k| k.parse::<KeyId>())
                .transpose()
                .map_err(|e| corrupt("registrations.license_key_id", e))?,
            username: Username::from_uuid(r.username),
            password_hash: SecretHash::from_stored(r.password_hash),
            subdomain: Subdomain::from_uuid(r.subdomain),
            allow_from: AllowFrom::from_json(&r.allow_from).map_err(|e| corrupt("registrations.allow_from", e))?,
            subject: r.subject,
            domain: r.domain.map(|d| Domain::parse(&d)).transpose().map_err(|e| corrupt("registrations.domain", e))?,
            password_sealed: r.password_sealed,
            acme_account_url: r
                .acme_account_url
                .map(|u| AcmeAccountUrl::parse(&u))
                .transpose()
                .map_err(|e| corrupt("registrations.acme_account_url", e))?,
            kind: r.kind.parse().map_err(|e| corrupt("registrations.kind", e))?,
            created_at: r.created_at,
            last_update_at: r.last_update_at,
        })
    }
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> Result<Self> {
        Ok(AuditEvent {
            id: r.id,
            at: r.at,
            account_id: r.account_id.map(AccountId::from_uuid),
            kind: r.kind.parse().map_err(|e| corrupt("audit_log.kind", e))?,
            client_addr: r
                .client_addr
                .map(|a| a.parse::<IpAddr>())
                .transpose()
                .map_err(|e| corrupt("audit_log.client_addr", e))?,
            detail: serde_json::from_str(&r.detail).map_err(|e| corrupt("audit_log.detail", e))?,
        })
    }
}

/// Each value is [`TxtValue::LEN`] characters plus one separator.
pub(crate) const TXT_SLOT: usize = TxtValue::LEN + 1;

/// The length of a `txt_recent` holding `keep` values (and the spaces between).
pub(crate) fn recent_len(keep: usize) -> Result<i64> {
    to_i64((keep * TXT_SLOT - 1) as u64, "keep")
}

/// SQL for the `txt_recent` after writing `value` (an SQL expression): the value
/// in front, the list cut to `len` characters, so to whole values (see
/// [`recent_len`]). Shared by the checked write and the batched one.
pub(crate) fn prepend_recent(value: &str, len: &str) -> String {
    format!(
        "substr(CASE WHEN registrations.txt_recent = '' THEN {value} \
         ELSE {value} || ' ' || registrations.txt_recent END, 1, {len})"
    )
}

/// SQL assignments counting one more update of the UTC day `day` (an SQL
/// expression): the counter starts again at 1 on a new day. Shared by the
/// checked write and the batched one, so every TXT write is counted.
pub(crate) fn count_update(day: &str) -> String {
    format!(
        "updates_today = CASE WHEN registrations.updates_day = {day} THEN registrations.updates_today + 1 ELSE 1 END, \
         updates_day = {day}"
    )
}

/// SQL condition: the registration had fewer than `cap` updates on `day`.
pub(crate) fn below_daily_cap(day: &str, cap: &str) -> String {
    format!("(registrations.updates_day <> {day} OR registrations.updates_today < {cap})")
}

/// The cap bound for "no limit".
pub(crate) fn daily_cap(per_day: Option<u64>) -> i64 {
    per_day.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

impl TxtRow {
    pub(crate) fn into_state(self, keep: usize) -> Result<TxtState> {
        Ok(TxtState {
            subdomain: Subdomain::from_uuid(self.subdomain),
            version: u64::try_from(self.txt_version).map_err(|e| corrupt("registrations.txt_version", e))?,
            values: self
                .txt_recent
                .split(' ')
                .filter(|v| !v.is_empty())
                .take(keep)
                .map(|v| TxtValue::parse(v).map_err(|e| corrupt("registrations.txt_recent", e)))
                .collect::<Result<_>>()?,
            persist: self
                .persist_record
                .map(|p| PersistRecord::parse(&p))
                .transpose()
                .map_err(|e| corrupt("registrations.persist_record", e))?,
        })
    }
}

pub(crate) fn to_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|e| corrupt(what, e))
}

pub(crate) const ACCOUNT_COLUMNS: &str = "id, email, role, status, password_hash, created_at";
pub(crate) const KEY_COLUMNS: &str =
    "id, account_id, name, secret_hash, created_at, last_used_at, revoked_at, storage_access";
pub(crate) const REGISTRATION_COLUMNS: &str = "id, account_id, license_key_id, username, password_hash, subdomain, allow_from, subject, domain, password_sealed, acme_account_url, kind, created_at, last_update_at";
