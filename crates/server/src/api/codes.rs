//! Cost code lists, codes, and CSV import/export.
use super::{nullable, text};
use crate::csvio::{self, CsvError};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Paging, Q, too_large};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use costbridge_domain::sync::SyncState;
use costbridge_domain::wbs::{CodeSegment, Description, WbsError};
use costbridge_storage::codes::{CodeFilter, CodeList, CodePatch, CostCode, NewCode};
use costbridge_storage::import::{ImportError, ImportPreview, ImportRow, ImportSummary};
use serde::Deserialize;
use std::collections::BTreeMap;

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

pub(crate) fn read(caller: &Caller, cid: i64) -> ApiResult<i64> {
    let company = caller.company(cid)?;
    caller.require(
        caller.user.permissions.can_read_codes(),
        "admin_tool=read_only",
    )?;
    Ok(company)
}

pub(crate) fn write(caller: &Caller, cid: i64) -> ApiResult<i64> {
    let company = caller.company(cid)?;
    caller.require(
        caller.user.permissions.can_write_codes(),
        "admin_tool=admin",
    )?;
    Ok(company)
}

async fn lists(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<Json<Vec<CodeList>>> {
    let company = read(&caller, cid)?;
    Ok(Json(state.db.lists(company).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateList {
    name: String,
}

async fn create_list(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
    Body(body): Body<CreateList>,
) -> ApiResult<impl IntoResponse> {
    Ok((
        StatusCode::CREATED,
        Json(create_list_as(&state, &caller, cid, &body.name).await?),
    ))
}

pub async fn create_list_as(
    state: &AppState,
    caller: &Caller,
    cid: i64,
    name: &str,
) -> ApiResult<CodeList> {
    let company = write(caller, cid)?;
    let name = text("name", name, 200)?;
    Ok(state.db.create_list(company, caller.user.id, &name).await?)
}

#[derive(Deserialize)]
struct CodeQuery {
    sync_status: Option<String>,
    q: Option<String>,
}

async fn list_codes(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path((cid, lid)): Path<(i64, i64)>,
    Q(query): Q<CodeQuery>,
    Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    let company = read(&caller, cid)?;
    let paging = paging.check()?;
    if let Some(s) = &query.sync_status
        && SyncState::parse(s).is_none()
    {
        return Err(ApiError::field(
            "sync_status",
            "must be one of new, modified, pending, exporting, synced, failed, rejected",
        ));
    }
    let filter = CodeFilter {
        sync_status: query.sync_status,
        q: query.q.filter(|q| !q.is_empty()),
    };
    let (codes, total) = state
        .db
        .codes(company, lid, &filter, paging.per_page, paging.offset())
        .await?;
    Ok(paging.respond(&uri, total, codes))
}

async fn get_code(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, lid, id)): Path<(i64, i64, i64)>,
) -> ApiResult<Json<CostCode>> {
    let company = read(&caller, cid)?;
    Ok(Json(state.db.code(company, lid, id).await?))
}

fn collect<T>(
    fields: &mut BTreeMap<String, Vec<String>>,
    name: &str,
    r: Result<T, WbsError>,
) -> Option<T> {
    r.map_err(|e| {
        fields
            .entry(name.to_owned())
            .or_default()
            .push(e.to_string())
    })
    .ok()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCode {
    pub code: String,
    pub description: String,
    pub parent_id: Option<i64>,
}

async fn create_code(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, lid)): Path<(i64, i64)>,
    Body(body): Body<CreateCode>,
) -> ApiResult<impl IntoResponse> {
    let created = create_code_as(&state, &caller, cid, lid, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn create_code_as(
    state: &AppState,
    caller: &Caller,
    cid: i64,
    lid: i64,
    body: CreateCode,
) -> ApiResult<CostCode> {
    let company = write(caller, cid)?;
    let delimiter = state.db.company_delimiter(company).await?;
    let mut fields = BTreeMap::new();
    let code = collect(
        &mut fields,
        "code",
        CodeSegment::parse(&body.code, delimiter),
    );
    let description = collect(
        &mut fields,
        "description",
        Description::parse(&body.description),
    );
    let (Some(code), Some(description)) = (code, description) else {
        return Err(ApiError::fields(fields));
    };
    Ok(state
        .db
        .create_code(
            company,
            lid,
            caller.user.id,
            NewCode {
                code,
                description,
                parent_id: body.parent_id,
            },
        )
        .await?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateCode {
    pub code: Option<String>,
    pub description: Option<String>,
    pub active: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub parent_id: Option<Option<i64>>,
}

async fn update_code(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, lid, id)): Path<(i64, i64, i64)>,
    Body(body): Body<UpdateCode>,
) -> ApiResult<Json<CostCode>> {
    Ok(Json(
        update_code_as(&state, &caller, cid, lid, id, body).await?,
    ))
}

pub async fn update_code_as(
    state: &AppState,
    caller: &Caller,
    cid: i64,
    lid: i64,
    id: i64,
    body: UpdateCode,
) -> ApiResult<CostCode> {
    let company = caller.company(cid)?;
    let p = caller.user.permissions;
    let only_active = body.code.is_none() && body.description.is_none() && body.parent_id.is_none();
    caller.require(
        p.can_write_codes() || (only_active && p.can_toggle_active()),
        "admin_tool=admin",
    )?;
    let delimiter = state.db.company_delimiter(company).await?;
    let mut fields = BTreeMap::new();
    let code = body
        .code
        .map(|c| collect(&mut fields, "code", CodeSegment::parse(&c, delimiter)));
    let description = body
        .description
        .map(|d| collect(&mut fields, "description", Description::parse(&d)));
    if !fields.is_empty() {
        return Err(ApiError::fields(fields));
    }
    let patch = CodePatch {
        code: code.flatten(),
        description: description.flatten(),
        active: body.active,
        parent_id: body.parent_id,
    };
    Ok(state
        .db
        .update_code(company, lid, caller.user.id, id, patch)
        .await?)
}

async fn delete_code(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, lid, id)): Path<(i64, i64, i64)>,
) -> ApiResult<StatusCode> {
    delete_code_as(&state, &caller, cid, lid, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_code_as(
    state: &AppState,
    caller: &Caller,
    cid: i64,
    lid: i64,
    id: i64,
) -> ApiResult<()> {
    let company = write(caller, cid)?;
    Ok(state
        .db
        .delete_code(company, lid, caller.user.id, id)
        .await?)
}

async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, lid)): Path<(i64, i64)>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<ImportSummary>> {
    let company = write(&caller, cid)?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::bad_request(e.body_text())
        }
    })?;
    import_bytes(&state, company, lid, caller.user.id, &body, |_| {})
        .await
        .map(Json)
}

