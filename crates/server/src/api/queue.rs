//! ERP Integrations: the approver's queue of sent codes, GL accounts, export, reject, retry.
use super::{Connection, connection, nullable, text};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Paging, Q};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use costbridge_domain::queue::ItemStatus;
use costbridge_erp::{GlAccount, GlKind};
use costbridge_storage::pull::{PullSummary, RemoteCode};
use costbridge_storage::queue::{GlDefaults, Item, JobStatus, Selection};
use serde::Deserialize;
use serde_json::{Value, json};

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

pub(crate) fn reader(caller: &Caller, cid: i64) -> ApiResult<i64> {
    let company = caller.company(cid)?;
    caller.require(
        caller.user.permissions.can_read_erp_queue(),
        "erp_integrations=read_only",
    )?;
    Ok(company)
}

pub(crate) fn approver(caller: &Caller, cid: i64) -> ApiResult<i64> {
    let company = caller.company(cid)?;
    caller.require(
        caller.user.permissions.is_approver(),
        "erp_integrations=standard and can_push_to_accounting",
    )?;
    Ok(company)
}

async fn require_connection(state: &AppState, company: i64) -> ApiResult<Connection> {
    connection(state, company).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_erp_connection",
            "the company has no ERP connection",
        )
    })
}

/// API.md's filter names, the stored item state each shows, and its tab label (PRODUCT.md §5).
pub const FILTERS: [(&str, &str, &str); 6] = [
    ("ready_to_export", "ready", "Ready to Export"),
    ("exporting", "exporting", "Exporting"),
    ("failed", "failed", "Failed to Export"),
    ("synced", "synced", "Synced"),
    ("rejected", "rejected", "Rejected"),
    ("retrieved", "retrieved", "Retrieved"),
];

/// The entry of [`FILTERS`] for a filter name, or an error naming the ones there are.
pub(crate) fn filter_entry(name: &str) -> ApiResult<(&'static str, &'static str, &'static str)> {
    FILTERS
        .iter()
        .find(|(key, _, _)| *key == name)
        .copied()
        .ok_or_else(|| {
            let names: Vec<&str> = FILTERS.iter().map(|(key, _, _)| *key).collect();
            ApiError::field("filter", format!("must be one of {}", names.join(", ")))
        })
}

/// API.md's filter names to the stored item states.
pub(crate) fn status_of(filter: &str) -> ApiResult<&'static str> {
    Ok(filter_entry(filter)?.1)
}

#[derive(Deserialize)]
struct ItemQuery {
    filter: Option<String>,
}

async fn items(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(cid): Path<i64>,
    Q(q): Q<ItemQuery>,
    Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    let company = reader(&caller, cid)?;
    let paging = paging.check()?;
    let status = status_of(q.filter.as_deref().unwrap_or("ready_to_export"))?;
    let (items, total) = state
        .db
        .items(company, status, paging.per_page, paging.offset())
        .await?;
    Ok(paging.respond(&uri, total, items))
}

