//! The one INSERT of a registration, shared by a new registration (no TXT values
//! yet) and an imported one (its values from the server it comes from): one
//! statement, so an import lands whole or not at all.

use certdns_core::{AcmeAccountUrl, Domain, KeyId, PersistRecord, Registration, TxtState, TxtValue};
use sqlx::{Database, Encode, Executor, IntoArguments, Type};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::conflict_as;
use crate::{Result, SqlStore};

/// What a unique violation on `registrations` means to the caller.
pub(crate) const REGISTRATION_CONFLICT: &str = "a registration with this username, subdomain or domain";

impl<DB> SqlStore<DB>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> Option<&'a str>: Encode<'a, DB> + Type<DB>,
    for<'a> Uuid: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    for<'a> OffsetDateTime: Encode<'a, DB> + Type<DB>,
    for<'a> Option<OffsetDateTime>: Encode<'a, DB> + Type<DB>,
{
    /// Inserts `r` with its TXT state `txt`: the version, the values as
    /// `txt_recent` (newest first, space-separated; see `rows::TxtRow`) and a
    /// persist registration's record.
    pub(crate) async fn insert_registration(&self, r: &Registration, txt: &TxtState) -> Result<()> {
        let recent: Vec<&str> = txt.values.iter().map(TxtValue::as_str).collect();
        let version = crate::rows::to_i64(txt.version, "txt_version")?;
        sqlx::query(
            "INSERT INTO registrations (id, account_id, license_key_id, username, password_hash, subdomain, \
             allow_from, subject, txt_version, txt_recent, created_at, last_update_at, domain, password_sealed, \
             acme_account_url, kind, persist_record) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(*r.id.as_uuid())
        .bind(*r.account_id.as_uuid())
        .bind(r.license_key_id.as_ref().map(KeyId::as_str))
        .bind(*r.username.as_uuid())
        .bind(r.password_hash.as_str())
        .bind(*r.subdomain.as_uuid())
        .bind(r.allow_from.to_json().as_str())
        .bind(r.subject.as_deref())
        .bind(version)
        .bind(recent.join(" ").as_str())
        .bind(r.created_at)
        .bind(r.last_update_at)
        .bind(r.domain.as_ref().map(Domain::as_str))
        .bind(r.password_sealed.as_deref())
        .bind(r.acme_account_url.as_ref().map(AcmeAccountUrl::as_str))
        .bind(r.kind.as_str())
        .bind(txt.persist.as_ref().map(PersistRecord::to_txt).as_deref())
        .execute(self.write_pool())
        .await
        .map_err(conflict_as(REGISTRATION_CONFLICT))?;
        Ok(())
    }
}
