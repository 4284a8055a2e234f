//! Errors of the pages: a missing session goes to the sign-in page, anything else becomes a
//! message (a header htmx requests show as a toast, a page for a full navigation).
use super::Layout;
use crate::error::ApiError;
use askama::Template;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::Value;

pub enum WebError {
    /// No live session: go to the sign-in page (htmx is told to navigate, not to swap).
    SignIn {
        htmx: bool,
    },
    Api(ApiError),
}

pub type WebResult<T> = Result<T, WebError>;

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        WebError::Api(e)
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> Self {
        tracing::error!(error = %e, "template failed");
        WebError::Api(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the page could not be drawn; the error has been logged",
        ))
    }
}

impl From<costbridge_storage::StoreError> for WebError {
    fn from(e: costbridge_storage::StoreError) -> Self {
        WebError::Api(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    message: String,
}

static X_ERROR: HeaderName = HeaderName::from_static("x-error");

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::SignIn { htmx: true } => (
                StatusCode::UNAUTHORIZED,
                [("hx-redirect", HeaderValue::from_static("/login"))],
            )
                .into_response(),
            WebError::SignIn { htmx: false } => Redirect::to("/login").into_response(),
            WebError::Api(e) => {
                let message = explain(&e);
                // htmx does not swap 4xx/5xx; app.js shows this header as a message instead,
                // and a full navigation gets the page below.
                let header = HeaderValue::from_str(&percent_encode(&message))
                    .unwrap_or(HeaderValue::from_static("error"));
                let page = ErrorPage {
                    layout: Layout::bare("Something went wrong"),
                    status: e.status.as_u16(),
                    message,
                };
                let body = page.render().unwrap_or_default();
                let mut res = (e.status, Html(body)).into_response();
                res.headers_mut().insert(X_ERROR.clone(), header);
                if let Some(secs) = e.retry_after
                    && let Ok(v) = HeaderValue::from_str(&secs.to_string())
                {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
                res
            }
        }
    }
}

/// An API error as one sentence a person can act on, with the rows or items it names.
pub fn explain(e: &ApiError) -> String {
    let mut out = match e.code {
        "forbidden" => format!(
            "You do not have permission for this ({}).",
            permission_words(e.details["required"].as_str().unwrap_or(""))
        ),
        "not_found" => "That no longer exists, or is not yours to see.".to_owned(),
        _ => capitalise(&e.message),
    };
    let listed = e.details.get("items").or_else(|| e.details.get("rows"));
    if let Some(list) = listed.and_then(Value::as_array).filter(|l| !l.is_empty()) {
        out.push(':');
        for entry in list.iter().take(10) {
            let name = entry["full_code"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| entry["row"].as_i64().map(|r| format!("row {r}")))
                .unwrap_or_default();
            let errors: Vec<&str> = entry["errors"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            out.push_str(&format!(" {name}: {}.", errors.join("; ")));
        }
        if list.len() > 10 {
            out.push_str(&format!(" …and {} more.", list.len() - 10));
        }
    }
    out
}

/// `admin_tool=admin and can_push_to_accounting` in the words the pages use.
pub fn permission_words(required: &str) -> String {
    required
        .replace("admin_tool=", "Admin tool: ")
        .replace("erp_integrations=", "ERP Integrations: ")
        .replace("can_push_to_accounting", "the Push to accounting privilege")
        .replace("read_only", "read-only")
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Header values are ASCII; the message is UTF-8 (codes and names can be anything).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b' '..=b'~' if b != b'%' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_the_header() {
        assert_eq!(percent_encode("a 100% ü"), "a 100%25 %C3%BC");
    }

    #[test]
    fn errors_name_the_rows() {
        let e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "2 item(s) cannot take this action")
            .with_details(serde_json::json!({"items": [{"id": 1, "full_code": "01-100", "errors": ["needs a GL income account"]}]}));
        assert_eq!(
            explain(&e),
            "2 item(s) cannot take this action: 01-100: needs a GL income account."
        );
        let f = ApiError::forbidden("admin_tool=admin and can_push_to_accounting");
        assert_eq!(
            explain(&f),
            "You do not have permission for this (Admin tool: admin and the Push to accounting privilege)."
        );
    }
}
