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
    /// Only events older than this one: the id of the last event of the previous page (what
    /// `Link: rel="next"` gives when no `page` is asked for); not with `page`. Events recorded
    /// meanwhile then neither push rows into the next page nor join it.
    before_id: Option<i64>,
}

/// The audit log, newest first
///
/// Pages by key: follow `Link: rel="next"`.
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
    Paging::keys_alone(&uri, &[("before_id", q.before_id.is_some())])?;
    let filter = AuditFilter {
        entity_type: q.entity_type,
        entity_id: q.entity_id,
        action: q.action,
        before_id: q.before_id,
        ..AuditFilter::default()
    };
    let (events, total) =
        audit::events(&caller.state, &caller.user, cid, &filter, paging.window()).await?;
    // Newest first, a page by number moves whenever an event is recorded: a client reading
    // page after page while people work got rows twice. The next page starts after this one's
    // last event.
    Ok(paging.respond_by_key(&uri, total, events, "before_id", |e| e.id.to_string()))
}
