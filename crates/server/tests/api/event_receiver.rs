//! A subscriber's endpoint for the event tests (API and browser): a real HTTP server on a free
//! port that checks every signature as a subscriber would.
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

pub const SECRET: &str = "evsec_do_not_leak_0123456789";

/// A subscriber's endpoint: checks each request's signature with [`SECRET`] (401 if it does
/// not verify), answers with the queued failure statuses first, and keeps every batch it took.
pub struct Receiver {
    pub url: String,
    fail: Mutex<VecDeque<u16>>,
    /// How long it takes to answer (a slow subscriber), in milliseconds.
    slow_ms: std::sync::atomic::AtomicU64,
    batches: Mutex<Vec<(String, Value)>>,
}

async fn hook(State(r): State<Arc<Receiver>>, headers: HeaderMap, raw: Bytes) -> impl IntoResponse {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let now = OffsetDateTime::now_utc().unix_timestamp();
    if let Err(why) =
        costbridge_erp::webhook::verify(SECRET, &header("x-costbridge-signature"), &raw, now)
    {
        return (StatusCode::UNAUTHORIZED, why);
    }
    let slow = r.slow_ms.load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(std::time::Duration::from_millis(slow)).await;
    if let Some(code) = r.fail.lock().unwrap().pop_front() {
        return (
            StatusCode::from_u16(code).unwrap(),
            "busy, try later".into(),
        );
    }
    let body: Value = serde_json::from_slice(&raw).expect("JSON body");
    r.batches
        .lock()
        .unwrap()
        .push((header("idempotency-key"), body));
    (StatusCode::OK, "thanks".into())
}

impl Receiver {
    pub async fn start() -> Arc<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Arc::new(Receiver {
            url: format!("http://{}/events", listener.local_addr().unwrap()),
            fail: Mutex::new(VecDeque::new()),
            slow_ms: Default::default(),
            batches: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .route("/events", axum::routing::post(hook))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    /// Every answer takes `ms` milliseconds from now on.
    pub fn slow(&self, ms: u64) {
        self.slow_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// The next requests are answered with these statuses.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.fail.lock().unwrap().extend(statuses);
    }

    /// Every event taken, in the order they arrived.
    pub fn events(&self) -> Vec<Value> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, b)| b["events"].as_array().unwrap().clone())
            .collect()
    }

    pub fn batches(&self) -> usize {
        self.batches.lock().unwrap().len()
    }
}
