//! The browser UI: server-rendered pages (askama) made interactive with htmx. Every page
//! calls the same operations as the JSON API (`crate::ops`), so a rule lives in one place;
//! this module only turns their results into HTML and their errors into messages.
use crate::error::ApiError;
use crate::extract::{Auth, Caller, session_caller};
use crate::ops::{Fields, OpError, Window};
use crate::state::AppState;
use crate::zone::Zone;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Router, routing::get};

pub use assets::css as stylesheet;
pub use error::{WebError, WebResult, explain, percent_encode};
pub use layout::Layout;

mod assets;
mod audit;
mod back;
mod clients;
mod codes;
mod codes_edit;
mod company;
mod erp;
mod erp_actions;
mod erp_settings;
mod error;
mod events;
pub mod format;
mod history;
mod home;
mod import;
mod layout;
mod lists;
mod pulled;
mod qbwc;
mod reset;
mod send;
mod users;
mod xero;

pub fn router(max_import_bytes: usize) -> Router<AppState> {
    Router::new()
        .merge(home::router())
        .merge(codes::router())
        .merge(codes_edit::router())
        .merge(lists::router())
        .merge(send::router())
        .merge(history::router())
        .merge(import::router(max_import_bytes))
        .merge(erp::router())
        .merge(erp_actions::router())
        .merge(users::router())
        .merge(clients::router())
        .merge(company::router())
        .merge(reset::router())
        .merge(erp_settings::router())
        .merge(xero::router())
        .merge(qbwc::router())
        .merge(audit::router())
        .merge(events::router())
        .route(
            "/settings",
            get(|| async { Redirect::to("/settings/users") }),
        )
        .layer(middleware::from_fn(security_headers))
        .merge(assets::router())
}

/// Pages load only what the binary serves, and cannot be framed by another site.
pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    res
}

/// The signed-in person looking at a page, through their session cookie (whose CSRF check
/// [`session_caller`] already made for unsafe methods).
pub struct Viewer {
    pub caller: Caller,
    pub csrf: String,
    /// The company's time zone: every time a page shows is in it, with the zone named.
    pub zone: Zone,
}

impl Viewer {
    pub fn company(&self) -> i64 {
        self.caller.user.company_id
    }

    pub fn state(&self) -> &AppState {
        &self.caller.state
    }
}

/// Whether a request came from htmx (a fragment is wanted) rather than a page navigation.
fn is_htmx(parts: &Parts) -> bool {
    parts.headers.contains_key("hx-request")
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let htmx = is_htmx(parts);
        match session_caller(&parts.method, &parts.headers, state).await {
            Ok(Some(caller)) => {
                let csrf = match &caller.auth {
                    Auth::Session { csrf_token, .. } => csrf_token.clone(),
                    Auth::Token(_) => String::new(),
                };
                let zone = crate::ops::company::zone(state, caller.user.company_id)
                    .await
                    .map_err(WebError::Op)?;
                Ok(Viewer { caller, csrf, zone })
            }
            Ok(None) => Err(WebError::SignIn {
                htmx,
                next: back::page_of(parts, htmx),
            }),
            Err(e) => Err(WebError::Request(e)),
        }
    }
}

// Here, beside `Viewer`, so that `layout` and `error` need nothing from this module.
impl Layout {
    /// The layout of a page for the signed-in viewer.
    pub async fn new(
        state: &AppState, viewer: &Viewer, section: &'static str, title: impl Into<String>,
    ) -> WebResult<Layout> {
        let p = viewer.caller.user.permissions;
        Ok(Layout {
            company: crate::ops::company::name(state, viewer.company())
                .await?
                .to_string(),
            user_name: viewer.caller.user.name.clone(),
            csrf: viewer.csrf.clone(),
            section,
            can_codes: p.can_read_codes(),
            can_erp: p.can_read_erp_queue(),
            ..Layout::bare(title)
        })
    }
}

/// Where a paged list page stands (`_pager.html` draws it): the page asked for (from 1) of
/// pages of `per` rows.
#[derive(Clone, Copy)]
pub struct Pager {
    pub page: i64,
    per: i64,
}

impl Pager {
    pub fn new(asked: Option<i64>, per: i64) -> Pager {
        // Past the last page is an empty page; past what an offset can hold is that too,
        // not an overflow (a panic in debug builds, a negative OFFSET in release).
        Pager {
            page: asked.unwrap_or(1).clamp(1, i64::MAX / per),
            per,
        }
    }

    /// The rows this page holds.
    pub fn window(self) -> Window {
        Window {
            limit: self.per,
            offset: (self.page - 1) * self.per,
        }
    }

    /// How many pages `total` rows fill; one when there are none.
    pub fn pages(self, total: i64) -> i64 {
        ((total + self.per - 1) / self.per).max(1)
    }
}

/// Field errors to show beside the inputs of a form, and messages that belong to no field.
#[derive(Default)]
pub struct Errors {
    fields: Fields,
    pub general: Vec<String>,
}

impl From<OpError> for Errors {
    /// An operation's error as a form shows it (see [`Errors::merge`]).
    fn from(e: OpError) -> Errors {
        let mut errors = Errors::default();
        errors.merge(e);
        errors
    }
}

impl Errors {
    pub fn get(&self, field: &str) -> Option<String> {
        self.fields.get(field).map(|m| m.join("; "))
    }

    /// No problem at all: a fresh form, whose first field may take focus.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.general.is_empty()
    }

    /// Adds an operation's error: its fields beside their inputs, anything else as a message.
    pub fn merge(&mut self, e: OpError) {
        match e {
            OpError::Invalid(fields) => {
                for (k, v) in fields {
                    self.fields.entry(k).or_default().extend(v);
                }
            }
            other => self.general.push(explain(&other)),
        }
    }

    pub fn message(message: impl Into<String>) -> Errors {
        Errors {
            general: vec![message.into()],
            ..Errors::default()
        }
    }

    /// The field errors of invalid input; other errors are not a form's to show and come
    /// back as they are.
    pub fn from_op(e: OpError) -> Result<Errors, OpError> {
        match e {
            OpError::Invalid(fields) => Ok(Errors {
                fields,
                general: Vec::new(),
            }),
            other => Err(other),
        }
    }
}

/// Several rendered fragments as one htmx response (the target plus out-of-band swaps).
pub fn fragments(status: StatusCode, parts: Vec<askama::Result<String>>) -> WebResult<Response> {
    let mut body = String::new();
    for p in parts {
        body.push_str(&p?);
    }
    Ok((status, Html(body)).into_response())
}

/// Tells htmx to load another page (a full navigation, so the whole page is fresh).
pub fn htmx_redirect(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(v) => (StatusCode::NO_CONTENT, [("hx-redirect", v)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// A urlencoded form body. A body that does not parse is a 400 with a message: axum's own
/// rejection is a 422, which the pages' htmx would swap in as if it were a form.
pub struct Form<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, WebError> {
        axum::Form::<T>::from_request(req, state)
            .await
            .map(|f| Form(f.0))
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "Costbridge could not read the form that was sent ({}); nothing was \
                     changed. Reload the page and fill it in again.",
                    e.body_text()
                ))
                .into()
            })
    }
}

/// Reads `name=value` pairs of a urlencoded body, keeping repeated names (checkbox lists).
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}
