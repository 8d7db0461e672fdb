//! Billing (only when billing is on): the account's plan and usage against
//! each limit, upgrade and downgrade through Stripe Checkout, the Stripe
//! customer portal for invoices and payment methods, the public pricing page,
//! and the operator's plan override.
//!
//! Stripe ids never come from the browser: the customer is created here and
//! stored on the account, the Checkout session names the account itself
//! (`client_reference_id`), and the success page reads the session from Stripe
//! and checks it belongs to the signed-in account. The plan itself changes
//! only through the signed webhook (`crate::billing`).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use certdns_billing::{AccountBilling, LimitKind, Plan, Standing};
use certdns_core::{AccountId, AuditKind, NewAuditEvent};
use certdns_store::{NameUpdates, StoreError};
use serde::Deserialize;

use super::{NoticeQuery, Page, Shared, when};
use crate::billing::PortalBilling;
use crate::error::{PageError, message};
use crate::session::{Context, Ctx, CurrentUser, User};
use crate::state::AppState;
use crate::templates::{Layout, render};

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/billing", get(billing_page))
        .route("/billing/checkout", post(checkout))
        .route("/billing/success", get(checkout_success))
        .route("/billing/portal", post(customer_portal))
        .route("/pricing", get(pricing_page))
        .route("/admin/accounts/{id}/plan", get(admin_plan_page).post(admin_set_plan))
}

/// One plan as the pages show it.
struct PlanCard {
    id: String,
    name: String,
    price: String,
    limits: Vec<String>,
    purchasable: bool,
    current: bool,
}

/// "1 license key", "50 registrations", "unlimited registrations".
fn limit_text(limit: Option<u64>, kind: LimitKind, after: &str) -> String {
    match limit {
        Some(n) => format!("{n} {}{after}", kind.noun(n)),
        None => format!("unlimited {}{after}", kind.noun(2)),
    }
}

fn card(plan: &Plan, current: Option<&str>) -> PlanCard {
    let l = plan.limits;
    PlanCard {
        id: plan.id.clone(),
        name: plan.name.clone(),
        price: plan.price.clone(),
        limits: vec![
            limit_text(l.registrations, LimitKind::Registrations, ""),
            limit_text(l.license_keys, LimitKind::LicenseKeys, ""),
            match l.txt_values {
                Some(n) => format!("{n} TXT values per name"),
                None => "no cap on TXT values per name".to_owned(),
            },
            limit_text(l.updates_per_day, LimitKind::UpdatesPerDay, " per name per day"),
        ],
        purchasable: plan.purchasable(),
        current: current == Some(plan.id.as_str()),
    }
}

/// "7 of 50 registrations" (or "7 registrations, no limit").
struct UsageLine {
    text: String,
    full: bool,
    /// At 80 % of the limit or more: shown before it bites.
    near: bool,
}

fn usage_line(used: u64, limit: Option<u64>, kind: LimitKind) -> UsageLine {
    match limit {
        Some(n) => UsageLine {
            text: format!("{used} of {n} {}", kind.noun(n)),
            full: used >= n,
            near: used < n && used.saturating_mul(5) >= n.saturating_mul(4),
        },
        None => UsageLine { text: format!("{used} {}, no limit", kind.noun(used)), full: false, near: false },
    }
}

/// Today's updates of the busiest name against the plan's updates per name and day.
fn updates_line(state: &AppState, busiest: Option<&NameUpdates>, limit: Option<u64>) -> UsageLine {
    let used = busiest.map_or(0, |b| b.updates);
    let mut line = usage_line(used, limit, LimitKind::UpdatesPerDay);
    line.text = match busiest {
        Some(b) => {
            let name = b.domain.clone().unwrap_or_else(|| state.fulldomain(b.subdomain));
            format!("{} today on your busiest name, {name}", line.text)
        }
        None => format!("{} today per name", line.text),
    };
    line
}

