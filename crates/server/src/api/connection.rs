//! ERP profiles and the company's ERP connection.
use super::connection as load_connection;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use costbridge_domain::ErpProfile;
use costbridge_erp::ConnectorSettings;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/erp_profiles", get(profiles))
        .route(
            "/api/v1/companies/{cid}/erp_connection",
            get(get_connection).put(put_connection),
        )
        .route(
            "/api/v1/companies/{cid}/erp_connection/test",
            post(test_connection),
        )
}

async fn profiles(_caller: Caller) -> Json<Vec<ErpProfile>> {
    Json(ErpProfile::builtin())
}

fn render(profile: &ErpProfile, settings: &ConnectorSettings, erp_list_id: i64) -> Value {
    json!({
        "profile": profile.id,
        "profile_name": profile.name,
        "connector": settings.masked(),
        "erp_list_id": erp_list_id,
        "capabilities": {
            "create_cost_codes": profile.create_cost_codes,
            "income_account_required": profile.rules.income_account_required,
        },
    })
}

async fn get_connection(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<Json<Value>> {
    let company = caller.company(cid)?;
    caller.require(
        caller.user.permissions.can_read_codes() || caller.user.permissions.can_read_erp_queue(),
        "admin_tool=read_only",
    )?;
    let c = load_connection(&state, company)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(render(&c.profile, &c.settings, c.erp_list_id)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutConnection {
    profile: String,
    connector: Value,
}

async fn put_connection(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
    Body(body): Body<PutConnection>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        put_connection_as(&state, &caller, cid, &body.profile, &body.connector).await?,
    ))
}

/// Saves the company's ERP connection (a secret sent back masked keeps its stored value);
/// returns the connection as the API shows it.
pub async fn put_connection_as(
    state: &AppState,
    caller: &Caller,
    cid: i64,
    profile_id: &str,
    connector: &Value,
) -> ApiResult<Value> {
    let company = caller.company(cid)?;
    caller.require(
        caller.user.permissions.can_manage_users(),
        "admin_tool=admin",
    )?;
    let profile = ErpProfile::find(profile_id).ok_or_else(|| {
        let ids: Vec<String> = ErpProfile::builtin().into_iter().map(|p| p.id).collect();
        ApiError::field(
            "profile",
            format!(
                "unknown profile '{}'; one of: {}",
                profile_id,
                ids.join(", ")
            ),
        )
    })?;
    let stored = load_connection(state, company).await?.map(|c| c.settings);
    let settings =
        ConnectorSettings::parse(stored.as_ref(), connector).map_err(ApiError::fields)?;
    let saved = state
        .db
        .put_erp_connection(
            company,
            caller.user.id,
            &profile.id,
            &settings.stored(),
            &settings.masked(),
        )
        .await?;
    Ok(render(&profile, &settings, saved.erp_list_id))
}

async fn test_connection(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<Json<Value>> {
    let (ok, message) = test_connection_as(&state, &caller, cid).await?;
    Ok(Json(json!({"ok": ok, "message": message})))
}

/// Tries the saved connection; says whether it works and, in plain words, what is wrong.
pub async fn test_connection_as(
    state: &AppState,
    caller: &Caller,
    cid: i64,
) -> ApiResult<(bool, String)> {
    let company = caller.company(cid)?;
    caller.require(
        caller.user.permissions.can_manage_users() || caller.user.permissions.is_approver(),
        "admin_tool=admin",
    )?;
    let c = load_connection(state, company)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(c.settings.test().await)
}
