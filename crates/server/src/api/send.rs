//! Send to ERP (whether it is possible and why not, and the send itself) and retrieving a
//! pending code before the approver decides.
use super::codes::{LIST, read, write};
use super::connection;
use crate::error::ApiResult;
use crate::extract::{Body, Caller, Q};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use costbridge_storage::codes::CostCode;
use costbridge_storage::erp::{SendStatus, Sender};
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(&format!("{LIST}/send_to_erp"), get(send_status).post(send))
        .route(
            &format!("{LIST}/cost_codes/{{id}}/retrieve"),
            post(retrieve),
        )
}

/// The rules a send is checked against: the connected ERP's profile and the company delimiter.
struct ErpRules {
    profile: Option<costbridge_domain::ErpProfile>,
    delimiter: char,
}

impl ErpRules {
    async fn of(state: &AppState, company: i64) -> ApiResult<ErpRules> {
        let conn = connection(state, company).await?;
        Ok(ErpRules {
            profile: conn.map(|c| c.profile),
            delimiter: state.db.company_delimiter(company).await?,
        })
    }

    /// The caller as a sender under these rules.
    fn sender<'a>(&'a self, caller: &'a Caller) -> Sender<'a> {
        Sender {
            user_id: caller.user.id,
            permissions: &caller.user.permissions,
            profile: self.profile.as_ref(),
            delimiter: self.delimiter,
        }
    }
}

#[derive(Deserialize)]
struct StatusQuery {
    /// The list version the client shows; a different current one answers `stale_page`.
    list_version: Option<i64>,
}

async fn send_status(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, lid)): Path<(i64, i64)>,
    Q(q): Q<StatusQuery>,
) -> ApiResult<Json<SendStatus>> {
    Ok(Json(
        send_status_as(&state, &caller, cid, lid, q.list_version).await?,
    ))
}

/// The Send to ERP button for this caller and list (`seen_version`: see [`StatusQuery`]).
pub async fn send_status_as(
    state: &AppState,
    caller: &Caller,
    cid: i64,
    lid: i64,
    seen_version: Option<i64>,
) -> ApiResult<SendStatus> {
    let company = read(caller, cid)?;
    let rules = ErpRules::of(state, company).await?;
    Ok(state
        .db
        .send_status(company, lid, &rules.sender(caller), seen_version)
        .await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    list_version: i64,
}

async fn send(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, lid)): Path<(i64, i64)>,
    Body(body): Body<SendBody>,
) -> ApiResult<impl IntoResponse> {
    let (submission_id, sent_count) = send_as(&state, &caller, cid, lid, body.list_version).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"submission_id": submission_id, "sent_count": sent_count})),
    ))
}

/// Sends every unsynced code of the list; returns the submission id and how many were sent.
pub async fn send_as(
    state: &AppState,
    caller: &Caller,
    cid: i64,
    lid: i64,
    list_version: i64,
) -> ApiResult<(i64, i64)> {
    let company = caller.company(cid)?;
    let rules = ErpRules::of(state, company).await?;
    Ok(state
        .db
        .send_to_erp(company, lid, &rules.sender(caller), list_version)
        .await?)
}

async fn retrieve(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, lid, id)): Path<(i64, i64, i64)>,
) -> ApiResult<Json<CostCode>> {
    Ok(Json(retrieve_as(&state, &caller, cid, lid, id).await?))
}

pub async fn retrieve_as(
    state: &AppState,
    caller: &Caller,
    cid: i64,
    lid: i64,
    id: i64,
) -> ApiResult<CostCode> {
    let company = write(caller, cid)?;
    state
        .db
        .retrieve_code(company, lid, caller.user.id, id)
        .await?;
    Ok(state.db.code(company, lid, id).await?)
}