/// What the customer is told about their payment standing.
fn standing_text(standing: Standing) -> Option<String> {
    Some(match standing {
        Standing::Good => return None,
        Standing::Grace { until } => format!(
            "A payment failed. Everything keeps working until {}; update your payment method to keep it that way.",
            when(until)
        ),
        Standing::GrowthStopped { updates_until } => format!(
            "A payment is overdue: new registrations are paused. Existing registrations keep renewing until at \
             least {}. Paying the invoice restores everything at once.",
            when(updates_until)
        ),
        Standing::UpdatesStopped => "A payment is long overdue: registrations no longer accept updates, so \
             certificates will not renew. Paying the invoice restores everything at once."
            .to_owned(),
    })
}

#[derive(Template)]
#[template(path = "billing.html")]
struct BillingPage {
    layout: Layout,
    plan_name: String,
    overridden: bool,
    status: Option<String>,
    warning: Option<String>,
    usage: Vec<UsageLine>,
    txt_values: Option<u64>,
    updates_limited: bool,
    plans: Vec<PlanCard>,
    has_customer: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "pricing.html")]
struct PricingPage {
    layout: Layout,
    plans: Vec<PlanCard>,
    signed_in: bool,
}

/// The billing state, or the 404 page when billing is off.
fn billing_on<'a>(state: &'a AppState, ctx: &Ctx) -> Result<&'a PortalBilling, PageError> {
    state.billing.as_ref().ok_or_else(|| PageError::not_found(ctx))
}

async fn account_billing(
    billing: &PortalBilling,
    state: &AppState,
    account: AccountId,
) -> Result<AccountBilling, PageError> {
    Ok(billing.entitlements.account(state.core.billing().as_ref(), account).await?)
}

async fn render_billing(
    state: &AppState,
    user: &CurrentUser,
    ctx: &Ctx,
    notice: Option<String>,
    error: Option<String>,
) -> Page {
    let billing = billing_on(state, ctx)?;
    let account = account_billing(billing, state, user.account.id).await?;
    let limits = account.plan.limits;
    let page = BillingPage {
        layout: Layout::of(ctx).with_notice(notice),
        plan_name: account.plan.name.clone(),
        overridden: account.record.plan_override.is_some(),
        status: account.record.subscription_status.clone(),
        warning: standing_text(account.standing),
        usage: vec![
            usage_line(account.registrations, limits.registrations, LimitKind::Registrations),
            usage_line(account.license_keys, limits.license_keys, LimitKind::LicenseKeys),
            updates_line(state, account.busiest_today.first(), limits.updates_per_day),
        ],
        txt_values: limits.txt_values,
        updates_limited: limits.updates_per_day.is_some(),
        plans: billing.entitlements.catalogue.all().map(|p| card(p, Some(account.plan.id.as_str()))).collect(),
        has_customer: account.record.stripe_customer_id.is_some(),
        error,
    };
    Ok(render(if page.error.is_some() { StatusCode::BAD_GATEWAY } else { StatusCode::OK }, &page))
}

async fn billing_page(State(state): Shared, User(user, ctx): User, Query(q): Query<NoticeQuery>) -> Page {
    render_billing(&state, &user, &ctx, q.text(), None).await
}

async fn pricing_page(State(state): Shared, Context(ctx): Context) -> Page {
    let billing = billing_on(&state, &ctx)?;
    let plans = billing.entitlements.catalogue.all().map(|p| card(p, None)).collect();
    Ok(render(StatusCode::OK, &PricingPage { layout: Layout::of(&ctx), plans, signed_in: ctx.user.is_some() }))
}

#[derive(Deserialize)]
struct PlanForm {
    #[serde(default)]
    plan: String,
}

/// Why there is no customer to check out with.
enum NoCustomer {
    /// Answered already (Stripe or the store failed).
    Failed(Response),
    /// Stripe gave a customer another account holds: nothing stored.
    OfAnotherAccount(String),
}

