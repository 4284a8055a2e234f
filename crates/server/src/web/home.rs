//! The start page, first-run setup, sign-in and sign-out.
use super::{Errors, Form, Layout, WebError, WebResult};
use crate::api::auth::{authenticate, check_email, check_password};
use crate::api::text;
use crate::error::ApiError;
use crate::extract::{hash_token, session_caller};
use crate::state::AppState;
use crate::throttle::ClientAddr;
use crate::{password, session};
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use costbridge_domain::Permissions;
use costbridge_storage::users::NewUser;
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
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    errors: Errors,
    email: String,
}

/// An empty database offers setup; otherwise the signed-in person lands on their first page.
async fn home(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> WebResult<Response> {
    if state.db.companies_count().await? == 0 {
        return Ok(SetupPage {
            layout: Layout::bare("Set up"),
            errors: Errors::default(),
            company: String::new(),
            name: String::new(),
            email: String::new(),
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

async fn setup(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SetupForm>,
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
    };
    let checked = check_setup(&f);
    let (company, name, email) = match checked {
        Ok(v) => v,
        Err(errors) => return Ok((StatusCode::UNPROCESSABLE_ENTITY, again(errors)).into_response()),
    };
    let hash = password::hash(f.password.clone()).await?;
    let admin = NewUser {
        email: &email,
        name: &name,
        password_hash: &hash,
        permissions: Permissions::FULL,
    };
    let (_, user_id) = match state.db.create_company(&company, &admin).await {
        Ok(ids) => ids,
        Err(e) => {
            let errors = Errors::from_api(e.into())?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, again(errors)).into_response());
        }
    };
    signed_in(&state, None, user_id).await
}

/// Every field of the setup form checked, with every error at its field.
fn check_setup(f: &SetupForm) -> Result<(String, String, String), Errors> {
    let mut errors = Errors::default();
    let mut check = |r: Result<String, ApiError>| match r {
        Ok(v) => Some(v),
        Err(e) => {
            errors.merge(e);
            None
        }
    };
    let company = check(text("company", &f.company, 200));
    let name = check(text("name", &f.name, 200));
    let email = check(check_email(&f.email));
    let password = check(check_password(&f.password).map(|()| String::new()));
    match (company, name, email, password) {
        (Some(c), Some(n), Some(e), Some(_)) => Ok((c, n, e)),
        _ => Err(errors),
    }
}

/// Starts a fresh session (ending the one the browser came with) and goes to the start page.
async fn signed_in(state: &AppState, old: Option<&str>, user_id: i64) -> WebResult<Response> {
    if let Some(old) = old {
        state.db.delete_session(&hash_token(old)).await?;
    }
    let s = session::start(state, user_id).await?;
    Ok(([(header::SET_COOKIE, s.cookie)], Redirect::to("/")).into_response())
}

async fn login_page(State(state): State<AppState>) -> WebResult<Response> {
    if state.db.companies_count().await? == 0 {
        return Ok(Redirect::to("/").into_response());
    }
    Ok(LoginPage {
        layout: Layout::bare("Sign in"),
        errors: Errors::default(),
        email: String::new(),
    }
    .into_response())
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> WebResult<Response> {
    same_site(&headers)?;
    match authenticate(&state, f.email.trim(), f.password, client).await {
        Ok(user) => signed_in(&state, session::cookie(&headers), user.id).await,
        Err(e) => {
            let status = e.status;
            let message = match e.code {
                "rate_limited" => format!(
                    "Too many sign-in attempts have failed. Wait {} seconds and try again.",
                    e.retry_after.unwrap_or(60)
                ),
                "unauthorized" => "The email or password is wrong.".to_owned(),
                _ => return Err(WebError::Api(e)),
            };
            let page = LoginPage {
                layout: Layout::bare("Sign in"),
                errors: Errors::message(message),
                email: f.email,
            };
            Ok((status, page).into_response())
        }
    }
}

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
