//! The audit log endpoint.
use crate::error::ApiResult;
use crate::extract::{Caller, Paging, Q};
use crate::ops::audit;
use crate::state::AppState;
use axum::extract::Path;
use axum::http::Uri;
use axum::response::Response;
use costbridge_storage::audit::{AuditEvent, AuditFilter};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Only events about this kind of record (`cost_code`, `user`, `submission`, …); a type
    /// Costbridge does not audit is a 422.
    entity_type: Option<String>,
    /// Only events about records with this id; with `entity_type`, about that one record (ids
    /// are counted per type).
    entity_id: Option<i64>,
    /// Only this action (`cost_code.created`, `user.signed_in`, …); an action Costbridge does
    /// not record, or one about another type than `entity_type`, is a 422.
    action: Option<String>,
}

/// The audit log, newest first
#[utoipa::path(get, path = "/api/v1/companies/{cid}/audit_events", tag = "audit",
    operation_id = "list_audit_events", params(AuditQuery, Paging),
    responses((status = 200, description = "One page of events: who did what, before and after", body = [AuditEvent]),
        (status = 403, description = "`forbidden`: needs the Admin tool or ERP Integrations at read_only; filtering by users needs the Admin tool at read_only, by API clients or event subscriptions at admin")))]
#[tracing::instrument(skip_all)]
async fn events(
    caller: Caller, uri: Uri, Path(cid): Path<i64>, Q(q): Q<AuditQuery>, Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    // Access is refused before the paging is judged.
    audit::reader(&caller.user, cid)?;
    let paging = paging.check()?;
    let filter = AuditFilter {
        entity_type: q.entity_type,
        entity_id: q.entity_id,
        action: q.action,
        ..AuditFilter::default()
    };
    let (events, total) =
        audit::events(&caller.state, &caller.user, cid, &filter, paging.window()).await?;
    Ok(paging.respond(&uri, total, events))
}
