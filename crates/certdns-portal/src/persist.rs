//! dns-persist-01 records, written once for the pages (`pages/persist.rs`)
//! and the account API (`account_api/persist.rs`): the customer's fields
//! checked into a [`PersistRecord`], a persist registration made with it or
//! its record replaced, each audited and published to the responders.
//!
//! A persist registration has no acme-dns credentials anyone is given (a
//! random password whose hash is kept and which is never shown), and the
//! store never lets `/update` write it: its record changes here only.

use certdns_core::{
    AllowFrom, AuditKind, Domain, HashedAccountUri, NewAuditEvent, PersistRecord, Registration, RegistrationId,
    RegistrationKind, Secret, Subdomain, TxtState, Username,
};
use certdns_store::StoreError;

use crate::actions::{ActionError, Actor, domain_error_text};
use crate::state::AppState;

/// How the customer names the ACME account: the hashed accounturi as their
/// client printed it, or the values it is computed from (draft §4.5: shareable,
/// no private key).
pub(crate) enum AccountInput {
    Hashed(String),
    Computed {
        account_url: String,
        thumbprint: String,
        hash_prefix: String,
        /// The `*` opt-out: one value reusable across domains (and linkable).
        any_domain: bool,
    },
}

/// The fields of a record as the customer gives them.
pub(crate) struct RecordInput {
    pub issuer: String,
    pub account: AccountInput,
    pub wildcard: bool,
    /// Unix seconds; `None`: no expiry.
    pub persist_until: Option<i64>,
}

