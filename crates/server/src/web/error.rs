//! Errors of the pages: a missing session goes to the sign-in page, anything else becomes a
//! message (a header htmx requests show as a toast, a page for a full navigation).
use super::layout::Layout;
use crate::error::ApiError;
use crate::ops::OpError;
use askama::Template;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use costbridge_storage::queue::INCOME_NEEDED;

pub enum WebError {
    /// No live session: go to the sign-in page (htmx is told to navigate, not to swap), and
    /// back to `next` once signed in.
    SignIn { htmx: bool, next: Option<String> },
    /// An operation refused or failed; the words come from the typed error.
    Op(OpError),
    /// A request the page could not take: a form that does not parse, a cross-site post, a
    /// page that could not be drawn.
    Request(ApiError),
}

pub type WebResult<T> = Result<T, WebError>;

impl From<OpError> for WebError {
    fn from(e: OpError) -> Self {
        WebError::Op(e)
    }
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        WebError::Request(e)
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> Self {
        tracing::error!(error = %e, "template failed");
        WebError::Request(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the page could not be drawn; the error has been logged",
        ))
    }
}

impl From<costbridge_storage::StoreError> for WebError {
    fn from(e: costbridge_storage::StoreError) -> Self {
        WebError::Op(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    message: String,
}

/// The error page's title: who stopped the request and whether it was a refusal (the
/// request can be changed) or a failure (the same request may work later). "Something went
/// wrong" said neither.
fn heading(status: StatusCode) -> &'static str {
    if status.is_server_error() {
        "Costbridge could not finish this request"
    } else {
        "Costbridge refused this request"
    }
}

static X_ERROR: HeaderName = HeaderName::from_static("x-error");

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::SignIn { htmx, next } => {
                let to = super::back::sign_in_url(next.as_deref());
                if htmx {
                    // `sign_in_url` is ASCII: `local_path` lets nothing else through.
                    let to =
                        HeaderValue::from_str(&to).unwrap_or(HeaderValue::from_static("/login"));
                    (StatusCode::UNAUTHORIZED, [("hx-redirect", to)]).into_response()
                } else {
                    Redirect::to(&to).into_response()
                }
            }
            WebError::Op(e) => {
                let message = explain(&e);
                // The status is the API's for the same error (which also logs a storage one).
                let api = ApiError::from(e);
                message_response(api.status, message, api.retry_after)
            }
            WebError::Request(e) => message_response(e.status, capitalise(&e.message), None),
        }
    }
}

