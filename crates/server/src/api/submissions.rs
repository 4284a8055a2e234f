//! Submissions for auditors (`crate::ops::submissions`).
use crate::error::ApiResult;
use crate::extract::{Caller, Paging, Q};
use crate::ops::queue::reader;
use crate::ops::submissions;
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

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(cid): Path<i64>,
    Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    // Access is refused before the paging is judged.
    reader(&caller.user, cid)?;
    let paging = paging.check()?;
    let (subs, total) =
        submissions::list(&state, &caller.user, cid, paging.per_page, paging.offset()).await?;
    Ok(paging.respond(&uri, total, subs))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id, id))]
async fn one(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, id)): Path<(i64, i64)>,
) -> ApiResult<Json<Submission>> {
    Ok(Json(submissions::one(&state, &caller.user, cid, id).await?))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id, id))]
async fn items(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path((cid, id)): Path<(i64, i64)>,
    Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    reader(&caller.user, cid)?;
    let paging = paging.check()?;
    let (items, total) = submissions::items(
        &state,
        &caller.user,
        cid,
        id,
        paging.per_page,
        paging.offset(),
    )
    .await?;
    Ok(paging.respond(&uri, total, items))
}