/// How many items each filter holds (for the filter tabs).
async fn counts(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<Json<Value>> {
    let company = reader(&caller, cid)?;
    let c = state.db.item_counts(company).await?;
    let counts: serde_json::Map<String, Value> = FILTERS
        .iter()
        .map(|(key, status, _)| {
            (
                (*key).to_owned(),
                json!(c.get(*status).copied().unwrap_or(0)),
            )
        })
        .collect();
    Ok(Json(Value::Object(counts)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GlChoice {
    #[serde(default, deserialize_with = "nullable")]
    pub gl_income_account: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub gl_expense_account: Option<Option<String>>,
}

fn check_account(
    accounts: &[GlAccount],
    field: &str,
    kind: GlKind,
    code: &Option<Option<String>>,
) -> ApiResult<()> {
    if let Some(Some(code)) = code
        && !accounts.iter().any(|a| &a.code == code && a.kind == kind)
    {
        let known: Vec<&str> = accounts
            .iter()
            .filter(|a| a.kind == kind)
            .map(|a| a.code.as_str())
            .collect();
        return Err(ApiError::field(
            field,
            format!(
                "'{code}' is not one of the ERP's accounts of this kind ({})",
                known.join(", ")
            ),
        ));
    }
    Ok(())
}

async fn set_gl(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, item_id)): Path<(i64, i64)>,
    Body(body): Body<GlChoice>,
) -> ApiResult<Json<Item>> {
    Ok(Json(set_gl_as(&state, &caller, cid, item_id, body).await?))
}

/// Saves an approver's GL account choice on an item, checked against the ERP's accounts.
pub async fn set_gl_as(
    state: &AppState,
    caller: &Caller,
    cid: i64,
    item_id: i64,
    body: GlChoice,
) -> ApiResult<Item> {
    let company = approver(caller, cid)?;
    let conn = require_connection(state, company).await?;
    let accounts = conn.settings.gl_accounts().await?;
    check_account(
        &accounts,
        "gl_income_account",
        GlKind::Income,
        &body.gl_income_account,
    )?;
    check_account(
        &accounts,
        "gl_expense_account",
        GlKind::Expense,
        &body.gl_expense_account,
    )?;
    Ok(state
        .db
        .set_item_gl(
            company,
            caller.user.id,
            item_id,
            body.gl_income_account,
            body.gl_expense_account,
        )
        .await?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Pick {
    pub item_ids: Option<Vec<i64>>,
    /// Applied to the selected rows that have no account chosen.
    pub gl_income_account: Option<String>,
    pub gl_expense_account: Option<String>,
}

fn selection(ids: &Option<Vec<i64>>) -> ApiResult<Selection<'_>> {
    match ids {
        None => Ok(Selection::All),
        Some(ids) if ids.is_empty() => Err(ApiError::field(
            "item_ids",
            "is empty; leave it out to take every item",
        )),
        Some(ids) => Ok(Selection::Ids(ids)),
    }
}

/// Which rows an export starts from: accepting ready ones, or retrying failed ones.
#[derive(Clone, Copy)]
pub enum Start {
    Export,
    Retry,
}

/// Queues an export job for the picked rows; returns the job id and how many rows it holds.
pub async fn start(
    state: &AppState,
    caller: &Caller,
    cid: i64,
    pick: &Pick,
    what: Start,
) -> ApiResult<(i64, i64)> {
    let from = match what {
        Start::Export => ItemStatus::Ready,
        Start::Retry => ItemStatus::Failed,
    };
    let company = approver(caller, cid)?;
    let conn = require_connection(state, company).await?;
    if pick.gl_income_account.is_some() || pick.gl_expense_account.is_some() {
        let accounts = conn.settings.gl_accounts().await?;
        check_account(
            &accounts,
            "gl_income_account",
            GlKind::Income,
            &Some(pick.gl_income_account.clone()),
        )?;
        check_account(
            &accounts,
            "gl_expense_account",
            GlKind::Expense,
            &Some(pick.gl_expense_account.clone()),
        )?;
    }
    let required = conn.profile.rules.income_account_required;
    let defaults = GlDefaults {
        income: pick.gl_income_account.clone(),
        expense: pick.gl_expense_account.clone(),
    };
    let (job, count) = state
        .db
        .start_export(
            company,
            caller.user.id,
            selection(&pick.item_ids)?,
            from,
            required,
            &defaults,
        )
        .await?;
    state.worker_wake.notify_one();
    Ok((job, count))
}

fn accepted((job, count): (i64, i64)) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(json!({"export_job_id": job, "item_count": count})),
    )
        .into_response()
}

async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
    Body(pick): Body<Pick>,
) -> ApiResult<Response> {
    start(&state, &caller, cid, &pick, Start::Export)
        .await
        .map(accepted)
}

async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
    Body(pick): Body<Pick>,
) -> ApiResult<Response> {
    start(&state, &caller, cid, &pick, Start::Retry)
        .await
        .map(accepted)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reject {
    pub item_ids: Option<Vec<i64>>,
    pub reason: String,
}

async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
    Body(body): Body<Reject>,
) -> ApiResult<Json<Value>> {
    let n = reject_as(&state, &caller, cid, &body).await?;
    Ok(Json(json!({"rejected_count": n})))
}

/// Rejects the picked rows with a reason the admin sees on each code; returns how many.
pub async fn reject_as(
    state: &AppState,
    caller: &Caller,
    cid: i64,
    body: &Reject,
) -> ApiResult<i64> {
    let company = approver(caller, cid)?;
    let reason = text("reason", &body.reason, 500)?;
    Ok(state
        .db
        .reject_items(company, caller.user.id, selection(&body.item_ids)?, &reason)
        .await?)
}

async fn job(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, id)): Path<(i64, i64)>,
) -> ApiResult<Json<JobStatus>> {
    let company = reader(&caller, cid)?;
    Ok(Json(state.db.job_status(company, id).await?))
}

async fn gl_accounts(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<Json<Value>> {
    let accounts: Vec<Value> = gl_accounts_as(&state, &caller, cid)
        .await?
        .into_iter()
        .map(|a| json!({"id": a.code, "code": a.code, "name": a.name, "kind": a.kind}))
        .collect();
    Ok(Json(Value::Array(accounts)))
}

/// The GL accounts an approver may pick, from the ERP through the connector.
pub async fn gl_accounts_as(
    state: &AppState,
    caller: &Caller,
    cid: i64,
) -> ApiResult<Vec<GlAccount>> {
    let company = reader(caller, cid)?;
    let conn = require_connection(state, company).await?;
    Ok(conn.settings.gl_accounts().await?)
}

async fn sync_from_erp(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<Json<PullSummary>> {
    Ok(Json(sync_from_erp_as(&state, &caller, cid).await?))
}

/// Pulls the ERP's code tree into the ERP list (shared by the API and the page's button).
pub async fn sync_from_erp_as(
    state: &AppState,
    caller: &Caller,
    cid: i64,
) -> ApiResult<PullSummary> {
    let company = approver(caller, cid)?;
    let conn = require_connection(state, company).await?;
    let remote: Vec<RemoteCode> = conn
        .settings
        .read_codes()
        .await?
        .into_iter()
        .map(|c| RemoteCode {
            origin_id: c.origin_id,
            full_code: c.full_code,
            description: c.description,
            active: c.active,
        })
        .collect();
    Ok(state
        .db
        .pull_from_erp(company, conn.erp_list_id, caller.user.id, &remote)
        .await?)
}
