//! The company's ERP connection: reading it, saving it (secrets sent back masked keep their
//! stored value) and testing it.
use super::{OpError, OpResult, company, require};
use crate::state::AppState;
use costbridge_domain::ErpProfile;
use costbridge_erp::ConnectorSettings;
use costbridge_storage::users::User;
use serde_json::Value;

/// The company's ERP connection with its profile and parsed connector, if it has one.
pub struct Connection {
    pub profile: ErpProfile,
    pub settings: ConnectorSettings,
    pub erp_list_id: i64,
    /// Which saved settings these are (a hash of them as stored): what the ERP answered for
    /// one version is not kept for the next (`queue::GlCache`).
    pub version: u64,
}

/// A hash of a connection as stored; every save seals its secrets anew, so every save differs.
fn version(profile: &str, stored: &Value) -> u64 {
    hash_of(&(profile, stored.to_string()))
}

/// One value's hash, for the versions of what an instance keeps in memory.
pub fn hash_of(value: &impl std::hash::Hash) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// The profile a stored connection names; one this version does not know is a broken
/// installation, not the caller's mistake.
pub fn stored_profile(id: &str) -> OpResult<ErpProfile> {
    ErpProfile::find(id).ok_or_else(|| {
        OpError::Broken(format!(
            "the stored profile '{id}' is unknown to this version"
        ))
    })
}

/// The stored connection, parsed; for rules that depend on it (no access check).
pub async fn connection(state: &AppState, company: i64) -> OpResult<Option<Connection>> {
    let Some(stored) = state.db.erp_connection(company).await? else {
        return Ok(None);
    };
    let profile = stored_profile(&stored.profile)?;
    let version = version(&stored.profile, &stored.connector);
    let settings = state.cipher.load(stored.connector).map_err(|e| {
        OpError::Broken(format!("the stored connector settings are unreadable: {e}"))
    })?;
    Ok(Some(Connection {
        profile,
        settings: settings.with_env(state.connectors.company(company)),
        erp_list_id: stored.erp_list_id,
        version,
    }))
}

/// The connection, for anyone who sees codes or the ERP queue; `NotFound` without one.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn get(state: &AppState, caller: &User, cid: i64) -> OpResult<Connection> {
    let company = company(caller, cid)?;
    require(
        caller.permissions.can_read_codes() || caller.permissions.can_read_erp_queue(),
        "admin_tool=read_only",
    )?;
    connection(state, company).await?.ok_or(OpError::NotFound)
}

/// Saves the company's ERP connection (a secret sent back masked keeps its stored value);
/// returns the connection as saved. `erp_list` is the list to make the ERP list; without one
/// the company keeps its ERP list or, having none, gets a new empty one (the API's contract;
/// the page's form preselects the company's only list, so what was typed there is sent).
#[tracing::instrument(skip(state, caller, connector), fields(user = caller.id))]
pub async fn put(
    state: &AppState, caller: &User, cid: i64, profile_id: &str, connector: &Value,
    erp_list: Option<i64>,
) -> OpResult<Connection> {
    let company = company(caller, cid)?;
    require(caller.permissions.can_manage_users(), "admin_tool=admin")?;
    let profile = ErpProfile::find(profile_id).ok_or_else(|| {
        let ids: Vec<String> = ErpProfile::builtin().into_iter().map(|p| p.id).collect();
        OpError::field(
            "profile",
            format!(
                "unknown profile '{}'; one of: {}",
                profile_id,
                ids.join(", ")
            ),
        )
    })?;
    let stored = connection(state, company).await?.map(|c| c.settings);
    let env = state.connectors.company(company);
    let settings =
        ConnectorSettings::parse(stored.as_ref(), connector, &env).map_err(OpError::Invalid)?;
    // Only the file connector's IIF format names a profile (`Connector::profile`).
    if settings.needs_other_profile(&profile.id) {
        return Err(OpError::field(
            "connector.format",
            format!(
                "iif is QuickBooks Desktop's import file; with the {} profile choose csv, or \
                 choose the QuickBooks Desktop profile",
                profile.name
            ),
        ));
    }
    let stored = state.cipher.stored(&settings);
    let saved = state
        .db
        .put_erp_connection_pulled(
            company,
            caller.id,
            costbridge_storage::erp::PutConnection {
                profile: &profile.id,
                connector: &stored,
                masked: &settings.summary(),
            },
            settings.pulled(),
            erp_list,
        )
        .await?;
    Ok(Connection {
        version: version(&profile.id, &stored),
        profile,
        settings,
        erp_list_id: saved.erp_list_id,
    })
}

/// Makes `list` the company's ERP list in place of the current one, while the ERP has
/// nothing from the current one (docs/rules.md §2).
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn make_erp_list(
    state: &AppState, caller: &User, cid: i64, list: i64,
) -> OpResult<Connection> {
    let company = company(caller, cid)?;
    require(caller.permissions.can_manage_users(), "admin_tool=admin")?;
    state.db.make_erp_list(company, caller.id, list).await?;
    connection(state, company).await?.ok_or(OpError::NotFound)
}

/// Tries the saved connection; says whether it works and, in plain words, what is wrong.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn test(state: &AppState, caller: &User, cid: i64) -> OpResult<(bool, String)> {
    let company = company(caller, cid)?;
    require(
        caller.permissions.can_manage_users() || caller.permissions.is_approver(),
        "admin_tool=admin",
    )?;
    let c = connection(state, company).await?.ok_or(OpError::NotFound)?;
    if c.settings.pulled() {
        return super::qbwc::test(state, company).await;
    }
    // Testing is what a person does after changing the ERP: its accounts are read anew too.
    state.gl_accounts.forget(company);
    Ok(c.settings.test().await)
}
