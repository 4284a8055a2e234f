//! The webhook connector against a real HTTP receiver (axum on 127.0.0.1) that checks every
//! request the way a customer's endpoint should: the signature with `webhook::verify`, and the
//! Idempotency-Key recomputed from the body.
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use costbridge_erp::webhook::{Webhook, sign, verify};

/// A hook's address as messages show it: scheme and host (its path may be its credential).
fn shown(url: &str) -> String {
    costbridge_domain::url::host_only(url)
}
use costbridge_erp::{
    Connector, ConnectorError, Env, ExportContext, ExportLine, GlAccount, GlKind, LineResult,
    Outbound, Previous, WebhookSettings,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SECRET: &str = "whsec_test_0123456789abcdef";

/// What the receiver does with the next request (after checking it).
enum Plan {
    /// `{"results": […]}`: synced as `ERP-<item_id>` unless listed as failed or omitted.
    Results {
        fail: Vec<(i64, &'static str)>,
        omit: Vec<i64>,
    },
    /// This status and body.
    Answer(u16, String),
    /// Wait this long, then answer results.
    Slow(Duration),
    /// 307 to itself: a client following it would POST a second time.
    Redirect,
}

fn synced() -> Plan {
    Plan::Results {
        fail: Vec::new(),
        omit: Vec::new(),
    }
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    signature: Option<String>,
    verified: Result<(), String>,
    idempotency_key: Option<String>,
    content_type: Option<String>,
    user_agent: Option<String>,
    raw: Vec<u8>,
    body: Value,
}

struct Receiver {
    url: String,
    plans: Mutex<VecDeque<Plan>>,
    seen: Mutex<Vec<Seen>>,
}

impl Receiver {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The key a receiver expects, recomputed from the body it got.
fn expected_key(body: &Value) -> String {
    let ids: Vec<String> = body["codes"]
        .as_array()
        .expect("codes is an array")
        .iter()
        .map(|c| {
            c["item_id"]
                .as_i64()
                .expect("item_id is a number")
                .to_string()
        })
        .collect();
    let digest = hex::encode(Sha256::digest(ids.join(",")));
    format!("costbridge-{}-{}", body["job_id"], &digest[..16])
}

async fn hook(State(r): State<Arc<Receiver>>, headers: HeaderMap, raw: Bytes) -> Response {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let signature = get("x-costbridge-signature");
    let verified = verify(SECRET, signature.as_deref().unwrap_or(""), &raw, now());
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let idempotency_key = get("idempotency-key");
    r.seen.lock().unwrap().push(Seen {
        signature,
        verified: verified.clone(),
        idempotency_key: idempotency_key.clone(),
        content_type: get("content-type"),
        user_agent: get("user-agent"),
        raw: raw.to_vec(),
        body: body.clone(),
    });
    if let Err(why) = verified {
        return (StatusCode::UNAUTHORIZED, why).into_response();
    }
    if body["event"] == "cost_codes.export" && idempotency_key != Some(expected_key(&body)) {
        return (
            StatusCode::BAD_REQUEST,
            format!("Idempotency-Key {idempotency_key:?} does not match the batch"),
        )
            .into_response();
    }
    let plan = r.plans.lock().unwrap().pop_front().unwrap_or_else(synced);
    let (fail, omit) = match plan {
        Plan::Results { fail, omit } => (fail, omit),
        Plan::Answer(status, text) => {
            return (StatusCode::from_u16(status).unwrap(), text).into_response();
        }
        Plan::Slow(d) => {
            tokio::time::sleep(d).await;
            (Vec::new(), Vec::new())
        }
        Plan::Redirect => {
            let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
            response
                .headers_mut()
                .insert(header::LOCATION, HeaderValue::from_str(&r.url).unwrap());
            return response;
        }
    };
    let results: Vec<Value> = body["codes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| {
            let id = c["item_id"].as_i64()?;
            if omit.contains(&id) {
                return None;
            }
            Some(match fail.iter().find(|(f, _)| *f == id) {
                Some((_, message)) => {
                    json!({"item_id": id, "status": "failed", "message": message})
                }
                None => {
                    json!({"item_id": id, "status": "synced", "origin_id": format!("ERP-{id}")})
                }
            })
        })
        .collect();
    axum::Json(json!({ "results": results })).into_response()
}

/// Starts a receiver with these plans for its next requests (then `synced()` for the rest).
async fn receiver(plans: Vec<Plan>) -> Arc<Receiver> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let r = Arc::new(Receiver {
        url,
        plans: Mutex::new(plans.into()),
        seen: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(r.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    r
}

/// The receivers listen on loopback, which the default outbound policy refuses.
fn webhook(url: &str, secret: &str) -> Webhook {
    let env = Env {
        outbound: Outbound::new(true, &[]).unwrap(),
        ..Env::default()
    };
    Webhook::new(
        &WebhookSettings {
            url: url.to_owned(),
            secret: secret.into(),
            gl_accounts: Vec::new(),
        },
        &env,
    )
}

fn ctx() -> ExportContext {
    ExportContext {
        job_id: 42,
        delimiter: '-',
        max_description: Some(20),
    }
}

/// The accounts [`lines`] name (lines borrow their accounts).
static ACCOUNTS: std::sync::LazyLock<[GlAccount; 2]> = std::sync::LazyLock::new(|| {
    [
        GlAccount {
            code: "4000".into(),
            name: "Contract income".into(),
            kind: GlKind::Income,
        },
        GlAccount {
            code: "5000".into(),
            name: "Job costs".into(),
            kind: GlKind::Expense,
        },
    ]
});

fn lines() -> Vec<ExportLine<'static>> {
    vec![
        ExportLine {
            item_id: 11,
            code: "01",
            full_code: "01",
            description: "Sitework",
            active: true,
            parent_full_code: None,
            origin_id: None,
            previous: None,
            income: Some(&ACCOUNTS[0]),
            expense: None,
        },
        ExportLine {
            item_id: 12,
            code: "100",
            full_code: "01-100",
            description: "Excavation and backfill, east wing",
            active: true,
            parent_full_code: Some("01"),
            origin_id: Some("ERP-OLD-12"),
            previous: Some(Previous {
                code: "100",
                full_code: "01-100",
                description: "Excavation",
                active: true,
            }),
            income: None,
            expense: Some(&ACCOUNTS[1]),
        },
        ExportLine {
            item_id: 13,
            code: "200",
            full_code: "01-200",
            description: "Démolition",
            active: false,
            parent_full_code: Some("01"),
            origin_id: None,
            previous: None,
            income: None,
            expense: None,
        },
    ]
}

fn failed(message: &str) -> LineResult {
    LineResult::Failed {
        message: message.to_owned(),
    }
}

fn synced_as(origin_id: &str) -> LineResult {
    LineResult::Synced {
        origin_id: origin_id.to_owned(),
    }
}

fn unavailable(r: Result<Vec<(i64, LineResult)>, ConnectorError>) -> String {
    match r {
        Err(ConnectorError::Unavailable(m)) => m,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// Exports [`lines`] to the receiver; the connector must answer, not fail the call.
async fn export(r: &Receiver) -> Vec<(i64, LineResult)> {
    webhook(&r.url, SECRET)
        .export(&ctx(), &lines())
        .await
        .unwrap()
}

/// Every line failed with the same message; returns it.
fn all_failed_with(results: &[(i64, LineResult)]) -> String {
    assert_eq!(
        results.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [11, 12, 13]
    );
    let messages: Vec<&str> = results
        .iter()
        .map(|(_, r)| match r {
            LineResult::Failed { message } => message.as_str(),
            other => panic!("expected every line to fail, got {other:?}"),
        })
        .collect();
    assert!(messages.iter().all(|m| *m == messages[0]), "{messages:?}");
    messages[0].to_owned()
}

#[tokio::test]
async fn export_posts_one_signed_batch_and_maps_each_line() {
    let r = receiver(vec![Plan::Results {
        fail: vec![(12, "account 5000 is closed")],
        omit: vec![13],
    }])
    .await;
    let results = export(&r).await;
    assert_eq!(results[0], (11, synced_as("ERP-11")));
    assert_eq!(results[1], (12, failed("account 5000 is closed")));
    let (id, LineResult::Failed { message }) = &results[2] else {
        panic!("line 13 was not reported on, yet {:?}", results[2]);
    };
    assert_eq!(*id, 13);
    assert!(message.contains("did not report on this code"), "{message}");
    assert_eq!(results.len(), 3);

    let seen = r.seen();
    assert_eq!(seen.len(), 1, "one POST per export call");
    let s = &seen[0];
    assert_eq!(s.verified, Ok(()));
    assert!(s.signature.as_deref().unwrap().starts_with("t="));
    assert_eq!(s.idempotency_key, Some(expected_key(&s.body)));
    // printf '11,12,13' | sha256sum → ba85ab82a52c4e8e…
    assert_eq!(
        s.idempotency_key.as_deref(),
        Some("costbridge-42-ba85ab82a52c4e8e")
    );
    assert_eq!(s.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        s.user_agent.as_deref(),
        Some(concat!("costbridge/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(
        s.body,
        json!({
            "event": "cost_codes.export",
            "job_id": 42,
            "codes": [
                {"item_id": 11, "code": "01", "full_code": "01", "description": "Sitework",
                 "active": true, "parent_full_code": null, "origin_id": null, "previous": null,
                 "gl_income_account": {"code": "4000", "name": "Contract income"},
                 "gl_expense_account": null},
                {"item_id": 12, "code": "100", "full_code": "01-100",
                 "description": "Excavation and backf", "active": true,
                 "parent_full_code": "01", "origin_id": "ERP-OLD-12",
                 "previous": {"code": "100", "full_code": "01-100", "description": "Excavation",
                              "active": true},
                 "gl_income_account": null,
                 "gl_expense_account": {"code": "5000", "name": "Job costs"}},
                {"item_id": 13, "code": "200", "full_code": "01-200", "description": "Démolition",
                 "active": false, "parent_full_code": "01", "origin_id": null, "previous": null,
                 "gl_income_account": null, "gl_expense_account": null},
            ]
        })
    );
    assert!(
        !String::from_utf8_lossy(&s.raw).contains(SECRET),
        "the secret never travels"
    );
}

#[tokio::test]
async fn odd_but_usable_answers_are_read_line_by_line() {
    let r = receiver(vec![Plan::Answer(
        200,
        json!({"results": [
            {"item_id": 11, "status": "synced", "origin_id": 9001},
            {"item_id": 99, "status": "synced", "origin_id": "not-in-batch"},
            {"item_id": 12, "status": "failed"},
            {"item_id": 13, "status": "synced", "origin_id": "  "},
            {"item_id": 11, "status": "failed", "message": "a repeat is ignored"},
        ]})
        .to_string(),
    )])
    .await;
    let results = export(&r).await;
    assert_eq!(results[0], (11, synced_as("9001")));
    assert_eq!(
        results[1],
        (
            12,
            failed("the receiver reported a failure without a message")
        )
    );
    let LineResult::Failed { message } = &results[2].1 else {
        panic!(
            "an empty origin_id cannot count as synced: {:?}",
            results[2]
        );
    };
    assert!(message.contains("empty origin_id"), "{message}");
    assert_eq!(results.len(), 3);
}

#[tokio::test]
async fn a_5xx_is_unavailable_and_the_retry_sends_the_same_key() {
    let r = receiver(vec![Plan::Answer(500, "database is down".into()), synced()]).await;
    let hook = webhook(&r.url, SECRET);
    let m = unavailable(hook.export(&ctx(), &lines()).await);
    assert!(m.contains("HTTP 500"), "{m}");
    assert!(
        !m.contains("database is down"),
        "not the receiver's words: {m}"
    );
    assert!(m.contains(&shown(&r.url)), "{m}");

    let results = hook.export(&ctx(), &lines()).await.unwrap();
    assert_eq!(
        results,
        [
            (11, synced_as("ERP-11")),
            (12, synced_as("ERP-12")),
            (13, synced_as("ERP-13"))
        ]
    );
    let seen = r.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.verified.is_ok()), "{seen:?}");
    assert!(seen[0].idempotency_key.is_some());
    assert_eq!(seen[0].idempotency_key, seen[1].idempotency_key);
    assert_eq!(seen[0].body, seen[1].body);

    // Another batch of the same job is another key.
    hook.export(&ctx(), &&lines()[..2]).await.unwrap();
    assert_ne!(r.seen()[2].idempotency_key, seen[0].idempotency_key);
}

#[tokio::test]
async fn too_many_requests_is_unavailable_too() {
    let r = receiver(vec![Plan::Answer(429, "slow down".into())]).await;
    let m = unavailable(webhook(&r.url, SECRET).export(&ctx(), &lines()).await);
    assert!(m.contains("HTTP 429"), "{m}");
    assert!(!m.contains("slow down"), "not the receiver's words: {m}");
}

#[tokio::test]
async fn a_slow_receiver_times_out_as_unavailable() {
    let r = receiver(vec![Plan::Slow(Duration::from_secs(20))]).await;
    let started = Instant::now();
    let m = unavailable(
        webhook(&r.url, SECRET)
            .with_timeout(Duration::from_millis(300))
            .export(&ctx(), &lines())
            .await,
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout did not apply"
    );
    assert!(m.contains("did not answer within 300 ms"), "{m}");
    assert!(m.contains(&shown(&r.url)), "{m}");
    assert_eq!(r.seen().len(), 1);
}

#[tokio::test]
async fn a_4xx_fails_every_line_without_the_receivers_words() {
    let long = format!("unknown field `colour`\nin codes[0]; {}", "x".repeat(1000));
    let r = receiver(vec![Plan::Answer(400, long)]).await;
    let m = all_failed_with(&export(&r).await);
    // A foreign service's answer is never shown: the status and its reason only.
    assert_eq!(m, "the receiver refused the batch (HTTP 400 Bad Request)");
}

#[tokio::test]
async fn a_malformed_2xx_answer_fails_every_line_without_quoting_it() {
    let r = receiver(vec![Plan::Answer(
        200,
        "<html><body>Service moved</body></html>".into(),
    )])
    .await;
    let m = all_failed_with(&export(&r).await);
    assert!(m.contains("HTTP 200"), "{m}");
    assert!(!m.contains("Service moved"), "{m}");

    // Well-formed JSON with an unknown status is not the contract either.
    let r = receiver(vec![Plan::Answer(
        200,
        r#"{"results": [{"item_id": 11, "status": "skipped"}]}"#.into(),
    )])
    .await;
    let m = all_failed_with(&export(&r).await);
    assert!(m.contains("(not JSON of that shape)"), "{m}");
    assert!(!m.contains("skipped"), "not the receiver's words: {m}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let r = receiver(vec![Plan::Redirect]).await;
    let m = all_failed_with(&export(&r).await);
    assert!(m.contains("HTTP 307"), "{m}");
    assert!(m.contains("not followed"), "{m}");
    assert_eq!(r.seen().len(), 1, "the POST was sent again to the Location");
}

#[tokio::test]
async fn a_bad_signature_is_refused() {
    let r = receiver(Vec::new()).await;
    // The connector signs with a secret the receiver does not have.
    let results = webhook(&r.url, "whsec_not_the_right_one_42")
        .export(&ctx(), &lines())
        .await
        .unwrap();
    let m = all_failed_with(&results);
    assert!(m.contains("HTTP 401"), "{m}");
    assert!(
        !m.contains("does not match"),
        "the receiver's words are not shown: {m}"
    );

    let seen = r.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    let header = s.signature.as_deref().unwrap();
    let e = verify(SECRET, header, &s.raw, now()).unwrap_err();
    assert!(e.contains("does not match"), "{e}");
    assert_eq!(
        verify("whsec_not_the_right_one_42", header, &s.raw, now()),
        Ok(())
    );

    // A correctly signed request from 10 minutes ago is a replay: refused by verify, and by the
    // receiver when actually sent.
    let old = sign(SECRET, now() - 600, &s.raw);
    let e = verify(SECRET, &old, &s.raw, now()).unwrap_err();
    assert!(e.contains("s old"), "{e}");
    let replay = reqwest::Client::new()
        .post(&r.url)
        .header("content-type", "application/json")
        .header("x-costbridge-signature", &old)
        .header("idempotency-key", s.idempotency_key.as_deref().unwrap())
        .body(s.raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    let why = replay.text().await.unwrap();
    assert!(why.contains("s old"), "{why}");
    assert!(
        r.seen()[1].verified.is_err(),
        "the receiver must have refused it"
    );
}

#[tokio::test]
async fn connection_test_pings_with_a_signature() {
    let r = receiver(Vec::new()).await;
    let (ok, message) = webhook(&r.url, SECRET).test().await;
    assert_eq!(
        (ok, message.as_str()),
        (true, "The webhook answered HTTP 200.")
    );
    let seen = r.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, json!({"event": "ping"}));
    assert_eq!(seen[0].verified, Ok(()));
    assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));

    let r = receiver(vec![Plan::Answer(503, "down for maintenance".into())]).await;
    let (ok, message) = webhook(&r.url, SECRET).test().await;
    assert!(!ok);
    assert!(message.contains("HTTP 503"), "{message}");
    // A foreign service's answer is never shown.
    assert!(!message.contains("down for maintenance"), "{message}");
    assert!(message.contains(&shown(&r.url)), "{message}");

    // A wrong secret shows up in the test as the receiver's status.
    let r = receiver(Vec::new()).await;
    let (ok, message) = webhook(&r.url, "whsec_not_the_right_one_42").test().await;
    assert!(!ok);
    assert!(message.contains("HTTP 401 Unauthorized"), "{message}");
    assert!(!message.contains("does not match"), "{message}");
}

#[tokio::test]
async fn the_default_policy_reaches_no_internal_address() {
    let r = receiver(Vec::new()).await;
    let settings = |url: &str| WebhookSettings {
        url: url.to_owned(),
        secret: SECRET.into(),
        gl_accounts: Vec::new(),
    };
    let strict = Webhook::new(&settings(&r.url), &Env::default());
    let (ok, message) = strict.test().await;
    assert!(!ok);
    assert!(
        message.contains("127.0.0.1 is a loopback address"),
        "{message}"
    );
    assert!(
        message.contains("[outbound] allow_private = true"),
        "{message}"
    );
    let m = unavailable(strict.export(&ctx(), &lines()).await);
    assert!(m.contains("may not be reached"), "{m}");
    // A name that resolves to loopback is refused when connecting, whatever the URL says.
    let by_name = r.url.replace("127.0.0.1", "localhost");
    let (ok, message) = Webhook::new(&settings(&by_name), &Env::default())
        .test()
        .await;
    assert!(!ok);
    assert!(message.contains("localhost resolves to"), "{message}");
    assert!(r.seen().is_empty(), "nothing reached the receiver");
    // An allow-list entry for the receiver's host and port lets it through.
    let host = r
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap();
    let env = Env {
        outbound: Outbound::new(false, &[host.to_owned()]).unwrap(),
        ..Env::default()
    };
    let (ok, message) = Webhook::new(&settings(&r.url), &env).test().await;
    assert!(ok, "{message}");
}

#[tokio::test]
async fn nobody_listening_is_unavailable_and_the_test_says_so() {
    // A port that was free a moment ago and is closed now.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);

    let hook = webhook(&url, SECRET).with_timeout(Duration::from_secs(5));
    let m = unavailable(hook.export(&ctx(), &lines()).await);
    assert!(m.contains("could not connect"), "{m}");
    assert!(m.contains(&shown(&url)), "{m}");
    assert!(!m.contains(SECRET), "{m}");

    let (ok, message) = hook.test().await;
    assert!(!ok);
    assert!(message.starts_with("Could not connect"), "{message}");
    assert!(message.contains(&shown(&url)), "{message}");
}

#[tokio::test]
async fn an_empty_batch_sends_nothing() {
    let r = receiver(Vec::new()).await;
    let results = webhook(&r.url, SECRET).export(&ctx(), &[]).await.unwrap();
    assert!(results.is_empty());
    assert!(r.seen().is_empty());
}

#[tokio::test]
async fn a_password_in_the_url_is_not_shown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let hook = webhook(&format!("http://erp:hunter2@{addr}/hook"), SECRET);
    let m = unavailable(hook.export(&ctx(), &lines()).await);
    assert!(!m.contains("hunter2"), "{m}");
    assert!(m.contains(&format!("http://{addr}/…")), "{m}");
    let (ok, message) = hook.test().await;
    assert!(!ok);
    assert!(!message.contains("hunter2"), "{message}");
}

/// `sign` and `verify` on their own, as a receiver would use them.
mod signature {
    use super::*;

    const NOW: i64 = 1_700_000_000;
    const KEY: &str = "whsec_0123456789abcdef";

    #[test]
    fn sign_matches_an_independent_hmac() {
        // printf '1700000000.{"event":"ping"}' | openssl dgst -sha256 -hmac 'whsec_0123456789abcdef'
        assert_eq!(
            sign(KEY, NOW, br#"{"event":"ping"}"#),
            "t=1700000000,v1=79d81e14c92abf335c535251e6a741851a318d1fc10f965d9ac0f5ccd24bb6a6"
        );
    }

    #[test]
    fn verify_accepts_a_signature_up_to_five_minutes_away() {
        let body = br#"{"event":"cost_codes.export"}"#;
        let header = sign(KEY, NOW, body);
        assert_eq!(verify(KEY, &header, body, NOW), Ok(()));
        assert_eq!(verify(KEY, &header, body, NOW + 300), Ok(()));
        assert_eq!(verify(KEY, &header, body, NOW - 300), Ok(()));
        // Spaces after commas, and a second signature (a secret being rotated), are fine.
        let v1 = header.split_once(",v1=").unwrap().1;
        let rotated = format!("t={NOW}, v1={}, v1={v1}", "00".repeat(32));
        assert_eq!(verify(KEY, &rotated, body, NOW), Ok(()));
    }

    #[test]
    fn verify_refuses_a_wrong_secret_a_changed_body_and_a_stale_or_future_time() {
        let body = br#"{"event":"cost_codes.export"}"#;
        let header = sign(KEY, NOW, body);
        let e = verify("another-secret-entirely", &header, body, NOW).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let e = verify(KEY, &header, br#"{"event":"cost_codes.exporT"}"#, NOW).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let e = verify(KEY, &header, body, NOW + 301).unwrap_err();
        assert!(e.contains("301 s old"), "{e}");
        let e = verify(KEY, &sign(KEY, NOW - 600, body), body, NOW).unwrap_err();
        assert!(e.contains("600 s old"), "{e}");
        let e = verify(KEY, &sign(KEY, NOW + 600, body), body, NOW).unwrap_err();
        assert!(e.contains("future"), "{e}");
        // The timestamp is signed: moving it to look fresh breaks the signature.
        let v1 = header.split_once(",v1=").unwrap().1;
        let e = verify(KEY, &format!("t={},v1={v1}", NOW + 1), body, NOW).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
    }

    #[test]
    fn verify_explains_malformed_headers() {
        for (header, expect) in [
            ("", "no timestamp"),
            ("v1=abcd", "no timestamp"),
            ("t=1700000000", "no signature"),
            ("t=yesterday,v1=abcd", "not a Unix time"),
            ("garbage", "malformed"),
            ("t=1700000000,v1=not-hex", "does not match"),
            ("t=1700000000,v1=abcd", "does not match"),
        ] {
            let e = verify(KEY, header, b"{}", NOW).unwrap_err();
            assert!(e.contains(expect), "{header:?}: {e}");
        }
    }
}
