//! ERP Integrations: the approver's queue of sent codes, GL accounts, export, reject, retry.
use crate::error::ApiResult;
use crate::extract::{Body, Caller, Paging, Q};
use crate::ops::queue::{self as ops, GlChoice, Pick, Reject, Start};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use costbridge_storage::queue::{Item, JobStatus};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub fn router() -> Router<AppState> {
    const ERP: &str = "/api/v1/companies/{cid}/erp";
    Router::new()
        .route(&format!("{ERP}/cost_codes"), get(items))
        .route(&format!("{ERP}/cost_codes/counts"), get(counts))
        .route(&format!("{ERP}/cost_codes/{{item_id}}"), patch(set_gl))
        .route(&format!("{ERP}/cost_codes/export"), post(export))
        .route(&format!("{ERP}/cost_codes/reject"), post(reject))
        .route(&format!("{ERP}/cost_codes/retry"), post(retry))
        .route(
            &format!("{ERP}/cost_codes/sync_from_erp"),
            post(sync_from_erp),
        )
        .route(&format!("{ERP}/export_jobs/{{id}}"), get(job))
        .route(&format!("{ERP}/gl_accounts"), get(gl_accounts))
}

#[derive(Deserialize)]
struct ItemQuery {
    filter: Option<String>,
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn items(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(cid): Path<i64>,
    Q(q): Q<ItemQuery>,
    Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    // Access is refused before the paging is judged.
    ops::reader(&caller.user, cid)?;
    let paging = paging.check()?;
    let filter = q.filter.as_deref().unwrap_or("ready_to_export");
    let (items, total) = ops::items(
        &state,
        &caller.user,
        cid,
        filter,
        paging.per_page,
        paging.offset(),
    )
    .await?;
    Ok(paging.respond(&uri, total, items))
}

/// How many items each filter holds (for the filter tabs).
#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn counts(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<Json<BTreeMap<&'static str, i64>>> {
    Ok(Json(ops::counts(&state, &caller.user, cid).await?))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id, item = item_id))]
async fn set_gl(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, item_id)): Path<(i64, i64)>,
    Body(body): Body<GlChoice>,
) -> ApiResult<Json<Item>> {
    Ok(Json(
        ops::set_gl(&state, &caller.user, cid, item_id, body).await?,
    ))
}

fn accepted((job, count): (i64, i64)) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(json!({"export_job_id": job, "item_count": count})),
    )
        .into_response()
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
    Body(pick): Body<Pick>,
) -> ApiResult<Response> {
    let started = ops::start(&state, &caller.user, cid, &pick, Start::Export).await?;
    Ok(accepted(started))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
    Body(pick): Body<Pick>,
) -> ApiResult<Response> {
    let started = ops::start(&state, &caller.user, cid, &pick, Start::Retry).await?;
    Ok(accepted(started))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
    Body(body): Body<Reject>,
) -> ApiResult<Json<Value>> {
    let n = ops::reject(&state, &caller.user, cid, &body).await?;
    Ok(Json(json!({"rejected_count": n})))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id, job = id))]
async fn job(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, id)): Path<(i64, i64)>,
) -> ApiResult<Json<JobStatus>> {
    Ok(Json(ops::job(&state, &caller.user, cid, id).await?))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn gl_accounts(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<Json<Value>> {
    let accounts: Vec<Value> = ops::gl_accounts(&state, &caller.user, cid)
        .await?
        .into_iter()
        .map(|a| json!({"id": a.code, "code": a.code, "name": a.name, "kind": a.kind}))
        .collect();
    Ok(Json(Value::Array(accounts)))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn sync_from_erp(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<Response> {
    Ok(match ops::sync_from_erp(&state, &caller.user, cid).await? {
        ops::Pull::Done(summary) => Json(summary).into_response(),
        // The ERP pulls its own work (QuickBooks Web Connector): asked for its next run.
        ops::Pull::Requested(message) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"requested": true, "message": message})),
        )
            .into_response(),
    })
}
