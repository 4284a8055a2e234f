//! Per-owner rate limits (issue #13, point 7): every answer to a signed-in request says the
//! limit, what is left and when the window resets; past the limit it is 429 with Retry-After
//! and the JSON error body; the count is shared by instances on one database and kept apart
//! per token owner (a person, a machine client).
use crate::both;
use crate::clients::{client_token, make_client};
use crate::helpers::{Backend, TestApp, error_message, perms};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    if let Some(app) = limited(Backend::Sqlite).await {
        over_the_limit_is_429_on_every_instance(app).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    if let Some(app) = limited(Backend::Postgres).await {
        over_the_limit_is_429_on_every_instance(app).await
    }
}

both!(the_limit_can_be_turned_off);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counted_in_memory_sqlite() {
    if let Some(app) = TestApp::spawn_with(Backend::Sqlite, memory_limited).await {
        counts_kept_in_memory_reach_the_shared_count(app).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counted_in_memory_postgres() {
    if let Some(app) = TestApp::spawn_with(Backend::Postgres, memory_limited).await {
        counts_kept_in_memory_reach_the_shared_count(app).await
    }
}

/// High enough that the first 20 requests of a window are counted in memory.
const MEMORY_LIMIT: i64 = 30;

fn memory_limited(s: &mut costbridge_server::config::Settings) {
    s.api.requests_per_minute = MEMORY_LIMIT;
}

const LIMIT: i64 = 5;

async fn limited(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |s| s.api.requests_per_minute = LIMIT).await
}

async fn get(base: &str, token: &str) -> (StatusCode, HeaderMap, Value) {
    let res = reqwest::Client::new()
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (s, h) = (res.status(), res.headers().clone());
    (s, h, res.json().await.unwrap_or(Value::Null))
}

fn num(h: &HeaderMap, name: &str) -> i64 {
    h[name].to_str().unwrap().parse().unwrap()
}

/// Sends requests of `token` to `bases` in turn until one is refused, checking that each counts
/// once whichever instance took it; returns the refusal.
async fn exhaust(bases: &[&str], token: &str) -> (StatusCode, HeaderMap, Value) {
    let mut last: Option<(i64, i64)> = None;
    for n in 0..3 * LIMIT as usize {
        let (s, h, b) = get(bases[n % bases.len()], token).await;
        assert_eq!(num(&h, "x-rate-limit-limit"), LIMIT);
        let now = (
            num(&h, "x-rate-limit-remaining"),
            num(&h, "x-rate-limit-reset"),
        );
        // Within one window (its reset only counts down) each request takes one off.
        let same_window = last.filter(|l| now.1 <= l.1);
        if s == StatusCode::TOO_MANY_REQUESTS {
            if let Some(l) = same_window {
                assert_eq!(l.0, 0, "refused before the limit was spent");
            }
            return (s, h, b);
        }
        assert_eq!(s, StatusCode::OK, "{b}");
        if let Some(l) = same_window {
            assert_eq!(now.0, l.0 - 1, "{h:?}");
        }
        last = Some(now);
    }
    panic!("never refused");
}

async fn over_the_limit_is_429_on_every_instance(app: TestApp) {
    let (second, _stop) = app
        .second_instance(|s| s.api.requests_per_minute = LIMIT)
        .await;
    let person = app
        .user("reader@one.example", perms("read_only", "none", false))
        .await;
    let (s, h, b) = exhaust(&[&app.base, &second], &person).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    assert_eq!(b["error"]["code"], "rate_limited");
    assert!(error_message(&b).contains("5 API requests a minute"));
    assert_eq!(num(&h, "x-rate-limit-remaining"), 0);
    let wait = num(&h, "retry-after");
    assert!((1..=60).contains(&wait), "{h:?}");
    assert!(h.contains_key("x-rate-limit-reset"));

    // A machine client has its own count (made by the admin, whose count is their own too).
    let (_, client_id, secret) =
        make_client(&app, "ERP sync", perms("read_only", "none", false)).await;
    let token = client_token(&app, &client_id, &secret).await;
    let (s, h, b) = get(&second, &token).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(num(&h, "x-rate-limit-remaining") >= LIMIT - 1, "{h:?}");
    let (s, _, _) = exhaust(&[&second, &app.base], &token).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
}

async fn the_limit_can_be_turned_off(app: TestApp) {
    let (base, _stop) = app.second_instance(|s| s.api.requests_per_minute = 0).await;
    let (s, h, _) = get(&base, &app.token).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!h.contains_key("x-rate-limit-limit"));
    // Unauthenticated requests are not counted (they are refused before any work).
    let (s, h, _) = get(&app.base, "cb_not-a-token").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(!h.contains_key("x-rate-limit-limit"));
    let (_, h, _) = get(&app.base, &app.token).await;
    assert_eq!(
        num(&h, "x-rate-limit-limit"),
        crate::helpers::TEST_RATE_LIMIT
    );
}

/// Far from the limit an instance counts in memory (no write per request) and adds its counts
/// to the shared count when it flushes; within the last tenth (at least 10 requests) every
/// request is counted in the database. Either way each request counts exactly once.
async fn counts_kept_in_memory_reach_the_shared_count(app: TestApp) {
    use costbridge_server::ratelimit::{now, window_of};
    let person = app
        .user("reader@one.example", perms("read_only", "none", false))
        .await;
    let (_, _, me) = get(&app.base, &person).await;
    let owner = me["id"].as_i64().expect("id");
    let state = &app.app_state;
    // The scenario must stay inside one window; on the rare run that crosses a minute, the
    // count starts again and the scenario runs once more in the new window.
    for _ in 0..2 {
        let window = window_of(now());
        state.rates.flush(&state.db, now()).await;
        let mut sent = state.db.count_requests(owner, window, 0).await.unwrap();
        loop {
            let (s, h, b) = get(&app.base, &person).await;
            sent += 1;
            if s == StatusCode::TOO_MANY_REQUESTS {
                break;
            }
            assert_eq!(s, StatusCode::OK, "{b}");
            assert_eq!(
                num(&h, "x-rate-limit-remaining"),
                MEMORY_LIMIT - sent,
                "{h:?}"
            );
        }
        state.rates.flush(&state.db, now()).await;
        let shared = state.db.count_requests(owner, window, 0).await.unwrap();
        if window_of(now()) != window {
            continue;
        }
        assert_eq!(
            sent,
            MEMORY_LIMIT + 1,
            "refused at the limit, not before or after"
        );
        assert_eq!(
            shared, sent,
            "each request counted once, in memory or in the database"
        );
        return;
    }
    panic!("two windows crossed in one test");
}
