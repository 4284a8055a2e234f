//! Request extractors: the caller (bearer token or session cookie), JSON bodies with our error
//! shape, and paging.
use crate::error::ApiError;
use crate::ops::Window;
use crate::password::hash_token;
use crate::session;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use costbridge_storage::users::User;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The authenticated user and how they came: a bearer token (integrators) or the session
/// cookie (the browser UI; the API accepts either). It carries the application state too, so
/// a handler needs no second extractor for it.
#[derive(Clone)]
pub struct Caller {
    pub user: User,
    pub auth: Auth,
    pub state: AppState,
}

impl Caller {
    /// Names the user and their company on the request's span (see `app::request_span`), so
    /// every line logged for the request, in handlers, queries and connector calls, says
    /// who asked; handlers need not repeat them on their own spans.
    fn new(user: User, auth: Auth, state: &AppState) -> Caller {
        tracing::Span::current()
            .record("company", user.company_id)
            .record("user", user.id);
        Caller {
            user,
            auth,
            state: state.clone(),
        }
    }

    /// The hash of the session or token this caller uses.
    pub fn credential(&self) -> &str {
        match &self.auth {
            Auth::Token(hash) => hash,
            Auth::Session { id_hash, .. } => id_hash,
        }
    }
}

#[derive(Clone)]
pub enum Auth {
    /// The SHA-256 of the API token.
    Token(String),
    /// The SHA-256 of the session id, and the session's CSRF token for the pages it renders.
    Session { id_hash: String, csrf_token: String },
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts, state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // The API's guard (`api::guard`) found the caller already; it is not looked up twice.
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        // A bearer header decides alone: a bad token is 401 even with a session cookie beside it.
        if let Some(token) = credentials(&parts.headers, "Bearer") {
            let token_hash = hash_token(token);
            let user = match token.is_empty() {
                true => None,
                false => state.db.user_by_token(&token_hash).await?,
            };
            return user
                .map(|user| Caller::new(user, Auth::Token(token_hash), state))
                .ok_or_else(ApiError::invalid_token);
        }
        session_caller(&parts.method, &parts.headers, state)
            .await?
            .ok_or_else(ApiError::unauthorized)
    }
}

/// What the `Authorization` header holds after `scheme` (`Bearer`, `Basic`), trimmed: the
/// scheme matched in any case (RFC 7235 §2.1), so `bearer <token>` is a bearer token too.
pub fn credentials<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (given, rest) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// The caller from the session cookie, if there is a live one. Unsafe methods must pass the
/// CSRF rule ([`session::csrf_ok`]); bearer-token calls never get here.
pub async fn session_caller(
    method: &Method, headers: &HeaderMap, state: &AppState,
) -> Result<Option<Caller>, ApiError> {
    let Some(id) = session::cookie(headers) else {
        return Ok(None);
    };
    let id_hash = hash_token(id);
    let Some(s) = state.db.session(&id_hash).await? else {
        return Ok(None);
    };
    if !session::is_safe(method) && !session::csrf_ok(headers, &s.csrf_token) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "this request did not come from a Costbridge page; reload the page and try again",
        ));
    }
    let auth = Auth::Session {
        id_hash,
        csrf_token: s.csrf_token,
    };
    Ok(Some(Caller::new(s.user, auth, state)))
}

/// A JSON body; syntax and type errors are 400 `bad_request` (a `null` for a field that cannot
/// be cleared, a 422 on that field), an oversized body 413.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

pub fn json_rejection(r: JsonRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large();
    }
    match r {
        JsonRejection::JsonDataError(e) => match refused_null(&e) {
            // A field error like any value refused (422 with `details.fields`), as
            // `digest_emails: null` already was.
            Some(field) => ApiError::field(&field, crate::ops::CANNOT_CLEAR),
            None => ApiError::bad_request(format!("the body does not match: {}", e.body_text())),
        },
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::bad_request(format!("malformed JSON: {}", e.body_text()))
        }
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::bad_request("send the body as Content-Type: application/json")
        }
        other => ApiError::bad_request(other.body_text()),
    }
}

/// The field `ops::present` refused a `null` for, if that is why the body did not match.
fn refused_null(e: &axum::extract::rejection::JsonDataError) -> Option<String> {
    use std::error::Error;
    let found = e
        .source()?
        .source()?
        .downcast_ref::<serde_path_to_error::Error<serde_json::Error>>()?;
    found
        .inner()
        .to_string()
        .starts_with(crate::ops::CANNOT_CLEAR)
        .then(|| found.path().to_string())
}

pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is larger than this endpoint accepts",
    )
}

/// `?page=&per_page=` with the limits of docs/api.md. An operation that takes it answers with
/// the `Total`, `Per-Page` and `Link` headers (`crate::docs` documents them so).
#[derive(Debug, Clone, Copy, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// The page number, from 1.
    #[param(minimum = 1, default = 1)]
    pub page: i64,
    /// Records per page.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub per_page: i64,
}

impl Default for Paging {
    fn default() -> Self {
        Paging {
            page: 1,
            per_page: 100,
        }
    }
}

pub const MAX_PER_PAGE: i64 = 1000;

impl Paging {
    pub fn check(self) -> Result<Self, ApiError> {
        if self.page < 1 {
            return Err(ApiError::field("page", "must be 1 or more"));
        }
        if !(1..=MAX_PER_PAGE).contains(&self.per_page) {
            return Err(ApiError::field(
                "per_page",
                format!("must be between 1 and {MAX_PER_PAGE}"),
            ));
        }
        // A page so far on that its first row's offset does not fit in a number (found by
        // schemathesis: it overflowed into a panic).
        if (self.page - 1).checked_mul(self.per_page).is_none() {
            return Err(ApiError::field(
                "page",
                "is past any list's end; follow the Link header's pages",
            ));
        }
        Ok(self)
    }

