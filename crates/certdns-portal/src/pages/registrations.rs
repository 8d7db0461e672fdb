//! Registrations: the list per license key (each titled by its domain, flagged
//! when it has none), one registration with its domain (set, change, clear, or
//! moved here from another registration only when the owner confirms), its
//! CNAME check and CAA advice (both from the domain; without one they wait),
//! and delete (the DNS stops answering at once).

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use certdns_core::domain::CHALLENGE_LABEL;
use certdns_core::{AcmeAccountUrl, Domain, LicenseKey, PERSIST_LABEL, Registration, RegistrationKind, Subdomain};
use serde::Deserialize;

use super::delegation::{Badge, Change, badge, changes};
use super::{NoticeQuery, Page, Shared, when, when_opt};
pub(super) use crate::actions::domain_error_text;
use crate::actions::{self, ActionError, Actor, DomainChange};
use crate::caa::caa_records;
use crate::cname_advice::{self, Advice};
use crate::error::PageError;
use crate::session::{Ctx, User};
use crate::state::AppState;
use crate::templates::{Layout, render};
use certdns_delegation::check_challenge_name;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/registrations", get(registrations_page))
        .route("/registrations/{subdomain}", get(registration_page))
        .route("/registrations/{subdomain}/domain", post(set_domain))
        .route("/registrations/{subdomain}/delete", post(delete_registration))
        .route("/registrations/{subdomain}/acme-account", post(super::acme_account::set_acme_account))
}

pub(super) struct RegRow {
    pub subdomain: String,
    /// What the registration is called: its domain (U-labels), else the subject
    /// its client sent, else empty.
    pub title: String,
    /// The domain as DNS carries it (A-labels); empty without a domain.
    pub domain: String,
    /// The domain as people read it; differs from `domain` for IDNs.
    pub domain_unicode: String,
    pub is_idn: bool,
    pub fulldomain: String,
    /// The challenge name the CNAME sits at (`_acme-challenge.<domain>`, or
    /// `_<label>._acme-challenge.<domain>` for dns-account-01); empty without a
    /// domain (no placeholder).
    pub cname_name: String,
    /// dns-account-01: the ACME account URL and its label; empty for dns-01.
    pub acme_account_url: String,
    pub account_label: String,
    /// The customer's zone as the public suffix list sees it (`example.com`),
    /// and the CNAME's name relative to it (`_acme-challenge.www`); empty when
    /// there is no domain or the list knows no zone for it.
    pub cname_zone: String,
    pub cname_relative: String,
    pub created: String,
    pub last_update: String,
    /// What the delegation monitor found (filled where the page has it).
    pub delegation: Option<Badge>,
}

struct RegGroup {
    title: String,
    key_id: String,
    rows: Vec<RegRow>,
}

#[derive(Template)]
#[template(path = "registrations.html")]
struct RegistrationsPage {
    layout: Layout,
    groups: Vec<RegGroup>,
    total: usize,
    /// Whether the account has an active key to add a domain with.
    can_add: bool,
    /// How many dns-persist-01 records the account has (listed elsewhere).
    persist_records: usize,
}

/// A domain the user asked for that another registration of the account holds.
pub(super) struct Conflict {
    /// A-label, carried by the "Move it here" form.
    pub domain: String,
    pub domain_unicode: String,
    pub other_subdomain: String,
    pub other_fulldomain: String,
    pub other_created: String,
}

#[derive(Template)]
#[template(path = "registration.html")]
struct RegistrationPage {
    layout: Layout,
    reg: RegRow,
    key: String,
    allow_from: String,
    check: Option<Advice>,
    account_uri: String,
    ca_domain: String,
    caa: Vec<String>,
    caa_error: Option<String>,
    /// The domain form: what is in the field, why it was refused, and a
    /// domain another registration holds (offered to move here).
    domain_input: String,
    domain_error: Option<String>,
    conflict: Option<Conflict>,
    /// The monitor's recent findings, newest first.
    history: Vec<Change>,
}

#[derive(Deserialize, Default)]
struct RegistrationQuery {
    #[serde(default)]
    check: Option<String>,
    #[serde(default)]
    account_uri: Option<String>,
    #[serde(default)]
    ca: Option<String>,
    #[serde(default)]
    notice: Option<String>,
}

/// The registrable domain of `domain` (its likely zone) and the CNAME's name
/// relative to it: `www.example.co.uk` → (`example.co.uk`, `_acme-challenge.www`).
/// A zone delegated further down (`shop.example.com` as a zone of its own) is
/// the customer's to know; the page says which zone the relative name assumes.
fn cname_in_zone(domain: &str, label: &str) -> Option<(String, String)> {
    let base = domain.trim_start_matches("*.").trim_end_matches('.').to_ascii_lowercase();
    let zone = psl::domain_str(&base)?.to_owned();
    let relative = match base.strip_suffix(&zone).map(|rest| rest.trim_end_matches('.')) {
        Some("") => label.to_owned(),
        Some(rest) => format!("{label}.{rest}"),
        None => return None,
    };
    Some((zone, relative))
}

