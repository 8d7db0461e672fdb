//! dns-account-01 on a registration's page: the ACME account URL it answers
//! for. With one, the CA asks `_<label>._acme-challenge.<domain>` (the label
//! derived from the URL, `certdns_core::AcmeAccountUrl`), so the page shows that
//! CNAME and checks that name; several ACME accounts can then validate one
//! domain at once, each through a registration of its own.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use certdns_core::{AcmeAccountUrl, AuditKind};
use certdns_store::StoreError;
use serde::Deserialize;

use super::registrations::{SAME_ACME_ACCOUNT, find};
use super::{Page, Shared};
use crate::error::PageError;
use crate::session::User;
use crate::templates::{Layout, render};

#[derive(Deserialize)]
pub(super) struct AcmeAccountFields {
    /// Empty: back to plain dns-01.
    #[serde(default)]
    account_url: String,
}

#[derive(askama::Template)]
#[template(path = "acme_account_refused.html")]
struct Refused {
    layout: Layout,
    subdomain: String,
    input: String,
    error: String,
}

/// Sets or clears the ACME account of a registration.
pub(super) async fn set_acme_account(
    State(state): Shared,
    User(user, ctx): User,
    Path(sub): Path<String>,
    Form(f): Form<AcmeAccountFields>,
) -> Page {
    let account = user.account.id;
    let reg = find(&state, &ctx, account, &sub).await?;
    let refused = |error: String, status: StatusCode| {
        let page = Refused {
            layout: Layout::of(&ctx),
            subdomain: reg.subdomain.to_string(),
            input: f.account_url.clone(),
            error,
        };
        Ok(render(status, &page))
    };
    let url = match f.account_url.trim() {
        "" => None,
        text => match AcmeAccountUrl::parse(text) {
            Ok(url) => Some(url),
            Err(e) => {
                return refused(format!("That is not an ACME account URL: {e}."), StatusCode::UNPROCESSABLE_ENTITY);
            }
        },
    };
    if url == reg.acme_account_url {
        return Ok(Redirect::to(&format!("/registrations/{}?notice=acme_account_set", reg.subdomain)).into_response());
    }
    match state.core.set_registration_acme_account(account, reg.id, url.as_ref()).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return refused(SAME_ACME_ACCOUNT.to_owned(), StatusCode::CONFLICT),
        Err(e) => return Err(PageError::or_not_found(&ctx)(e)),
    }
    let detail = serde_json::json!({
        "subdomain": reg.subdomain.to_string(),
        "acme_account_url": url.as_ref().map(AcmeAccountUrl::as_str),
        "label": url.as_ref().map(AcmeAccountUrl::label),
        "via": "portal",
    });
    state.audit(Some(account), AuditKind::RegistrationDomainSet, ctx.peer, detail).await;
    let notice = if url.is_some() { "acme_account_set" } else { "acme_account_cleared" };
    Ok(Redirect::to(&format!("/registrations/{}?notice={notice}", reg.subdomain)).into_response())
}
