//! dns-persist-01 records: the list with the form for a new one, one record
//! with its CNAME (`_validation-persist.<domain>` → the registration), its
//! check, the edit form and delete. What is checked and audited is
//! `crate::persist`, shared with the account API.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use certdns_core::{PersistRecord, Registration, RegistrationKind};
use serde::Deserialize;
use time::macros::format_description;

use super::delegation::badge;
use super::registrations::{RegRow, find, reg_row};
use super::{NoticeQuery, Page, Shared, when};
use crate::actions::{self, ActionError, Actor};
use crate::cname_advice::{self, Advice};
use crate::error::PageError;
use crate::persist::{self, AccountInput, RecordInput};
use crate::session::{Ctx, User};
use crate::state::AppState;
use crate::templates::{Layout, render};

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/persist", get(list_page).post(create))
        .route("/persist/{subdomain}", get(record_page).post(save))
        .route("/persist/{subdomain}/delete", post(delete))
}

/// The form's fields, as posted (and shown again when refused).
#[derive(Deserialize, Default, Clone)]
pub(super) struct PersistForm {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    issuer: String,
    /// `hashed` (the accounturi as given) or `compute`.
    #[serde(default)]
    account_mode: String,
    #[serde(default)]
    accounturi: String,
    #[serde(default)]
    account_url: String,
    #[serde(default)]
    jwk_thumbprint: String,
    #[serde(default)]
    account_hash_prefix: String,
    #[serde(default)]
    any_domain: Option<String>,
    #[serde(default)]
    wildcard: Option<String>,
    /// `YYYY-MM-DD` (the record expires at 00:00 UTC that day), or empty.
    #[serde(default)]
    persist_until: String,
}

impl PersistForm {
    fn of(record: &PersistRecord) -> Self {
        Self {
            issuer: record.issuer().to_owned(),
            account_mode: "hashed".into(),
            accounturi: record.account_uri().as_str().to_owned(),
            wildcard: record.wildcard().then(|| "on".into()),
            persist_until: record.persist_until().map(date).unwrap_or_default(),
            ..Self::default()
        }
    }

    pub fn computing(&self) -> bool {
        self.account_mode == "compute"
    }

    pub fn wildcard_on(&self) -> bool {
        self.wildcard.is_some()
    }

    pub fn any_domain_on(&self) -> bool {
        self.any_domain.is_some()
    }

    fn input(&self) -> Result<RecordInput, ActionError> {
        let account = if self.computing() {
            AccountInput::Computed {
                account_url: self.account_url.clone(),
                thumbprint: self.jwk_thumbprint.clone(),
                hash_prefix: self.account_hash_prefix.clone(),
                any_domain: self.any_domain_on(),
            }
        } else {
            AccountInput::Hashed(self.accounturi.clone())
        };
        let persist_until = match self.persist_until.trim() {
            "" => None,
            text => Some(unix_of_date(text).ok_or_else(|| {
                ActionError::Invalid(
                    "The expiry must be a date such as 2027-06-30 (the record ends at 00:00 UTC).".into(),
                )
            })?),
        };
        Ok(RecordInput { issuer: self.issuer.clone(), account, wildcard: self.wildcard_on(), persist_until })
    }
}

fn date(unix: i64) -> String {
    let format = format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(format).ok()).unwrap_or_default()
}

fn unix_of_date(text: &str) -> Option<i64> {
    let day = time::Date::parse(text, format_description!("[year]-[month]-[day]")).ok()?;
    Some(day.midnight().assume_utc().unix_timestamp())
}

/// One record as the list and its page show it.
pub(super) struct PersistRow {
    pub reg: RegRow,
    pub txt: String,
    pub issuer: String,
    pub accounturi: String,
    pub wildcard: bool,
    /// `2027-06-30 00:00 UTC`, or empty for none.
    pub until: String,
    pub expired: bool,
}

fn row(state: &AppState, reg: &Registration, record: &PersistRecord) -> PersistRow {
    PersistRow {
        reg: reg_row(state, reg),
        txt: record.to_txt(),
        issuer: record.issuer().to_owned(),
        accounturi: record.account_uri().as_str().to_owned(),
        wildcard: record.wildcard(),
        until: record
            .persist_until()
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .map(when)
            .unwrap_or_default(),
        expired: record.expired_at(certdns_core::now().unix_timestamp()),
    }
}

#[derive(Template)]
#[template(path = "persist_list.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<PersistRow>,
    form: PersistForm,
    error: Option<String>,
    /// The record of this account that already covers the domain asked for.
    exists: Option<String>,
}

#[derive(Template)]
#[template(path = "persist.html")]
struct RecordPage {
    layout: Layout,
    row: PersistRow,
    form: PersistForm,
    error: Option<String>,
    check: Option<Advice>,
}

async fn rows(state: &AppState, account: certdns_core::AccountId) -> Result<Vec<PersistRow>, PageError> {
    let (regs, statuses) =
        tokio::try_join!(state.core.list_registrations(account), state.store.delegation_statuses(account))?;
    let statuses: HashMap<_, _> = statuses.into_iter().map(|s| (s.registration_id, s)).collect();
    let mut rows = Vec::new();
    for reg in regs.iter().filter(|r| r.kind == RegistrationKind::Persist).rev() {
        if let Some(record) = persist::current(state, reg).await? {
            let mut row = row(state, reg, &record);
            row.reg.delegation = badge(reg, &statuses);
            rows.push(row);
        }
    }
    Ok(rows)
}