/// What importing `bytes` would create and change, without applying anything.
pub async fn preview_import_as(
    state: &AppState,
    caller: &Caller,
    cid: i64,
    lid: i64,
    bytes: &[u8],
) -> ApiResult<ImportPreview> {
    let company = write(caller, cid)?;
    let rows = parse_csv(bytes, |_| {})?;
    Ok(state.db.preview_import(company, lid, &rows).await?)
}

fn parse_csv(bytes: &[u8], progress: impl FnMut(u64)) -> ApiResult<Vec<ImportRow>> {
    match csvio::parse(bytes, progress) {
        Ok(rows) => Ok(rows),
        Err(CsvError::File(fields)) => Err(ApiError::fields(fields)),
        Err(CsvError::Rows(rows)) => Err(ImportError::Rows(rows).into()),
    }
}

/// Parses and applies a CSV file; shared with the `import` command.
pub async fn import_bytes(
    state: &AppState,
    company: i64,
    list: i64,
    actor: i64,
    bytes: &[u8],
    progress: impl FnMut(u64),
) -> ApiResult<ImportSummary> {
    let rows = parse_csv(bytes, progress)?;
    Ok(state.db.import_codes(company, list, actor, &rows).await?)
}

async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, lid)): Path<(i64, i64)>,
) -> ApiResult<Response> {
    let company = read(&caller, cid)?;
    let codes = state.db.export_codes(company, lid).await?;
    let disposition = format!("attachment; filename=\"cost-codes-{lid}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csvio::render(&codes),
    )
        .into_response())
}
