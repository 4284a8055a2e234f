//! Company settings → API clients: create one (its secret shown once), give it a new secret,
//! revoke it. The rules are `ops::clients`, as for the API; the secret is never put in a URL
//! or a redirect, only in the answer to the request that made it.
use super::users::{UserFields, UserRights};
use super::{Errors, Form, Layout, Viewer, WebResult, fragments};
use crate::ops::clients::{self as ops, CreateClient, WithSecret};
use crate::state::AppState;
use crate::zone::Zone;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use costbridge_storage::clients::ApiClient;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/clients", get(page).post(create))
        .route("/settings/clients/{id}/rotate", post(rotate))
        .route("/settings/clients/{id}/revoke", post(revoke))
}

#[derive(Template)]
#[template(path = "_client_row.html")]
struct Row {
    created: String,
    rotated: Option<String>,
    revoked: Option<String>,
    c: ApiClient,
}

impl Row {
    /// The client's times in the company's zone, as every page shows them.
    fn new(c: ApiClient, zone: &Zone) -> Row {
        Row {
            created: zone.show(c.created_at),
            rotated: c.rotated_at.map(|t| zone.show(t)),
            revoked: c.revoked_at.map(|t| zone.show(t)),
            c,
        }
    }
}

#[derive(Template)]
#[template(path = "_client_new.html")]
struct NewForm {
    rights: UserRights,
    errors: Errors,
    f: UserFields,
}

#[derive(Template)]
#[template(path = "_client_secret.html")]
struct Secret {
    c: ApiClient,
    secret: String,
    rotated: bool,
    base_url: String,
}

impl Secret {
    fn of(state: &AppState, made: WithSecret, rotated: bool) -> Secret {
        Secret {
            c: made.client,
            secret: made.client_secret,
            rotated,
            base_url: state.base_url.trim_end_matches('/').to_owned(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "clients.html")]
struct Page {
    layout: Layout,
    sub: &'static str,
    clients: Vec<Row>,
    new_form: NewForm,
}

fn new_form(v: &Viewer, errors: Errors, f: UserFields) -> NewForm {
    NewForm {
        rights: UserRights::of(v),
        errors,
        f,
    }
}

#[tracing::instrument(skip_all)]
async fn page(v: Viewer) -> WebResult<Response> {
    let clients = ops::list(v.state(), &v.caller.user, v.company()).await?;
    Ok(Page {
        layout: Layout::new(v.state(), &v, "settings", "API clients").await?,
        sub: "clients",
        clients: clients.into_iter().map(|c| Row::new(c, &v.zone)).collect(),
        new_form: new_form(&v, Errors::default(), UserFields::default()),
    }
    .into_response())
}

#[tracing::instrument(skip_all)]
async fn create(v: Viewer, Form(f): Form<UserFields>) -> WebResult<Response> {
    let body = CreateClient {
        name: f.name.clone(),
        permissions: f.permissions(),
    };
    match ops::create(v.state(), &v.caller.user, v.company(), body).await {
        Ok(made) => fragments(
            StatusCode::OK,
            vec![Secret::of(v.state(), made, false).render()],
        ),
        Err(e) => fragments(
            StatusCode::UNPROCESSABLE_ENTITY,
            vec![new_form(&v, Errors::from(e), f).render()],
        ),
    }
}

#[tracing::instrument(skip_all)]
async fn rotate(v: Viewer, Path(id): Path<i64>) -> WebResult<Response> {
    let made = ops::rotate(v.state(), &v.caller.user, v.company(), id).await?;
    fragments(
        StatusCode::OK,
        vec![Secret::of(v.state(), made, true).render()],
    )
}

#[tracing::instrument(skip_all)]
async fn revoke(v: Viewer, Path(id): Path<i64>) -> WebResult<Response> {
    let c = ops::revoke(v.state(), &v.caller.user, v.company(), id).await?;
    fragments(StatusCode::OK, vec![Row::new(c, &v.zone).render()])
}
