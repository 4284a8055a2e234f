//! Cost code lists, codes, and CSV import/export.
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Paging, Q, too_large};
use crate::ops::codes::{self as ops, CreateCode, UpdateCode};
use crate::ops::imports;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use costbridge_domain::sync::SyncState;
use costbridge_storage::codes::{CodeFilter, CodeList, CostCode};
use costbridge_storage::import::ImportSummary;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router(max_import_bytes: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(lists, create_list))
        .routes(routes!(list_codes, create_code))
        .routes(routes!(get_code, update_code, delete_code))
        .routes(routes!(export))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(import))
                .layer(DefaultBodyLimit::max(max_import_bytes)),
        )
}

/// List the company's cost code lists
#[utoipa::path(get, path = "/api/v1/companies/{cid}/cost_code_lists", tag = "codes",
    operation_id = "list_cost_code_lists", params(Paging),
    responses((status = 200, description = "One page of the company's lists", body = [CodeList]),
        (status = 403, description = "`forbidden`: reading codes needs the Admin tool at read_only")))]
#[tracing::instrument(skip_all)]
async fn lists(
    caller: Caller, uri: Uri, Path(cid): Path<i64>, Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    let all = ops::lists(&caller.state, &caller.user, cid).await?;
    Ok(paging.check()?.respond_part(&uri, all))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Estimating"}))]
struct CreateList {
    /// The list's name, unique in the company.
    name: String,
}

/// Create a cost code list
#[utoipa::path(post, path = "/api/v1/companies/{cid}/cost_code_lists", tag = "codes",
    request_body = CreateList,
    responses((status = 201, description = "The new list", body = CodeList),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin")))]
#[tracing::instrument(skip_all)]
async fn create_list(
    caller: Caller, Path(cid): Path<i64>, Body(body): Body<CreateList>,
) -> ApiResult<impl IntoResponse> {
    let list = ops::create_list(&caller.state, &caller.user, cid, &body.name).await?;
    Ok((StatusCode::CREATED, Json(list)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CodeQuery {
    /// Only the codes in this sync state.
    #[param(value_type = Option<SyncState>)]
    sync_status: Option<String>,
    /// Codes whose code, full code or description contains this text.
    q: Option<String>,
    /// The id of the last code of the previous page; not with `page`. A code deleted since is
    /// a 422, and one renamed since moves where the page starts: `after_code` keeps its place.
    after: Option<i64>,
    /// The full code of the last code of the previous page (what `Link: rel="next"` gives):
    /// the page starts after it in list order, whether or not a code has it now; not with
    /// `page` or `after`.
    after_code: Option<String>,
}

/// The codes of a list, in natural full-code order
///
/// Pages by key: follow `Link: rel="next"`.
#[utoipa::path(get, path = "/api/v1/companies/{cid}/cost_code_lists/{lid}/cost_codes", tag = "codes",
    params(CodeQuery, Paging),
    responses((status = 200, description = "One page of codes", body = [CostCode]),
        (status = 403, description = "`forbidden`: reading codes needs the Admin tool at read_only")))]
#[tracing::instrument(skip_all)]
async fn list_codes(
    caller: Caller, uri: Uri, Path((cid, lid)): Path<(i64, i64)>, Q(query): Q<CodeQuery>,
    Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    // Access is refused before the paging is judged.
    ops::read(&caller.user, cid)?;
    let paging = paging.check()?;
    Paging::keys_alone(
        &uri,
        &[
            ("after", query.after.is_some()),
            ("after_code", query.after_code.is_some()),
        ],
    )?;
    if query.after.is_some() && query.after_code.is_some() {
        return Err(ApiError::field(
            "after_code",
            "cannot be combined with after: give one of them to say where the page starts",
        ));
    }
    let filter = CodeFilter {
        sync_status: query.sync_status,
        q: query.q.filter(|q| !q.is_empty()),
        after: query.after,
        after_code: query.after_code,
    };
    let (codes, total) = ops::codes(
        &caller.state,
        &caller.user,
        cid,
        lid,
        &filter,
        paging.window(),
    )
    .await?;
    // The next page starts after the last code's full code.
    Ok(paging.respond_by_key(&uri, total, codes, "after_code", |c| c.full_code.clone()))
}

/// One code
#[utoipa::path(get, path = "/api/v1/companies/{cid}/cost_code_lists/{lid}/cost_codes/{id}", tag = "codes",
    responses((status = 200, description = "The code", body = CostCode),
        (status = 403, description = "`forbidden`: reading codes needs the Admin tool at read_only")))]
#[tracing::instrument(skip_all)]
async fn get_code(
    caller: Caller, Path((cid, lid, id)): Path<(i64, i64, i64)>,
) -> ApiResult<Json<CostCode>> {
    Ok(Json(
        ops::code(&caller.state, &caller.user, cid, lid, id).await?,
    ))
}

/// Create a code
#[utoipa::path(post, path = "/api/v1/companies/{cid}/cost_code_lists/{lid}/cost_codes", tag = "codes",
    request_body = CreateCode,
    responses((status = 201, description = "The new code, `new`", body = CostCode),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin")))]
#[tracing::instrument(skip_all)]
async fn create_code(
    caller: Caller, Path((cid, lid)): Path<(i64, i64)>, Body(body): Body<CreateCode>,
) -> ApiResult<impl IntoResponse> {
    let created = ops::create_code(&caller.state, &caller.user, cid, lid, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Edit, move or (de)activate a code
#[utoipa::path(patch, path = "/api/v1/companies/{cid}/cost_code_lists/{lid}/cost_codes/{id}", tag = "codes",
    request_body = UpdateCode,
    responses((status = 200, description = "The code as it is now; a patch that changes nothing writes nothing (no audit row, event or new list version)", body = CostCode),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin (standard may only change `active`)"),
        (status = 409, description = "`locked`: the patch changes a code (or a descendant) that is pending, exporting or failed")))]
#[tracing::instrument(skip_all)]
async fn update_code(
    caller: Caller, Path((cid, lid, id)): Path<(i64, i64, i64)>, Body(body): Body<UpdateCode>,
) -> ApiResult<Json<CostCode>> {
    Ok(Json(
        ops::update_code(&caller.state, &caller.user, cid, lid, id, body).await?,
    ))
}

/// Delete a code the ERP never had
#[utoipa::path(delete, path = "/api/v1/companies/{cid}/cost_code_lists/{lid}/cost_codes/{id}", tag = "codes",
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin"),
        (status = 409, description = "`conflict`: the ERP had it (deactivate it instead), it is pending, exporting or failed in the ERP Integrations queue, or it has children; the message says what to do first")))]
