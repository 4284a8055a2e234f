//! Cost code lists, codes, and CSV import/export.
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Paging, Q, too_large};
use crate::ops::codes::{self as ops, CreateCode, UpdateCode};
use crate::ops::imports;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use costbridge_storage::codes::{CodeFilter, CodeList, CostCode};
use costbridge_storage::import::ImportSummary;
use serde::Deserialize;

pub(crate) const LIST: &str = "/api/v1/companies/{cid}/cost_code_lists/{lid}";

pub fn router(max_import_bytes: usize) -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/companies/{cid}/cost_code_lists",
            get(lists).post(create_list),
        )
        .route(
            &format!("{LIST}/cost_codes"),
            get(list_codes).post(create_code),
        )
        .route(
            &format!("{LIST}/cost_codes/{{id}}"),
            get(get_code).patch(update_code).delete(delete_code),
        )
        .route(
            &format!("{LIST}/import"),
            post(import).layer(DefaultBodyLimit::max(max_import_bytes)),
        )
        .route(&format!("{LIST}/export"), get(export))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn lists(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<Json<Vec<CodeList>>> {
    Ok(Json(ops::lists(&state, &caller.user, cid).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateList {
    name: String,
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn create_list(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
    Body(body): Body<CreateList>,
) -> ApiResult<impl IntoResponse> {
    let list = ops::create_list(&state, &caller.user, cid, &body.name).await?;
    Ok((StatusCode::CREATED, Json(list)))
}

#[derive(Deserialize)]
struct CodeQuery {
    sync_status: Option<String>,
    q: Option<String>,
    /// The id of the last code of the previous page (from `Link: rel="next"`).
    after: Option<i64>,
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id, list = lid))]
async fn list_codes(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path((cid, lid)): Path<(i64, i64)>,
    Q(query): Q<CodeQuery>,
    Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    // Access is refused before the paging is judged.
    ops::read(&caller.user, cid)?;
    let paging = paging.check()?;
    if query.after.is_some() && paging.page != 1 {
        return Err(ApiError::field(
            "after",
            "cannot be combined with page: after already says where the page starts",
        ));
    }
    let filter = CodeFilter {
        sync_status: query.sync_status,
        q: query.q.filter(|q| !q.is_empty()),
        after: query.after,
    };
    let (codes, total) = ops::codes(
        &state,
        &caller.user,
        cid,
        lid,
        &filter,
        paging.per_page,
        paging.offset(),
    )
    .await?;
    // A client that pages by number (`page=`) keeps getting numbered links; otherwise a full
    // page may have more after it, and the next one starts after its last code.
    let by_number = crate::extract::has_param(&uri, "page");
    let next_after = codes
        .last()
        .filter(|_| !by_number && codes.len() as i64 == paging.per_page)
        .map(|c| c.id);
    Ok(paging.respond_with_next(&uri, total, codes, next_after))
}

#[tracing::instrument(
    skip_all,
    fields(company = cid, user = caller.user.id, list = lid, code = id)
)]
async fn get_code(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, lid, id)): Path<(i64, i64, i64)>,
) -> ApiResult<Json<CostCode>> {
    Ok(Json(ops::code(&state, &caller.user, cid, lid, id).await?))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id, list = lid))]
async fn create_code(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, lid)): Path<(i64, i64)>,
    Body(body): Body<CreateCode>,
) -> ApiResult<impl IntoResponse> {
    let created = ops::create_code(&state, &caller.user, cid, lid, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[tracing::instrument(
    skip_all,
    fields(company = cid, user = caller.user.id, list = lid, code = id)
)]
async fn update_code(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, lid, id)): Path<(i64, i64, i64)>,
    Body(body): Body<UpdateCode>,
) -> ApiResult<Json<CostCode>> {
    Ok(Json(
        ops::update_code(&state, &caller.user, cid, lid, id, body).await?,
    ))
}

#[tracing::instrument(
    skip_all,
    fields(company = cid, user = caller.user.id, list = lid, code = id)
)]
async fn delete_code(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, lid, id)): Path<(i64, i64, i64)>,
) -> ApiResult<StatusCode> {
    ops::delete_code(&state, &caller.user, cid, lid, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id, list = lid))]
async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, lid)): Path<(i64, i64)>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<ImportSummary>> {
    // Access is refused before the body is judged.
    ops::write(&caller.user, cid)?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::bad_request(e.body_text())
        }
    })?;
    let summary = imports::import(&state, &caller.user, cid, lid, &body, |_| {}).await?;
    Ok(Json(summary))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id, list = lid))]
async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, lid)): Path<(i64, i64)>,
) -> ApiResult<Response> {
    let csv = ops::export_csv(&state, &caller.user, cid, lid).await?;
    let disposition = format!("attachment; filename=\"cost-codes-{lid}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv,
    )
        .into_response())
}
