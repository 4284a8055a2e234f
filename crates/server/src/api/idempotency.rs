//! `Idempotency-Key` on every `POST` of the API (README, Integrations): the first request with a
//! key runs and its answer is kept in the database; a retry with the same key (same company and
//! caller) gets that answer back and changes nothing, whichever instance it reaches. Kept
//! answers are sealed with the secrets key: some carry what is shown only once (a client's
//! secret, a reset link, the Web Connector's password), which the database keeps otherwise
//! only as hashes or sealed.
use super::guard::Guard;
use crate::error::ApiError;
use crate::extract::{Caller, too_large};
use crate::secrets::Cipher;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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
    let (db, held) = (g.state.db.clone(), key.clone());
    let g = g.clone();
    let run = tokio::spawn(
        async move {
            let db = &g.state.db;
            let res = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            // A server error changed nothing worth keeping: the key is let go, so a retry runs again.
            if res.status().is_server_error() {
                release(db, owner, &key).await;
                return res;
            }
            let (parts, body) = res.into_parts();
            let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
            let headers: Vec<(&str, &str)> = KEPT
                .iter()
                .filter_map(|n| Some((n.as_str(), parts.headers.get(n)?.to_str().ok()?)))
                .collect();
            let Ok(text) = std::str::from_utf8(&bytes) else {
                // Not text (no API answer to a POST is): run again on a retry rather than keep it wrong.
                release(db, owner, &key).await;
                return Response::from_parts(parts, Body::from(bytes));
            };
            let answer = StoredAnswer {
                status: i64::from(parts.status.as_u16()),
                headers: serde_json::to_string(&headers).unwrap_or_default(),
                body: g.state.cipher.seal(text),
            };
            if let Err(e) = db.finish_idempotency_key(owner, &key, &answer).await {
                // The change happened; a retry finds the key in flight until its lease ends.
                tracing::error!(error = %e, "could not record an idempotent answer");
            }
            Response::from_parts(parts, Body::from(bytes))
        }
        // The request's span (its id, company and user) goes with it into the task.
        .in_current_span(),
    );
    match run.await {
        Ok(res) => res,
        Err(e) => {
            // A panic: nothing worth keeping, so the key is let go (a retry runs again), as
            // for any server error.
            tracing::error!(error = %e, "an idempotent request failed unexpectedly");
            release(&db, owner, &held).await;
            crate::app::panicked(Box::new(()))
        }
    }
}

/// Lets go of a claim whose answer is not kept; a retry then runs the request again.
async fn release(db: &costbridge_storage::Db, owner: KeyOwner, key: &str) {
    if let Err(e) = db.release_idempotency_key(owner, key).await {
        // The claim lapses with its lease instead.
        tracing::error!(error = %e, "could not release an idempotency key");
    }
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
