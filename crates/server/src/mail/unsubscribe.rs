//! One-click unsubscribe from the daily summary (RFC 8058). The link carries the user id and
//! an HMAC of it under a per-installation key, so it works without signing in and cannot be
//! forged for someone else. GET only shows a button (mail scanners follow links); POST acts.
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use costbridge_storage::{Db, StoreError};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const KEY: &str = "unsubscribe";

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/unsubscribe/digest/{user}/{token}",
        get(confirm).post(unsubscribe),
    )
}

/// The link a daily summary carries for `user`.
pub async fn link(db: &Db, base_url: &str, user: i64) -> Result<String, StoreError> {
    let key = db.mail_key(KEY).await?;
    Ok(format!(
        "{}/unsubscribe/digest/{user}/{}",
        base_url.trim_end_matches('/'),
        hex::encode(mac(&key, user).finalize().into_bytes())
    ))
}

fn mac(key: &str, user: i64) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    m.update(format!("digest:{user}").as_bytes());
    m
}

async fn valid(db: &Db, user: i64, token: &str) -> Result<bool, StoreError> {
    let Ok(bytes) = hex::decode(token) else {
        return Ok(false);
    };
    let key = db.mail_key(KEY).await?;
    // Constant-time comparison.
    Ok(mac(&key, user).verify_slice(&bytes).is_ok())
}

async fn confirm(
    State(state): State<AppState>, Path((user, token)): Path<(i64, String)>,
) -> Response {
    match valid(&state.db, user, &token).await {
        Ok(true) => page(
            StatusCode::OK,
            "Stop the daily summary?",
            "<p>You will no longer receive the daily summary of codes waiting in Ready to Export. \
             Emails about codes sent, rejected or failed still come.</p>\
             <form method=\"post\"><button type=\"submit\">Stop the daily summary</button></form>",
        ),
        Ok(false) => not_valid(),
        Err(e) => failed(e),
    }
}

async fn unsubscribe(
    State(state): State<AppState>, Path((user, token)): Path<(i64, String)>,
) -> Response {
    match valid(&state.db, user, &token).await {
        Ok(true) => match state.db.unsubscribe_digest(user).await {
            Ok(_) => page(
                StatusCode::OK,
                "Daily summary stopped",
                "<p>You will no longer receive the daily summary. You can turn it back on in your \
                 Costbridge settings.</p>",
            ),
            Err(StoreError::NotFound) => not_valid(),
            Err(e) => failed(e),
        },
        Ok(false) => not_valid(),
        Err(e) => failed(e),
    }
}

fn not_valid() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Link not valid",
        "<p>This unsubscribe link is not valid. Change your email settings in Costbridge instead.</p>",
    )
}

fn failed(e: StoreError) -> Response {
    tracing::error!(error = %e, "unsubscribe failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "<p>Please try again in a moment.</p>",
    )
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    (
        status,
        Html(format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title} · Costbridge</title>\
             <link rel=\"stylesheet\" href=\"{css}\"></head>\
             <body><main class=\"card narrow\"><h1>{title}</h1>{body}</main></body></html>",
            css = crate::web::stylesheet()
        )),
    )
        .into_response()
}
