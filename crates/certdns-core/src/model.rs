//! The records certdns keeps: accounts, license keys, registrations, TXT state and
//! audit events. Plain data; storage lives in `certdns-store`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    AccountId, AcmeAccountUrl, AllowFrom, Domain, KeyId, PersistRecord, RegistrationId, SecretHash, Subdomain,
    TxtValue, Username,
};

/// A normalised e-mail address (trimmed, lower-case), the login of an account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid e-mail address: {0:?}")]
pub struct InvalidEmail(pub String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, InvalidEmail> {
        let e = s.trim().to_lowercase();
        let bad = || InvalidEmail(s.to_owned());
        let (local, domain) = e.split_once('@').ok_or_else(bad)?;
        let ok = !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && e.len() <= 254
            && !e.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ','));
        if ok { Ok(Self(e)) } else { Err(bad()) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = InvalidEmail;
    fn try_from(s: String) -> Result<Self, InvalidEmail> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s { $($text => Ok($name::$variant),)+ other => Err(format!(concat!("unknown ", stringify!($name), " {:?}"), other)) }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// What an account may do in the portal. Operators run the deployment.
    AccountRole { Customer = "customer", Operator = "operator" }
);

text_enum!(
    /// A suspended account's keys and registrations stop working at the API.
    AccountStatus { Active = "active", Suspended = "suspended" }
);

text_enum!(
    /// What a registration answers. `challenge`: the values its client sends to
    /// `/update` (dns-01, or dns-account-01 with an ACME account URL).
    /// `persist`: one dns-persist-01 record the customer manages in the portal
    /// or the account API; `/update` never writes it.
    RegistrationKind { Challenge = "challenge", Persist = "persist" }
);

text_enum!(
    /// Security-relevant events kept in the audit log.
    AuditKind {
        AccountCreated = "account.created",
        AccountSuspended = "account.suspended",
        AccountReactivated = "account.reactivated",
        LicenseKeyCreated = "license_key.created",
        LicenseKeyRevoked = "license_key.revoked",
        LicenseKeyNewAddress = "license_key.new_address",
        RegistrationCreated = "registration.created",
        RegistrationDeleted = "registration.deleted",
        AuthFailureBurst = "auth.failure_burst",
        Login = "login",
        LoginFailed = "login.failed",
        Logout = "logout",
        PasswordChanged = "password.changed",
        PasswordResetRequested = "password.reset_requested",
        EmailVerified = "email.verified",
        LicenseKeyRotated = "license_key.rotated",
        LicenseKeyRenamed = "license_key.renamed",
        AccountDeleted = "account.deleted",
        RegistrationDomainSet = "registration.domain_set",
        CredentialsFetched = "registration.credentials_fetched",
        LicenseKeyStorageAccess = "license_key.storage_access",
        AccessTokenCreated = "access_token.created",
        AccessTokenRevoked = "access_token.revoked",
        DelegationBroken = "delegation.broken",
        DelegationRestored = "delegation.restored",
        RenewalOverdue = "renewal.overdue",
        AuthFailuresAlerted = "auth.failures_alerted",
        LicenseKeyGraceEnding = "license_key.grace_ending",
        AlertSettingsChanged = "alerts.settings_changed",
        WebhookCreated = "webhook.created",
        WebhookDeleted = "webhook.deleted",
        RegistrationsImported = "registrations.imported",
        BillingCheckoutCompleted = "billing.checkout_completed",
        BillingPlanChanged = "billing.plan_changed",
        BillingPlanOverridden = "billing.plan_overridden",
        BillingSubscriptionEnded = "billing.subscription_ended",
        BillingPaymentSucceeded = "billing.payment_succeeded",
        BillingPaymentFailed = "billing.payment_failed",
        BillingPaymentWarningSent = "billing.payment_warning_sent",
        PersistRecordSet = "persist_record.set",
    }
);

#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub email: Email,
    pub role: AccountRole,
    pub status: AccountStatus,
    /// argon2id PHC string; `None` for accounts that cannot log in to the portal
    /// (created by an operator for API use only, until a password is set).
    pub password_hash: Option<String>,
    pub created_at: OffsetDateTime,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("status", &self.status)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseKey {
    pub id: KeyId,
    pub account_id: AccountId,
    pub name: String,
    pub secret_hash: SecretHash,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    /// May read and bind its registrations' credentials (lego's HTTP storage).
    /// Off by default: with it, the key becomes an update credential for every
    /// name registered with it.
    pub storage_access: bool,
}

