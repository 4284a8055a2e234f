//! ERP Integrations: the approver's queue of sent codes, GL accounts, export, reject, retry.
use crate::error::ApiResult;
use crate::extract::{Body, Caller, Paging, Q};
use crate::ops::queue::{self as ops, GlChoice, Pick, Reject, Start};
use crate::state::AppState;
use axum::Json;
use axum::extract::Path;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use costbridge_erp::GlKind;
use costbridge_storage::pull::PullSummary;
use costbridge_storage::queue::{Item, JobStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(items))
        .routes(routes!(counts))
        .routes(routes!(set_gl))
        .routes(routes!(export))
        .routes(routes!(reject))
        .routes(routes!(retry))
        .routes(routes!(sync_from_erp))
        .routes(routes!(job))
        .routes(routes!(job_file))
        .routes(routes!(gl_accounts))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ItemQuery {
    /// Which tab: the items in this state (default `ready_to_export`).
    #[param(schema_with = filter_schema)]
    filter: Option<String>,
}

/// The filter names the queue takes, from [`ops::FILTERS`].
fn filter_schema() -> utoipa::openapi::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ops::FILTERS.iter().map(|(name, _, _)| *name)))
        .build()
}

/// The ERP Integrations queue, one filter at a time
#[utoipa::path(get, path = "/api/v1/companies/{cid}/erp/cost_codes", tag = "queue",
    operation_id = "list_queue_items", params(ItemQuery, Paging),
    responses((status = 200, description = "One page of the filter's items", body = [Item]),
        (status = 403, description = "`forbidden`: needs ERP Integrations at read_only")))]
#[tracing::instrument(skip_all)]
async fn items(
    caller: Caller, uri: Uri, Path(cid): Path<i64>, Q(q): Q<ItemQuery>, Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    // Access is refused before the paging is judged.
    ops::reader(&caller.user, cid)?;
    let paging = paging.check()?;
    let filter = q.filter.as_deref().unwrap_or("ready_to_export");
    let (items, total) =
        ops::items(&caller.state, &caller.user, cid, filter, paging.window()).await?;
    Ok(paging.respond(&uri, total, items))
}

/// How many items each filter holds (for the filter tabs)
#[utoipa::path(get, path = "/api/v1/companies/{cid}/erp/cost_codes/counts", tag = "queue",
    operation_id = "queue_counts",
    responses((status = 200, description = "The count per filter name", body = BTreeMap<String, i64>,
        example = json!({"ready_to_export": 3, "exporting": 0, "failed": 1, "synced": 40, "rejected": 0, "retrieved": 0})),
        (status = 403, description = "`forbidden`: needs ERP Integrations at read_only")))]
#[tracing::instrument(skip_all)]
async fn counts(
    caller: Caller, Path(cid): Path<i64>,
) -> ApiResult<Json<BTreeMap<&'static str, i64>>> {
    Ok(Json(ops::counts(&caller.state, &caller.user, cid).await?))
}

/// Choose an item's GL accounts (`null` clears one)
#[utoipa::path(patch, path = "/api/v1/companies/{cid}/erp/cost_codes/{item_id}", tag = "queue",
    operation_id = "choose_gl_accounts", request_body = GlChoice,
    responses((status = 200, description = "The item", body = Item),
        (status = 403, description = "`forbidden`: needs ERP Integrations at standard and Push to accounting"),
        (status = 409, description = "`conflict`: the item is no longer ready"),
        (status = 502, description = "`erp_unavailable`: the ERP's chart of accounts could not be read")))]
#[tracing::instrument(skip_all)]
async fn set_gl(
    caller: Caller, Path((cid, item_id)): Path<(i64, i64)>, Body(body): Body<GlChoice>,
) -> ApiResult<Json<Item>> {
    Ok(Json(
        ops::set_gl(&caller.state, &caller.user, cid, item_id, body).await?,
    ))
}

/// An export job queued: follow it at `…/erp/export_jobs/{export_job_id}`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"export_job_id": 1, "item_count": 12}))]
struct Started {
    export_job_id: i64,
    item_count: i64,
}

fn accepted((export_job_id, item_count): (i64, i64)) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(Started {
            export_job_id,
            item_count,
        }),
    )
        .into_response()
}

/// Export (accept) the selected items, or every ready one
#[utoipa::path(post, path = "/api/v1/companies/{cid}/erp/cost_codes/export", tag = "queue",
    operation_id = "export_items", request_body = Pick,
    responses((status = 202, description = "The export job, queued", body = Started),
        (status = 403, description = "`forbidden`: needs ERP Integrations at standard and Push to accounting"),
        (status = 409, description = "`conflict`: another export of the list is being started"),
        (status = 422, description = "`validation_failed` with `details.items` (e.g. an income account the profile requires) or `details.fields`; `no_erp_connection`"),
        (status = 502, description = "`erp_unavailable`: the ERP's chart of accounts could not be read")))]
#[tracing::instrument(skip_all)]
async fn export(
    caller: Caller, Path(cid): Path<i64>, Body(pick): Body<Pick>,
) -> ApiResult<Response> {
    let started = ops::start(&caller.state, &caller.user, cid, &pick, Start::Export, None).await?;
    Ok(accepted(started))
}

/// Retry the selected failed items, or every failed one
#[utoipa::path(post, path = "/api/v1/companies/{cid}/erp/cost_codes/retry", tag = "queue",
    operation_id = "retry_items", request_body = Pick,
    responses((status = 202, description = "The export job, queued", body = Started),
        (status = 403, description = "`forbidden`: needs ERP Integrations at standard and Push to accounting"),
        (status = 409, description = "`conflict`: another export of the list is being started"),
        (status = 422, description = "`validation_failed` with `details.items` or `details.fields`; `no_erp_connection`"),
        (status = 502, description = "`erp_unavailable`: the ERP's chart of accounts could not be read")))]
