//! Page models (askama templates in `web/templates`).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::session::{Ctx, CurrentUser};

/// What every page's frame needs.
pub struct Layout {
    pub csrf: String,
    pub email: Option<String>,
    pub operator: bool,
    pub suspended: bool,
    pub unverified: bool,
    pub notice: Option<String>,
}

impl Layout {
    pub fn anonymous(csrf: String) -> Self {
        Self { csrf, email: None, operator: false, suspended: false, unverified: false, notice: None }
    }

    pub fn of(ctx: &Ctx) -> Self {
        match &ctx.user {
            Some(u) => Self::user(u, ctx.csrf.clone()),
            None => Self::anonymous(ctx.csrf.clone()),
        }
    }

    pub fn user(u: &CurrentUser, csrf: String) -> Self {
        Self {
            csrf,
            email: Some(u.account.email.to_string()),
            operator: u.is_operator(),
            suspended: u.account.status != certdns_core::AccountStatus::Active,
            unverified: !u.email_verified,
            notice: None,
        }
    }

    pub fn with_notice(mut self, notice: Option<String>) -> Self {
        self.notice = notice;
        self
    }
}

pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct Message {
    pub layout: Layout,
    pub title: String,
    pub message: String,
    pub link: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct Login {
    pub layout: Layout,
    pub email: String,
    pub error: Option<String>,
    pub signup_open: bool,
}

#[derive(Template)]
#[template(path = "signup.html")]
pub struct Signup {
    pub layout: Layout,
    pub email: String,
    pub error: Option<String>,
    pub min_len: usize,
}

#[derive(Template)]
#[template(path = "forgot.html")]
pub struct Forgot {
    pub layout: Layout,
    pub sent: bool,
}

#[derive(Template)]
#[template(path = "reset.html")]
pub struct Reset {
    pub layout: Layout,
    pub token: String,
    pub error: Option<String>,
    pub min_len: usize,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub layout: Layout,
    pub email: String,
    pub created: String,
    pub verified: Option<String>,
    pub password_error: Option<String>,
    pub delete_error: Option<String>,
    pub min_len: usize,
}

pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
    pub registrations: u64,
    pub active: bool,
    pub revoked: String,
    pub grace_until: Option<String>,
}

#[derive(Template)]
#[template(path = "keys.html")]
pub struct Keys {
    pub layout: Layout,
    pub keys: Vec<KeyRow>,
    pub error: Option<String>,
    pub name: String,
}

#[derive(Template)]
#[template(path = "key_created.html")]
pub struct KeyCreated {
    pub layout: Layout,
    pub name: String,
    pub id: String,
    pub base_url: String,
    pub rotated: bool,
    pub grace_until: String,
}

pub struct RegRow {
    pub subdomain: String,
    pub subject: String,
    pub fulldomain: String,
    pub cname_name: String,
    pub created: String,
    pub last_update: String,
}

pub struct RegGroup {
    pub title: String,
    pub key_id: String,
    pub rows: Vec<RegRow>,
}

#[derive(Template)]
#[template(path = "registrations.html")]
pub struct Registrations {
    pub layout: Layout,
    pub groups: Vec<RegGroup>,
    pub total: usize,
}

pub struct Check {
    pub code: String,
    pub headline: String,
    pub detail: String,
    pub fix: String,
}

#[derive(Template)]
#[template(path = "registration.html")]
pub struct RegistrationPage {
    pub layout: Layout,
    pub reg: RegRow,
    pub key: String,
    pub allow_from: String,
    pub check: Option<Check>,
    pub account_uri: String,
    pub ca_domain: String,
    pub caa: Vec<String>,
    pub caa_error: Option<String>,
}

pub struct AuditRow {
    pub at: String,
    pub kind: String,
    pub description: String,
    pub address: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct Audit {
    pub layout: Layout,
    pub events: Vec<AuditRow>,
    pub next: Option<i64>,
    pub first_page: bool,
}

pub struct UsageChart {
    pub name: String,
    pub id: String,
    pub total: u64,
    pub svg: String,
}

#[derive(Template)]
#[template(path = "usage.html")]
pub struct Usage {
    pub layout: Layout,
    pub charts: Vec<UsageChart>,
    pub since: String,
}

pub struct AdminRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub active: bool,
    pub verified: bool,
    pub created: String,
    pub keys: u64,
    pub registrations: u64,
    pub updates: u64,
    pub is_self: bool,
}

#[derive(Template)]
#[template(path = "admin_accounts.html")]
pub struct AdminAccounts {
    pub layout: Layout,
    pub accounts: Vec<AdminRow>,
}
