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

/// What a reader who may not see people (no Admin tool: the ERP queue's readers) does not see:
/// their emails, rights and sign-ins, and what only a user manager sees (below), which the
/// pages of those things refuse them too.
const PEOPLE_AND_CLIENTS: &[&str] = &["user", "api_client", "event_subscription"];

/// What only a user manager sees: the machine clients and the event subscriptions (their
/// pages are a user manager's).
const CLIENTS: &[&str] = &["api_client", "event_subscription"];

/// Where sign-ins came from, in a sign-in's audit row: for those who manage users, not for
/// every reader (a colleague's address says where they work from).
const ADDRESSES: [&str; 3] = ["client", "usual_client", "client_failures"];

/// A page of the events the filter selects that the caller may see, with their total.
#[tracing::instrument(skip(state, caller, filter), fields(user = caller.id))]
pub async fn events(
    state: &AppState, caller: &User, cid: i64, filter: &AuditFilter, page: Window,
) -> OpResult<(Vec<AuditEvent>, i64)> {
    let company = reader(caller, cid)?;
    let p = caller.permissions;
    let filter = AuditFilter {
        hidden: match (p.can_read_codes(), p.can_manage_users()) {
            (_, true) => &[],
            (true, false) => CLIENTS,
            (false, false) => PEOPLE_AND_CLIENTS,
        },
        ..filter.clone()
    };
    let (mut events, total) = state
        .db
        .audit_events(company, &filter, page.limit, page.offset)
        .await?;
    if !p.can_manage_users() {
        for e in events.iter_mut().filter(|e| e.entity_type == "user") {
            if let Some(after) = e.after.as_mut().and_then(|a| a.as_object_mut()) {
                for key in ADDRESSES {
                    after.remove(key);
                }
            }
        }
    }
    Ok((events, total))
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
        ..AuditFilter::default()
    };
    Ok(state.db.audit_events(company, &filter, limit, 0).await?)
}
