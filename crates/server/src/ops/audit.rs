//! The audit log: who may read it, and a code's history drawn from it.
use super::codes::read;
use super::{OpError, OpResult, Window, company, require};
use crate::state::AppState;
use costbridge_domain::Permissions;
use costbridge_storage::audit::{ACTIONS, AuditEvent, AuditFilter, entity_type_of, entity_types};
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

/// The entity types whose events `p` may not see.
fn hidden(p: Permissions) -> &'static [&'static str] {
    match (p.can_read_codes(), p.can_manage_users()) {
        (_, true) => &[],
        (true, false) => CLIENTS,
        (false, false) => PEOPLE_AND_CLIENTS,
    }
}

/// The entity types a filter may name for this caller: those Costbridge audits, but the hidden.
pub fn visible_types(caller: &User) -> Vec<&'static str> {
    let hidden = hidden(caller.permissions);
    entity_types()
        .into_iter()
        .filter(|t| !hidden.contains(t))
        .collect()
}

/// Refuses a filter that could only ever select nothing: a name Costbridge never records (a
/// typo answered an empty list), an action about another type than `entity_type`. A type the
/// caller may not see is refused as a permission: its name is in
/// the documentation, so saying so shows nothing of the log.
fn check(filter: &AuditFilter, p: Permissions) -> OpResult<()> {
    let types = entity_types();
    let mut fields = super::Fields::new();
    let mut refuse =
        |field: &str, message: String| fields.entry(field.to_owned()).or_default().push(message);
    let of_action = filter.action.as_deref().map(|a| (a, entity_type_of(a)));
    if let Some(t) = filter.entity_type.as_deref().filter(|t| !types.contains(t)) {
        refuse(
            "entity_type",
            format!(
                "'{t}' is not a type Costbridge audits; use one of {}",
                types.join(", ")
            ),
        );
    }
    if let Some((action, None)) = of_action {
        // The actions of the same type, when the text before the dot names one: the likely
        // typo ("cost_code.update") is then answered by the few it was meant to be.
        let prefix = action.split_once('.').map_or(action, |(p, _)| p);
        let near: Vec<&str> = ACTIONS
            .iter()
            .map(|(a, _)| *a)
            .filter(|a| a.split_once('.').is_some_and(|(p, _)| p == prefix))
            .collect();
        let choices = match near.is_empty() {
            true => ACTIONS.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
            false => near,
        };
        refuse(
            "action",
            format!(
                "'{action}' is not an action Costbridge records; use one of {}",
                choices.join(", ")
            ),
        );
    }
    if let (Some(t), Some((action, Some(about)))) = (filter.entity_type.as_deref(), of_action)
        && types.contains(&t)
        && t != about
    {
        refuse(
            "action",
            format!("'{action}' is recorded about a {about}, not a {t}: change one of the two"),
        );
    }
    if !fields.is_empty() {
        return Err(OpError::Invalid(fields));
    }
    let asked = [
        filter.entity_type.as_deref(),
        of_action.and_then(|(_, about)| about),
    ];
    if let Some(t) = asked.into_iter().flatten().find(|t| hidden(p).contains(t)) {
        // Only a user manager sees machine clients and subscriptions; people, any Admin-tool
        // reader.
        return Err(OpError::Forbidden(match CLIENTS.contains(&t) {
            true => "admin_tool=admin",
            false => "admin_tool=read_only",
        }));
    }
    Ok(())
}

/// A page of the events the filter selects that the caller may see, with their total.
#[tracing::instrument(skip(state, caller, filter), fields(user = caller.id))]
pub async fn events(
    state: &AppState, caller: &User, cid: i64, filter: &AuditFilter, page: Window,
) -> OpResult<(Vec<AuditEvent>, i64)> {
    let (company, filter) = readable(caller, cid, filter)?;
    let (mut events, total) = state
        .db
        .audit_events(company, &filter, page.limit, page.offset)
        .await?;
    addresses_for(caller, &mut events);
    Ok((events, total))
}

/// [`events`] by key, without the count: the next `limit` events before the filter's
/// `before_id`, for a download that counted once.
#[tracing::instrument(skip(state, caller, filter), fields(user = caller.id))]
pub async fn events_before(
    state: &AppState, caller: &User, cid: i64, filter: &AuditFilter, limit: i64,
) -> OpResult<Vec<AuditEvent>> {
    let (company, filter) = readable(caller, cid, filter)?;
    let mut events = state
        .db
        .audit_events_before(company, &filter, limit)
        .await?;
    addresses_for(caller, &mut events);
    Ok(events)
}

/// The company and the filter as the caller may read it: checked, and the types they may not
/// see left out.
fn readable(caller: &User, cid: i64, filter: &AuditFilter) -> OpResult<(i64, AuditFilter)> {
    let company = reader(caller, cid)?;
    let p = caller.permissions;
    check(filter, p)?;
    Ok((
        company,
        AuditFilter {
            hidden: hidden(p),
            ..filter.clone()
        },
    ))
}

/// Sign-in addresses are for those who manage users: taken out of others' events.
fn addresses_for(caller: &User, events: &mut [AuditEvent]) {
    if caller.permissions.can_manage_users() {
        return;
    }
    for e in events.iter_mut().filter(|e| e.entity_type == "user") {
        if let Some(after) = e.after.as_mut().and_then(|a| a.as_object_mut()) {
            for key in ADDRESSES {
                after.remove(key);
            }
        }
    }
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
