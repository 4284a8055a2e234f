//! Submissions for auditors (`crate::ops::submissions`).
use crate::error::ApiResult;
use crate::extract::{Caller, Paging, Q};
use crate::ops::queue::reader;
use crate::ops::submissions;
use crate::state::AppState;
use axum::Json;
use axum::extract::Path;
use axum::http::Uri;
use axum::response::Response;
use costbridge_storage::queue::Item;
use costbridge_storage::submissions::Submission;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(one))
        .routes(routes!(items))
}

/// Each Send to ERP, newest first
#[utoipa::path(get, path = "/api/v1/companies/{cid}/submissions", tag = "audit",
    operation_id = "list_submissions", params(Paging),
    responses((status = 200, description = "One page of submissions: who sent how many codes, item counts per state, export jobs", body = [Submission]),
        (status = 403, description = "`forbidden`: needs ERP Integrations at read_only")))]
#[tracing::instrument(skip_all)]
async fn list(
    caller: Caller, uri: Uri, Path(cid): Path<i64>, Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    // Access is refused before the paging is judged.
    reader(&caller.user, cid)?;
    let paging = paging.check()?;
    let (subs, total) =
        submissions::list(&caller.state, &caller.user, cid, paging.window()).await?;
    Ok(paging.respond(&uri, total, subs))
}

/// One submission
#[utoipa::path(get, path = "/api/v1/companies/{cid}/submissions/{id}", tag = "audit",
    operation_id = "get_submission",
    responses((status = 200, description = "The submission", body = Submission),
        (status = 403, description = "`forbidden`: needs ERP Integrations at read_only")))]
#[tracing::instrument(skip_all)]
async fn one(caller: Caller, Path((cid, id)): Path<(i64, i64)>) -> ApiResult<Json<Submission>> {
    Ok(Json(
        submissions::one(&caller.state, &caller.user, cid, id).await?,
    ))
}

/// The items of one submission: what was sent, and where each code stands now
#[utoipa::path(get, path = "/api/v1/companies/{cid}/submissions/{id}/items", tag = "audit",
    operation_id = "list_submission_items", params(Paging),
    responses((status = 200, description = "One page of the submission's items", body = [Item]),
        (status = 403, description = "`forbidden`: needs ERP Integrations at read_only")))]
#[tracing::instrument(skip_all)]
async fn items(
    caller: Caller, uri: Uri, Path((cid, id)): Path<(i64, i64)>, Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    reader(&caller.user, cid)?;
    let paging = paging.check()?;
    let (items, total) =
        submissions::items(&caller.state, &caller.user, cid, id, paging.window()).await?;
    Ok(paging.respond(&uri, total, items))
}
