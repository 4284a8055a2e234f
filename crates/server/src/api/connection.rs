//! ERP profiles and the company's ERP connection.
use crate::error::ApiResult;
use crate::extract::{Body, Caller};
use crate::ops::connection::{self as ops, Connection};
use crate::state::AppState;
use axum::Json;
use axum::extract::Path;
use costbridge_domain::ErpProfile;
use costbridge_erp::CONNECTORS;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(profiles))
        .routes(routes!(get_connection, put_connection))
        .routes(routes!(test_connection))
        .routes(routes!(put_erp_list))
}

/// The ERP profiles and their rules
#[utoipa::path(get, path = "/api/v1/erp_profiles", tag = "connection",
    operation_id = "list_erp_profiles",
    responses((status = 200, description = "Every profile Costbridge ships", body = [ErpProfile])))]
async fn profiles(_caller: Caller) -> Json<Vec<ErpProfile>> {
    Json(ErpProfile::builtin())
}

/// What the connection's ERP profile allows.
#[derive(Serialize, ToSchema)]
struct Capabilities {
    /// False for import-only ERPs, which own their cost codes.
    create_cost_codes: bool,
    /// Whether every exported code needs an income account.
    income_account_required: bool,
}

/// A company's ERP connection; secrets are shown as `********`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"profile": "quickbooks_desktop", "profile_name": "QuickBooks Desktop",
    "connector": {"kind": "file", "directory": ".", "format": "iif", "gl_accounts": [{"code": "4000", "name": "Construction Income", "kind": "income"}]},
    "erp_list_id": 1, "capabilities": {"create_cost_codes": true, "income_account_required": true}}))]
struct ConnectionOut {
    /// The ERP profile's id (`GET /api/v1/erp_profiles`).
    profile: String,
    profile_name: String,
    /// The connector's settings with `kind`, secrets masked.
    #[schema(schema_with = connector_schema)]
    connector: Value,
    /// The company's ERP Standard Cost Code list.
    erp_list_id: i64,
    capabilities: Capabilities,
}

/// The connection for `caller`: whole (secrets masked) for an admin, who may change it; with
/// addresses cut to their host for a reader, since a hook's path may be its credential.
fn render(c: &Connection, caller: &Caller) -> ConnectionOut {
    let profile = &c.profile;
    let connector = if caller.user.permissions.can_manage_users() {
        c.settings.masked()
    } else {
        c.settings.summary()
    };
    ConnectionOut {
        profile: profile.id.clone(),
        profile_name: profile.name.clone(),
        connector,
        erp_list_id: c.erp_list_id,
        capabilities: Capabilities {
            create_cost_codes: profile.create_cost_codes,
            income_account_required: profile.rules.income_account_required,
        },
    }
}

/// The company's ERP connection (secrets masked)
#[utoipa::path(get, path = "/api/v1/companies/{cid}/erp_connection", tag = "connection",
    responses((status = 200, description = "The connection; 404 when the company has none", body = ConnectionOut),
        (status = 403, description = "`forbidden`: needs the Admin tool or ERP Integrations at read_only (an admin sees addresses whole, others by host)")))]
#[tracing::instrument(skip_all)]
async fn get_connection(caller: Caller, Path(cid): Path<i64>) -> ApiResult<Json<ConnectionOut>> {
    let c = ops::get(&caller.state, &caller.user, cid).await?;
    Ok(Json(render(&c, &caller)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"profile": "quickbooks_desktop", "connector": {"kind": "file", "directory": ".", "format": "iif",
    "gl_accounts": [{"code": "4000", "name": "Construction Income", "kind": "income"}, {"code": "5000", "name": "Job Materials", "kind": "expense"}]}}))]
struct PutConnection {
    /// An ERP profile's id (`GET /api/v1/erp_profiles`).
    profile: String,
    /// One connector's settings with its `kind`; sending `********` for a secret keeps the
    /// stored one.
    #[schema(schema_with = connector_schema)]
    connector: Value,
    /// The list to make the ERP list (optional; see `ops::connection::put` for the default).
    #[serde(default)]
    erp_list_id: Option<i64>,
}

/// `connector`: one of the registered connectors' settings (`costbridge_erp::CONNECTORS`),
/// each with its `kind`, so a new connector is in the document as soon as it is registered.
fn connector_schema() -> Schema {
    let mut one_of = OneOfBuilder::new();
    for r in &CONNECTORS {
        let mut settings = match (r.schema)() {
            RefOr::T(Schema::Object(o)) => o,
            _ => panic!("the {} connector's settings are not an object", r.kind),
        };
        let kind = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([r.kind]))
            .build();
        settings.properties.insert("kind".into(), kind.into());
        settings.required.insert(0, "kind".into());
        settings.title = Some(r.label.into());
        one_of = one_of.item(Schema::Object(settings));
    }
    Schema::OneOf(one_of.build())
}

/// Connect an ERP (creates the ERP list when the company has none)
#[utoipa::path(put, path = "/api/v1/companies/{cid}/erp_connection", tag = "connection",
    request_body = PutConnection,
    responses((status = 200, description = "The connection as saved", body = ConnectionOut),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin")))]
#[tracing::instrument(skip_all)]
async fn put_connection(
    caller: Caller, Path(cid): Path<i64>, Body(body): Body<PutConnection>,
) -> ApiResult<Json<ConnectionOut>> {
    let saved = ops::put(
        &caller.state,
        &caller.user,
        cid,
        &body.profile,
        &body.connector,
        body.erp_list_id,
    )
    .await?;
    Ok(Json(render(&saved, &caller)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"erp_list_id": 3}))]
struct PutErpList {
    /// The list to make the ERP list: allowed while nothing was sent from the current one.
    erp_list_id: i64,
}

/// Make another list the ERP list (while nothing was sent from the current one)
#[utoipa::path(put, path = "/api/v1/companies/{cid}/erp_connection/erp_list", tag = "connection",
    request_body = PutErpList,
    responses((status = 200, description = "The connection with its new ERP list", body = ConnectionOut),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin"),
        (status = 404, description = "`not_found`: the company has no ERP connection")))]
#[tracing::instrument(skip_all)]
async fn put_erp_list(
    caller: Caller, Path(cid): Path<i64>, Body(body): Body<PutErpList>,
) -> ApiResult<Json<ConnectionOut>> {
    let saved = ops::make_erp_list(&caller.state, &caller.user, cid, body.erp_list_id).await?;
    Ok(Json(render(&saved, &caller)))
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"ok": true, "message": "Costbridge reached Tryton at http://erp.example:8000/ and signed in to database acme."}))]
struct TestResult {
    /// Whether the ERP answered as it should.
    ok: bool,
    /// What Costbridge found, in a sentence.
    message: String,
}

/// Test the ERP connection
#[utoipa::path(post, path = "/api/v1/companies/{cid}/erp_connection/test", tag = "connection",
    responses((status = 200, description = "The outcome; a failure is `ok: false`, not an error status", body = TestResult),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin")))]
#[tracing::instrument(skip_all)]
async fn test_connection(caller: Caller, Path(cid): Path<i64>) -> ApiResult<Json<TestResult>> {
    let (ok, message) = ops::test(&caller.state, &caller.user, cid).await?;
    Ok(Json(TestResult { ok, message }))
}
