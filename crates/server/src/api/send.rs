//! Send to ERP (whether it is possible and why not, and the send itself) and retrieving a
//! pending code before the approver decides.
use crate::error::ApiResult;
use crate::extract::{Body, Caller, Q};
use crate::ops::send as ops;
use crate::state::AppState;
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use costbridge_storage::codes::CostCode;
use costbridge_storage::erp::SendStatus;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send_status, send))
        .routes(routes!(retrieve))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct StatusQuery {
    /// The list version the client shows; when what a send would take changed since, the
    /// answer is `stale_page`.
    list_version: Option<i64>,
}

/// Whether Send to ERP is enabled, and why not
#[utoipa::path(get, path = "/api/v1/companies/{cid}/cost_code_lists/{lid}/send_to_erp", tag = "send",
    operation_id = "send_to_erp_status", params(StatusQuery),
    responses((status = 200, description = "The button: enabled, its label and the reason when it is not", body = SendStatus),
        (status = 403, description = "`forbidden`: reading codes needs the Admin tool at read_only")))]
#[tracing::instrument(skip_all)]
async fn send_status(
    caller: Caller, Path((cid, lid)): Path<(i64, i64)>, Q(q): Q<StatusQuery>,
) -> ApiResult<Json<SendStatus>> {
    Ok(Json(
        ops::status(&caller.state, &caller.user, cid, lid, q.list_version).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"list_version": 3}))]
struct SendBody {
    /// The list version the client read (`GET …/send_to_erp`): a send never takes codes the
    /// caller has not seen.
    list_version: i64,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"submission_id": 1, "sent_count": 12}))]
struct Sent {
    submission_id: i64,
    /// How many codes the submission took.
    sent_count: i64,
}

/// Send every unsynced code of the ERP list as one submission
#[utoipa::path(post, path = "/api/v1/companies/{cid}/cost_code_lists/{lid}/send_to_erp", tag = "send",
    operation_id = "send_to_erp", request_body = SendBody,
    responses((status = 201, description = "The submission", body = Sent),
        (status = 403, description = "`no_permission` (or `forbidden`): the caller may not send"),
        (status = 409, description = "`stale_page`: codes changed since `list_version`; the message names them"),
        (status = 422, description = "Why it cannot send: `no_erp_connection`, `erp_owns_cost_codes`, `not_erp_list`, `nothing_to_send`, `invalid_codes` (with `details.items`)")))]
#[tracing::instrument(skip_all)]
async fn send(
    caller: Caller, Path((cid, lid)): Path<(i64, i64)>, Body(body): Body<SendBody>,
) -> ApiResult<impl IntoResponse> {
    let (submission_id, sent_count) =
        ops::send(&caller.state, &caller.user, cid, lid, body.list_version).await?;
    Ok((
        StatusCode::CREATED,
        Json(Sent {
            submission_id,
            sent_count,
        }),
    ))
}

/// Take a pending code back before the approver decides
#[utoipa::path(post, path = "/api/v1/companies/{cid}/cost_code_lists/{lid}/cost_codes/{id}/retrieve", tag = "send",
    operation_id = "retrieve_code",
    responses((status = 200, description = "The code, back in its unsynced state", body = CostCode),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin"),
        (status = 409, description = "`conflict`: the code is not pending")))]
#[tracing::instrument(skip_all)]
async fn retrieve(
    caller: Caller, Path((cid, lid, id)): Path<(i64, i64, i64)>,
) -> ApiResult<Json<CostCode>> {
    Ok(Json(
        ops::retrieve(&caller.state, &caller.user, cid, lid, id).await?,
    ))
}
