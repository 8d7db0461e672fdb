//! The Alerts page: which alerts are mailed, the account's webhook endpoints
//! (add, send a test event, remove; the signing secret), and the log of
//! webhook deliveries with every attempt's outcome. Every form redirects
//! (Post/Redirect/Get), so a reload never repeats it.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use certdns_core::AuditKind;
use certdns_store::{DeliveryState, WebhookEndpoint};

use super::{NoticeQuery, Page, Shared};
use crate::alerts::{EventType, deliveries};
use crate::dates::{at_unix, when_ago, when_unix};
use crate::error::PageError;
use crate::session::{Ctx, CurrentUser, User};
use crate::state::AppState;
use crate::templates::{Layout, render};

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/alerts", get(alerts_page))
        .route("/alerts/email", post(save_email))
        .route("/alerts/webhooks", post(add_webhook))
        .route("/alerts/webhooks/{id}/test", post(send_test))
        .route("/alerts/webhooks/{id}/delete", post(delete_webhook))
}

/// Endpoints per account: enough for a chat channel, a pager and a script.
const MAX_ENDPOINTS: usize = 10;
/// Deliveries shown in the log.
const LOG_ROWS: u32 = 50;

struct Choice {
    name: &'static str,
    describe: &'static str,
    on: bool,
}

struct EndpointRow {
    id: String,
    url: String,
    events: Vec<&'static str>,
    secret: String,
    created: String,
}

struct DeliveryRow {
    at: String,
    event: String,
    url: String,
    /// `delivered`, `retrying` or `failed`.
    state: &'static str,
    attempts: u32,
    answer: String,
    next: String,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    layout: Layout,
    email: Vec<Choice>,
    endpoints: Vec<EndpointRow>,
    deliveries: Vec<DeliveryRow>,
    choosable: Vec<Choice>,
    error: Option<String>,
    url: String,
    full: bool,
}

fn endpoint_row(e: &WebhookEndpoint) -> EndpointRow {
    EndpointRow {
        id: e.id.to_string(),
        url: e.url.clone(),
        events: e.events.iter().filter_map(|t| EventType::parse(t)).map(|t| t.as_str()).collect(),
        secret: e.secret.clone(),
        created: when_unix(e.created_at),
    }
}

/// What the page shows after a form: a notice, or an error with the URL typed.
struct Outcome {
    notice: Option<String>,
    error: Option<String>,
    url: String,
}

async fn page(state: &AppState, user: &CurrentUser, ctx: &Ctx, outcome: Outcome) -> Page {
    let Outcome { notice, error, url } = outcome;
    let alerts = state.core.alerts();
    let account = user.account.id;
    let off = alerts.email_settings(account).await?;
    let email = EventType::CHOOSABLE
        .iter()
        .map(|t| Choice {
            name: t.as_str(),
            describe: t.describe(),
            on: !off.iter().any(|(name, on)| name == t.as_str() && !on),
        })
        .collect();
    let endpoints = alerts.webhooks(account).await?;
    let now = certdns_core::now();
    let deliveries = alerts
        .deliveries(account, LOG_ROWS)
        .await?
        .into_iter()
        .map(|d| DeliveryRow {
            at: at_unix(d.created_at).map(|t| when_ago(t, now)).unwrap_or_default(),
            event: d.event_type.clone(),
            url: endpoints.iter().find(|e| e.id == d.endpoint_id).map(|e| e.url.clone()).unwrap_or_default(),
            state: match d.state {
                DeliveryState::Delivered => "delivered",
                DeliveryState::Pending => "retrying",
                DeliveryState::Failed => "failed",
            },
            attempts: d.attempts,
            answer: match (d.last_status, d.last_error.is_empty()) {
                (_, false) => d.last_error.clone(),
                (Some(s), true) => format!("HTTP {s}"),
                (None, true) => "not tried yet".into(),
            },
            next: if d.state == DeliveryState::Pending { when_unix(d.next_attempt_at) } else { String::new() },
        })
        .collect();
    let choosable =
        EventType::CHOOSABLE.iter().map(|t| Choice { name: t.as_str(), describe: t.describe(), on: true }).collect();
    let page = AlertsPage {
        layout: Layout::of(ctx).with_notice(notice),
        email,
        full: endpoints.len() >= MAX_ENDPOINTS,
        endpoints: endpoints.iter().map(endpoint_row).collect(),
        deliveries,
        choosable,
        error: error.clone(),
        url,
    };
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok(render(status, &page))
}

