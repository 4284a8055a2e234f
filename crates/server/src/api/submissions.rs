//! Submissions for auditors: each Send to ERP, who made it, and where each sent code stands.
use super::queue::reader;
use crate::error::ApiResult;
use crate::extract::{Caller, Paging, Q};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use costbridge_storage::submissions::Submission;

pub fn router() -> Router<AppState> {
    const SUBMISSIONS: &str = "/api/v1/companies/{cid}/submissions";
    Router::new()
        .route(SUBMISSIONS, get(list))
        .route(&format!("{SUBMISSIONS}/{{id}}"), get(one))
        .route(&format!("{SUBMISSIONS}/{{id}}/items"), get(items))
}

#[tracing::instrument(skip_all, fields(cid))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(cid): Path<i64>,
    Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    let company = reader(&caller, cid)?;
    let paging = paging.check()?;
    let (subs, total) = state
        .db
        .submissions(company, paging.per_page, paging.offset())
        .await?;
    Ok(paging.respond(&uri, total, subs))
}

#[tracing::instrument(skip_all, fields(cid, id))]
async fn one(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, id)): Path<(i64, i64)>,
) -> ApiResult<Json<Submission>> {
    let company = reader(&caller, cid)?;
    Ok(Json(state.db.submission(company, id).await?))
}

#[tracing::instrument(skip_all, fields(cid, id))]
async fn items(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path((cid, id)): Path<(i64, i64)>,
    Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    let company = reader(&caller, cid)?;
    let paging = paging.check()?;
    // A submission of another company is not found, not an empty page.
    state.db.submission(company, id).await?;
    let (items, total) = state
        .db
        .submission_items(company, id, paging.per_page, paging.offset())
        .await?;
    Ok(paging.respond(&uri, total, items))
}
