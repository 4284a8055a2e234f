//! Send to ERP (whether it is possible and why not, and the send itself) and retrieving a
//! pending code before the approver decides.
use super::codes::LIST;
use crate::error::ApiResult;
use crate::extract::{Body, Caller, Q};
use crate::ops::send as ops;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use costbridge_storage::codes::CostCode;
use costbridge_storage::erp::SendStatus;
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(&format!("{LIST}/send_to_erp"), get(send_status).post(send))
        .route(
            &format!("{LIST}/cost_codes/{{id}}/retrieve"),
            post(retrieve),
        )
}

#[derive(Deserialize)]
struct StatusQuery {
    /// The list version the client shows; a different current one answers `stale_page`.
    list_version: Option<i64>,
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id, list = lid))]
async fn send_status(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, lid)): Path<(i64, i64)>,
    Q(q): Q<StatusQuery>,
) -> ApiResult<Json<SendStatus>> {
    Ok(Json(
        ops::status(&state, &caller.user, cid, lid, q.list_version).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    list_version: i64,
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id, list = lid))]
async fn send(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, lid)): Path<(i64, i64)>,
    Body(body): Body<SendBody>,
) -> ApiResult<impl IntoResponse> {
    let (submission_id, sent_count) =
        ops::send(&state, &caller.user, cid, lid, body.list_version).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"submission_id": submission_id, "sent_count": sent_count})),
    ))
}

#[tracing::instrument(
    skip_all,
    fields(company = cid, user = caller.user.id, list = lid, code = id)
)]
async fn retrieve(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, lid, id)): Path<(i64, i64, i64)>,
) -> ApiResult<Json<CostCode>> {
    Ok(Json(
        ops::retrieve(&state, &caller.user, cid, lid, id).await?,
    ))
}
