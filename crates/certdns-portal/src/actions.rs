//! What the portal's pages and its account API (`/api/v1`) both do, written
//! once: each action checks, writes and audits; the caller only turns the
//! outcome into a page or a JSON answer.

use std::net::IpAddr;

use certdns_core::{
    AccountId, AllowFrom, AuditKind, Domain, DomainError, KeyId, LicenseKey, NewAuditEvent, Registration,
    RegistrationId, RegistrationKind, Secret, Subdomain, Username,
};
use certdns_store::StoreError;
use time::OffsetDateTime;

use crate::state::AppState;

/// Who asked: audited with every action.
#[derive(Clone, Copy)]
pub(crate) struct Actor {
    pub account: AccountId,
    pub peer: Option<IpAddr>,
    /// `portal` or `api` (the account API), kept in the audit detail.
    pub via: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ActionError {
    /// Input the action refuses, in words for the customer.
    #[error("{0}")]
    Invalid(String),
    /// The account's plan (or an overdue payment) does not allow it: the
    /// billing refusal's code (`registrations_limit_reached`, …) and its words.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error("not found")]
    NotFound,
    /// The domain is held by another registration of the account.
    #[error("the domain is bound to another registration")]
    DomainTaken(Box<Registration>),
    /// The account has a persist registration for the domain already.
    #[error("the domain has a persist record already")]
    PersistExists(Box<Registration>),
    /// [`certdns_core::secret::MAX_IN_GRACE`] earlier secrets are still in grace.
    #[error("too many secrets in grace")]
    TooManyRotations { next_ends: OffsetDateTime },
    #[error("store: {0}")]
    Store(StoreError),
}

impl From<StoreError> for ActionError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ActionError::NotFound,
            e => ActionError::Store(e),
        }
    }
}

/// A dns-account-01 binding the store refused: the same domain and ACME
/// account are bound already.
pub(crate) const SAME_ACME_ACCOUNT: &str =
    "Another registration of this account already answers for this domain and the same ACME account.";

/// Why a persist registration keeps its domain.
pub(crate) const PERSIST_DOMAIN_FIXED: &str = "A dns-persist-01 record's domain is fixed: its accounturi is computed \
     over that domain. Delete the record and create one for the other domain.";

/// A refused domain, as the customer reads it.
pub(crate) fn domain_error_text(e: &DomainError) -> String {
    format!("That domain cannot be used: {e}.")
}

/// The longest key name, in characters.
pub(crate) const KEY_NAME_MAX: usize = 80;

/// A key name as kept: trimmed, 1–80 characters, no control characters.
pub(crate) fn clean_key_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("Give the key a name, like the server or team that will use it.".into());
    }
    if name.chars().count() > KEY_NAME_MAX || certdns_core::text::has_control_or_format(name) {
        return Err("Key names are at most 80 characters, without control characters.".into());
    }
    Ok(name.to_owned())
}

/// The account's active key `id`, else `NotFound`.
pub(crate) async fn active_key(state: &AppState, account: AccountId, id: &KeyId) -> Result<LicenseKey, ActionError> {
    match state.core.license_key(id).await? {
        Some(k) if k.account_id == account && k.is_active() => Ok(k),
        _ => Err(ActionError::NotFound),
    }
}

pub(crate) async fn create_key(state: &AppState, who: Actor, name: &str) -> Result<(LicenseKey, Secret), ActionError> {
    let name = clean_key_name(name).map_err(ActionError::Invalid)?;
    crate::billing::may_add(state, who.account, crate::billing::Growth::LicenseKey).await?;
    let secret = Secret::generate();
    let key = LicenseKey {
        id: KeyId::generate(),
        account_id: who.account,
        name: name.clone(),
        secret_hash: secret.hash(),
        created_at: certdns_core::now(),
        last_used_at: None,
        revoked_at: None,
        storage_access: false,
    };
    state.core.create_license_key(&key).await?;
    let detail = serde_json::json!({ "key": key.id.to_string(), "name": name, "via": who.via });
    state.audit(Some(who.account), AuditKind::LicenseKeyCreated, who.peer, detail).await;
    Ok((key, secret))
}

pub(crate) async fn revoke_key(state: &AppState, who: Actor, id: &KeyId) -> Result<(), ActionError> {
    state.core.revoke_license_key(who.account, id, certdns_core::now()).await?;
    let detail = serde_json::json!({ "key": id.to_string(), "via": who.via });
    state.audit(Some(who.account), AuditKind::LicenseKeyRevoked, who.peer, detail).await;
    Ok(())
}

/// A new secret for the key; the current one (and earlier ones still in grace)
/// keep working until their deadlines. Returns the new secret and until when
/// the previous one works.
pub(crate) async fn rotate_key(
    state: &AppState,
    who: Actor,
    id: &KeyId,
) -> Result<(LicenseKey, Secret, OffsetDateTime), ActionError> {
    let key = active_key(state, who.account, id).await?;
    let secret = Secret::generate();
    let now = certdns_core::now();
    let until = now + time::Duration::hours(i64::from(state.config.rotation_grace_hours));
    // Earlier rotations keep their grace; a key with too many secrets in grace
    // is refused, with the date the first of them ends.
    if let Err(full) = key.secret_hash.rotated(&secret.hash(), until, now) {
        return Err(ActionError::TooManyRotations { next_ends: full.next_ends });
    }
    state.store.rotate_license_key(who.account, id, &secret.hash(), until).await?;
    let detail = serde_json::json!({ "key": id.to_string(), "grace_until": until.unix_timestamp(), "via": who.via });
    state.audit(Some(who.account), AuditKind::LicenseKeyRotated, who.peer, detail).await;
    Ok((key, secret, until))
}