/// htmx does not swap 4xx/5xx; app.js shows the `x-error` header as a message instead, and a
/// full navigation gets the error page.
fn message_response(status: StatusCode, message: String, retry_after: Option<u64>) -> Response {
    let header = HeaderValue::from_str(&percent_encode(&message))
        .unwrap_or(HeaderValue::from_static("error"));
    let page = ErrorPage {
        layout: Layout::bare(heading(status)),
        status: status.as_u16(),
        message,
    };
    let body = page.render().unwrap_or_default();
    let mut res = (status, Html(body)).into_response();
    res.headers_mut().insert(X_ERROR.clone(), header);
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

/// An operation's error as one sentence a person can act on, with the rows or items it names.
pub fn explain(e: &OpError) -> String {
    let mut out = match e {
        OpError::Forbidden(required) => format!(
            "Costbridge refused: this needs {}, which you do not hold. A company admin who \
             holds it can grant it to you.",
            permission_words(required)
        ),
        // Every code the action was for has left the tab. The API's words ("no item is in a
        // state for this action") name neither who refused nor what to do; the handlers that
        // know the tab say which one (`erp_actions::none_left`).
        OpError::Items(items) if items.is_empty() => "Costbridge found no codes for this action \
                                                      any more: another approver may have \
                                                      acted. Reload the page."
            .to_owned(),
        OpError::Items(items) => format!(
            "Costbridge refused {} for this action",
            super::format::codes(items.len())
        ),
        OpError::NotFound => "Costbridge cannot find that: it was deleted or moved meanwhile, \
                              or it is not your company's. Reload the page to see it as it is \
                              now."
            .to_owned(),
        // The database failed; the operator has the details.
        OpError::Store(_) => "Costbridge could not finish this because its database failed, so \
                              it may not have been saved. Reload the page to see where things \
                              stand and try again; tell your operator if it happens again (the \
                              server's log has the details)."
            .to_owned(),
        // The API's field names (`gl_income_account`) in the words of the pages.
        OpError::Invalid(fields) => fields
            .iter()
            .map(|(f, m)| {
                let words = f.trim_start_matches("connector.").replace('_', " ");
                let words = words
                    .strip_prefix("gl ")
                    .map_or(words.clone(), |w| format!("GL {w}"));
                format!("{} {}.", capitalise(&words), m.join("; "))
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => capitalise(&other.to_string()),
    };
    let listed: Vec<(&str, &[String])> = match e {
        OpError::Items(items) => items
            .iter()
            .map(|i| (i.full_code.as_deref().unwrap_or_default(), &i.errors[..]))
            .collect(),
        OpError::Rows(rows) => rows
            .iter()
            .map(|r| (r.full_code.as_str(), &r.errors[..]))
            .collect(),
        OpError::Blocked(_, codes) => codes
            .iter()
            .map(|c| (c.full_code.as_str(), &c.errors[..]))
            .collect(),
        _ => Vec::new(),
    };
    let more = listed.len().saturating_sub(10);
    if listed.len() > 1 && listed.windows(2).all(|w| w[0].1 == w[1].1) {
        // One reason for every row (44 codes without an income account): said once, after the
        // codes, instead of 44 times.
        let names: Vec<&str> = listed.iter().take(10).map(|(name, _)| *name).collect();
        let more = if more > 0 {
            format!(" …and {more} more")
        } else {
            String::new()
        };
        out.push_str(&format!(
            " ({}{more}): each {}.",
            names.join(", "),
            listed[0].1.join("; ")
        ));
        if listed[0].1 == [INCOME_NEEDED] {
            out.push_str(
                " Pick one on each row, or one in \"GL income for rows without one\", then \
                 export again.",
            );
        }
    } else if !listed.is_empty() {
        out.push(':');
        for (name, errors) in listed.iter().take(10) {
            out.push_str(&format!(" {name}: {}.", errors.join("; ")));
        }
        if more > 0 {
            out.push_str(&format!(" …and {more} more."));
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

pub(super) fn capitalise(s: &str) -> String {
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

    async fn error_page(status: StatusCode) -> String {
        let res = message_response(status, "Because.".into(), None);
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_error_page_says_who_stopped_the_request() {
        let page = |status| error_page(status);
        let refused = page(StatusCode::FORBIDDEN).await;
        assert!(
            refused.contains("<h1 data-error-page>Costbridge refused this request</h1>"),
            "{refused}"
        );
        assert!(refused.contains("href=\"/\""), "{refused}");
        let failed = page(StatusCode::BAD_GATEWAY).await;
        assert!(
            failed.contains("Costbridge could not finish this request"),
            "{failed}"
        );
        assert!(!failed.contains("Something went wrong"), "{failed}");
    }

    #[test]
    fn messages_survive_the_header() {
        assert_eq!(percent_encode("a 100% ü"), "a 100%25 %C3%BC");
    }

    #[test]
    fn errors_name_the_rows() {
        let item = |id: i64, code: &str| costbridge_storage::queue::ItemProblem {
            id,
            full_code: Some(code.into()),
            errors: vec!["needs a GL income account".into()],
        };
        let e = OpError::Items(vec![item(1, "01"), item(2, "02")]);
        assert_eq!(
            explain(&e),
            "Costbridge refused 2 codes for this action (01, 02): each needs a GL income account."
        );
        let many: Vec<_> = (0..12).map(|n| item(n, &format!("{n:02}"))).collect();
        assert_eq!(
            explain(&OpError::Items(many)),
            "Costbridge refused 12 codes for this action (00, 01, 02, 03, 04, 05, 06, 07, 08, 09 \
             …and 2 more): each needs a GL income account."
        );
        // The queue's own reason gets the page's way out.
        let needs = |id: i64, code: &str| costbridge_storage::queue::ItemProblem {
            errors: vec![INCOME_NEEDED.into()],
            ..item(id, code)
        };
        assert_eq!(
            explain(&OpError::Items(vec![needs(1, "01"), needs(2, "02")])),
            format!(
                "Costbridge refused 2 codes for this action (01, 02): each {INCOME_NEEDED}. Pick \
                 one on each row, or one in \"GL income for rows without one\", then export \
                 again."
            )
        );
        let mut other = item(3, "03");
        other.errors = vec!["is synced".into()];
        let e = OpError::Items(vec![item(1, "01"), other]);
        assert_eq!(
            explain(&e),
            "Costbridge refused 2 codes for this action: 01: needs a GL income account. 03: is \
             synced."
        );
        let e = OpError::field("gl_income_account", "'5000' is not an income account");
        assert_eq!(
            explain(&e),
            "GL income account '5000' is not an income account."
        );
        let f = OpError::Forbidden("admin_tool=admin and can_push_to_accounting");
        assert_eq!(
            explain(&f),
            "Costbridge refused: this needs Admin tool: admin and the Push to accounting \
             privilege, which you do not hold. A company admin who holds it can grant it to you."
        );
        // Every refusal says who refused and what the person can do next.
        let store = OpError::Store(costbridge_storage::StoreError::Db(
            sqlx::Error::PoolTimedOut,
        ));
        for e in [OpError::NotFound, store, OpError::Items(Vec::new())] {
            let words = explain(&e);
            assert!(words.starts_with("Costbridge "), "{words}");
            assert!(
                words.contains("Reload") || words.contains("Try again"),
                "{words}"
            );
        }
    }
}
