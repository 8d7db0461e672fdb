//! Registrations: the list per license key, one registration with its CNAME
//! check and CAA advice, and delete (the DNS stops answering at once).

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use certdns_core::{AuditKind, Registration, Subdomain};
use serde::Deserialize;

use super::{NoticeQuery, Page, Shared, when, when_opt};
use crate::caa::caa_records;
use crate::cname_advice::{self, Advice};
use crate::error::PageError;
use crate::session::{Ctx, User};
use crate::state::AppState;
use crate::templates::{Layout, render};
use certdns_delegation::check_cname;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/registrations", get(registrations_page))
        .route("/registrations/{subdomain}", get(registration_page))
        .route("/registrations/{subdomain}/delete", post(delete_registration))
}

struct RegRow {
    subdomain: String,
    subject: String,
    fulldomain: String,
    cname_name: String,
    /// The customer's zone as the public suffix list sees it (`example.com`),
    /// and the CNAME's name relative to it (`_acme-challenge.www`); empty when
    /// the subject says too little.
    cname_zone: String,
    cname_relative: String,
    created: String,
    last_update: String,
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
}

#[derive(Deserialize)]
struct RegistrationQuery {
    #[serde(default)]
    check: Option<String>,
    #[serde(default)]
    account_uri: Option<String>,
    #[serde(default)]
    ca: Option<String>,
}

/// The name the customer's CNAME lives at, for a registration's subject
/// (`*.example.com` and `example.com` share `_acme-challenge.example.com`).
fn cname_name(subject: &str) -> String {
    let base = subject.trim_start_matches("*.").trim_end_matches('.');
    if base.is_empty() { "_acme-challenge.<your domain>".into() } else { format!("_acme-challenge.{base}") }
}

/// The registrable domain of `subject` (its likely zone) and the CNAME's name
/// relative to it: `www.example.co.uk` → (`example.co.uk`, `_acme-challenge.www`).
/// A zone delegated further down (`shop.example.com` as a zone of its own) is
/// the customer's to know; the page says which zone the relative name assumes.
fn cname_in_zone(subject: &str) -> Option<(String, String)> {
    let base = subject.trim_start_matches("*.").trim_end_matches('.').to_ascii_lowercase();
    let zone = psl::domain_str(&base)?.to_owned();
    let relative = match base.strip_suffix(&zone).map(|rest| rest.trim_end_matches('.')) {
        Some("") => "_acme-challenge".to_owned(),
        Some(rest) => format!("_acme-challenge.{rest}"),
        None => return None,
    };
    Some((zone, relative))
}

fn reg_row(state: &AppState, r: &Registration) -> RegRow {
    let subject = r.subject.clone().unwrap_or_default();
    let (cname_zone, cname_relative) = cname_in_zone(&subject).unwrap_or_default();
    RegRow {
        subdomain: r.subdomain.to_string(),
        cname_name: cname_name(&subject),
        cname_zone,
        cname_relative,
        subject,
        fulldomain: state.fulldomain(r.subdomain),
        created: when(r.created_at),
        last_update: when_opt(r.last_update_at, "no update yet"),
    }
}

async fn registrations_page(State(state): Shared, User(user, ctx): User, Query(q): Query<NoticeQuery>) -> Page {
    let id = user.account.id;
    let (regs, keys) = tokio::try_join!(state.core.list_registrations(id), state.core.list_license_keys(id))?;
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
    let page = RegistrationsPage { layout: Layout::of(&ctx).with_notice(q.text()), groups, total: regs.len() };
    Ok(render(StatusCode::OK, &page))
}

/// The registration at `subdomain` in the user's account, or a 404 page.
async fn find(
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
    let row = reg_row(&state, &reg);
    let check = match (&q.check, &reg.subject) {
        (Some(_), Some(subject)) => {
            let status = check_cname(state.config.resolver, subject, &row.fulldomain).await;
            Some(cname_advice::advise(&status, &row.cname_name, &row.fulldomain, state.config.resolver))
        }
        (Some(_), None) => Some(cname_advice::no_domain()),
        _ => None,
    };
    let (caa, caa_error, ca_domain) = match q.account_uri.as_deref().filter(|u| !u.trim().is_empty()) {
        Some(uri) => match caa_records(&row.subject, uri, q.ca.as_deref()) {
            Ok((records, ca)) => (records, None, ca),
            Err(e) => (Vec::new(), Some(e), q.ca.clone().unwrap_or_default()),
        },
        None => (Vec::new(), None, q.ca.clone().unwrap_or_default()),
    };
    let key = reg.license_key_id.as_ref().map(|k| k.to_string()).unwrap_or_else(|| "none".into());
    let page = RegistrationPage {
        layout: Layout::of(&ctx),
        reg: row,
        key,
        allow_from: allow_from_text(&reg.allow_from),
        check,
        account_uri: q.account_uri.unwrap_or_default(),
        ca_domain,
        caa,
        caa_error,
    };
    Ok(render(StatusCode::OK, &page))
}

async fn delete_registration(State(state): Shared, User(user, ctx): User, Path(sub): Path<String>) -> Page {
    let reg = find(&state, &ctx, user.account.id, &sub).await?;
    let subdomain =
        state.sync.delete_registration(user.account.id, reg.id).await.map_err(PageError::or_not_found(&ctx))?;
    let detail = serde_json::json!({ "subdomain": subdomain.to_string(), "via": "portal" });
    state.audit(Some(user.account.id), AuditKind::RegistrationDeleted, ctx.peer, detail).await;
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
    fn cname_names() {
        assert_eq!(cname_name("www.example.com"), "_acme-challenge.www.example.com");
        assert_eq!(cname_name("*.example.com."), "_acme-challenge.example.com");
        assert_eq!(cname_name(""), "_acme-challenge.<your domain>");
    }

    #[test]
    fn names_relative_to_the_zone() {
        let rel = |s: &str| cname_in_zone(s);
        let pair = |z: &str, r: &str| Some((z.to_owned(), r.to_owned()));
        assert_eq!(rel("www.example.com"), pair("example.com", "_acme-challenge.www"));
        assert_eq!(rel("*.example.com"), pair("example.com", "_acme-challenge"));
        assert_eq!(rel("Example.COM."), pair("example.com", "_acme-challenge"));
        assert_eq!(rel("a.b.example.co.uk"), pair("example.co.uk", "_acme-challenge.a.b"));
        assert_eq!(rel(""), None);
        assert_eq!(rel("co.uk"), None, "a public suffix is nobody's zone");
    }

    #[test]
    fn allow_from_reads_as_words() {
        assert_eq!(allow_from_text(&certdns_core::AllowFrom::default()), "any address");
        let two = certdns_core::AllowFrom::parse(&["192.0.2.0/24", "2001:db8::/32"]).unwrap();
        assert_eq!(allow_from_text(&two), "192.0.2.0/24, 2001:db8::/32");
    }
}
