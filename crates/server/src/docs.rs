//! The OpenAPI 3.1 document and the built-in docs page. The document is derived from the code:
//! each handler's `#[utoipa::path]` (its path, query types, body and answer types, and the
//! statuses it may answer) and the Rust types themselves (`ToSchema`), collected by the routers
//! that serve them (`utoipa_axum::routes!`), so a route cannot be served without being
//! documented. [`complete`] then adds what holds for every operation (docs/api.md): the error
//! body on every error status, the statuses the adapter itself answers (bad path ids, missing
//! auth, malformed bodies, internal errors), the paging headers and the examples.
use crate::error::ErrorBody;
use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use utoipa::openapi::OpenApi;

mod guard;
pub use guard::mark as mark_guarded;

/// The served document, made on its first request and kept from then on. Made at start, it
/// held some 3 MB of an idle server's 20 (a fresh SQLite database after one `/healthz`) for a
/// page most servers never serve (BENCHMARKS.md).
#[derive(Clone)]
pub struct Document {
    made: Arc<OnceLock<Value>>,
    make: Arc<dyn Fn() -> OpenApi + Send + Sync>,
}

impl Document {
    /// `make` describes the routes again when the document is first asked for.
    pub fn new(make: impl Fn() -> OpenApi + Send + Sync + 'static) -> Document {
        Document {
            made: Arc::default(),
            make: Arc::new(make),
        }
    }

    fn get(&self) -> &Value {
        self.made.get_or_init(|| complete((self.make)()))
    }
}

/// `/api/v1/openapi.json` and `/api/docs`, both over the one document.
pub fn router<S: Clone + Send + Sync + 'static>(doc: Document) -> Router<S> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/docs", get(page))
        .with_state(doc)
}

/// The operations served here, outside the API's routers.
#[derive(utoipa::OpenApi)]
#[openapi(paths(openapi))]
pub struct DocsApi;

/// This document
#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "openapi", tag = "service",
    security(()), responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object,
        example = json!({"openapi": "3.1.0", "info": {"title": "Costbridge API", "version": "0.1.0"}, "paths": {}}))))]
async fn openapi(State(doc): State<Document>) -> impl IntoResponse {
    axum::Json(doc.get()).into_response()
}

/// The error statuses every operation may answer whatever it does, by what it takes.
fn common_errors(op: &Value, secured: bool, path: &str) -> Vec<(&'static str, &'static str)> {
    let mut out = vec![(
        "500",
        "Costbridge failed unexpectedly (`internal`); the cause is in its log. The step that failed \
         was not saved; a request sent with an `Idempotency-Key` that had saved changes before \
         it failed keeps this answer (its message says so)",
    )];
    if path.contains('{') {
        out.push((
            "400",
            "`bad_request`: a path id is not a positive whole number, or the request is malformed",
        ));
        out.push((
            "404",
            "`not_found`: no such record in the caller's company (another company's ids answer this too)",
        ));
    }
    if op.get("requestBody").is_some() {
        out.push((
            "413",
            "`payload_too_large`: the body is larger than this endpoint accepts",
        ));
    }
    // Outside /api (the OAuth token endpoint) a body is judged by its own rules.
    if op.get("requestBody").is_some() && path.starts_with("/api/") {
        out.push((
            "400",
            "`bad_request`: malformed JSON, or a field of the wrong type",
        ));
        out.push((
            "422",
            "`validation_failed`: `details` names each field, row or item at fault",
        ));
    }
    if op
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|ps| {
            ps.iter()
                .any(|p| p["in"] == "query" && p["name"] != "list_version")
        })
    {
        out.push(("400", "`bad_request`: a query parameter of the wrong type"));
        out.push((
            "422",
            "`validation_failed`: `details.fields` names the query parameter at fault",
        ));
    }
    if secured {
        out.push(("401", "`unauthorized`: no valid bearer token or session"));
    }
    out
}

