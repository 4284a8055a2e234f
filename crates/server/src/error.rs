//! The API's one error type: every failure becomes `{"error": {code, message, details}}` with
//! the status API.md gives it.
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use costbridge_storage::StoreError;
use costbridge_storage::erp::SendError;
use costbridge_storage::import::ImportError;
use costbridge_storage::queue::QueueError;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Boxed: it is rarely set, and keeps `Result<_, ApiError>` small on the happy path.
    pub details: Box<Value>,
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Box::new(json!({})),
            retry_after: None,
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

    /// `required` names the permission the caller lacks.
    pub fn forbidden(required: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this needs {required}"),
        )
        .with_details(json!({"required": required}))
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    pub fn fields(fields: BTreeMap<String, Vec<String>>) -> Self {
        let first = fields
            .iter()
            .next()
            .map(|(f, m)| format!("{f} {}", m.join("; ")))
            .unwrap_or_default();
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", first)
            .with_details(json!({"fields": fields}))
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::fields(BTreeMap::from([(field.to_owned(), vec![message.into()])]))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"code": self.code, "message": self.message, "details": self.details}});
        let mut res = (self.status, axum::Json(body)).into_response();
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
        match e {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Invalid(fields) => ApiError::fields(fields),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            StoreError::Locked(m) => ApiError::new(StatusCode::CONFLICT, "locked", m),
            other => {
                // The cause goes to the log; the client gets no internals.
                tracing::error!(error = %other, "storage failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an internal error occurred; it has been logged",
                )
            }
        }
    }
}

impl From<SendError> for ApiError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Store(e) => e.into(),
            SendError::Blocked(block, invalid) => {
                let status = match block.reason.code() {
                    "no_permission" => StatusCode::FORBIDDEN,
                    "stale_page" => StatusCode::CONFLICT,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                let details = if invalid.is_empty() {
                    json!({})
                } else {
                    json!({"items": invalid})
                };
                ApiError::new(status, block.reason.code(), block.message).with_details(details)
            }
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Store(e) => e.into(),
            QueueError::Items(items) if items.is_empty() => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "no item is in a state for this action",
            )
            .with_details(json!({"items": []})),
            QueueError::Items(items) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                format!("{} item(s) cannot take this action", items.len()),
            )
            .with_details(json!({"items": items})),
        }
    }
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Store(e) => e.into(),
            ImportError::Rows(rows) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                format!("{} row(s) are invalid; nothing was imported", rows.len()),
            )
            .with_details(json!({"rows": rows})),
        }
    }
}

impl From<costbridge_erp::ConnectorError> for ApiError {
    fn from(e: costbridge_erp::ConnectorError) -> Self {
        match e {
            costbridge_erp::ConnectorError::Unavailable(m) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "erp_unavailable",
                format!("the ERP did not answer as expected: {m}"),
            ),
            costbridge_erp::ConnectorError::NotSupported(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not_supported", m)
            }
        }
    }
}