/// The account's Stripe customer, created (and stored) on its first Checkout.
async fn customer_id(state: &AppState, billing: &PortalBilling, user: &CurrentUser) -> Result<String, NoCustomer> {
    let store = state.core.billing();
    let record =
        store.billing(user.account.id).await.map_err(|e| NoCustomer::Failed(PageError::from(e).into_response()))?;
    if let Some(id) = record.stripe_customer_id {
        return Ok(id);
    }
    let created = billing.stripe.create_customer(user.account.email.as_str(), user.account.id).await;
    let id = created.map_err(|e| NoCustomer::Failed(stripe_failed(&e)))?;
    match store.set_stripe_customer(user.account.id, &id).await {
        Ok(()) => Ok(id),
        Err(StoreError::Conflict(_)) => Err(NoCustomer::OfAnotherAccount(id)),
        Err(e) => Err(NoCustomer::Failed(PageError::from(e).into_response())),
    }
}

fn stripe_failed(e: &dyn std::fmt::Display) -> Response {
    // The message is Stripe's error, never our key; the customer sees a plain sentence.
    tracing::warn!(error = %e, "stripe call failed");
    Redirect::to("/billing?notice=stripe_unavailable").into_response()
}

async fn checkout(State(state): Shared, User(user, ctx): User, Form(form): Form<PlanForm>) -> Page {
    let billing = billing_on(&state, &ctx)?;
    let refuse = |status: StatusCode, error: String| {
        let (state, user, ctx) = (&state, &user, &ctx);
        async move {
            render_billing(state, user, ctx, None, Some(error)).await.map(|mut r| {
                *r.status_mut() = status;
                r
            })
        }
    };
    let Some(price) = billing.entitlements.catalogue.get(&form.plan).and_then(|p| p.stripe_price_id.clone()) else {
        return refuse(StatusCode::BAD_REQUEST, format!("There is no plan {:?} to buy.", form.plan)).await;
    };
    let customer = match customer_id(&state, billing, &user).await {
        Ok(id) => id,
        Err(NoCustomer::Failed(response)) => return Ok(response),
        Err(NoCustomer::OfAnotherAccount(id)) => {
            tracing::warn!(customer = %id, account = %user.account.id, "checkout: Stripe customer of another account");
            let error = "Stripe gave this account a customer record that belongs to another certdns account, so \
                         nothing was changed. Please contact support; no payment was taken.";
            return refuse(StatusCode::CONFLICT, error.to_owned()).await;
        }
    };
    let base = state.base_url.trim_end_matches('/');
    let success = format!("{base}/billing/success?session_id={{CHECKOUT_SESSION_ID}}");
    let cancel = format!("{base}/billing?notice=checkout_cancelled");
    match billing.stripe.checkout(&customer, &price, user.account.id, &success, &cancel).await {
        Ok(url) => Ok(Redirect::to(&url).into_response()),
        Err(e) => Ok(stripe_failed(&e)),
    }
}

#[derive(Deserialize)]
struct SuccessQuery {
    #[serde(default)]
    session_id: String,
}

/// Back from Checkout. The session id in the URL is only a handle: Stripe is
/// asked what it is, and it must be this account's, with this account's customer.
async fn checkout_success(State(state): Shared, User(user, ctx): User, Query(q): Query<SuccessQuery>) -> Page {
    let billing = billing_on(&state, &ctx)?;
    let valid_id = q.session_id.starts_with("cs_")
        && q.session_id.len() <= 255
        && q.session_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid_id {
        return Ok(Redirect::to("/billing?notice=checkout_unknown").into_response());
    }
    let session = match billing.stripe.checkout_result(&q.session_id).await {
        Ok(s) => s,
        Err(e) if e.not_found => return Ok(Redirect::to("/billing?notice=checkout_unknown").into_response()),
        Err(e) => return Ok(stripe_failed(&e)),
    };
    let record = state.core.billing().billing(user.account.id).await?;
    let ours = session.account == Some(user.account.id)
        && session.customer_id.is_some()
        && session.customer_id == record.stripe_customer_id;
    if !ours || !session.complete {
        return Ok(Redirect::to("/billing?notice=checkout_unknown").into_response());
    }
    Ok(Redirect::to("/billing?notice=checkout_done").into_response())
}

