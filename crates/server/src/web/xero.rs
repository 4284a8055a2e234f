//! Company settings → ERP connection, for a Xero connection: Connect to Xero (the OAuth
//! sign-in), the callback Xero sends the browser back to, the organisation pick, Disconnect.
use super::{Form, Viewer, WebResult, fragments};
use crate::extract::Auth;
use crate::state::AppState;
use crate::xero as ops;
use askama::Template;
use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth/xero/connect", get(connect))
        .route(ops::CALLBACK_PATH, get(callback))
        .route("/settings/erp/xero/organisation", post(pick))
        .route("/settings/erp/xero/disconnect", post(disconnect))
}

/// The Xero part of the ERP connection page.
#[derive(Template)]
#[template(path = "_xero.html")]
pub struct XeroPart {
    pub status: Option<StatusView>,
    pub can_edit: bool,
    /// Why the last sign-in changed nothing.
    pub problem: Option<String>,
}

pub struct StatusView {
    pub organisation: Option<String>,
    /// `(id, name)` of each organisation to pick from.
    pub tenants: Vec<(String, String)>,
    pub connected_at: String,
    pub connected_by: String,
    pub problem: Option<String>,
}

impl XeroPart {
    pub async fn new(state: &AppState, v: &Viewer, problem: Option<String>) -> WebResult<XeroPart> {
        let status = ops::status(state, &v.caller.user, v.company()).await?;
        Ok(XeroPart {
            status: status.map(|s| StatusView {
                organisation: s.organisation,
                tenants: s
                    .tenants
                    .into_iter()
                    .map(|t| {
                        let name = t.tenant_name.unwrap_or_else(|| t.tenant_id.clone());
                        (t.tenant_id, name)
                    })
                    .collect(),
                connected_at: v.zone.show(s.connected_at),
                connected_by: s.connected_by,
                problem: s.problem,
            }),
            can_edit: v.caller.user.permissions.can_manage_users(),
            problem,
        })
    }
}

fn session_hash(v: &Viewer) -> &str {
    match &v.caller.auth {
        Auth::Session { id_hash, .. } => id_hash,
        Auth::Token(_) => "",
    }
}

/// A link, not a form: the browser leaves for Xero, which a form's CSP `form-action 'self'`
/// would block. Starting a sign-in changes nothing until it comes back to this session.
#[tracing::instrument(skip_all)]
async fn connect(v: Viewer) -> WebResult<Response> {
    let url = ops::start(v.state(), &v.caller.user, v.company(), session_hash(&v)).await?;
    Ok(Redirect::to(&url).into_response())
}

#[tracing::instrument(skip_all)]
async fn callback(v: Viewer, Query(back): Query<ops::Callback>) -> WebResult<Response> {
    match ops::callback(v.state(), &v.caller.user, session_hash(&v), &back).await? {
        Ok(false) => Ok(Redirect::to("/settings/erp?xero=connected").into_response()),
        Ok(true) => Ok(Redirect::to("/settings/erp?xero=pick").into_response()),
        Err(problem) => super::erp_settings::page_with(v.state(), &v, None, Some(problem)).await,
    }
}

#[derive(Deserialize)]
struct Pick {
    tenant_id: String,
}

#[tracing::instrument(skip_all)]
async fn pick(v: Viewer, Form(p): Form<Pick>) -> WebResult<Response> {
    ops::pick(v.state(), &v.caller.user, v.company(), &p.tenant_id).await?;
    fragments(
        StatusCode::OK,
        vec![XeroPart::new(v.state(), &v, None).await?.render()],
    )
}

#[tracing::instrument(skip_all)]
async fn disconnect(v: Viewer) -> WebResult<Response> {
    ops::disconnect(v.state(), &v.caller.user, v.company()).await?;
    Ok(super::htmx_redirect("/settings/erp?xero=disconnected"))
}
