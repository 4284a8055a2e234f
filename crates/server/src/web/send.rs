//! The Send to ERP panel: the button with its count, its reason when disabled (as text beside
//! it, on hover and for screen readers), the "refresh" of a stale page, and the send itself.
use super::{Form, Viewer, WebResult, explain, fragments, htmx_redirect};
use crate::ops::{OpError, codes, send as ops};
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use costbridge_storage::erp::SendStatus;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new().route("/codes/{lid}/send", get(send_panel).post(send))
}

#[derive(Template)]
#[template(path = "_send.html")]
pub struct SendPanel {
    pub lid: i64,
    pub s: SendStatus,
    /// The list version this page shows (a newer one means the page is stale).
    pub version: i64,
    pub oob: bool,
    pub error: Option<String>,
}

impl SendPanel {
    pub fn stale(&self) -> bool {
        self.s.reason_code == Some("stale_page")
    }
}

/// The Send to ERP panel as it stands, for swapping in beside a change to the list.
pub async fn fresh_panel(state: &AppState, v: &Viewer, lid: i64) -> WebResult<SendPanel> {
    let s = ops::status(state, &v.caller.user, v.company(), lid, None).await?;
    Ok(SendPanel {
        lid,
        version: s.list_version,
        s,
        oob: true,
        error: None,
    })
}

#[derive(Deserialize)]
struct VersionQuery {
    version: Option<i64>,
}

#[tracing::instrument(skip_all)]
async fn send_panel(
    v: Viewer, Path(lid): Path<i64>, Query(vq): Query<VersionQuery>,
) -> WebResult<Response> {
    // The panel polls to notice a stale page. While what a send would take is unchanged since
    // the version the page shows there is nothing new to say, so the poll does not re-check
    // every unsynced code against the ERP's rules (100,000 of them on a large list); 204
    // leaves the panel as it is.
    if let Some(seen) = vq.version
        && codes::list(v.state(), &v.caller.user, v.company(), lid)
            .await?
            .send_unchanged_since(seen)
    {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let s = ops::status(v.state(), &v.caller.user, v.company(), lid, vq.version).await?;
    let panel = SendPanel {
        lid,
        version: vq.version.unwrap_or(s.list_version),
        s,
        oob: false,
        error: None,
    };
    fragments(StatusCode::OK, vec![panel.render()])
}

#[derive(Deserialize)]
struct SendForm {
    list_version: i64,
}

/// Sends, then reloads the page (every sent code changed state); a refusal redraws the panel
/// with the API's reason.
#[tracing::instrument(skip_all)]
async fn send(v: Viewer, Path(lid): Path<i64>, Form(f): Form<SendForm>) -> WebResult<Response> {
    match ops::send(v.state(), &v.caller.user, v.company(), lid, f.list_version).await {
        Ok((_, n)) => Ok(htmx_redirect(&format!("/codes?list={lid}&sent={n}"))),
        Err(e @ OpError::Store(_)) => Err(e.into()),
        Err(e) => {
            let s = ops::status(
                v.state(),
                &v.caller.user,
                v.company(),
                lid,
                Some(f.list_version),
            )
            .await?;
            let panel = SendPanel {
                lid,
                version: f.list_version,
                s,
                oob: false,
                error: Some(explain(&e)),
            };
            fragments(StatusCode::OK, vec![panel.render()])
        }
    }
}
