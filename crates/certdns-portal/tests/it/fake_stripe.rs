//! An in-process fake of the Stripe API calls certdns makes, answering with
//! Stripe's own example objects (`tests/fixtures/stripe/fixtures3.json`)
//! with ids and fields adjusted, and recording every request. No network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// Stripe's published example objects, kept beside the repository
/// (`tests/fixtures/stripe/`); `CERTDNS_TEST_STRIPE_FIXTURES` names another copy.
fn fixtures_path() -> String {
    std::env::var("CERTDNS_TEST_STRIPE_FIXTURES").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/stripe/fixtures3.json").to_owned()
    })
}

/// One request the fake received: method, path, form fields, Stripe-Version.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: &'static str,
    pub path: String,
    pub form: Vec<(String, String)>,
    pub authorization: String,
}

impl Recorded {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Fake {
    requests: Vec<Recorded>,
    sessions: HashMap<String, Value>,
    next: u32,
}

#[derive(Clone)]
pub struct FakeStripe {
    pub base: String,
    state: Arc<Mutex<Fake>>,
}

/// A Stripe example object by resource name (`checkout.session`, …).
pub fn fixture(resource: &str) -> Value {
    let path = fixtures_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("the Stripe fixtures at {path}: {e}"));
    let all: Value = serde_json::from_str(&text).unwrap();
    all["resources"][resource].clone()
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let state = Arc::new(Mutex::new(Fake::default()));
        let router = Router::new()
            .route("/v1/customers", post(create_customer))
            .route("/v1/checkout/sessions", post(create_session))
            .route("/v1/checkout/sessions/{id}", get(get_session))
            .route("/v1/billing_portal/sessions", post(create_portal))
            .route("/v1/subscriptions/{id}", get(get_subscription))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        FakeStripe { base, state }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Marks a Checkout session paid, as if the customer finished it.
    pub fn complete_session(&self, id: &str, subscription: &str) {
        let mut fake = self.state.lock().unwrap();
        let session = fake.sessions.get_mut(id).expect("a session the fake made");
        session["status"] = json!("complete");
        session["payment_status"] = json!("paid");
        session["subscription"] = json!(subscription);
    }
}

type Shared = State<Arc<Mutex<Fake>>>;

fn record(fake: &Arc<Mutex<Fake>>, method: &'static str, path: String, headers: &HeaderMap, body: &str) -> u32 {
    let form = url::form_urlencoded::parse(body.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut fake = fake.lock().unwrap();
    fake.requests.push(Recorded { method, path, form, authorization });
    fake.next += 1;
    fake.next
}

fn ok(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn create_customer(State(fake): Shared, headers: HeaderMap, body: String) -> Response {
    let n = record(&fake, "POST", "/v1/customers".into(), &headers, &body);
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let mut customer = fixture("customer");
    customer["id"] = json!(format!("cus_fake{n}"));
    customer["email"] = json!(form.get("email"));
    ok(customer)
}

async fn create_session(State(fake): Shared, headers: HeaderMap, body: String) -> Response {
    let n = record(&fake, "POST", "/v1/checkout/sessions".into(), &headers, &body);
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let id = format!("cs_test_fake{n}");
    let mut session = fixture("checkout.session");
    session["id"] = json!(id);
    session["mode"] = json!("subscription");
    session["status"] = json!("open");
    session["customer"] = json!(form.get("customer"));
    session["client_reference_id"] = json!(form.get("client_reference_id"));
    session["success_url"] = json!(form.get("success_url"));
    session["cancel_url"] = json!(form.get("cancel_url"));
    session["url"] = json!(format!("https://checkout.stripe.test/c/pay/{id}"));
    fake.lock().unwrap().sessions.insert(id, session.clone());
    ok(session)
}

async fn get_session(State(fake): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    record(&fake, "GET", format!("/v1/checkout/sessions/{id}"), &headers, "");
    match fake.lock().unwrap().sessions.get(&id) {
        Some(session) => ok(session.clone()),
        None => not_found("checkout session", &id),
    }
}

async fn create_portal(State(fake): Shared, headers: HeaderMap, body: String) -> Response {
    let n = record(&fake, "POST", "/v1/billing_portal/sessions".into(), &headers, &body);
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let mut session = fixture("billing_portal.session");
    session["id"] = json!(format!("bps_fake{n}"));
    session["customer"] = json!(form.get("customer"));
    session["return_url"] = json!(form.get("return_url"));
    session["url"] = json!(format!("https://billing.stripe.test/p/session/bps_fake{n}"));
    ok(session)
}

async fn get_subscription(State(fake): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    record(&fake, "GET", format!("/v1/subscriptions/{id}"), &headers, "");
    let mut subscription = fixture("subscription");
    subscription["id"] = json!(id);
    ok(subscription)
}

fn not_found(what: &str, id: &str) -> Response {
    let error = json!({ "error": { "type": "invalid_request_error", "message": format!("No such {what}: '{id}'") } });
    (StatusCode::NOT_FOUND, axum::Json(error)).into_response()
}
