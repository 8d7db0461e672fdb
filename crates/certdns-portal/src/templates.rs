//! The frame every page shares ([`Layout`]), the plain message page, and
//! rendering. Each page's own model lives with its handlers in `pages/`
//! (askama templates in `web/templates`).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::session::{Ctx, CurrentUser};

/// What every page's frame needs.
pub struct Layout {
    pub csrf: String,
    pub email: Option<String>,
    pub operator: bool,
    pub unverified: bool,
    pub notice: Option<String>,
    /// The navigation section of this page (`keys`, `registrations`, …).
    pub section: String,
    /// Billing is on (see [`crate::session::Ctx::billing`]).
    pub billing: bool,
}

impl Layout {
    pub fn anonymous(csrf: String) -> Self {
        Self {
            csrf,
            email: None,
            operator: false,
            unverified: false,
            notice: None,
            section: String::new(),
            billing: false,
        }
    }

    pub fn of(ctx: &Ctx) -> Self {
        let layout = match &ctx.user {
            Some(u) => Self::user(u, ctx.csrf.clone()),
            None => Self::anonymous(ctx.csrf.clone()),
        };
        Self { section: ctx.section.clone(), billing: ctx.billing, ..layout }
    }

    pub fn user(u: &CurrentUser, csrf: String) -> Self {
        Self {
            csrf,
            email: Some(u.account.email.to_string()),
            operator: u.is_operator(),
            // Operators are made by the CLI or the first start, with no inbox to
            // confirm (often a placeholder address): no nagging banner for them.
            unverified: !u.email_verified && !u.is_operator(),
            notice: None,
            section: String::new(),
            billing: false,
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
