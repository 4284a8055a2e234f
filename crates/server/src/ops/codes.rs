//! Cost code lists and their codes: who may read and change them, and the checks a code's
//! segment and description pass before anything is written.
use super::{Fields, OpError, OpResult, Window, company, nullable, present, require, text};
use crate::csvio;
use crate::state::AppState;
use costbridge_domain::sync::SyncState;
use costbridge_domain::wbs::{CodeSegment, Description, WbsError};
use costbridge_storage::codes::{CodeFilter, CodeList, CodePatch, CostCode, NewCode};
use costbridge_storage::users::User;
use costbridge_storage::views::TreeNode;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The caller's company, if they may read its codes.
pub fn read(caller: &User, cid: i64) -> OpResult<i64> {
    let company = company(caller, cid)?;
    require(caller.permissions.can_read_codes(), "admin_tool=read_only")?;
    Ok(company)
}

/// The caller's company, if they may change its codes.
pub fn write(caller: &User, cid: i64) -> OpResult<i64> {
    let company = company(caller, cid)?;
    require(caller.permissions.can_write_codes(), "admin_tool=admin")?;
    Ok(company)
}

#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn lists(state: &AppState, caller: &User, cid: i64) -> OpResult<Vec<CodeList>> {
    let company = read(caller, cid)?;
    Ok(state.db.lists(company).await?)
}

#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn list(state: &AppState, caller: &User, cid: i64, lid: i64) -> OpResult<CodeList> {
    let company = read(caller, cid)?;
    Ok(state.db.list(company, lid).await?)
}

#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn create_list(
    state: &AppState, caller: &User, cid: i64, name: &str,
) -> OpResult<CodeList> {
    let company = write(caller, cid)?;
    let name = text("name", name, 200)?;
    Ok(state.db.create_list(company, caller.id, &name).await?)
}

/// A page of a list's codes, filtered by sync state and search text; with the total.
#[tracing::instrument(skip(state, caller, filter), fields(user = caller.id))]
pub async fn codes(
    state: &AppState, caller: &User, cid: i64, lid: i64, filter: &CodeFilter, page: Window,
) -> OpResult<(Vec<CostCode>, i64)> {
    let company = read(caller, cid)?;
    if let Some(s) = &filter.sync_status
        && SyncState::parse(s).is_none()
    {
        return Err(OpError::field(
            "sync_status",
            "must be one of new, modified, pending, exporting, synced, failed, rejected",
        ));
    }
    Ok(state
        .db
        .codes(company, lid, filter, page.limit, page.offset)
        .await?)
}

#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn code(
    state: &AppState, caller: &User, cid: i64, lid: i64, id: i64,
) -> OpResult<CostCode> {
    let company = read(caller, cid)?;
    Ok(state.db.code(company, lid, id).await?)
}

/// The id of the code with this full code in the list, for choosing a parent by what people
/// see; empty text is the top tier (`None`). An unknown code is an error on `parent`.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn parent_by_full_code(
    state: &AppState, caller: &User, cid: i64, lid: i64, full_code: &str,
) -> OpResult<Option<i64>> {
    let company = read(caller, cid)?;
    let full_code = full_code.trim();
    if full_code.is_empty() {
        return Ok(None);
    }
    match state.db.code_by_full_code(company, lid, full_code).await? {
        Some(c) => Ok(Some(c.id)),
        None => Err(OpError::field(
            "parent",
            format!(
                "there is no code '{full_code}' in this list; type the full code of the new \
                 parent, or leave it empty for the top tier"
            ),
        )),
    }
}

/// A page of the codes directly under `parent` (the top tier for `None`), each with its
/// number of children; with how many there are in all.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn children(
    state: &AppState, caller: &User, cid: i64, lid: i64, parent: Option<i64>, page: Window,
) -> OpResult<(Vec<TreeNode>, i64)> {
    let company = read(caller, cid)?;
    Ok(state
        .db
        .code_children(company, lid, parent, page.limit, page.offset)
        .await?)
}

/// The list as a CSV file (`full_code,description,active`).
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn export_csv(state: &AppState, caller: &User, cid: i64, lid: i64) -> OpResult<String> {
    let company = read(caller, cid)?;
    let codes = state.db.export_codes(company, lid).await?;
    Ok(csvio::render(&codes))
}

fn collect<T>(fields: &mut Fields, name: &str, r: Result<T, WbsError>) -> Option<T> {
    r.map_err(|e| {
        fields
            .entry(name.to_owned())
            .or_default()
            .push(e.to_string())
    })
    .ok()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "110", "description": "Permits", "parent_id": 2}))]
pub struct CreateCode {
    /// This tier's segment (the full code is the parent's full code, the delimiter and this).
    pub code: String,
    pub description: String,
    /// The parent code in the same list; absent or `null` for a top-tier code.
    pub parent_id: Option<i64>,
}

#[tracing::instrument(skip(state, caller, body), fields(user = caller.id))]
pub async fn create_code(
    state: &AppState, caller: &User, cid: i64, lid: i64, body: CreateCode,
) -> OpResult<CostCode> {
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
        return Err(OpError::Invalid(fields));
    };
    Ok(state
        .db
        .create_code(
            company,
            lid,
            caller.id,
            NewCode {
                code,
                description,
                parent_id: body.parent_id,
            },
            delimiter,
        )
        .await?)
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"description": "Permits and fees"}))]
pub struct UpdateCode {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub active: Option<bool>,
    /// Moves the code: another code of the list, or `null` for the top tier.
    #[serde(default, deserialize_with = "nullable")]
    pub parent_id: Option<Option<i64>>,
}

#[tracing::instrument(skip(state, caller, body), fields(user = caller.id))]
pub async fn update_code(
    state: &AppState, caller: &User, cid: i64, lid: i64, id: i64, body: UpdateCode,
) -> OpResult<CostCode> {
    let company = company(caller, cid)?;
    let p = caller.permissions;
    let only_active = body.code.is_none() && body.description.is_none() && body.parent_id.is_none();
    require(
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
        return Err(OpError::Invalid(fields));
    }
    let patch = CodePatch {
        code: code.flatten(),
        description: description.flatten(),
        active: body.active,
        parent_id: body.parent_id,
    };
    Ok(state
        .db
        .update_code(company, lid, caller.id, id, patch, delimiter)
        .await?)
}

#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn delete_code(
    state: &AppState, caller: &User, cid: i64, lid: i64, id: i64,
) -> OpResult<()> {
    let company = write(caller, cid)?;
    Ok(state.db.delete_code(company, lid, caller.id, id).await?)
}
