//! A webhook receiver on loopback for the tests of outgoing webhooks: it keeps
//! every request's headers and body, and answers with the statuses it is given
//! (then 200), or never answers at all.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

#[derive(Default)]
struct Inner {
    seen: Mutex<Vec<(HeaderMap, Bytes)>>,
    /// Answered from the end; 200 once empty.
    answers: Mutex<Vec<u16>>,
    stall: bool,
}

pub struct Receiver {
    inner: Arc<Inner>,
    port: u16,
}

async fn receive(State(r): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.seen.lock().unwrap_or_else(|p| p.into_inner()).push((headers, body));
    if r.stall {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let next = r.answers.lock().unwrap_or_else(|p| p.into_inner()).pop();
    StatusCode::from_u16(next.unwrap_or(200)).unwrap_or(StatusCode::OK)
}

impl Receiver {
    /// Answers every request with 200.
    pub async fn start() -> Self {
        Self::answering(Vec::new(), false).await
    }

    /// Answers with `answers` popped from the end, then 200; with `stall`, never answers.
    pub async fn answering(answers: Vec<u16>, stall: bool) -> Self {
        let inner = Arc::new(Inner { answers: Mutex::new(answers), stall, ..Default::default() });
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
        let port = listener.local_addr().expect("its address").port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { inner, port }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>/hook`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// The requests received so far (headers, body).
    pub fn seen(&self) -> Vec<(HeaderMap, Bytes)> {
        self.inner.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
