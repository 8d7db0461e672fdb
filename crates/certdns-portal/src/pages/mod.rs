//! The portal's pages, one module per resource, each with its own router:
//! sign-in and recovery ([`auth`]), the account ([`account`]), license keys
//! ([`keys`]), registrations and their domains ([`registrations`]), adding a
//! domain-bound registration ([`add_domain`]), the audit log and usage
//! ([`activity`]), personal access tokens for the account API ([`tokens`]),
//! plans and payment ([`billing`], only with billing on), the operator's
//! account list, search and account pages ([`admin`]), and the pages for
//! everyone: landing page, docs and API reference ([`public`]), status ([`status`]). [`routes`]
//! merges them. A secret made by a POST reaches the one page that shows it
//! through [`reveal`]. Every tenant-scoped lookup goes through the logged-in
//! account's id; ids from the URL are never trusted on their own.

mod account;
mod acme_account;
mod activity;
mod add_domain;
mod admin;
mod admin_account;
mod alerts;
mod auth;
mod billing;
mod delegation;
mod keys;
mod onboarding;
mod persist;
mod public;
mod registrations;
mod reveal;
mod status;
mod tokens;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde::Deserialize;

use crate::dates::{when, when_ago, when_opt};

use crate::error::PageError;
use crate::session::Context;
use crate::state::AppState;

type Shared = axum::extract::State<Arc<AppState>>;
/// What a page handler returns.
type Page = Result<Response, PageError>;

/// Every page (behind the session guard, which the caller adds).
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .merge(public::routes())
        .merge(status::routes())
        .merge(auth::routes())
        .merge(account::routes())
        .merge(keys::routes())
        .merge(registrations::routes())
        .merge(add_domain::routes())
        .merge(persist::routes())
        .merge(activity::routes())
        .merge(tokens::routes())
        .merge(alerts::routes())
        .merge(admin::routes())
        .merge(billing::routes())
        .fallback(not_found)
}

async fn not_found(Context(ctx): Context) -> PageError {
    PageError::not_found(&ctx)
}

fn with_cookie(mut r: Response, cookie: HeaderValue) -> Response {
    r.headers_mut().append(header::SET_COOKIE, cookie);
    r
}

/// `?notice=<code>`: the banner shown after a redirect.
#[derive(Deserialize)]
struct NoticeQuery {
    #[serde(default)]
    notice: Option<String>,
}

impl NoticeQuery {
    fn text(&self) -> Option<String> {
        notice_text(self.notice.as_deref()?)
    }
}

fn notice_text(code: &str) -> Option<String> {
    let text = match code {
        "welcome" => {
            "Welcome! Create a license key to connect your ACME client. We sent you a link to confirm your e-mail address."
        }
        "alert_settings_saved" => "Alert e-mail settings saved.",
        "webhook_added" => "Webhook endpoint added. Send it a test event to check it receives and verifies them.",
        "webhook_removed" => "Webhook endpoint removed. Nothing more is sent to it.",
        "webhook_test_sent" => "Test event queued; it is sent within seconds. Reload to see the delivery below.",
        "verification_sent" => "We sent a new confirmation link. It works for 24 hours.",
        "password_changed" => "Password changed. Your other sessions were signed out.",
        "signed_out_everywhere" => "Signed out on every device. Sign in again here to continue.",
        "revoked" => "The key is revoked. Clients using it are refused from now on.",
        "renamed" => "Key renamed.",
        "storage_on" => {
            "Storage access on: anyone holding this key can now read the passwords of the registrations made with it."
        }
        "storage_off" => "Storage access off: the key can no longer read registration passwords.",
        "domain_set" => "Domain saved. The CNAME and the check below use it.",
        "domain_moved" => "Domain moved here. The registration that held it has no domain now.",
        "domain_cleared" => "Domain removed. Set one to get the exact CNAME to create.",
        "token_revoked" => "Token revoked. Requests with it are refused from now on.",
        "acme_account_set" => {
            "ACME account saved: the CA asks for this account's own name (dns-account-01), shown below."
        }
        "acme_account_cleared" => {
            "ACME account removed: the registration answers plain dns-01 at _acme-challenge again."
        }
        "deleted" => "Registration deleted. Our DNS stopped answering for it; remove the CNAME from your zone too.",
        "suspended" => "Account suspended: its keys and registrations are refused at the API.",
        "unsuspended" => "Account reactivated.",
        "checkout_done" => {
            "Thank you! Your plan changes as soon as Stripe confirms the payment (usually within seconds)."
        }
        "checkout_cancelled" => "Checkout cancelled; nothing was charged.",
        "checkout_unknown" => "That checkout is not one of this account's, or it is not finished.",
        "stripe_unavailable" => {
            "Our payment provider could not be reached. Nothing was charged; try again in a minute."
        }
        "no_customer" => "There are no invoices or payment methods yet: choose a plan first.",
        "plan_set" => "Plan saved. It applies at once, and is in the account's audit log.",
        "persist_created" => "Record created and answered now. Create the CNAME below in your zone.",
        "persist_saved" => "Record saved. Our DNS answers the new one now.",
        "persist_deleted" => {
            "Record removed: our DNS no longer answers it, so CAs stop accepting it. Remove the CNAME from your zone too."
        }
        _ => return None,
    };
    Some(text.to_owned())
}
