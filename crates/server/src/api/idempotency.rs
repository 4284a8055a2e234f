//! `Idempotency-Key` on every `POST` of the API (README, Integrations): the first request with a
//! key runs and its answer is kept in the database; a retry with the same key (same company and
//! caller) gets that answer back and changes nothing, whichever instance it reaches. Kept
//! answers are sealed with the secrets key: some carry what is shown only once (a client's
//! secret, a reset link, the Web Connector's password), which the database keeps otherwise
//! only as hashes or sealed. Every write the request commits marks its key as having changed
//! data in the same transaction (`Db::under_key`): a request that changed data never runs
//! again with its key, whether it then failed with a server error or its server stopped.
use super::guard::Guard;
use crate::error::ApiError;
use crate::extract::{Caller, too_large};
use crate::secrets::Cipher;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use costbridge_storage::Db;
use costbridge_storage::requests::{Claim, KeyOwner, StoredAnswer};
use sha2::{Digest, Sha256};
use tracing::Instrument;

pub const HEADER: &str = "idempotency-key";
/// Marks a replayed answer, so a client can tell it did not run twice.
const REPLAYED: &str = "idempotent-replayed";
/// How long a first request may run before its claim counts as abandoned (its instance died)
/// and a retry may run it.
const LEASE: time::Duration = time::Duration::minutes(10);
/// The headers of an answer worth replaying; others (request id, rate limit) are the retry's own.
static KEPT: [HeaderName; 5] = [
    header::CONTENT_TYPE,
    header::LOCATION,
    header::RETRY_AFTER,
    header::LINK,
    HeaderName::from_static("total"),
];

fn field_error(message: &str) -> Response {
    ApiError::field("Idempotency-Key", message).into_response()
}

/// Runs a `POST` once per key; without the header it just runs.
pub async fn once(g: &Guard, caller: &Caller, req: Request, next: Next) -> Response {
    let Some(key) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match key.to_str().map(str::trim) {
        Ok(k) if (1..=255).contains(&k.len()) => k.to_owned(),
        _ => {
            return field_error(
                "must be 1 to 255 visible ASCII characters, e.g. a UUID made for this request",
            );
        }
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, g.body_limit(caller, parts.uri.path())).await else {
        return too_large().into_response();
    };
    let mut h = Sha256::new();
    h.update(parts.method.as_str());
    h.update([0]);
    h.update(parts.uri.path_and_query().map_or("", |p| p.as_str()));
    h.update([0]);
    h.update(&bytes);
    let hash = hex::encode(h.finalize());
    let owner = KeyOwner {
        company: caller.user.company_id,
        caller: caller.user.id,
    };
    let now = costbridge_storage::now();
    let expires = now + time::Duration::hours(g.state.api.idempotency_hours.max(1));
    let db = &g.state.db;
    match db
        .claim_idempotency_key(owner, &key, &hash, now + LEASE, expires)
        .await
    {
        Ok(Claim::Mine) => {}
        Ok(Claim::Done(answer)) => return replay(&g.state.cipher, answer),
        Ok(Claim::InFlight) => {
            return ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "a request with this Idempotency-Key is still running; send it again once that \
                 one has answered to get its answer",
            )
            .into_response();
        }
        Ok(Claim::Interrupted) => {
            return ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "the first request with this Idempotency-Key saved changes, but its answer was \
                 not recorded (its server stopped, or could not save the answer), so Costbridge \
                 will not run it again with this key. Read what the request changes to see what \
                 was saved before you send anything new",
            )
            .into_response();
        }
        Ok(Claim::OtherRequest) => {
            return field_error(
                "was already used for a different request (another method, path or body); use a \
                 new key for a new request",
            );
        }
        Err(e) => return ApiError::from(e).into_response(),
    }
    // The request runs and its answer is kept in a task of its own: a client that gives up
    // (a timeout during a long send) dropped the request with its answer unkept, and its retry
    // found the key "still running" for the lease's ten minutes, then ran the request again.
    let held = key.clone();
    let task = g.clone();
    let run = tokio::spawn(
        async move {
            let g = task;
            let req = Request::from_parts(parts, Body::from(bytes));
            let res = Db::under_key(owner, key.clone(), next.run(req)).await;
            // A server error before any change is let go of, so a retry runs again.
            if res.status().is_server_error() && release(&g.state.db, owner, &key).await {
                return res;
            }
            keep(&g, owner, &key, res).await
        }
        // The request's span (its id, company and user) goes with it into the task.
        .in_current_span(),
    );
    match run.await {
        Ok(res) => res,
        Err(e) => {
            // A panic (logged there): let go of as any server error, unless the request
            // changed data first.
            let payload = e.try_into_panic().unwrap_or_else(|_| Box::new(()));
            let res = crate::app::panicked(payload);
            if release(&g.state.db, owner, &held).await {
                return res;
            }
            keep(g, owner, &held, res).await
        }
    }
}