/// What a registration is called in lists and headings.
pub(super) fn title_of(r: &Registration) -> String {
    match (&r.domain, &r.subject) {
        (Some(d), _) => d.unicode(),
        (None, Some(s)) => s.clone(),
        (None, None) => String::new(),
    }
}

pub(super) fn reg_row(state: &AppState, r: &Registration) -> RegRow {
    let label = if r.kind == RegistrationKind::Persist { PERSIST_LABEL } else { CHALLENGE_LABEL };
    let (cname_zone, mut cname_relative) =
        r.domain.as_ref().and_then(|d| cname_in_zone(d.as_str(), label)).unwrap_or_default();
    let account_label = r.acme_account_url.as_ref().map(AcmeAccountUrl::label).unwrap_or_default();
    if !account_label.is_empty() && !cname_relative.is_empty() {
        cname_relative = format!("{account_label}.{cname_relative}");
    }
    RegRow {
        acme_account_url: r.acme_account_url.as_ref().map(|u| u.as_str().to_owned()).unwrap_or_default(),
        account_label,
        subdomain: r.subdomain.to_string(),
        title: title_of(r),
        domain: r.domain.as_ref().map(|d| d.as_str().to_owned()).unwrap_or_default(),
        domain_unicode: r.domain.as_ref().map(Domain::unicode).unwrap_or_default(),
        is_idn: r.domain.as_ref().is_some_and(Domain::is_idn),
        cname_name: r.challenge_name().unwrap_or_default(),
        cname_zone,
        cname_relative,
        fulldomain: state.fulldomain(r.subdomain),
        created: when(r.created_at),
        last_update: when_opt(r.last_update_at, "no update yet"),
        delegation: None,
    }
}

async fn registrations_page(State(state): Shared, User(user, ctx): User, Query(q): Query<NoticeQuery>) -> Page {
    let id = user.account.id;
    let (mut regs, keys, statuses) = tokio::try_join!(
        state.core.list_registrations(id),
        state.core.list_license_keys(id),
        state.store.delegation_statuses(id)
    )?;
    // dns-persist-01 records have a page of their own (`pages::persist`).
    let persist_records = regs.iter().filter(|r| r.kind == RegistrationKind::Persist).count();
    regs.retain(|r| r.kind == RegistrationKind::Challenge);
    let statuses: HashMap<_, _> = statuses.into_iter().map(|s| (s.registration_id, s)).collect();
    let reg_row = |state: &AppState, r: &Registration| RegRow { delegation: badge(r, &statuses), ..reg_row(state, r) };
    let mut groups: Vec<RegGroup> = Vec::new();
    for k in &keys {
        let rows: Vec<RegRow> =
            regs.iter().filter(|r| r.license_key_id.as_ref() == Some(&k.id)).map(|r| reg_row(&state, r)).collect();
        if !rows.is_empty() || k.is_active() {
            let title = if k.is_active() { k.name.clone() } else { format!("{} (revoked)", k.name) };
            groups.push(RegGroup { title, key_id: k.id.to_string(), rows });
        }
    }
    let orphans: Vec<RegRow> = regs
        .iter()
        .filter(|r| r.license_key_id.as_ref().is_none_or(|k| !keys.iter().any(|x| &x.id == k)))
        .map(|r| reg_row(&state, r))
        .collect();
    if !orphans.is_empty() {
        groups.push(RegGroup { title: "Without a license key".into(), key_id: String::new(), rows: orphans });
    }
    let page = RegistrationsPage {
        layout: Layout::of(&ctx).with_notice(q.text()),
        groups,
        total: regs.len(),
        can_add: keys.iter().any(LicenseKey::is_active),
        persist_records,
    };
    Ok(render(StatusCode::OK, &page))
}

/// The registration at `subdomain` in the user's account, or a 404 page.
pub(super) async fn find(
    state: &AppState,
    ctx: &Ctx,
    account: certdns_core::AccountId,
    sub: &str,
) -> Result<Registration, PageError> {
    let subdomain = sub.parse::<Subdomain>().map_err(|_| PageError::not_found(ctx))?;
    state.core.registration_by_subdomain(account, subdomain).await?.ok_or_else(|| PageError::not_found(ctx))
}

