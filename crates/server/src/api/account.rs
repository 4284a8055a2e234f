//! Password reset links: an admin issues one, the user sets their password with it.
use crate::error::ApiResult;
use crate::extract::{Body, Caller};
use crate::ops::account::{complete_reset, issue_reset};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(issue))
        .routes(routes!(complete))
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"expires_at": "2026-11-30T16:00:00Z", "emailed": true, "reset_url": null}))]
struct ResetIssued {
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    /// Whether the link was emailed to the user.
    emailed: bool,
    /// The link itself, only when mail is off (shown this once); else `null`.
    #[schema(required = true)]
    reset_url: Option<String>,
}

/// Issue a one-time password reset link (emailed; returned as `reset_url` when mail is off)
#[utoipa::path(post, path = "/api/v1/companies/{cid}/users/{uid}/password_reset", tag = "auth",
    operation_id = "issue_password_reset",
    responses((status = 201, description = "The link was made", body = ResetIssued),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin")))]
async fn issue(caller: Caller, Path((cid, uid)): Path<(i64, i64)>) -> ApiResult<impl IntoResponse> {
    let r = issue_reset(&caller.state, &caller.user, cid, uid).await?;
    Ok((
        StatusCode::CREATED,
        Json(ResetIssued {
            expires_at: r.expires_at,
            emailed: r.emailed,
            reset_url: r.link,
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "the token from the link", "password": "a new long passphrase"}))]
struct Complete {
    /// The token from the reset link.
    token: String,
    /// The new password (at least 10 characters).
    password: String,
}

/// Set a password with a reset link's token (no sign-in needed: the token is the proof)
#[utoipa::path(post, path = "/api/v1/password_reset", tag = "auth", security(()),
    operation_id = "complete_password_reset", request_body = Complete,
    responses((status = 204, description = "The password is set; the user's other sessions and tokens end"),
        (status = 422, description = "`validation_failed`: `token` unknown, used or expired (checked first), or `password` too short")))]
async fn complete(
    State(state): State<AppState>, Body(body): Body<Complete>,
) -> ApiResult<StatusCode> {
    complete_reset(&state, &body.token, body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}
