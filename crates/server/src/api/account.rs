//! Password reset links: an admin issues one, the user sets their password with it.
use crate::error::ApiResult;
use crate::extract::{Body, Caller};
use crate::ops::account::{complete_reset, issue_reset};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/companies/{cid}/users/{uid}/password_reset",
            post(issue),
        )
        .route("/api/v1/password_reset", post(complete))
}

/// 201 `{expires_at, emailed, reset_url}`: `reset_url` only when mail is off, shown this once.
async fn issue(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, uid)): Path<(i64, i64)>,
) -> ApiResult<impl IntoResponse> {
    let r = issue_reset(&state, &caller.user, cid, uid).await?;
    let expires_at = r
        .expires_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        Json(json!({"expires_at": expires_at, "emailed": r.emailed, "reset_url": r.link})),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Complete {
    token: String,
    password: String,
}

/// Needs no sign-in: the token is the proof. 204, or 422 naming `token` or `password`.
async fn complete(
    State(state): State<AppState>,
    Body(body): Body<Complete>,
) -> ApiResult<StatusCode> {
    complete_reset(&state, &body.token, body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}
