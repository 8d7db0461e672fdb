//! Domain types of certdns and their validation.
//!
//! Architecture invariant: this crate does no I/O. Everything here is a value, a
//! parser, or a pure function (hashing included), so every other crate can rely on
//! a `TxtValue` being valid or a `Subdomain` being canonical without re-checking.

pub mod access_token;
pub mod account_label;
pub mod allow_from;
pub mod domain;
pub mod hashed_uri;
pub mod ids;
pub mod model;
pub mod password;
pub mod persist_record;
pub mod redact;
pub mod sealed;
pub mod secret;
pub mod text;
pub mod txt;

pub use access_token::{AccessToken, TokenId, TokenScope};
pub use account_label::{AcmeAccountUrl, InvalidAccountUrl};
pub use allow_from::{AllowFrom, InvalidCidr};
pub use domain::{Domain, DomainError};
pub use hashed_uri::{HashedAccountUri, InvalidAccountUri};
pub use ids::{AccountId, InvalidId, KeyId, RegistrationId, Subdomain, Username};
pub use model::{
    Account, AccountRole, AccountStatus, AuditEvent, AuditKind, Email, InvalidEmail, LicenseKey, NewAuditEvent,
    Registration, RegistrationKind, TxtState, challenge_name,
};
pub use persist_record::{InvalidPersistRecord, PERSIST_LABEL, PersistRecord};
pub use sealed::{CredentialSealer, SealError};
pub use secret::{Secret, SecretHash, SecretMatch};
pub use txt::{InvalidTxt, TxtValue};

/// The current time, truncated to whole microseconds.
///
/// Both storage backends keep microseconds; truncating here means a value read
/// back compares equal to the value written.
pub fn now() -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc();
    let micros = now.microsecond();
    now.replace_microsecond(micros).unwrap_or(now)
}

/// The UTC day `t` falls on, as days since the Unix epoch: the window of the
/// plans' "updates per day" (a day starts at 00:00 UTC for every customer).
pub fn utc_day(t: time::OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(86_400)
}
