//! ERP profiles and the company's ERP connection.
use crate::error::ApiResult;
use crate::extract::{Body, Caller};
use crate::ops::connection::{self as ops, Connection};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use costbridge_domain::ErpProfile;
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
        .route(
            "/api/v1/companies/{cid}/erp_connection/erp_list",
            put(put_erp_list),
        )
}

async fn profiles(_caller: Caller) -> Json<Vec<ErpProfile>> {
    Json(ErpProfile::builtin())
}

fn render(c: &Connection) -> Value {
    let profile = &c.profile;
    json!({
        "profile": profile.id,
        "profile_name": profile.name,
        "connector": c.settings.masked(),
        "erp_list_id": c.erp_list_id,
        "capabilities": {
            "create_cost_codes": profile.create_cost_codes,
            "income_account_required": profile.rules.income_account_required,
        },
    })
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn get_connection(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<Json<Value>> {
    Ok(Json(render(&ops::get(&state, &caller.user, cid).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutConnection {
    profile: String,
    connector: Value,
    /// The list to make the ERP list (optional; see `ops::connection::put` for the default).
    #[serde(default)]
    erp_list_id: Option<i64>,
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn put_connection(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
    Body(body): Body<PutConnection>,
) -> ApiResult<Json<Value>> {
    let saved = ops::put(
        &state,
        &caller.user,
        cid,
        &body.profile,
        &body.connector,
        body.erp_list_id,
    )
    .await?;
    Ok(Json(render(&saved)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutErpList {
    erp_list_id: i64,
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn put_erp_list(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
    Body(body): Body<PutErpList>,
) -> ApiResult<Json<Value>> {
    let saved = ops::make_erp_list(&state, &caller.user, cid, body.erp_list_id).await?;
    Ok(Json(render(&saved)))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn test_connection(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<Json<Value>> {
    let (ok, message) = ops::test(&state, &caller.user, cid).await?;
    Ok(Json(json!({"ok": ok, "message": message})))
}