/// An error body for `status`; a 409 is the code its `description` starts with (a `conflict`
/// shown as `locked` told a client to wait for the approver where it must act).
fn error_example(status: &str, description: &str) -> Value {
    let (code, message, details) = match status {
        "409" if description.starts_with("`conflict`") => (
            "conflict",
            "Costbridge refused: '01-100' cannot be deleted: the ERP has it; deactivate it instead",
            json!({}),
        ),
        "400" => (
            "bad_request",
            "malformed JSON: expected value at line 1 column 1",
            json!({}),
        ),
        "401" => (
            "unauthorized",
            "a valid bearer token or session is required",
            json!({}),
        ),
        "403" => (
            "forbidden",
            "Costbridge refused: you need the Admin tool at admin for this. Ask a company admin.",
            json!({"required": "admin_tool=admin"}),
        ),
        "404" => (
            "not_found",
            "Costbridge found no such record in your company.",
            json!({}),
        ),
        "409" => (
            "locked",
            "Costbridge refused the change: the code is pending at the ERP. Retrieve it first.",
            json!({}),
        ),
        "413" => (
            "payload_too_large",
            "the request body is larger than this endpoint accepts",
            json!({}),
        ),
        "422" => (
            "validation_failed",
            "Costbridge refused the request: description is empty. Correct the field and send it again.",
            json!({"fields": {"description": ["is empty"]}}),
        ),
        "429" => (
            "rate_limited",
            "Costbridge paused sign-ins from here after repeated failures; try again in 30 seconds.",
            json!({}),
        ),
        "502" => (
            "erp_unavailable",
            "The ERP did not answer (HTTP 502 Bad Gateway); try again later.",
            json!({}),
        ),
        _ => ("internal", crate::ops::UNSAVED, json!({})),
    };
    json!({"error": {"code": code, "message": message, "details": details}})
}

/// The example of a schema: its own, or an array of its items' example.
fn example_of(schema: &Value, schemas: &Map<String, Value>) -> Option<Value> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next()?;
        return schemas.get(name)?.get("example").cloned();
    }
    if let Some(e) = schema.get("example") {
        return Some(e.clone());
    }
    if schema["type"] == "array" {
        return example_of(&schema["items"], schemas).map(|e| json!([e]));
    }
    None
}

/// Puts the schema's example on a media type that has none.
fn add_example(content: &mut Value, schemas: &Map<String, Value>) {
    let Some(media) = content.as_object_mut() else {
        return;
    };
    for m in media.values_mut() {
        if m.get("example").is_none()
            && let Some(e) = m.get("schema").and_then(|s| example_of(s, schemas))
        {
            m["example"] = e;
        }
    }
}

