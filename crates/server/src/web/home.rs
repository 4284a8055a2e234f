//! The start page, first-run setup, sign-in and sign-out.
use super::{Errors, Form, Layout, WebError, WebResult, back};
use crate::error::ApiError;
use crate::extract::session_caller;
use crate::ops::OpError;
use crate::ops::users::{self, SignedIn, authenticate};
use crate::password::hash_token;
use crate::session;
use crate::state::AppState;
use crate::throttle::ClientAddr;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/setup", post(setup))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
}

#[derive(Template, WebTemplate)]
#[template(path = "setup.html")]
struct SetupPage {
    layout: Layout,
    errors: Errors,
    company: String,
    name: String,
    email: String,
    /// As entered, so that a form sent back for another field keeps it.
    setup_code: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    errors: Errors,
    email: String,
    /// The page to go back to once signed in (a path here, see `back::local_path`).
    next: Option<String>,
}

/// An empty database offers setup; otherwise the signed-in person lands on their first page.
#[tracing::instrument(skip_all)]
async fn home(
    State(state): State<AppState>, method: Method, headers: HeaderMap,
) -> WebResult<Response> {
    if state.db.companies_count().await? == 0 {
        return Ok(SetupPage {
            layout: Layout::bare("Set up"),
            errors: Errors::default(),
            company: String::new(),
            name: String::new(),
            email: String::new(),
            setup_code: String::new(),
        }
        .into_response());
    }
    Ok(match session_caller(&method, &headers, &state).await? {
        None => Redirect::to("/login").into_response(),
        Some(c) if c.user.permissions.can_read_codes() => Redirect::to("/codes").into_response(),
        Some(c) if c.user.permissions.can_read_erp_queue() => Redirect::to("/erp").into_response(),
        Some(_) => Redirect::to("/settings/users").into_response(),
    })
}

#[derive(Deserialize)]
struct SetupForm {
    company: String,
    name: String,
    email: String,
    password: String,
    #[serde(default)]
    setup_code: String,
}

/// Refuses form posts another site's page makes (sign-in and setup have no session yet, so
/// the browser's own Origin / Sec-Fetch-Site headers are the CSRF check).
pub(super) fn same_site(headers: &HeaderMap) -> WebResult<()> {
    if session::cross_site(headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "this form was sent from another site; open Costbridge and try again",
        )
        .into());
    }
    Ok(())
}

#[tracing::instrument(skip_all)]
async fn setup(
    State(state): State<AppState>, headers: HeaderMap, Form(f): Form<SetupForm>,
) -> WebResult<Response> {
    same_site(&headers)?;
    if state.db.companies_count().await? > 0 {
        return Ok(Redirect::to("/login").into_response());
    }
    let again = |errors: Errors| SetupPage {
        layout: Layout::bare("Set up"),
        errors,
        company: f.company.clone(),
        name: f.name.clone(),
        email: f.email.clone(),
        setup_code: f.setup_code.clone(),
    };
    if !state.first_run.allows(&f.setup_code) {
        let errors = Errors::from_op(OpError::field(
            "setup_code",
            "Costbridge refused setup without its setup code: enter the code `costbridge serve` printed when it started on this empty database (its log line says setup_code=…); a restart prints a new one",
        ))?;
        return Ok((StatusCode::FORBIDDEN, again(errors)).into_response());
    }
    let created = users::setup(&state, &f.company, &f.name, &f.email, f.password.clone()).await;
    match created {
        Ok(user_id) => signed_in(&state, None, user_id, None, None).await,
        Err(e) => {
            let errors = Errors::from_op(e)?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, again(errors)).into_response())
        }
    }
}

/// Starts a fresh session (ending the one the browser came with) and goes to `next`, else the
/// start page. `checked`: the sign-in that verified the password (`None` for the founder just
/// created).
async fn signed_in(
    state: &AppState, old: Option<&str>, user_id: i64, checked: Option<&SignedIn>,
    next: Option<&str>,
) -> WebResult<Response> {
    if let Some(old) = old {
        state.db.delete_session(&hash_token(old)).await?;
    }
    let password_hash = checked.map(|s| s.password_hash.as_str());
    let Some(s) = session::start(state, user_id, password_hash).await? else {
        return Err(match checked {
            Some(s) => users::changed_meanwhile(state, s).await,
            None => OpError::BadCredentials,
        }
        .into());
    };
    let to = next.and_then(back::local_path).unwrap_or("/");
    Ok(([(header::SET_COOKIE, s.cookie)], Redirect::to(to)).into_response())
}

#[tracing::instrument(skip_all)]
async fn login_page(
    State(state): State<AppState>, RawQuery(query): RawQuery,
) -> WebResult<Response> {
    if state.db.companies_count().await? == 0 {
        return Ok(Redirect::to("/").into_response());
    }
    let next = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "next")
        .and_then(|(_, v)| back::local_path(&v).map(str::to_owned));
    Ok(LoginPage {
        layout: Layout::bare("Sign in"),
        errors: Errors::default(),
        email: String::new(),
        next,
    }
    .into_response())
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    /// The page to go back to (the sign-in page's hidden field).
    #[serde(default)]
    next: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn login(
    State(state): State<AppState>, ClientAddr(client): ClientAddr, headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> WebResult<Response> {
    same_site(&headers)?;
    match authenticate(&state, f.email.trim(), f.password, client).await {
        Ok(s) => {
            let cookie = session::cookie(&headers);
            signed_in(&state, cookie, s.user.id, Some(&s), f.next.as_deref()).await
        }
        Err(e) => {
            let message = match &e {
                OpError::RateLimited(wait) => format!(
                    "Too many sign-in attempts have failed. Wait {wait} seconds and try again."
                ),
                OpError::BadCredentials => "The email or password is wrong.".to_owned(),
                _ => return Err(WebError::Op(e)),
            };
            // The API's status for the same refusal.
            let status = ApiError::from(e).status;
            let page = LoginPage {
                layout: Layout::bare("Sign in"),
                errors: Errors::message(message),
                email: f.email,
                next: f
                    .next
                    .as_deref()
                    .and_then(back::local_path)
                    .map(str::to_owned),
            };
            Ok((status, page).into_response())
        }
    }
}

#[tracing::instrument(skip_all)]
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> WebResult<Response> {
    same_site(&headers)?;
    if let Some(id) = session::cookie(&headers) {
        state.db.delete_session(&hash_token(id)).await?;
    }
    Ok((
        [(header::SET_COOKIE, session::clear_cookie(&state))],
        Redirect::to("/login"),
    )
        .into_response())
}
