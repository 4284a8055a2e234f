//! Password reset links in the browser: the admin's button on a user row, and the
//! page the link opens, where the user sets their password without signing in.
use super::home::same_site;
use super::{Errors, Form, Layout, Viewer, WebResult, fragments};
use crate::ops::account::{complete_reset, issue_reset, reset_user};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/users/{uid}/reset", post(issue))
        .route(crate::mail::RESET_PAGE, get(page).post(set))
}

#[derive(Template)]
#[template(path = "_user_reset.html")]
struct Issued {
    email: String,
    expires_at: String,
    link: Option<String>,
}

async fn issue(v: Viewer, Path(uid): Path<i64>) -> WebResult<Response> {
    let r = issue_reset(v.state(), &v.caller.user, v.company(), uid).await?;
    let email = v.state().db.user(v.company(), uid).await?.email;
    let expires_at = v.zone.show(r.expires_at);
    let issued = Issued {
        email,
        expires_at,
        link: r.link,
    };
    fragments(StatusCode::OK, vec![issued.render()])
}

#[derive(Template, WebTemplate)]
#[template(path = "reset.html")]
struct ResetPage {
    layout: Layout,
    errors: Errors,
    /// Empty when the link is not (or no longer) valid.
    token: String,
    email: String,
    done: bool,
}

impl ResetPage {
    fn new(token: String, email: String) -> ResetPage {
        ResetPage {
            layout: Layout::bare("Set your password"),
            errors: Errors::default(),
            token,
            email,
            done: false,
        }
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

async fn page(State(state): State<AppState>, Query(q): Query<TokenQuery>) -> WebResult<Response> {
    let page = match reset_user(&state, &q.token).await? {
        Some(u) => ResetPage::new(q.token, u.email),
        None => ResetPage::new(String::new(), String::new()),
    };
    Ok(page.into_response())
}

#[derive(Deserialize)]
struct SetForm {
    token: String,
    password: String,
}

async fn set(
    State(state): State<AppState>, headers: HeaderMap, Form(f): Form<SetForm>,
) -> WebResult<Response> {
    same_site(&headers)?;
    let Some(user) = reset_user(&state, &f.token).await? else {
        let page = ResetPage::new(String::new(), String::new());
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    match complete_reset(&state, &f.token, f.password).await {
        Ok(_) => Ok(ResetPage {
            done: true,
            ..ResetPage::new(String::new(), user.email)
        }
        .into_response()),
        Err(e) => {
            let mut page = ResetPage::new(f.token, user.email);
            page.errors = Errors::from_op(e)?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}
