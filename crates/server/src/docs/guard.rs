//! What the API's guard (`api/guard.rs`, `api/idempotency.rs`) adds to every operation behind
//! it: the rate limit's headers and its 429, and on a `POST` the `Idempotency-Key` header with
//! its 409 and 422. The guard's router marks its paths ([`mark`]), so the document says this
//! exactly where the guard runs.
use serde_json::{Value, json};
use utoipa::openapi::OpenApi;
use utoipa::openapi::extensions::Extensions;

/// The path item extension [`mark`] sets; [`take_mark`] removes it again.
const MARK: &str = "x-costbridge-guard";

/// Marks every path of `openapi` (the guarded router's own document) as behind the guard.
pub fn mark(openapi: &mut OpenApi) {
    for item in openapi.paths.paths.values_mut() {
        item.extensions
            .get_or_insert_with(Extensions::default)
            .insert(MARK.into(), json!(true));
    }
}

/// Whether the path item was marked, removing the mark (it is not for readers).
pub fn take_mark(item: &mut Value) -> bool {
    item.as_object_mut().and_then(|i| i.remove(MARK)).is_some()
}

/// The header and parameter components the guard's answers refer to.
pub fn components() -> (Value, Value) {
    let count = |description: &str| json!({"description": description, "schema": {"type": "integer", "minimum": 0}});
    let headers = json!({
        "X-Rate-Limit-Limit": count("How many API requests a minute the caller's user or client may make (sent when the limit is on)"),
        "X-Rate-Limit-Remaining": count("How many are left in the current minute"),
        "X-Rate-Limit-Reset": count("Seconds until the current minute ends and the count starts again"),
        "Idempotent-Replayed": {"description": "`true` on the kept answer to an earlier request with the same `Idempotency-Key`: it did not run again",
                                "schema": {"type": "string", "enum": ["true"]}},
    });
    let parameters = json!({
        "Idempotency-Key": {"name": "Idempotency-Key", "in": "header", "required": false,
            "description": "Makes the request run once however often it is sent: a retry with the same key (same caller and company) gets the first answer back, with `Idempotent-Replayed: true`. A new key for each new request, e.g. a UUID; kept for `[api] idempotency_hours`.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            "example": "5b0f0b7e-2f5e-4c61-9a39-3f1f0a6f1d2c"},
    });
    (headers, parameters)
}

/// The guard's own answers, each with its example: its 429, and on a `POST` the
/// `Idempotency-Key` parameter with its 409 and 422. A status the operation answers itself
/// keeps its example and gets the guard's reason added to its description.
pub fn answers(method: &str, op: &mut Value) {
    let mut own = vec![(
        "429",
        "rate_limited",
        "`rate_limited`: over the caller's API requests a minute; wait `Retry-After` seconds",
        "Costbridge takes 600 API requests a minute from each user or client, and this one was \
         over it; wait 12 seconds (Retry-After) and send it again",
        json!({}),
    )];
    if method == "post" {
        let p = json!({"$ref": "#/components/parameters/Idempotency-Key"});
        match op.get_mut("parameters").and_then(Value::as_array_mut) {
            Some(ps) => ps.push(p),
            None => op["parameters"] = json!([p]),
        }
        own.push((
            "409",
            "conflict",
            "`conflict`: a request with this `Idempotency-Key` is still running; send it again once it has answered",
            "a request with this Idempotency-Key is still running; send it again once that one \
             has answered to get its answer",
            json!({}),
        ));
        own.push((
            "422",
            "validation_failed",
            "`validation_failed`: `details.fields` names what is at fault (a field, or `Idempotency-Key`: not 1 to 255 characters, or already used for a different request)",
            "Costbridge refused the request: Idempotency-Key was already used for a different \
             request (another method, path or body); use a new key for a new request",
            json!({"fields": {"Idempotency-Key": ["was already used for a different request (another method, path or body); use a new key for a new request"]}}),
        ));
    }
    for (status, code, description, message, details) in own {
        let response = &mut op["responses"][status];
        match response["description"].as_str() {
            Some(theirs) => {
                response["description"] = json!(format!("{theirs}; or {description}"));
            }
            None => {
                *response = json!({"description": description, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"},
                    "example": {"error": {"code": code, "message": message, "details": details}},
                }}});
                if status == "429" {
                    response["headers"] =
                        json!({"Retry-After": {"$ref": "#/components/headers/Retry-After"}});
                }
            }
        }
    }
}

/// Adds the guard's headers to an answer: the rate limit's on all but 401 (no caller, not
/// counted), and on a `POST`'s kept answers `Idempotent-Replayed`.
pub fn headers(method: &str, status: &str, response: &mut Value) {
    if status == "401" {
        return;
    }
    let mut names = vec![
        "X-Rate-Limit-Limit",
        "X-Rate-Limit-Remaining",
        "X-Rate-Limit-Reset",
    ];
    // Server errors let the key go (a retry runs again); the guard's own refusals are not kept.
    if method == "post" && !status.starts_with('5') && status != "429" {
        names.push("Idempotent-Replayed");
    }
    let headers = &mut response["headers"];
    if !headers.is_object() {
        *headers = json!({});
    }
    for name in names {
        headers[name] = json!({"$ref": format!("#/components/headers/{name}")});
    }
}