/// The document as served: the derived paths and schemas, plus what holds for every operation.
fn complete(openapi: OpenApi) -> Value {
    let mut doc = serde_json::to_value(openapi).expect("an OpenAPI document serialises");
    let mut schemas = doc["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut error_schemas = Vec::new();
    <ErrorBody as utoipa::ToSchema>::schemas(&mut error_schemas);
    error_schemas.push((
        "Error".into(),
        <ErrorBody as utoipa::PartialSchema>::schema(),
    ));
    for (name, schema) in error_schemas {
        schemas.insert(
            name,
            serde_json::to_value(schema).expect("schemas serialise"),
        );
    }
    let headers = json!({
        "Total": {"description": "How many records the list holds in all (with the query's filters)",
                  "schema": {"type": "integer", "minimum": 0}},
        "Per-Page": {"description": "The page size used", "schema": {"type": "integer", "minimum": 1}},
        "Link": {"description": "RFC 8288 links to the `first`, `last`, `prev` and `next` pages; follow `rel=\"next\"`",
                 "schema": {"type": "string"},
                 "example": "</api/v1/companies/1/audit_events?page=2>; rel=\"next\""},
        "Retry-After": {"description": "Seconds to wait before trying again",
                        "schema": {"type": "integer", "minimum": 0}, "example": 30},
        "WWW-Authenticate": {"description": "The challenge (RFC 6750): `Bearer`, with `error=\"invalid_token\"` when the token sent is not valid",
                             "schema": {"type": "string"},
                             "example": "Bearer error=\"invalid_token\""},
    });
    let (guard_headers, guard_parameters) = guard::components();
    let root_security = json!([{"bearer": []}, {"session": []}]);
    let paths = doc["paths"].as_object_mut().expect("paths");
    for (path, item) in paths.iter_mut() {
        let guarded = guard::take_mark(item);
        for (method, op) in item.as_object_mut().expect("path item").iter_mut() {
            let secured = match op.get("security") {
                // `security(())` marks an operation anyone may call.
                Some(s) => s
                    .as_array()
                    .is_some_and(|a| a.iter().any(|r| r != &json!({}))),
                None => path.starts_with("/api/"),
            };
            if !path.starts_with("/api/") && op.get("security").is_none() {
                op["security"] = json!([{}]);
            }
            // An operation anyone may call (signing in, a reset link) keeps no answer under an
            // `Idempotency-Key` (`api::guard::OPEN_POSTS`): its document offers no key.
            let guard_method = if secured { method.as_str() } else { "open" };
            let parameters = op.get_mut("parameters").and_then(Value::as_array_mut);
            for p in parameters.into_iter().flatten() {
                if p["in"] == "path" {
                    p["description"] = json!(path_parameter(p["name"].as_str().unwrap_or("")));
                    p["schema"]["minimum"] = json!(1);
                }
            }
            // Before the common statuses: the guard's 422 names the body's fields too.
            if guarded {
                guard::answers(guard_method, op);
            }
            let mut errors = common_errors(op, secured, path);
            errors.sort_by_key(|(s, _)| *s);
            errors.dedup_by_key(|(s, _)| *s);
            let paged = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "per_page"));
            let responses = op["responses"].as_object_mut().expect("responses");
            for (status, description) in errors {
                responses
                    .entry(status)
                    .or_insert_with(|| json!({"description": description}));
            }
            for (status, response) in responses.iter_mut() {
                if status.starts_with('2') {
                    if paged {
                        response["headers"] = json!({
                            "Total": {"$ref": "#/components/headers/Total"},
                            "Per-Page": {"$ref": "#/components/headers/Per-Page"},
                            "Link": {"$ref": "#/components/headers/Link"},
                        });
                    }
                    if let Some(content) = response.get_mut("content") {
                        add_example(content, &schemas);
                    }
                } else if response.get("content").is_none() {
                    let example =
                        error_example(status, response["description"].as_str().unwrap_or(""));
                    response["content"] = json!({"application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"},
                        "example": example,
                    }});
                    // A 502 carries one when the ERP's rate limit said how long to wait.
                    if status == "429" || status == "502" {
                        response["headers"] =
                            json!({"Retry-After": {"$ref": "#/components/headers/Retry-After"}});
                    }
                    if status == "401" {
                        response["headers"] = json!({"WWW-Authenticate":
                            {"$ref": "#/components/headers/WWW-Authenticate"}});
                    }
                }
                if guarded {
                    guard::headers(guard_method, status, response);
                }
            }
            if let Some(content) = op.pointer_mut("/requestBody/content") {
                add_example(content, &schemas);
            }
        }
    }
    doc["openapi"] = json!("3.1.0");
    doc["info"] = json!({
        "title": "Costbridge API",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Cost code lists, Send to ERP and the ERP Integrations queue. Conventions \
            and every error code: docs/api.md. Errors are always `{\"error\": {code, message, details}}`.",
        "license": {"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
    });
    doc["servers"] = json!([{"url": "/", "description": "This Costbridge server"}]);
    doc["security"] = root_security;
    doc["components"]["schemas"] = Value::Object(schemas);
    doc["components"]["headers"] = headers;
    doc["components"]["headers"]
        .as_object_mut()
        .expect("headers")
        .extend(guard_headers.as_object().cloned().unwrap_or_default());
    doc["components"]["parameters"] = guard_parameters;
    doc["components"]["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "An API token from `POST /api/v1/tokens` (or `serve --demo`)"},
        "metrics_token": {"type": "http", "scheme": "bearer",
                          "description": "`[server] metrics_token`, when the operator set one (only for /metrics)"},
        "session": {"type": "apiKey", "in": "cookie", "name": "costbridge_session",
                    "description": "The web UI's session (sign in at /login). Unsafe methods also need the page's X-CSRF-Token header, or a same-origin browser request."},
    });
    let tags: BTreeSet<String> = doc["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
        .flat_map(|item| item.as_object().into_iter().flat_map(|m| m.values()))
        .flat_map(|op| op["tags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    doc["tags"] = tags
        .into_iter()
        .map(|name| json!({"name": name, "description": tag_description(&name)}))
        .collect();
    doc
}

/// What each path parameter names (the same names on every route).
fn path_parameter(name: &str) -> &'static str {
    match name {
        "cid" => "The company's id (another company's answers 404)",
        "lid" => "The cost code list's id",
        "uid" => "The user's id",
        "item_id" => "The queue item's id",
        "event_id" => "The event's id, from the subscription's delivery log",
        _ => "The record's id",
    }
}

fn tag_description(tag: &str) -> &'static str {
    match tag {
        "auth" => "Tokens, the caller, users and password resets",
        "connection" => "ERP profiles and the company's ERP connection",
        "codes" => "Cost code lists, codes, CSV import and export",
        "send" => "Send to ERP",
        "queue" => "The ERP Integrations queue: GL accounts, export, reject, retry",
        "audit" => "The audit log and submissions, for auditors",
        "clients" => "API clients (machine callers) and the OAuth 2.0 token endpoint",
        "events" => "Event subscriptions (webhooks) and their delivery log",
        _ => "Health, metrics and this document",
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What a media type's schema is called, for the page: `CreateCode`, `[CostCode]`, `text/csv`.
fn schema_name(content: &Value) -> String {
    let Some((media, m)) = content.as_object().and_then(|c| c.iter().next()) else {
        return String::new();
    };
    let name = |s: &Value| {
        s["$ref"]
            .as_str()
            .map(|r| r.rsplit('/').next().unwrap_or(r).to_owned())
    };
    let schema = &m["schema"];
    name(schema)
        .or_else(|| name(&schema["items"]).map(|n| format!("[{n}]")))
        .unwrap_or_else(|| media.clone())
}

async fn page(State(doc): State<Document>) -> Html<String> {
    let mut rows = String::new();
    for (path, item) in doc.get()["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let (ok, answer) = op["responses"]
                .as_object()
                .and_then(|r| r.iter().find(|(s, _)| s.starts_with('2')))
                .map(|(s, r)| (s.clone(), schema_name(&r["content"])))
                .unwrap_or_default();
            rows.push_str(&format!(
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{ok} <code>{}</code></td></tr>",
                method.to_uppercase(),
                escape(path),
                escape(op["summary"].as_str().unwrap_or("")),
                escape(&schema_name(&op["requestBody"]["content"])),
                escape(&answer),
            ));
        }
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Costbridge API</title>\
         <link rel=\"stylesheet\" href=\"{css}\"></head><body><main>\
         <h1>Costbridge API v1</h1><p>Send <code>Authorization: Bearer &lt;token&gt;</code> (get one from \
         <code>POST /api/v1/tokens</code>). Errors are <code>{{\"error\": {{code, message, details}}}}</code>. \
         The machine-readable document, with every body's schema, is <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p>\
         <table><thead><tr><th>Method</th><th>Path</th><th>What it does</th><th>Body</th><th>Success</th></tr></thead>\
         <tbody>{rows}</tbody></table></main></body></html>",
        css = crate::web::stylesheet()
    ))
}