async fn alerts_page(State(state): Shared, User(user, ctx): User, Query(q): Query<NoticeQuery>) -> Page {
    page(&state, &user, &ctx, Outcome { notice: q.text(), error: None, url: String::new() }).await
}

/// Repeated keys (`email=…&email=…`) as pairs.
type Pairs = Vec<(String, String)>;

fn chosen(form: &Pairs, field: &str) -> Vec<EventType> {
    form.iter().filter(|(k, _)| k == field).filter_map(|(_, v)| EventType::parse(v)).collect()
}

async fn save_email(State(state): Shared, User(user, ctx): User, Form(form): Form<Pairs>) -> Page {
    let on = chosen(&form, "email");
    let alerts = state.core.alerts();
    let mut changed = serde_json::Map::new();
    for t in EventType::CHOOSABLE {
        let mail = on.contains(&t);
        alerts.set_email_setting(user.account.id, t.as_str(), mail).await?;
        changed.insert(t.as_str().to_owned(), mail.into());
    }
    state.audit(Some(user.account.id), AuditKind::AlertSettingsChanged, ctx.peer, changed.into()).await;
    Ok(Redirect::to("/alerts?notice=alert_settings_saved").into_response())
}

async fn add_webhook(State(state): Shared, User(user, ctx): User, Form(form): Form<Pairs>) -> Page {
    let url_text = form.iter().find(|(k, _)| k == "url").map(|(_, v)| v.clone()).unwrap_or_default();
    let events = chosen(&form, "events");
    let refuse =
        |error: String| page(&state, &user, &ctx, Outcome { notice: None, error: Some(error), url: url_text.clone() });
    let url = match certdns_webhooks::check_url(&url_text, state.config.webhooks_allow_private) {
        Ok(url) => url,
        Err(e) => return refuse(format!("That URL cannot receive webhooks: {e}.")).await,
    };
    if events.is_empty() {
        return refuse("Choose at least one event to send to it.".into()).await;
    }
    let alerts = state.core.alerts();
    if alerts.webhooks(user.account.id).await?.len() >= MAX_ENDPOINTS {
        return refuse(format!("An account has at most {MAX_ENDPOINTS} endpoints; remove one first.")).await;
    }
    let endpoint = WebhookEndpoint {
        id: uuid::Uuid::new_v4(),
        account_id: user.account.id,
        url,
        secret: certdns_webhooks::new_secret(),
        events: events.iter().map(|t| t.as_str().to_owned()).collect(),
        created_at: certdns_core::now().unix_timestamp(),
    };
    alerts.create_webhook(&endpoint).await?;
    let detail =
        serde_json::json!({ "webhook": endpoint.id.to_string(), "url": endpoint.url, "events": endpoint.events });
    state.audit(Some(user.account.id), AuditKind::WebhookCreated, ctx.peer, detail).await;
    Ok(Redirect::to("/alerts?notice=webhook_added").into_response())
}

async fn owned(state: &AppState, user: &CurrentUser, ctx: &Ctx, id: &str) -> Result<WebhookEndpoint, PageError> {
    let id: uuid::Uuid = id.parse().map_err(|_| PageError::not_found(ctx))?;
    let endpoints = state.core.alerts().webhooks(user.account.id).await?;
    endpoints.into_iter().find(|e| e.id == id).ok_or_else(|| PageError::not_found(ctx))
}

async fn send_test(State(state): Shared, User(user, ctx): User, Path(id): Path<String>) -> Page {
    let endpoint = owned(&state, &user, &ctx, &id).await?;
    let data = serde_json::json!({ "message": "A test event from the certdns portal. Your endpoint received it." });
    let now = certdns_core::now().unix_timestamp();
    let queued = deliveries(std::slice::from_ref(&endpoint), EventType::Test, user.account.id, &data, now);
    state.core.alerts().enqueue_deliveries(&queued).await?;
    Ok(Redirect::to("/alerts?notice=webhook_test_sent").into_response())
}

async fn delete_webhook(State(state): Shared, User(user, ctx): User, Path(id): Path<String>) -> Page {
    let endpoint = owned(&state, &user, &ctx, &id).await?;
    state.core.alerts().delete_webhook(user.account.id, endpoint.id).await.map_err(PageError::or_not_found(&ctx))?;
    let detail = serde_json::json!({ "webhook": endpoint.id.to_string(), "url": endpoint.url });
    state.audit(Some(user.account.id), AuditKind::WebhookDeleted, ctx.peer, detail).await;
    Ok(Redirect::to("/alerts?notice=webhook_removed").into_response())
}