async fn registration_page(
    State(state): Shared,
    User(user, ctx): User,
    Path(sub): Path<String>,
    Query(q): Query<RegistrationQuery>,
) -> Page {
    let reg = find(&state, &ctx, user.account.id, &sub).await?;
    if reg.kind == RegistrationKind::Persist {
        return Ok(Redirect::to(&format!("/persist/{}", reg.subdomain)).into_response());
    }
    let form = DomainForm::current(&reg);
    show_registration(&state, &ctx, &reg, q, form, StatusCode::OK).await
}

/// The domain form as the page shows it.
struct DomainForm {
    input: String,
    error: Option<String>,
    conflict: Option<Conflict>,
}

impl DomainForm {
    fn current(reg: &Registration) -> Self {
        Self { input: reg.domain.as_ref().map(Domain::unicode).unwrap_or_default(), error: None, conflict: None }
    }
}

/// The registration page, with the CNAME check and CAA records when asked for.
async fn show_registration(
    state: &AppState,
    ctx: &Ctx,
    reg: &Registration,
    q: RegistrationQuery,
    form: DomainForm,
    status: StatusCode,
) -> Page {
    let row = reg_row(state, reg);
    let check = match (&q.check, reg.challenge_name()) {
        (Some(_), Some(name)) => {
            let status = check_challenge_name(state.config.resolver, &name, &row.fulldomain).await;
            Some(cname_advice::advise(&status, &row.cname_name, &row.fulldomain, state.config.resolver))
        }
        (Some(_), None) => Some(cname_advice::no_domain()),
        _ => None,
    };
    // CAA records name the domain: without one the form waits.
    let (caa, caa_error, ca_domain) = match (&reg.domain, q.account_uri.as_deref().filter(|u| !u.trim().is_empty())) {
        (Some(domain), Some(uri)) => match caa_records(domain.as_str(), uri, q.ca.as_deref()) {
            Ok((records, ca)) => (records, None, ca),
            Err(e) => (Vec::new(), Some(e), q.ca.clone().unwrap_or_default()),
        },
        _ => (Vec::new(), None, q.ca.clone().unwrap_or_default()),
    };
    let key = reg.license_key_id.as_ref().map(|k| k.to_string()).unwrap_or_else(|| "none".into());
    let (statuses, history) = tokio::try_join!(
        state.store.delegation_statuses(reg.account_id),
        state.store.delegation_history(reg.account_id, reg.id)
    )?;
    let statuses: HashMap<_, _> = statuses.into_iter().map(|s| (s.registration_id, s)).collect();
    let row = RegRow { delegation: badge(reg, &statuses), ..row };
    let notice = q.notice.as_deref().and_then(super::notice_text);
    let page = RegistrationPage {
        layout: Layout::of(ctx).with_notice(notice),
        reg: row,
        key,
        allow_from: allow_from_text(&reg.allow_from),
        check,
        account_uri: q.account_uri.unwrap_or_default(),
        ca_domain,
        caa,
        caa_error,
        domain_input: form.input,
        domain_error: form.error,
        conflict: form.conflict,
        history: changes(&history),
    };
    Ok(render(status, &page))
}

#[derive(Deserialize)]
struct DomainFields {
    #[serde(default)]
    domain: String,
    /// `set` (the default), `clear`, or `move` (the confirmed take-over).
    #[serde(default)]
    action: String,
}

