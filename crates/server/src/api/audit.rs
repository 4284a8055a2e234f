//! The audit log endpoint.
use crate::error::ApiResult;
use crate::extract::{Caller, Paging, Q};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use axum::routing::get;
use costbridge_storage::audit::AuditFilter;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/companies/{cid}/audit_events", get(events))
}

#[derive(Deserialize)]
struct AuditQuery {
    entity_type: Option<String>,
    entity_id: Option<i64>,
    action: Option<String>,
}

async fn events(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(cid): Path<i64>,
    Q(q): Q<AuditQuery>,
    Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    let company = caller.company(cid)?;
    let p = caller.user.permissions;
    caller.require(
        p.can_read_codes() || p.can_read_erp_queue(),
        "admin_tool=read_only",
    )?;
    let paging = paging.check()?;
    let filter = AuditFilter {
        entity_type: q.entity_type,
        entity_id: q.entity_id,
        action: q.action,
    };
    let (events, total) = state
        .db
        .audit_events(company, &filter, paging.per_page, paging.offset())
        .await?;
    Ok(paging.respond(&uri, total, events))
}
