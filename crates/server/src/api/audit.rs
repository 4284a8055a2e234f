//! The audit log endpoint.
use crate::error::ApiResult;
use crate::extract::{Caller, Paging, Q};
use crate::ops::audit;
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

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn events(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(cid): Path<i64>,
    Q(q): Q<AuditQuery>,
    Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    // Access is refused before the paging is judged.
    audit::reader(&caller.user, cid)?;
    let paging = paging.check()?;
    let filter = AuditFilter {
        entity_type: q.entity_type,
        entity_id: q.entity_id,
        action: q.action,
    };
    let (events, total) = audit::events(
        &state,
        &caller.user,
        cid,
        &filter,
        paging.per_page,
        paging.offset(),
    )
    .await?;
    Ok(paging.respond(&uri, total, events))
}
