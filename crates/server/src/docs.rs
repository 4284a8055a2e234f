//! The OpenAPI document and the built-in docs page, both made from one table of endpoints so
//! they cannot disagree. A test checks every entry is routed.
use axum::Router;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::state::AppState;

/// (method, path, summary, request body, success status)
pub const ENDPOINTS: &[(&str, &str, &str, Option<&str>, u16)] = &[
    (
        "post",
        "/api/v1/tokens",
        "Sign in: exchange email and password for an API token",
        Some("{email, password}"),
        201,
    ),
    (
        "delete",
        "/api/v1/tokens/current",
        "Revoke the calling token",
        None,
        204,
    ),
    ("get", "/api/v1/me", "The calling user", None, 200),
    (
        "get",
        "/api/v1/companies/{cid}/users",
        "List the company's users",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/companies/{cid}/users",
        "Create a user",
        Some("{email, name, password, permissions}"),
        201,
    ),
    (
        "patch",
        "/api/v1/companies/{cid}/users/{uid}",
        "Change a user",
        Some("{name?, password?, current_password?, permissions?, digest_emails?}"),
        200,
    ),
    (
        "post",
        "/api/v1/companies/{cid}/users/{uid}/password_reset",
        "Issue a one-time password reset link (emailed; returned as reset_url when mail is off)",
        None,
        201,
    ),
    (
        "post",
        "/api/v1/password_reset",
        "Set a password with a reset link's token (no sign-in needed)",
        Some("{token, password}"),
        204,
    ),
    (
        "get",
        "/api/v1/erp_profiles",
        "The ERP profiles and their rules",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/companies/{cid}/erp_connection",
        "The company's ERP connection (secrets masked)",
        None,
        200,
    ),
    (
        "put",
        "/api/v1/companies/{cid}/erp_connection",
        "Connect an ERP: erp_list_id picks the ERP list (default: the current one, else a new one)",
        Some("{profile, connector, erp_list_id?}"),
        200,
    ),
    (
        "put",
        "/api/v1/companies/{cid}/erp_connection/erp_list",
        "Make another list the ERP list, while the ERP has nothing from the current one",
        Some("{erp_list_id}"),
        200,
    ),
    (
        "post",
        "/api/v1/companies/{cid}/erp_connection/test",
        "Test the ERP connection",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/companies/{cid}/erp_connection/qbwc",
        "The QuickBooks Web Connector: user name, last seen, QuickBooks version, company file, last error, accounts as of, waiting codes",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/companies/{cid}/erp_connection/qbwc/password",
        "A new QuickBooks Web Connector password, shown this once ({user_name, password})",
        None,
        201,
    ),
    (
        "get",
        "/api/v1/companies/{cid}/erp_connection/qbwc/qwc",
        "The company's .qwc file for the QuickBooks Web Connector (fresh OwnerID and FileID)",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/companies/{cid}/cost_code_lists",
        "List cost code lists",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/companies/{cid}/cost_code_lists",
        "Create a cost code list",
        Some("{name}"),
        201,
    ),
    (
        "get",
        "/api/v1/companies/{cid}/cost_code_lists/{lid}/cost_codes",
        "Codes in natural order (?sync_status=&q=&page=&per_page=)",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/companies/{cid}/cost_code_lists/{lid}/cost_codes",
        "Create a code",
        Some("{code, description, parent_id?}"),
        201,
    ),
    (
        "get",
        "/api/v1/companies/{cid}/cost_code_lists/{lid}/cost_codes/{id}",
        "One code",
        None,
        200,
    ),
    (
        "patch",
        "/api/v1/companies/{cid}/cost_code_lists/{lid}/cost_codes/{id}",
        "Edit a code (409 locked while pending/exporting/failed)",
        Some("{code?, description?, active?, parent_id?}"),
        200,
    ),
    (
        "delete",
        "/api/v1/companies/{cid}/cost_code_lists/{lid}/cost_codes/{id}",
        "Delete a never-synced code",
        None,
        204,
    ),
    (
        "post",
        "/api/v1/companies/{cid}/cost_code_lists/{lid}/cost_codes/{id}/retrieve",
        "Take a pending code back",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/companies/{cid}/cost_code_lists/{lid}/import",
        "Import CSV (full_code,description,active), all or nothing",
        Some("text/csv"),
        200,
    ),
    (
        "get",
        "/api/v1/companies/{cid}/cost_code_lists/{lid}/export",
        "Export the list as CSV",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/companies/{cid}/cost_code_lists/{lid}/send_to_erp",
        "Whether Send to ERP is enabled, and why not (?list_version= the version a page shows: stale_page when it changed since)",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/companies/{cid}/cost_code_lists/{lid}/send_to_erp",
        "Send every unsynced code as one submission",
        Some("{list_version}"),
        201,
    ),
    (
        "get",
        "/api/v1/companies/{cid}/erp/cost_codes",
        "The ERP Integrations queue (?filter=ready_to_export|exporting|failed|synced|rejected)",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/companies/{cid}/erp/cost_codes/counts",
        "How many items each filter holds",
        None,
        200,
    ),
    (
        "patch",
        "/api/v1/companies/{cid}/erp/cost_codes/{item_id}",
        "Choose GL accounts for an item",
        Some("{gl_income_account?, gl_expense_account?}"),
        200,
    ),
    (
        "post",
        "/api/v1/companies/{cid}/erp/cost_codes/export",
        "Export (accept) the selected or all ready items",
        Some("{item_ids?}"),
        202,
    ),
    (
        "post",
        "/api/v1/companies/{cid}/erp/cost_codes/reject",
        "Reject the selected or all ready items with a reason",
        Some("{item_ids?, reason}"),
        200,
    ),
    (
        "post",
        "/api/v1/companies/{cid}/erp/cost_codes/retry",
        "Retry the selected or all failed items",
        Some("{item_ids?}"),
        202,
    ),
    (
        "post",
        "/api/v1/companies/{cid}/erp/cost_codes/sync_from_erp",
        "Pull the ERP's code tree (422 not_supported for file connectors; 202 {requested, message} for the QuickBooks Web Connector, pulled at its next run)",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/companies/{cid}/erp/export_jobs/{id}",
        "An export job's status and counts",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/companies/{cid}/erp/gl_accounts",
        "GL accounts from the ERP",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/companies/{cid}/submissions",
        "Each Send to ERP, newest first: who sent how many codes, item counts per state, export jobs",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/companies/{cid}/submissions/{id}",
        "One submission",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/companies/{cid}/submissions/{id}/items",
        "The items of one submission (what was sent, and each one's state now)",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/companies/{cid}/audit_events",
        "The audit log, newest first (?entity_type=&entity_id=&action=)",
        None,
        200,
    ),
    (
        "get",
        "/healthz",
        "200 when the database answers",
        None,
        200,
    ),
    ("get", "/metrics", "Prometheus metrics", None, 200),
    ("get", "/api/v1/openapi.json", "This document", None, 200),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/docs", get(page))
}

