//! The API's one error type: every failure becomes `{"error": {code, message, details}}` with
//! the status docs/api.md gives it.
use crate::ops::{Fields, OpError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use costbridge_storage::StoreError;
use serde_json::{Value, json};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Boxed: it is rarely set, and keeps `Result<_, ApiError>` small on the happy path.
    pub details: Box<Value>,
    pub retry_after: Option<u64>,
    /// A 401's `WWW-Authenticate` challenge when it is more than `Bearer` (RFC 6750).
    pub challenge: Option<&'static str>,
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The `WWW-Authenticate` challenge of a 401 to a bearer token sent and refused (RFC 6750).
pub const INVALID_TOKEN: &str = r#"Bearer error="invalid_token""#;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Box::new(json!({})),
            retry_after: None,
            challenge: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Box::new(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token or session is required",
        )
    }

    /// A bearer token was sent, and it is not one Costbridge knows (wrong, revoked or expired).
    pub fn invalid_token() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the bearer token is not valid (wrong, revoked or expired): sign in again for a new \
             one (POST /api/v1/tokens, or POST /oauth/token for an API client)",
        );
        e.challenge = Some(INVALID_TOKEN);
        e
    }

    pub fn not_found() -> Self {
        OpError::NotFound.into()
    }

    pub fn fields(fields: Fields) -> Self {
        OpError::Invalid(fields).into()
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        OpError::field(field, message).into()
    }
}

/// The body of every API error (docs/api.md, "Errors"); the OpenAPI document's `Error` schema
/// is derived from it.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Error, example = json!({"error": {"code": "validation_failed",
    "message": "Costbridge refused the request: code is required. Correct the field(s) in details.fields and send it again.",
    "details": {"fields": {"code": ["is required"]}}}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// What went wrong, for programs: `validation_failed`, `not_found`, a Send to ERP reason…
    pub code: String,
    /// What went wrong and what to do, for people.
    pub message: String,
    /// The field, row or item at fault: `fields`, `rows`, `items` or `required` (may be empty).
    #[schema(value_type = Object)]
    pub details: Value,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                details: *self.details,
            },
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        // RFC 7235 §3.1: a 401 says how to authenticate.
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = HeaderValue::from_static(self.challenge.unwrap_or("Bearer"));
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

/// Rejections made by axum itself (a path id that is not a number or overflows, a method the
/// route does not have) come as plain text or no body at all; on the API they become the
/// documented JSON error body, keeping their status and headers (`Allow` on a 405).
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = req.method().clone();
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let error = match status {
        StatusCode::BAD_REQUEST => ApiError::bad_request(text),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "method_not_allowed",
            format!("this path does not take {method}"),
        ),
        StatusCode::NOT_FOUND => ApiError::not_found(),
        StatusCode::PAYLOAD_TOO_LARGE => crate::extract::too_large(),
        _ => ApiError::new(status, "error", text),
    };
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    let mut out = error.into_response();
    for (name, value) in parts.headers.iter() {
        out.headers_mut().entry(name).or_insert(value.clone());
    }
    out
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        OpError::from(e).into()
    }
}

/// The error's `message` as an integrator reads it: who refused, what, and what to do. The
/// refusals every client meets (a permission, a missing id, invalid fields) said only "this
/// needs admin_tool=admin", "no such resource" or the first field's problem.
fn api_message(e: &OpError) -> String {
    match e {
        OpError::Forbidden(required) => format!(
            "Costbridge refused: this needs {required}, which the caller does not hold. A \
             company admin who holds it can grant it."
        ),
        OpError::NotFound => "Costbridge has no such resource in the caller's company: the id \
                              is wrong, it was deleted, or it belongs to another company."
            .to_owned(),
        OpError::Invalid(fields) => {
            let problems: Vec<String> = fields
                .iter()
                .map(|(field, messages)| format!("{field} {}", messages.join("; ")))
                .collect();
            format!(
                "Costbridge refused the request: {}. Correct the field(s) in details.fields \
                 and send it again.",
                problems.join("; ")
            )
        }
        other => other.to_string(),
    }
}

/// The API's answer to each way an operation can fail (docs/api.md lists them).
impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        let message = api_message(&e);
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        let (status, code, details) = match e {
            OpError::Forbidden(required) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                json!({"required": required}),
            ),
            OpError::Invalid(fields) => (
                unprocessable,
                "validation_failed",
                json!({"fields": fields}),
            ),
            OpError::NotFound => (StatusCode::NOT_FOUND, "not_found", json!({})),
            OpError::Conflict(_) => (StatusCode::CONFLICT, "conflict", json!({})),
            OpError::Locked(_) => (StatusCode::CONFLICT, "locked", json!({})),
            OpError::Items(items) => (unprocessable, "validation_failed", json!({"items": items})),
            OpError::Rows(rows) => (unprocessable, "validation_failed", json!({"rows": rows})),
            OpError::Blocked(block, invalid) => {
                let status = match block.reason.code() {
                    "no_permission" => StatusCode::FORBIDDEN,
                    "stale_page" => StatusCode::CONFLICT,
                    _ => unprocessable,
                };
                let details = if invalid.is_empty() {
                    json!({})
                } else {
                    json!({"items": invalid})
                };
                (status, block.reason.code(), details)
            }
            OpError::NoConnection => (unprocessable, "no_erp_connection", json!({})),
            OpError::Erp(_) => (StatusCode::BAD_GATEWAY, "erp_unavailable", json!({})),
            // As unavailable, with how long the ERP asked to wait (it was lost).
            OpError::ErpBusy { after } => {
                let mut e = ApiError::new(StatusCode::BAD_GATEWAY, "erp_unavailable", message);
                e.retry_after = Some(after.as_secs().max(1));
                return e;
            }
            OpError::NotSupported(_) => (unprocessable, "not_supported", json!({})),
            // The installation's state, not the request's: a client that took a 400 for its
            // own mistake stopped retrying what the operator puts right.
            OpError::Broken(m) => {
                tracing::error!(error = %m, "the request depends on something unusable");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", json!({}))
            }
            OpError::RateLimited(wait) => {
                let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
                e.retry_after = Some(wait);
                return e;
            }
            OpError::BadCredentials => (StatusCode::UNAUTHORIZED, "unauthorized", json!({})),
            OpError::Store(e) => {
                // The cause goes to the log; the client gets no internals.
                tracing::error!(error = %e, "storage failure");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", json!({}))
            }
        };
        ApiError::new(status, code, message).with_details(details)
    }
}
