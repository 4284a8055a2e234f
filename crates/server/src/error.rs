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

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        OpError::from(e).into()
    }
}

/// The API's answer to each way an operation can fail (docs/api.md lists them).
impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        let message = e.to_string();
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
            OpError::NotSupported(_) => (unprocessable, "not_supported", json!({})),
            OpError::Broken(_) => (StatusCode::BAD_REQUEST, "bad_request", json!({})),
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