#[tracing::instrument(skip_all)]
async fn retry(
    caller: Caller, Path(cid): Path<i64>, Body(pick): Body<Pick>,
) -> ApiResult<Response> {
    let started = ops::start(&caller.state, &caller.user, cid, &pick, Start::Retry, None).await?;
    Ok(accepted(started))
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"rejected_count": 2}))]
struct Rejected {
    rejected_count: i64,
}

/// Reject the selected items, or every ready one, with a reason the admin sees
#[utoipa::path(post, path = "/api/v1/companies/{cid}/erp/cost_codes/reject", tag = "queue",
    operation_id = "reject_items", request_body = Reject,
    responses((status = 200, description = "How many were rejected", body = Rejected),
        (status = 403, description = "`forbidden`: needs ERP Integrations at standard and Push to accounting"),
        (status = 409, description = "`conflict`: the list is busy")))]
#[tracing::instrument(skip_all)]
async fn reject(
    caller: Caller, Path(cid): Path<i64>, Body(body): Body<Reject>,
) -> ApiResult<Json<Rejected>> {
    let rejected_count = ops::reject(&caller.state, &caller.user, cid, &body).await?;
    Ok(Json(Rejected { rejected_count }))
}

/// An export job's status and counts
#[utoipa::path(get, path = "/api/v1/companies/{cid}/erp/export_jobs/{id}", tag = "queue",
    operation_id = "get_export_job",
    responses((status = 200, description = "The job", body = JobStatus),
        (status = 403, description = "`forbidden`: needs ERP Integrations at read_only")))]
#[tracing::instrument(skip_all)]
async fn job(caller: Caller, Path((cid, id)): Path<(i64, i64)>) -> ApiResult<Json<JobStatus>> {
    Ok(Json(ops::job(&caller.state, &caller.user, cid, id).await?))
}

/// The file an export job wrote (file connector), to import into the ERP
#[utoipa::path(get, path = "/api/v1/companies/{cid}/erp/export_jobs/{id}/file", tag = "queue",
    operation_id = "get_export_job_file",
    responses((status = 200, description = "The file (`Content-Disposition` names it)", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 403, description = "`forbidden`: needs ERP Integrations at read_only"),
        (status = 404, description = "`not_found`: no such job in this company"),
        (status = 409, description = "`conflict`: the file is not in the folder the connection writes to now"),
        (status = 422, description = "`not_supported`: the job has written no file (yet, or its ERP took the codes)")))]
#[tracing::instrument(skip_all)]
async fn job_file(caller: Caller, Path((cid, id)): Path<(i64, i64)>) -> ApiResult<Response> {
    let (name, file, len) = ops::job_file(&caller.state, &caller.user, cid, id).await?;
    Ok(crate::csvio::export_file(&name, file, len))
}

/// A GL account an approver may pick; `id` is its `code`, which is what a choice names.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "4000", "code": "4000", "name": "Construction Income", "kind": "income"}))]
struct GlAccountOut {
    id: String,
    code: String,
    name: String,
    kind: GlKind,
}

/// The GL accounts an approver may pick, from the ERP
#[utoipa::path(get, path = "/api/v1/companies/{cid}/erp/gl_accounts", tag = "queue",
    operation_id = "list_gl_accounts",
    responses((status = 200, description = "The ERP's income and expense accounts", body = [GlAccountOut]),
        (status = 403, description = "`forbidden`: needs ERP Integrations at read_only"),
        (status = 422, description = "`no_erp_connection`"),
        (status = 502, description = "`erp_unavailable`: the ERP did not answer")))]
#[tracing::instrument(skip_all)]
async fn gl_accounts(caller: Caller, Path(cid): Path<i64>) -> ApiResult<Json<Vec<GlAccountOut>>> {
    let accounts = ops::gl_accounts(&caller.state, &caller.user, cid)
        .await?
        .into_iter()
        .map(|a| GlAccountOut {
            id: a.code.clone(),
            code: a.code,
            name: a.name,
            kind: a.kind,
        })
        .collect();
    Ok(Json(accounts))
}

/// Sync from ERP asked of an ERP that pulls its own work (the QuickBooks Web Connector).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"requested": true, "message": "Costbridge will read QuickBooks' items at the Web Connector's next run."}))]
struct SyncRequested {
    requested: bool,
    message: String,
}

/// Pull the ERP's code tree into the ERP list
#[utoipa::path(post, path = "/api/v1/companies/{cid}/erp/cost_codes/sync_from_erp", tag = "queue",
    operation_id = "sync_from_erp",
    responses((status = 200, description = "What the pull did; local unsynced edits come back as conflicts", body = PullSummary),
        (status = 202, description = "Asked of the QuickBooks Web Connector's next run", body = SyncRequested),
        (status = 403, description = "`forbidden`: needs ERP Integrations at standard and Push to accounting"),
        (status = 409, description = "`conflict`: the list is busy"),
        (status = 422, description = "`not_supported` (the connector cannot read codes) or `no_erp_connection`"),
        (status = 502, description = "`erp_unavailable`: the ERP did not answer")))]
#[tracing::instrument(skip_all)]
async fn sync_from_erp(caller: Caller, Path(cid): Path<i64>) -> ApiResult<Response> {
    Ok(
        match ops::sync_from_erp(&caller.state, &caller.user, cid).await? {
            ops::Pull::Done(summary) => Json(summary).into_response(),
            // The ERP pulls its own work (QuickBooks Web Connector): asked for its next run.
            ops::Pull::Requested(message) => (
                StatusCode::ACCEPTED,
                Json(SyncRequested {
                    requested: true,
                    message,
                }),
            )
                .into_response(),
        },
    )
}
