//! The QuickBooks Web Connector's panel on Company settings → ERP connection (drawn when the
//! connection is the Web Connector's): when QBWC last connected, with which QuickBooks and
//! company file, its last error, the `.qwc` download and a new password, shown once.
use super::format::{count, grouped};
use super::{Viewer, WebResult, fragments};
use crate::ops::OpError;
use crate::ops::qbwc::{self as ops, Status};
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/erp/qbwc", get(panel))
        .route("/settings/erp/qbwc/password", post(password))
        .route("/settings/erp/qbwc.qwc", get(download))
        .route("/erp/qbwc", get(queue_line))
}

#[derive(Template)]
#[template(path = "_qbwc_panel.html")]
struct Panel {
    s: Status,
    seen: Option<String>,
    accounts_as_of: Option<String>,
    /// When the last Sync from ERP ran and what it did.
    last_sync: Option<(String, String)>,
    can_edit: bool,
    /// The password just made: shown this once.
    made: Option<ops::NewPassword>,
}

/// Draws `fragment` from the Web Connector's state; draws nothing when the company uses
/// another connector (or none, or the viewer may not see it).
async fn with_status<T: Template>(
    state: &AppState, v: &Viewer, fragment: impl FnOnce(Status) -> T,
) -> WebResult<Response> {
    let s = match ops::status(state, &v.caller.user, v.company()).await {
        Ok(s) => s,
        Err(OpError::NotSupported(_) | OpError::NoConnection | OpError::Forbidden(_)) => {
            return Ok(StatusCode::OK.into_response());
        }
        Err(e) => return Err(e.into()),
    };
    fragments(StatusCode::OK, vec![fragment(s).render()])
}

async fn draw(state: &AppState, v: &Viewer, made: Option<ops::NewPassword>) -> WebResult<Response> {
    with_status(state, v, |s| Panel {
        seen: s.last_seen_at.map(|t| v.zone.show(t)),
        accounts_as_of: s.accounts_as_of.map(|t| v.zone.show(t)),
        last_sync: s
            .last_sync_at
            .map(|t| (v.zone.show(t), sync_text(s.last_sync.as_ref()))),
        s,
        can_edit: v.caller.user.permissions.can_manage_users(),
        made,
    })
    .await
}

#[tracing::instrument(skip_all)]
async fn panel(v: Viewer) -> WebResult<Response> {
    draw(v.state(), &v, None).await
}

#[derive(Template)]
#[template(
    source = "<p class=\"notice\" id=\"qbwc-line\">GL accounts: QuickBooks' chart {% if let Some(t) = accounts_as_of %}as of {{ t }}{% else %}has not been read yet{% endif %}. Exported codes go to QuickBooks at the QuickBooks Web Connector's next run ({% if let Some(t) = seen %}last seen {{ t }}{% else %}it has not connected yet{% endif %}).</p>",
    ext = "html"
)]
struct QueueLine {
    accounts_as_of: Option<String>,
    seen: Option<String>,
}

/// The ERP Integrations page's line for the Web Connector: where the GL accounts come from
/// and as of when (nothing for other connectors).
#[tracing::instrument(skip_all)]
async fn queue_line(v: Viewer) -> WebResult<Response> {
    with_status(v.state(), &v, |s| QueueLine {
        accounts_as_of: s.accounts_as_of.map(|t| v.zone.show(t)),
        seen: s.last_seen_at.map(|t| v.zone.show(t)),
    })
    .await
}

#[tracing::instrument(skip_all)]
async fn password(v: Viewer) -> WebResult<Response> {
    let made = ops::new_password(v.state(), &v.caller.user, v.company()).await?;
    draw(v.state(), &v, Some(made)).await
}

#[tracing::instrument(skip_all)]
async fn download(v: Viewer) -> WebResult<Response> {
    let (name, text) = ops::qwc_file(v.state(), &v.caller.user, v.company()).await?;
    Ok(crate::api::qbwc::qwc_download(&name, text))
}

/// A Sync from ERP's summary in words.
fn sync_text(summary: Option<&serde_json::Value>) -> String {
    let Some(v) = summary else {
        return String::new();
    };
    if let Some(e) = v["error"].as_str() {
        return e.to_owned();
    }
    let n = |k: &str| v[k].as_i64().unwrap_or(0);
    format!(
        "{} created, {} updated, {} unchanged, {} left as they are (listed in the audit log).",
        grouped(n("created")),
        grouped(n("updated")),
        grouped(n("unchanged")),
        count(
            v["conflicts"].as_array().map_or(0, Vec::len),
            "conflict",
            "conflicts"
        )
    )
}