#[tracing::instrument(skip_all)]
async fn delete_code(
    caller: Caller, Path((cid, lid, id)): Path<(i64, i64, i64)>,
) -> ApiResult<StatusCode> {
    ops::delete_code(&caller.state, &caller.user, cid, lid, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Import a CSV file, all or nothing
///
/// Columns `full_code,description,active`, separated by commas (or by `;` or tabs when the
/// header row has no comma); an empty or missing `active` keeps an existing code's flag and
/// makes a new code active. Every bad row is listed in `details.rows` and nothing is applied.
#[utoipa::path(post, path = "/api/v1/companies/{cid}/cost_code_lists/{lid}/import", tag = "codes",
    request_body(content = String, content_type = "text/csv", description = "The CSV file",
        example = "full_code,description,active\n01,General Requirements,true\n01-100,Permits,true\n"),
    responses((status = 200, description = "What the import did", body = ImportSummary),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin"),
        (status = 422, description = "`validation_failed`: `details.rows` lists every bad row (a row that changes a code pending, exporting or failed among them); nothing was applied")))]
#[tracing::instrument(skip_all)]
async fn import(
    caller: Caller, Path((cid, lid)): Path<(i64, i64)>,
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
    let summary = imports::import(&caller.state, &caller.user, cid, lid, &body, |_| {}).await?;
    Ok(Json(summary))
}

/// Export the list as CSV
#[utoipa::path(get, path = "/api/v1/companies/{cid}/cost_code_lists/{lid}/export", tag = "codes",
    operation_id = "export_cost_code_list",
    responses((status = 200, description = "The list as CSV, the import's columns", content_type = "text/csv", body = String,
        example = "full_code,description,active\n01,General Requirements,true\n"),
        (status = 403, description = "`forbidden`: reading codes needs the Admin tool at read_only")))]
#[tracing::instrument(skip_all)]
async fn export(caller: Caller, Path((cid, lid)): Path<(i64, i64)>) -> ApiResult<Response> {
    let csv = ops::export_csv(&caller.state, &caller.user, cid, lid).await?;
    Ok(crate::csvio::attachment(
        &format!("cost-codes-{lid}.csv"),
        csv,
    ))
}