/// Keeps `res` as the answer to `key` and returns it. A server error kept this way came after
/// the request changed data: its message says so.
async fn keep(g: &Guard, owner: KeyOwner, key: &str, res: Response) -> Response {
    let db = &g.state.db;
    let (parts, body) = res.into_parts();
    let mut bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    if parts.status.is_server_error() {
        bytes = after_a_change(&bytes).into();
    }
    let headers: Vec<(&str, &str)> = KEPT
        .iter()
        .filter_map(|n| Some((n.as_str(), parts.headers.get(n)?.to_str().ok()?)))
        .collect();
    let Ok(text) = std::str::from_utf8(&bytes) else {
        // Not text (no API answer to a POST is): the claim lapses with its lease.
        return Response::from_parts(parts, Body::from(bytes));
    };
    let answer = StoredAnswer {
        status: i64::from(parts.status.as_u16()),
        headers: serde_json::to_string(&headers).unwrap_or_default(),
        body: g.state.cipher.seal(text),
    };
    if let Err(e) = db.finish_idempotency_key(owner, key, &answer).await {
        // A retry finds the key in flight until its lease ends, then refused (it changed
        // data) or run (it did not).
        tracing::error!(error = %e, "could not record an idempotent answer");
    }
    let mut res = Response::from_parts(parts, Body::from(bytes));
    res.headers_mut().remove(header::CONTENT_LENGTH);
    res
}

/// A server error's body, its message telling that the request had changed data first and
/// will not run again with its key. An unexpected failure's own advice (to try again) no
/// longer holds, so its message is replaced; another's (who refused, what is broken) is kept,
/// then this.
fn after_a_change(body: &[u8]) -> Vec<u8> {
    // "Runs nothing" holds whether the retry gets this answer or, when it could not be
    // recorded, a 409.
    const KEPT: &str = "Costbridge had already saved changes for this request when this \
        happened, so it will not run it again with this Idempotency-Key: sending it again runs \
        nothing. Read what the request changes to see what was saved before you send anything \
        new.";
    let mut v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let unexpected =
        v.pointer("/error/message").and_then(|c| c.as_str()) == Some(crate::ops::UNSAVED);
    if let Some(m) = v.pointer_mut("/error/message") {
        *m = if unexpected {
            format!("Costbridge failed unexpectedly; the cause is in its log. {KEPT}")
        } else {
            format!("{} {KEPT}", m.as_str().unwrap_or_default())
        }
        .into();
        return v.to_string().into_bytes();
    }
    body.to_vec()
}

/// Lets go of a claim whose answer is not kept, unless its request changed data; a retry then
/// runs the request again. False when the key stays (its request changed data).
async fn release(db: &Db, owner: KeyOwner, key: &str) -> bool {
    db.release_idempotency_key(owner, key)
        .await
        .unwrap_or_else(|e| {
            // The claim lapses with its lease instead; the database knows whether it changed data.
            tracing::error!(error = %e, "could not release an idempotency key");
            true
        })
}

fn replay(cipher: &Cipher, answer: StoredAnswer) -> Response {
    let body = match cipher.open(&answer.body) {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "could not open a kept idempotent answer");
            return ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "Costbridge cannot read the first answer to this Idempotency-Key: the server's \
                 secrets key is not the one it was kept with. Ask the operator to start the \
                 server with that key; sending the request again with a new key may repeat it",
            )
            .into_response();
        }
    };
    let status = u16::try_from(answer.status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.remove(header::CONTENT_TYPE);
    let headers: Vec<(String, String)> = serde_json::from_str(&answer.headers).unwrap_or_default();
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name),
            HeaderValue::try_from(value.as_str()),
        ) {
            h.insert(n, v);
        }
    }
    h.insert(REPLAYED, HeaderValue::from_static("true"));
    res
}
