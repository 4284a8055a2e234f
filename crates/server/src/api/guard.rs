//! One layer over the JSON API (README, Integrations): it finds the caller once (handlers then
//! get it from the request), counts the request against its owner's rate limit, and makes a
//! `POST` with an `Idempotency-Key` run once however often it is sent.
use super::idempotency;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::ratelimit;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What the guard needs: the state, and the largest bodies the API's routes take (an
/// `Idempotency-Key` request's body is read here to compare retries).
#[derive(Clone)]
pub struct Guard {
    pub state: AppState,
    /// Any route's (`[server] max_body_bytes`).
    pub max_body: usize,
    /// A CSV import's (`[server] max_import_bytes`).
    pub max_import: usize,
}

impl Guard {
    /// The most of a request's body read before its handler runs: an import's size only for an
    /// import by a caller who may import. The body is read before the handler checks anything,
    /// so any caller's POST to any route was buffered up to the import's 64 MiB.
    pub fn body_limit(&self, caller: &Caller, path: &str) -> usize {
        if path.ends_with("/import") && caller.user.permissions.can_write_codes() {
            self.max_import
        } else {
            self.max_body
        }
    }
}

/// The `POST`s anyone may call (signing in, a reset link): their answers are not kept under an
/// `Idempotency-Key` (a sign-in's token would be kept and replayed), whoever sends them; the
/// document offers no key there (`docs::guard`).
pub const OPEN_POSTS: [&str; 2] = ["/api/v1/tokens", "/api/v1/password_reset"];

pub async fn guard(State(g): State<Guard>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    // A request without valid credentials goes on as it is: its handler refuses it (or, for
    // the few open routes, does not need a caller).
    let Ok(caller) = Caller::from_request_parts(&mut parts, &g.state).await else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    parts.extensions.insert(caller.clone());
    let window = count(&g.state, caller.user.id).await;
    if let Some(w) = window.as_ref().filter(|w| w.hits > w.limit) {
        let mut res = refuse(w);
        w.stamp(res.headers_mut());
        return res;
    }
    let req = Request::from_parts(parts, body);
    let mut res = if req.method() == Method::POST && !OPEN_POSTS.contains(&req.uri().path()) {
        idempotency::once(&g, &caller, req, next).await
    } else {
        next.run(req).await
    };
    if let Some(w) = window {
        w.stamp(res.headers_mut());
    }
    res
}

/// Where the caller's owner stands in the current window.
struct Window {
    limit: i64,
    hits: i64,
    /// Seconds until the window ends and the count starts again.
    reset: i64,
}

impl Window {
    fn stamp(&self, h: &mut HeaderMap) {
        let num = |n: i64| HeaderValue::from(n.max(0));
        h.insert("x-rate-limit-limit", num(self.limit));
        h.insert("x-rate-limit-remaining", num(self.limit - self.hits));
        h.insert("x-rate-limit-reset", num(self.reset));
    }
}

/// Counts this request for `owner`; `None` when the limit is off.
async fn count(state: &AppState, owner: i64) -> Option<Window> {
    let limit = state.api.requests_per_minute;
    if limit <= 0 {
        return None;
    }
    let now = ratelimit::now();
    let start = ratelimit::window_of(now);
    let hits = state.rates.count(&state.db, owner, start, limit).await;
    Some(Window {
        limit,
        hits,
        reset: start + ratelimit::WINDOW_SECS - now,
    })
}

fn refuse(w: &Window) -> Response {
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "Costbridge takes {} API requests a minute from each user or client, and this one \
             was over it; wait {} seconds (Retry-After) and send it again",
            w.limit, w.reset
        ),
    );
    e.retry_after = Some(w.reset.max(1) as u64);
    e.into_response()
}
