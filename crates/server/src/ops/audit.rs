//! The audit log: who may read it, and a code's history drawn from it.
use super::codes::read;
use super::{OpResult, Window, company, require};
use crate::state::AppState;
use costbridge_storage::audit::{AuditEvent, AuditFilter};
use costbridge_storage::users::User;

/// The caller's company, if they may read its audit log.
pub fn reader(caller: &User, cid: i64) -> OpResult<i64> {
    let company = company(caller, cid)?;
    let p = caller.permissions;
    require(
        p.can_read_codes() || p.can_read_erp_queue(),
        "admin_tool=read_only",
    )?;
    Ok(company)
}

/// A page of the events the filter selects, with their total.
#[tracing::instrument(skip(state, caller, filter), fields(user = caller.id))]
pub async fn events(
    state: &AppState, caller: &User, cid: i64, filter: &AuditFilter, page: Window,
) -> OpResult<(Vec<AuditEvent>, i64)> {
    let company = reader(caller, cid)?;
    Ok(state
        .db
        .audit_events(company, filter, page.limit, page.offset)
        .await?)
}

/// The latest `limit` events of one code of a list, with their total.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn code_history(
    state: &AppState, caller: &User, cid: i64, lid: i64, id: i64, limit: i64,
) -> OpResult<(Vec<AuditEvent>, i64)> {
    let company = read(caller, cid)?;
    // The code must be in this list of this company (`NotFound` otherwise).
    state.db.code(company, lid, id).await?;
    let filter = AuditFilter {
        entity_type: Some("cost_code".into()),
        entity_id: Some(id),
        action: None,
    };
    Ok(state.db.audit_events(company, &filter, limit, 0).await?)
}