    /// The rows this page holds.
    pub fn window(self) -> Window {
        Window {
            limit: self.per_page,
            offset: (self.page - 1) * self.per_page,
        }
    }

    /// [`Paging::respond`] for a short list read whole (a company's users or lists): this
    /// page's part of it.
    pub fn respond_part<T: serde::Serialize>(self, uri: &Uri, all: Vec<T>) -> Response {
        let total = all.len() as i64;
        let Window { limit, offset } = self.window();
        let page: Vec<T> = all
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(0))
            .collect();
        self.respond(uri, total, page)
    }

    /// Wraps a page of JSON with `Total`, `Per-Page` and `Link` headers.
    pub fn respond<T: serde::Serialize>(self, uri: &Uri, total: i64, items: T) -> Response {
        self.respond_with_next(uri, total, items, None)
    }

    /// Refuses a key given with `page` (`page=1` too: it asks for numbered pages as much as
    /// `page=2`, and a page by key beside it came without its `rel="next"`): `keys` are the
    /// list's key parameters and whether each was given.
    pub fn keys_alone(uri: &Uri, keys: &[(&str, bool)]) -> Result<(), ApiError> {
        if !has_param(uri, "page") {
            return Ok(());
        }
        match keys.iter().find(|(_, given)| *given) {
            Some((name, _)) => Err(ApiError::field(
                name,
                format!("cannot be combined with page: {name} already says where the page starts"),
            )),
            None => Ok(()),
        }
    }

    /// [`Paging::respond_with_next`] for a list that pages by `key_name`: without `page`, a
    /// full page may have more after it, and `rel="next"` asks for the rows after its last
    /// one (`key` of it); a client that pages by number keeps numbered links.
    pub fn respond_by_key<T: serde::Serialize>(
        self, uri: &Uri, total: i64, items: Vec<T>, key_name: &str, key: impl Fn(&T) -> String,
    ) -> Response {
        let next = items
            .last()
            .filter(|_| !has_param(uri, "page") && items.len() as i64 == self.per_page)
            .map(key);
        let next = next.as_deref().map(|value| (key_name, value));
        self.respond_with_next(uri, total, items, next)
    }

    /// [`Paging::respond`] for a list that pages by key: `next` (the parameter and value that
    /// say where the next page starts, when a full page suggests more) makes `rel="next"` ask
    /// for the rows after this page, which costs the same at any depth; `first`, `last` and
    /// `prev` stay page numbers.
    pub fn respond_with_next<T: serde::Serialize>(
        self, uri: &Uri, total: i64, items: T, next: Option<(&str, &str)>,
    ) -> Response {
        let mut headers = HeaderMap::new();
        let num =
            |n: i64| HeaderValue::from_str(&n.to_string()).expect("digits are a valid header");
        headers.insert("total", num(total));
        headers.insert("per-page", num(self.per_page));
        let last = ((total + self.per_page - 1) / self.per_page).max(1);
        let link = |page: i64, rel: &str| {
            format!(
                "<{}>; rel=\"{rel}\"",
                with_param(uri, "page", &page.to_string())
            )
        };
        let mut links = vec![link(1, "first"), link(last, "last")];
        if self.page > 1 {
            links.push(link(self.page - 1, "prev"));
        }
        match next {
            Some((name, value)) => {
                links.push(format!("<{}>; rel=\"next\"", with_param(uri, name, value)))
            }
            // A page by key that is not full is the last: no numbered `next` after it.
            None if self.page < last && !STARTS[1..].iter().any(|p| has_param(uri, p)) => {
                links.push(link(self.page + 1, "next"))
            }
            None => {}
        }
        if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
            headers.insert(header::LINK, v);
        }
        (headers, axum::Json(items)).into_response()
    }
}

/// The parameters that say where a page starts, by number and then by key: a link carries one
/// of them.
const STARTS: [&str; 4] = ["page", "after", "after_code", "before_id"];

/// `uri` with `name=value` (`value` encoded for a query) in place of any parameter of
/// [`STARTS`] it had.
fn with_param(uri: &Uri, name: &str, value: &str) -> String {
    let value: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let query: Vec<String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty() && !STARTS.contains(&kv.split('=').next().unwrap_or("")))
        .map(str::to_owned)
        .chain(std::iter::once(format!("{name}={value}")))
        .collect();
    format!("{}?{}", uri.path(), query.join("&"))
}

/// Whether the query string gives `name` a value. An empty value is no value, as [`Q`] reads
/// it: `?page=&after_code=…` pages by key.
pub(crate) fn has_param(uri: &Uri, name: &str) -> bool {
    uri.query().unwrap_or("").split('&').any(|kv| {
        kv.split_once('=')
            .is_some_and(|(k, v)| k == name && !v.is_empty())
    })
}

/// Query strings are parsed with our error shape too.
pub struct Q<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // An empty value is no value: a client that sends every parameter the contract lists
        // (`?sync_status=&q=&page=&per_page=`) asks for no filter. It got a 400 for `page=`,
        // a 422 for `sync_status=` and, worse, an empty list for `entity_type=`.
        let given: Vec<&str> = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|kv| kv.split_once('=').is_some_and(|(_, v)| !v.is_empty()))
            .collect();
        let uri: Uri = format!("/?{}", given.join("&"))
            .parse()
            .map_err(|_| ApiError::bad_request("the query string is not valid".to_owned()))?;
        axum::extract::Query::<T>::try_from_uri(&uri)
            .map(|q| Q(q.0))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}