/// Sets, changes, clears or (confirmed) moves here a registration's domain.
/// A domain another registration of the account holds is never taken silently:
/// the page names that registration and offers "Move it here".
async fn set_domain(
    State(state): Shared,
    User(user, ctx): User,
    Path(sub): Path<String>,
    Form(f): Form<DomainFields>,
) -> Page {
    let account = user.account.id;
    let who = Actor { account, peer: ctx.peer, via: "portal" };
    let reg = find(&state, &ctx, account, &sub).await?;
    let domain = match f.action.as_str() {
        "clear" => None,
        _ => match Domain::parse(&f.domain) {
            Ok(d) => Some(d),
            Err(e) => {
                let form = DomainForm { input: f.domain.clone(), error: Some(domain_error_text(&e)), conflict: None };
                return show_registration(
                    &state,
                    &ctx,
                    &reg,
                    RegistrationQuery::default(),
                    form,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            }
        },
    };
    let notice = match actions::set_domain(&state, who, &reg, domain.as_ref(), f.action == "move").await {
        Ok(DomainChange::Cleared) => "domain_cleared",
        Ok(DomainChange::Moved) => "domain_moved",
        Ok(DomainChange::Set) => "domain_set",
        Ok(DomainChange::Unchanged) => {
            if domain.is_some() {
                "domain_set"
            } else {
                "domain_cleared"
            }
        }
        Err(ActionError::DomainTaken(other)) => {
            let conflict = domain.as_ref().map(|d| conflict_with(&state, d, &other));
            let form = DomainForm { input: f.domain.clone(), error: None, conflict };
            return show_registration(&state, &ctx, &reg, RegistrationQuery::default(), form, StatusCode::CONFLICT)
                .await;
        }
        Err(ActionError::Invalid(error)) => {
            let form = DomainForm { input: f.domain.clone(), error: Some(error), conflict: None };
            return show_registration(&state, &ctx, &reg, RegistrationQuery::default(), form, StatusCode::CONFLICT)
                .await;
        }
        Err(e) => return Err(PageError::from_action(&ctx, e)),
    };
    Ok(Redirect::to(&format!("/registrations/{}?notice={notice}", reg.subdomain)).into_response())
}

/// A dns-account-01 binding refused by the store.
pub(super) const SAME_ACME_ACCOUNT: &str = crate::actions::SAME_ACME_ACCOUNT;

pub(super) fn conflict_with(state: &AppState, domain: &Domain, other: &Registration) -> Conflict {
    Conflict {
        domain: domain.as_str().to_owned(),
        domain_unicode: domain.unicode(),
        other_subdomain: other.subdomain.to_string(),
        other_fulldomain: state.fulldomain(other.subdomain),
        other_created: when(other.created_at),
    }
}

async fn delete_registration(State(state): Shared, User(user, ctx): User, Path(sub): Path<String>) -> Page {
    let reg = find(&state, &ctx, user.account.id, &sub).await?;
    let who = Actor { account: user.account.id, peer: ctx.peer, via: "portal" };
    actions::delete_registration(&state, who, &reg).await.map_err(|e| PageError::from_action(&ctx, e))?;
    Ok(Redirect::to("/registrations?notice=deleted").into_response())
}

/// The networks allowed to send updates, as a person reads them.
fn allow_from_text(allow: &certdns_core::AllowFrom) -> String {
    let nets: Vec<String> = allow.as_strings().map(|n| n.to_string()).collect();
    if nets.is_empty() { "any address".to_owned() } else { nets.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_fall_back_from_domain_to_subject() {
        let reg = |domain: Option<&str>, subject: Option<&str>| Registration {
            id: certdns_core::RegistrationId::generate(),
            account_id: certdns_core::AccountId::generate(),
            license_key_id: None,
            username: certdns_core::Username::generate(),
            password_hash: certdns_core::Secret::generate().hash(),
            subdomain: Subdomain::generate(),
            allow_from: certdns_core::AllowFrom::default(),
            subject: subject.map(str::to_owned),
            domain: domain.and_then(|d| Domain::parse(d).ok()),
            password_sealed: None,
            acme_account_url: None,
            kind: certdns_core::RegistrationKind::Challenge,
            created_at: certdns_core::now(),
            last_update_at: None,
        };
        assert_eq!(title_of(&reg(Some("xn--bcher-kva.example"), Some("other.example"))), "bücher.example");
        assert_eq!(title_of(&reg(None, Some("*.shop.example.com"))), "*.shop.example.com");
        assert_eq!(title_of(&reg(None, None)), "");
    }

    #[test]
    fn refused_domains_say_why() {
        let long = format!("{}.com", vec!["a".repeat(50); 5].join("."));
        let text = |input: &str| Domain::parse(input).map_err(|e| domain_error_text(&e)).unwrap_err();
        assert_eq!(text("a.*.example.com"), "That domain cannot be used: only a leading \"*.\" may hold a wildcard.");
        // UTS 46 refuses the length itself, so the reason is the syntax one.
        assert!(text(&long).starts_with("That domain cannot be used: "));
    }

    #[test]
    fn names_relative_to_the_zone() {
        let rel = |s: &str| cname_in_zone(s, CHALLENGE_LABEL);
        let pair = |z: &str, r: &str| Some((z.to_owned(), r.to_owned()));
        assert_eq!(rel("www.example.com"), pair("example.com", "_acme-challenge.www"));
        assert_eq!(rel("*.example.com"), pair("example.com", "_acme-challenge"));
        assert_eq!(rel("Example.COM."), pair("example.com", "_acme-challenge"));
        assert_eq!(rel("a.b.example.co.uk"), pair("example.co.uk", "_acme-challenge.a.b"));
        assert_eq!(rel(""), None);
        assert_eq!(rel("co.uk"), None, "a public suffix is nobody's zone");
        assert_eq!(cname_in_zone("www.example.com", PERSIST_LABEL), pair("example.com", "_validation-persist.www"));
    }

    #[test]
    fn allow_from_reads_as_words() {
        assert_eq!(allow_from_text(&certdns_core::AllowFrom::default()), "any address");
        let two = certdns_core::AllowFrom::parse(&["192.0.2.0/24", "2001:db8::/32"]).unwrap();
        assert_eq!(allow_from_text(&two), "192.0.2.0/24, 2001:db8::/32");
    }
}