impl LicenseKey {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }

    /// Whether `secret` is this key's secret at `now`: the current one, or, after a
    /// rotation, the previous one until its grace deadline (see
    /// [`SecretHash::rotated`]). Does not look at revocation; see [`Self::is_active`].
    pub fn verify_secret(&self, secret: &str, now: OffsetDateTime) -> bool {
        self.secret_hash.verify_at(secret, now)
    }

    /// Which of the key's secrets `secret` is, if any (see [`SecretHash::matched_at`]).
    pub fn secret_match(&self, secret: &str, now: OffsetDateTime) -> Option<crate::SecretMatch> {
        self.secret_hash.matched_at(secret, now)
    }
}

/// An acme-dns registration: credentials for `/update` and the subdomain it controls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub id: RegistrationId,
    pub account_id: AccountId,
    /// The license key it was registered with; `None` under open registration.
    pub license_key_id: Option<KeyId>,
    pub username: Username,
    pub password_hash: SecretHash,
    pub subdomain: Subdomain,
    pub allow_from: AllowFrom,
    /// What the client sent as `subject` at registration, as sent (echoed back).
    pub subject: Option<String>,
    /// The domain it proves control of; unique within an account for dns-01,
    /// unique per ACME account for dns-account-01.
    pub domain: Option<Domain>,
    /// dns-account-01: the ACME account whose challenges it answers, so the CA
    /// asks `_<label>._acme-challenge.<domain>` (see [`crate::AcmeAccountUrl`]).
    /// `None`: dns-01 (`_acme-challenge.<domain>`).
    pub acme_account_url: Option<AcmeAccountUrl>,
    /// `challenge` (acme-dns `/update` values) or `persist` (a dns-persist-01
    /// record, at `_validation-persist.<domain>`; the domain is then set).
    pub kind: RegistrationKind,
    /// The password sealed with the server's credentials key (see
    /// [`crate::CredentialSealer`]), kept only where a key with storage access
    /// may give it back.
    pub password_sealed: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_update_at: Option<OffsetDateTime>,
}

impl Registration {
    /// The name the CA asks and the customer delegates to this registration:
    /// `_acme-challenge.<domain>` (dns-01) or, with an ACME account,
    /// `_<label>._acme-challenge.<domain>` (dns-account-01). `None` without a domain.
    pub fn challenge_name(&self) -> Option<String> {
        let domain = self.domain.as_ref()?;
        Some(challenge_name(self.kind, domain, self.acme_account_url.as_ref()))
    }
}

/// The one rule for the name the CA asks (and the customer's CNAME sits at):
/// `_validation-persist.<domain>` for a persist registration, else
/// `_<label>._acme-challenge.<domain>` with an ACME account (dns-account-01),
/// else `_acme-challenge.<domain>`.
pub fn challenge_name(kind: RegistrationKind, domain: &Domain, acme_account: Option<&AcmeAccountUrl>) -> String {
    match (kind, acme_account) {
        (RegistrationKind::Persist, _) => PersistRecord::validation_name(domain),
        (RegistrationKind::Challenge, Some(url)) => url.challenge_name(domain),
        (RegistrationKind::Challenge, None) => domain.challenge_name(),
    }
}

/// What a subdomain currently answers: its values, newest first, and the version
/// of the write that produced them. Versions grow by one per write to the
/// subdomain; a consumer that sees an older version than it holds ignores it.
///
/// A persist registration answers its one record (`persist`) and never
/// `values`; a challenge registration the reverse. The record is the one TXT
/// value longer than [`TxtValue::LEN`]: every stage that packs values at a
/// fixed size (the store's `txt_recent`, the replica, the responders) carries
/// it apart from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtState {
    pub subdomain: Subdomain,
    pub version: u64,
    pub values: Vec<TxtValue>,
    pub persist: Option<PersistRecord>,
}

impl TxtState {
    /// A challenge registration's state (no persist record).
    pub fn values(subdomain: Subdomain, version: u64, values: Vec<TxtValue>) -> Self {
        Self { subdomain, version, values, persist: None }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    pub account_id: Option<AccountId>,
    pub kind: AuditKind,
    pub client_addr: Option<IpAddr>,
    /// Small structured detail (key id, subdomain…). Never secrets or TXT values.
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: i64,
    pub at: OffsetDateTime,
    pub account_id: Option<AccountId>,
    pub kind: AuditKind,
    pub client_addr: Option<IpAddr>,
    pub detail: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse("  Ops@Example.COM ").unwrap().as_str(), "ops@example.com");
        for bad in ["", "nobody", "a@b", "a@.b", "@example.com", "a b@example.com", "a@@example.com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_enums_round_trip() {
        for k in AuditKind::ALL {
            assert_eq!(k.as_str().parse::<AuditKind>().unwrap(), *k);
        }
        assert!("nope".parse::<AccountRole>().is_err());
    }
}