async fn customer_portal(State(state): Shared, User(user, ctx): User) -> Page {
    let billing = billing_on(&state, &ctx)?;
    let record = state.core.billing().billing(user.account.id).await?;
    let Some(customer) = record.stripe_customer_id else {
        return Ok(Redirect::to("/billing?notice=no_customer").into_response());
    };
    let back = format!("{}/billing", state.base_url.trim_end_matches('/'));
    match billing.stripe.customer_portal(&customer, &back).await {
        Ok(url) => Ok(Redirect::to(&url).into_response()),
        Err(e) => Ok(stripe_failed(&e)),
    }
}

#[derive(Template)]
#[template(path = "admin_plan.html")]
struct AdminPlanPage {
    layout: Layout,
    id: String,
    email: String,
    plan_name: String,
    paid_plan: String,
    override_plan: String,
    plans: Vec<PlanCard>,
}

async fn admin_plan_page(
    State(state): Shared,
    User(user, ctx): User,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Page {
    super::admin::require_operator(&user, &ctx)?;
    let billing = billing_on(&state, &ctx)?;
    let id = id.parse::<AccountId>().map_err(|_| PageError::not_found(&ctx))?;
    let account = state.core.account(id).await?.ok_or_else(|| PageError::not_found(&ctx))?;
    let current = account_billing(billing, &state, id).await?;
    let page = AdminPlanPage {
        layout: Layout::of(&ctx).with_notice(q.text()),
        id: id.to_string(),
        email: account.email.to_string(),
        plan_name: current.plan.name.clone(),
        paid_plan: current.record.plan.clone().unwrap_or_else(|| "free".into()),
        override_plan: current.record.plan_override.clone().unwrap_or_default(),
        plans: billing.entitlements.catalogue.all().map(|p| card(p, current.record.plan_override.as_deref())).collect(),
    };
    Ok(render(StatusCode::OK, &page))
}

/// An operator's plan for an account (empty: back to what it pays for), audited.
async fn admin_set_plan(
    State(state): Shared,
    User(user, ctx): User,
    Path(id): Path<String>,
    Form(form): Form<PlanForm>,
) -> Page {
    super::admin::require_operator(&user, &ctx)?;
    let billing = billing_on(&state, &ctx)?;
    let id = id.parse::<AccountId>().map_err(|_| PageError::not_found(&ctx))?;
    let plan = match form.plan.as_str() {
        "" => None,
        p if billing.entitlements.catalogue.get(p).is_some() => Some(p),
        _ => {
            let back = format!("/admin/accounts/{id}/plan");
            return Ok(message(
                &ctx,
                StatusCode::BAD_REQUEST,
                "No such plan",
                "Choose one of the configured plans.",
                Some((&back, "Back")),
            ));
        }
    };
    state.core.account(id).await?.ok_or_else(|| PageError::not_found(&ctx))?;
    let event = NewAuditEvent {
        account_id: Some(id),
        kind: AuditKind::BillingPlanOverridden,
        client_addr: ctx.peer,
        detail: serde_json::json!({ "plan": plan, "by": user.account.email.to_string() }),
    };
    match state.core.billing().set_plan_override(id, plan, &event).await {
        Ok(()) => Ok(Redirect::to(&format!("/admin/accounts/{id}/plan?notice=plan_set")).into_response()),
        Err(StoreError::NotFound) => Err(PageError::not_found(&ctx)),
        Err(e) => Err(e.into()),
    }
}

/// The name of the plan in force for `id`, when billing is on (the operator's
/// account page).
pub(super) async fn plan_in_force(state: &AppState, id: AccountId) -> Result<Option<String>, PageError> {
    let Some(billing) = &state.billing else { return Ok(None) };
    Ok(Some(account_billing(billing, state, id).await?.plan.name.clone()))
}