fn error_schema() -> Value {
    json!({"type": "object", "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}}}}})
}

pub fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for (method, path, summary, body, ok) in ENDPOINTS {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}}))
            .collect();
        let mut op = json!({
            "summary": summary,
            "parameters": params,
            "responses": {
                ok.to_string(): {"description": "success"},
                "4XX": {"description": "see docs/api.md: error code, message and details",
                        "content": {"application/json": {"schema": error_schema()}}},
            },
        });
        if let Some(body) = body {
            let media = if *body == "text/csv" {
                "text/csv"
            } else {
                "application/json"
            };
            op["requestBody"] = json!({"description": body, "required": true, "content": {media: {"schema": {"type": if media == "text/csv" {"string"} else {"object"}}}}});
        }
        if path.starts_with("/api/v1/")
            && *path != "/api/v1/openapi.json"
            && !(path == &"/api/v1/tokens" && *method == "post")
        {
            op["security"] = json!([{"bearer": []}, {"session": []}]);
        }
        paths.entry(path.to_string()).or_insert_with(|| json!({}))[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Costbridge API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Cost code lists, Send to ERP and the ERP Integrations queue."},
        "paths": paths,
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": "costbridge_session",
                        "description": "The web UI's session (sign in at /login). Unsafe methods also need the page's X-CSRF-Token header, or a same-origin browser request."},
        }},
    })
}

async fn openapi() -> impl IntoResponse {
    axum::Json(document())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn page() -> Html<String> {
    let rows: String = ENDPOINTS
        .iter()
        .map(|(m, p, s, b, ok)| {
            format!(
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{ok}</td></tr>",
                m.to_uppercase(),
                escape(p),
                escape(s),
                escape(b.unwrap_or("")),
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Costbridge API</title>\
         <link rel=\"stylesheet\" href=\"{css}\"></head><body><main>\
         <h1>Costbridge API v1</h1><p>Send <code>Authorization: Bearer &lt;token&gt;</code> (get one from \
         <code>POST /api/v1/tokens</code>). Errors are <code>{{\"error\": {{code, message, details}}}}</code>. \
         The machine-readable document is <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p>\
         <table><thead><tr><th>Method</th><th>Path</th><th>What it does</th><th>Body</th><th>Success</th></tr></thead>\
         <tbody>{rows}</tbody></table></main></body></html>",
        css = crate::web::stylesheet()
    ))
}