/// A registration bound to `domain` under the account's active key `key_id`,
/// made as `/register` would (generated credentials, no allow-from list, the
/// domain as subject). Returns it with its password, which is shown once; under
/// a key with storage access it is also kept sealed for lego's HTTP storage.
pub(crate) async fn add_domain(
    state: &AppState,
    who: Actor,
    key_id: &KeyId,
    domain: &str,
) -> Result<(Registration, Secret), ActionError> {
    let key = active_key(state, who.account, key_id).await?;
    let domain = Domain::parse(domain).map_err(|e| ActionError::Invalid(domain_error_text(&e)))?;
    if let Some(other) = state.core.registration_by_domain(who.account, &domain).await? {
        return Err(ActionError::DomainTaken(Box::new(other)));
    }
    crate::billing::may_add(state, who.account, crate::billing::Growth::Registration).await?;
    let password = Secret::generate();
    let id = RegistrationId::generate();
    let password_sealed = match (&state.sealer, key.storage_access) {
        (Some(sealer), true) => Some(
            sealer
                .seal(id, password.expose())
                .map_err(|e| ActionError::Store(StoreError::Corrupt(format!("sealing a password: {e}"))))?,
        ),
        _ => None,
    };
    let registration = Registration {
        id,
        account_id: who.account,
        license_key_id: Some(key.id.clone()),
        username: Username::generate(),
        password_hash: password.hash(),
        subdomain: Subdomain::generate(),
        allow_from: AllowFrom::default(),
        subject: Some(domain.unicode()),
        domain: Some(domain.clone()),
        password_sealed,
        acme_account_url: None,
        kind: certdns_core::RegistrationKind::Challenge,
        created_at: certdns_core::now(),
        last_update_at: None,
    };
    let event = NewAuditEvent {
        account_id: Some(who.account),
        kind: AuditKind::RegistrationCreated,
        client_addr: who.peer,
        detail: serde_json::json!({
            "subdomain": registration.subdomain.to_string(),
            "key_id": key.id.as_str(),
            "domain": domain.as_str(),
            "via": who.via,
        }),
    };
    match state.core.create_registration_audited(&registration, &event, registration.created_at).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            // Another registration took the domain a moment ago: name it.
            return match state.core.registration_by_domain(who.account, &domain).await? {
                Some(other) => Err(ActionError::DomainTaken(Box::new(other))),
                None => Err(ActionError::Invalid("That domain was just taken; try again.".into())),
            };
        }
        Err(e) => return Err(e.into()),
    }
    state.sync.registration_created(registration.subdomain).await;
    Ok((registration, password))
}

/// What [`set_domain`] did.
pub(crate) enum DomainChange {
    Unchanged,
    Set,
    Cleared,
    /// Taken over from the registration at this subdomain (confirmed).
    Moved,
}

/// Sets (`Some`) or clears (`None`) a registration's domain. A domain another
/// registration of the account holds is never taken silently: without
/// `take_over` the answer is [`ActionError::DomainTaken`] and nothing changes.
pub(crate) async fn set_domain(
    state: &AppState,
    who: Actor,
    reg: &Registration,
    domain: Option<&Domain>,
    take_over: bool,
) -> Result<DomainChange, ActionError> {
    if reg.domain.as_ref() == domain {
        return Ok(DomainChange::Unchanged);
    }
    if reg.kind == RegistrationKind::Persist {
        return Err(ActionError::Invalid(PERSIST_DOMAIN_FIXED.into()));
    }
    // dns-account-01 registrations share a domain with the dns-01 one; the
    // store refuses only the same ACME account twice.
    let holder = match (domain, &reg.acme_account_url) {
        (Some(d), None) => state.core.registration_by_domain(who.account, d).await?.filter(|o| o.id != reg.id),
        _ => None,
    };
    if let (Some(other), false) = (&holder, take_over) {
        return Err(ActionError::DomainTaken(Box::new(other.clone())));
    }
    match state.core.set_registration_domain(who.account, reg.id, domain, take_over).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            // Another registration took it a moment ago: say which, change nothing.
            let other = match domain {
                Some(d) => state.core.registration_by_domain(who.account, d).await?.filter(|o| o.id != reg.id),
                None => None,
            };
            return Err(match other {
                Some(o) => ActionError::DomainTaken(Box::new(o)),
                None => ActionError::Invalid(SAME_ACME_ACCOUNT.into()),
            });
        }
        Err(e) => return Err(e.into()),
    }
    let moved_from = holder.filter(|_| take_over).map(|o| o.subdomain);
    let detail = serde_json::json!({
        "subdomain": reg.subdomain.to_string(),
        "domain": domain.map(Domain::as_str),
        "previous": reg.domain.as_ref().map(Domain::as_str),
        "moved_from": moved_from.map(|s| s.to_string()),
        "via": who.via,
    });
    state.audit(Some(who.account), AuditKind::RegistrationDomainSet, who.peer, detail).await;
    Ok(match (domain, moved_from) {
        (None, _) => DomainChange::Cleared,
        (Some(_), Some(_)) => DomainChange::Moved,
        (Some(_), None) => DomainChange::Set,
    })
}

/// Deletes a registration; the DNS stops answering for it at once.
pub(crate) async fn delete_registration(state: &AppState, who: Actor, reg: &Registration) -> Result<(), ActionError> {
    let subdomain = state.sync.delete_registration(who.account, reg.id).await?;
    let detail = serde_json::json!({ "subdomain": subdomain.to_string(), "via": who.via });
    state.audit(Some(who.account), AuditKind::RegistrationDeleted, who.peer, detail).await;
    Ok(())
}