impl RecordInput {
    /// The record for `domain`, or the reason in words.
    fn record(&self, domain: &Domain, now: i64) -> Result<PersistRecord, ActionError> {
        let invalid = |e: &dyn std::fmt::Display| ActionError::Invalid(format!("{}.", capitalise(&e.to_string())));
        let uri = match &self.account {
            AccountInput::Hashed(text) if text.trim().is_empty() => {
                return Err(ActionError::Invalid(
                    "Give the accounturi (the hashed URI your ACME client shows), or the ACME account URL, the \
                     account key's thumbprint and the CA's accountHashPrefix to compute it from."
                        .into(),
                ));
            }
            AccountInput::Hashed(text) => HashedAccountUri::parse(text).map_err(|e| invalid(&e))?,
            AccountInput::Computed { account_url, thumbprint, hash_prefix, any_domain } => {
                let domain = (!any_domain).then_some(domain);
                HashedAccountUri::compute(hash_prefix, domain, thumbprint, account_url).map_err(|e| invalid(&e))?
            }
        };
        if self.persist_until.is_some_and(|t| t <= now) {
            return Err(ActionError::Invalid(
                "The expiry (persistUntil) is in the past: the record would authorise nothing. Choose a later time, \
                 or none."
                    .into(),
            ));
        }
        PersistRecord::new(&self.issuer, uri, self.wildcard, self.persist_until).map_err(|e| invalid(&e))
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The domain of a new persist registration. `*.example.com` is authorised by
/// `policy=wildcard` at `_validation-persist.example.com`, so it asks for the
/// wildcard policy rather than binding silently.
fn persist_domain(input: &str, wildcard: bool) -> Result<Domain, ActionError> {
    let domain = Domain::parse(input).map_err(|e| ActionError::Invalid(domain_error_text(&e)))?;
    if input.trim().starts_with("*.") && !wildcard {
        return Err(ActionError::Invalid(format!(
            "A wildcard name is authorised by the record of its base domain with the wildcard policy: use {} and \
             turn on \"wildcard\" (policy=wildcard).",
            domain.unicode()
        )));
    }
    Ok(domain)
}

/// The account's persist registration for `domain`, if any.
pub(crate) async fn holder(state: &AppState, who: Actor, domain: &Domain) -> Result<Option<Registration>, ActionError> {
    let regs = state.core.list_registrations(who.account).await?;
    Ok(regs.into_iter().find(|r| r.kind == RegistrationKind::Persist && r.domain.as_ref() == Some(domain)))
}

/// The audit detail of a record (it is public in DNS; the trail of what it
/// said is the point, draft §9.5).
fn record_detail(
    reg: &Registration,
    record: &PersistRecord,
    previous: Option<&PersistRecord>,
    via: &str,
) -> serde_json::Value {
    serde_json::json!({
        "subdomain": reg.subdomain.to_string(),
        "domain": reg.domain.as_ref().map(Domain::as_str),
        "issuer": record.issuer(),
        "accounturi": record.account_uri().as_str(),
        "wildcard": record.wildcard(),
        "persist_until": record.persist_until(),
        "previous": previous.map(PersistRecord::to_txt),
        "via": via,
    })
}

/// A persist registration for `domain` with its first record, answered at once.
pub(crate) async fn create(
    state: &AppState,
    who: Actor,
    domain: &str,
    input: &RecordInput,
) -> Result<(Registration, PersistRecord), ActionError> {
    let now = certdns_core::now();
    let domain = persist_domain(domain, input.wildcard)?;
    let record = input.record(&domain, now.unix_timestamp())?;
    if let Some(other) = holder(state, who, &domain).await? {
        return Err(ActionError::PersistExists(Box::new(other)));
    }
    crate::billing::may_add(state, who.account, crate::billing::Growth::Registration).await?;
    let reg = Registration {
        id: RegistrationId::generate(),
        account_id: who.account,
        license_key_id: None,
        username: Username::generate(),
        // Never shown: nobody holds acme-dns credentials for a persist record.
        password_hash: Secret::generate().hash(),
        subdomain: Subdomain::generate(),
        allow_from: AllowFrom::default(),
        subject: Some(domain.unicode()),
        domain: Some(domain.clone()),
        acme_account_url: None,
        kind: RegistrationKind::Persist,
        password_sealed: None,
        created_at: now,
        last_update_at: Some(now),
    };
    let txt = TxtState { subdomain: reg.subdomain, version: 1, values: Vec::new(), persist: Some(record.clone()) };
    match state.core.import_registration(&reg, &txt).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            // Made a moment ago by another request: name it.
            return match holder(state, who, &domain).await? {
                Some(other) => Err(ActionError::PersistExists(Box::new(other))),
                None => Err(ActionError::Invalid("That domain was just taken; try again.".into())),
            };
        }
        Err(e) => return Err(e.into()),
    }
    let created = NewAuditEvent {
        account_id: Some(who.account),
        kind: AuditKind::RegistrationCreated,
        client_addr: who.peer,
        detail: serde_json::json!({
            "subdomain": reg.subdomain.to_string(),
            "domain": domain.as_str(),
            "kind": RegistrationKind::Persist.as_str(),
            "via": who.via,
        }),
    };
    if let Err(e) = state.core.append_audit(&created, now).await {
        tracing::warn!(error = %e, "cannot write audit event");
    }
    state
        .audit(Some(who.account), AuditKind::PersistRecordSet, who.peer, record_detail(&reg, &record, None, who.via))
        .await;
    state.sync.publish_states(vec![txt]).await;
    Ok((reg, record))
}

/// Replaces the record of persist registration `reg`; the responders answer
/// the new one at once. Unchanged fields write nothing.
pub(crate) async fn replace(
    state: &AppState,
    who: Actor,
    reg: &Registration,
    input: &RecordInput,
) -> Result<PersistRecord, ActionError> {
    let (RegistrationKind::Persist, Some(domain)) = (reg.kind, &reg.domain) else {
        return Err(ActionError::NotFound);
    };
    let now = certdns_core::now();
    let record = input.record(domain, now.unix_timestamp())?;
    let previous = current(state, reg).await?;
    if previous.as_ref() == Some(&record) {
        return Ok(record);
    }
    let txt = state.core.set_persist_record(who.account, reg.id, &record, now).await?;
    let detail = record_detail(reg, &record, previous.as_ref(), who.via);
    state.audit(Some(who.account), AuditKind::PersistRecordSet, who.peer, detail).await;
    state.sync.publish_states(vec![txt]).await;
    Ok(record)
}

/// The record a persist registration answers now.
pub(crate) async fn current(state: &AppState, reg: &Registration) -> Result<Option<PersistRecord>, StoreError> {
    Ok(state.core.txt_state(reg.subdomain, 1).await?.and_then(|s| s.persist))
}
