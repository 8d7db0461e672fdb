//! Failing a page: handlers return `Result<Response, PageError>` and use `?`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use certdns_store::StoreError;

use crate::session::Ctx;
use crate::templates::{Layout, Message, render};

pub(crate) enum PageError {
    /// Something the user cannot fix (the database is down, …): logged here,
    /// answered with the generic 500 page.
    Internal(String),
    /// Every password-hashing thread stayed busy: 503, try again shortly.
    Busy,
    /// An error page already rendered for this request (not found, operators
    /// only); boxed, so `Result<_, PageError>` stays small.
    Page(Box<Response>),
}

impl PageError {
    pub fn page(response: Response) -> Self {
        Self::Page(Box::new(response))
    }

    /// 404 in the user's frame: the id does not exist *in this account*.
    pub fn not_found(ctx: &Ctx) -> Self {
        Self::page(message(
            ctx,
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such page in your account.",
            Some(("/", "Home")),
        ))
    }
}

impl PageError {
    /// For `map_err` on a store call where `NotFound` means "no such thing in this
    /// account" (a 404 page); any other error is internal.
    pub fn or_not_found(ctx: &Ctx) -> impl FnOnce(StoreError) -> PageError + '_ {
        move |e| match e {
            StoreError::NotFound => PageError::not_found(ctx),
            e => e.into(),
        }
    }
}

impl PageError {
    /// An action's failure the page did not handle itself: not found is the
    /// 404 page, the rest internal (pages handle the refusals they can explain).
    pub fn from_action(ctx: &Ctx, e: crate::actions::ActionError) -> Self {
        match e {
            crate::actions::ActionError::NotFound => PageError::not_found(ctx),
            crate::actions::ActionError::Store(e) => e.into(),
            other => Self::Internal(format!("unhandled refusal: {other}")),
        }
    }
}

impl From<crate::passwords::Busy> for PageError {
    fn from(_: crate::passwords::Busy) -> Self {
        PageError::Busy
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        Self::Internal(format!("store: {e}"))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Page(response) => *response,
            PageError::Busy => {
                let page = Message {
                    layout: Layout::anonymous(String::new()),
                    title: "Busy".into(),
                    message: "The portal is busy right now. Please try again in a few seconds.".into(),
                    link: None,
                };
                let mut response = render(StatusCode::SERVICE_UNAVAILABLE, &page);
                response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(5));
                response
            }
            PageError::Internal(error) => {
                tracing::error!(%error, "portal request failed");
                let page = Message {
                    layout: Layout::anonymous(String::new()),
                    title: "Something went wrong".into(),
                    message: "The portal could not complete this request. Please try again in a moment.".into(),
                    link: Some(("/".into(), "Back to the portal".into())),
                };
                render(StatusCode::INTERNAL_SERVER_ERROR, &page)
            }
        }
    }
}

/// A page with a title, a sentence and an optional link, in the user's frame.
pub(crate) fn message(ctx: &Ctx, status: StatusCode, title: &str, text: &str, link: Option<(&str, &str)>) -> Response {
    let page = Message {
        layout: Layout::of(ctx),
        title: title.into(),
        message: text.into(),
        link: link.map(|(a, b)| (a.to_owned(), b.to_owned())),
    };
    render(status, &page)
}

/// The whole request, body included, within `portal.request_timeout_secs`: a
/// client that stalls its form gets 408 and loses the connection's slot.
pub(crate) async fn deadline(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<crate::state::AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let limit = std::time::Duration::from_secs(state.config.request_timeout_secs);
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            let page = Message {
                layout: Layout::anonymous(String::new()),
                title: "Request timed out".into(),
                message: "The request took too long to arrive. Please try again.".into(),
                link: Some(("/".into(), "Back to the portal".into())),
            };
            let mut response = render(StatusCode::REQUEST_TIMEOUT, &page);
            response
                .headers_mut()
                .insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
            response
        }
    }
}
