//! Company-wide settings: the time zone every time is shown in to the company's people.
use super::{OpError, OpResult, company, require};
use crate::state::AppState;
use crate::zone::Zone;
use costbridge_storage::users::User;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Companies' names as every page's header shows them. A company's name never changes once it
/// is made (nothing renames one), so each instance reads each name once.
#[derive(Debug, Default)]
pub struct Names(Mutex<HashMap<i64, Arc<str>>>);

/// The company's name, for the pages' header.
pub async fn name(state: &AppState, company: i64) -> OpResult<Arc<str>> {
    let names = || state.names.0.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(name) = names().get(&company) {
        return Ok(name.clone());
    }
    let name: Arc<str> = state.db.company_name(company).await?.into();
    names().insert(company, name.clone());
    Ok(name)
}

/// The zone the company's people read times in (the server's when it set none).
pub async fn zone(state: &AppState, company: i64) -> OpResult<Zone> {
    if let Some(zone) = state.zones.get(company) {
        return Ok(zone);
    }
    let zone = Zone::company(state.db.company_time_zone(company).await?.as_deref());
    state.zones.put(company, zone.clone());
    Ok(zone)
}

/// The company's own setting: its IANA name, or `None` when it follows the server's zone.
pub async fn time_zone_setting(
    state: &AppState, caller: &User, cid: i64,
) -> OpResult<Option<String>> {
    let company = company(caller, cid)?;
    Ok(state.db.company_time_zone(company).await?)
}

/// Sets the company's time zone: an IANA name like `Europe/Berlin`, or empty / `None` for the
/// server's zone. Needs `admin_tool = admin`.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn set_time_zone(
    state: &AppState, caller: &User, cid: i64, name: Option<&str>,
) -> OpResult<Zone> {
    let company = company(caller, cid)?;
    require(caller.permissions.can_manage_users(), "admin_tool=admin")?;
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    let canonical = match name {
        Some(n) => Some(
            Zone::named(n)
                .map_err(|e| OpError::field("time_zone", e.trim_start_matches("time_zone ")))?
                .name(),
        ),
        None => None,
    };
    state
        .db
        .set_company_time_zone(company, caller.id, canonical.as_deref())
        .await?;
    let zone = Zone::company(canonical.as_deref());
    state.zones.put(company, zone.clone());
    Ok(zone)
}