async fn show_list(
    state: &AppState,
    ctx: &Ctx,
    form: PersistForm,
    error: Option<String>,
    exists: Option<String>,
    status: StatusCode,
    notice: Option<String>,
) -> Page {
    let account = ctx.user.as_ref().map(|u| u.account.id).ok_or_else(|| PageError::not_found(ctx))?;
    let page = ListPage {
        layout: Layout::of(ctx).with_notice(notice),
        rows: rows(state, account).await?,
        form,
        error,
        exists,
    };
    Ok(render(status, &page))
}

async fn list_page(State(state): Shared, User(_user, ctx): User, Query(q): Query<NoticeQuery>) -> Page {
    let form = PersistForm { account_mode: "hashed".into(), ..PersistForm::default() };
    show_list(&state, &ctx, form, None, None, StatusCode::OK, q.text()).await
}

async fn create(State(state): Shared, User(user, ctx): User, Form(f): Form<PersistForm>) -> Page {
    let who = Actor { account: user.account.id, peer: ctx.peer, via: "portal" };
    let created = match f.input() {
        Ok(input) => persist::create(&state, who, &f.domain, &input).await,
        Err(e) => Err(e),
    };
    match created {
        Ok((reg, _)) => Ok(Redirect::to(&format!("/persist/{}?notice=persist_created", reg.subdomain)).into_response()),
        Err(ActionError::Invalid(e)) => {
            show_list(&state, &ctx, f, Some(e), None, StatusCode::UNPROCESSABLE_ENTITY, None).await
        }
        Err(ActionError::Refused { message, .. }) => {
            show_list(&state, &ctx, f, Some(message), None, StatusCode::FORBIDDEN, None).await
        }
        Err(ActionError::PersistExists(other)) => {
            let exists = Some(other.subdomain.to_string());
            show_list(&state, &ctx, f, None, exists, StatusCode::CONFLICT, None).await
        }
        Err(e) => Err(PageError::from_action(&ctx, e)),
    }
}

/// The persist registration at `sub` with its record, or the 404 page.
async fn find_persist(
    state: &AppState,
    ctx: &Ctx,
    user: &crate::session::CurrentUser,
    sub: &str,
) -> Result<(Registration, PersistRecord), PageError> {
    let reg = find(state, ctx, user.account.id, sub).await?;
    if reg.kind != RegistrationKind::Persist {
        return Err(PageError::not_found(ctx));
    }
    let record = persist::current(state, &reg).await?;
    Ok((reg, record.ok_or_else(|| PageError::not_found(ctx))?))
}

#[derive(Deserialize, Default)]
struct RecordQuery {
    #[serde(default)]
    check: Option<String>,
    #[serde(default)]
    notice: Option<String>,
}

async fn show_record(
    state: &AppState,
    ctx: &Ctx,
    reg: &Registration,
    record: &PersistRecord,
    (form, error): (PersistForm, Option<String>),
    q: RecordQuery,
    status: StatusCode,
) -> Page {
    let mut row = row(state, reg, record);
    let statuses = state.store.delegation_statuses(reg.account_id).await?;
    let statuses: HashMap<_, _> = statuses.into_iter().map(|s| (s.registration_id, s)).collect();
    row.reg.delegation = badge(reg, &statuses);
    let check = match (&q.check, reg.challenge_name()) {
        (Some(_), Some(name)) => {
            let found =
                certdns_delegation::check_challenge_name(state.config.resolver, &name, &row.reg.fulldomain).await;
            Some(cname_advice::advise(&found, &name, &row.reg.fulldomain, state.config.resolver))
        }
        _ => None,
    };
    let notice = q.notice.as_deref().and_then(super::notice_text);
    let page = RecordPage { layout: Layout::of(ctx).with_notice(notice), row, form, error, check };
    Ok(render(status, &page))
}

async fn record_page(
    State(state): Shared,
    User(user, ctx): User,
    Path(sub): Path<String>,
    Query(q): Query<RecordQuery>,
) -> Page {
    let (reg, record) = find_persist(&state, &ctx, &user, &sub).await?;
    show_record(&state, &ctx, &reg, &record, (PersistForm::of(&record), None), q, StatusCode::OK).await
}

async fn save(
    State(state): Shared,
    User(user, ctx): User,
    Path(sub): Path<String>,
    Form(f): Form<PersistForm>,
) -> Page {
    let (reg, record) = find_persist(&state, &ctx, &user, &sub).await?;
    let who = Actor { account: user.account.id, peer: ctx.peer, via: "portal" };
    let saved = match f.input() {
        Ok(input) => persist::replace(&state, who, &reg, &input).await,
        Err(e) => Err(e),
    };
    match saved {
        Ok(_) => Ok(Redirect::to(&format!("/persist/{}?notice=persist_saved", reg.subdomain)).into_response()),
        Err(ActionError::Invalid(e)) => {
            let q = RecordQuery::default();
            show_record(&state, &ctx, &reg, &record, (f, Some(e)), q, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(PageError::from_action(&ctx, e)),
    }
}

async fn delete(State(state): Shared, User(user, ctx): User, Path(sub): Path<String>) -> Page {
    let (reg, _) = find_persist(&state, &ctx, &user, &sub).await?;
    let who = Actor { account: user.account.id, peer: ctx.peer, via: "portal" };
    actions::delete_registration(&state, who, &reg).await.map_err(|e| PageError::from_action(&ctx, e))?;
    Ok(Redirect::to("/persist?notice=persist_deleted").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_dates_are_midnight_utc() {
        assert_eq!(unix_of_date("2027-01-01"), Some(1_798_761_600));
        assert_eq!(date(1_798_761_600), "2027-01-01");
        assert_eq!(unix_of_date("2027-13-01"), None);
        assert_eq!(unix_of_date("tomorrow"), None);
    }
}
