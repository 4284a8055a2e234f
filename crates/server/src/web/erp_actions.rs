//! What an approver does on the ERP Integrations page: pick GL accounts (saved on change),
//! and export, retry or reject the selected rows or all of them.
use super::erp::{QueueView, RejectForm, RowView, connection, filter_key, queue_view};
use super::pulled::Pulled;
use super::{Form, Viewer, WebResult, explain, fragments, htmx_redirect};
use crate::ops::OpError;
use crate::ops::queue::{self as ops, GlChoice, Pick, Reject, Start, filter_entry};
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/erp/items/{id}/gl", post(set_gl))
        .route("/erp/export", post(export))
        .route("/erp/retry", post(retry))
        .route("/erp/reject", post(reject))
        .route("/erp/sync", post(sync_from_erp))
}

/// Sync from ERP asked of an ERP that pulls its own work (the QuickBooks Web Connector).
#[derive(Template)]
#[template(
    source = "<p class=\"notice\" role=\"status\">{{ message }}</p>",
    ext = "html"
)]
struct SyncRequested {
    message: String,
}

/// Sync from ERP: what the pull created, updated and left alone, and what differs in each conflict.
#[tracing::instrument(skip_all)]
async fn sync_from_erp(v: Viewer) -> WebResult<Response> {
    match ops::sync_from_erp(v.state(), &v.caller.user, v.company()).await? {
        ops::Pull::Done(s) => fragments(StatusCode::OK, vec![Pulled::new(s).render()]),
        ops::Pull::Requested(message) => {
            fragments(StatusCode::OK, vec![SyncRequested { message }.render()])
        }
    }
}

#[derive(Template)]
#[template(path = "_erp_row.html")]
struct RowFragment {
    r: RowView,
    q: QueueView,
}

#[derive(Deserialize)]
struct GlForm {
    gl_income_account: Option<String>,
    gl_expense_account: Option<String>,
}

/// Saves the picked account as soon as it changes; "" clears it.
#[tracing::instrument(skip_all)]
async fn set_gl(v: Viewer, Path(id): Path<i64>, Form(f): Form<GlForm>) -> WebResult<Response> {
    let choice = GlChoice {
        gl_income_account: f
            .gl_income_account
            .map(|a| Some(a).filter(|a| !a.is_empty())),
        gl_expense_account: f
            .gl_expense_account
            .map(|a| Some(a).filter(|a| !a.is_empty())),
    };
    let (r, status) = match ops::set_gl(v.state(), &v.caller.user, v.company(), id, choice).await {
        Ok(item) => (RowView::new(item, &v.zone), StatusCode::OK),
        // The row again as stored, the refusal beside its pickers: a toast alone left the
        // picker showing the account that was not saved.
        Err(
            e @ (OpError::Invalid(_)
            | OpError::Conflict(_)
            | OpError::Erp(_)
            | OpError::ErpBusy { .. }),
        ) => {
            let item = ops::item(v.state(), &v.caller.user, v.company(), id).await?;
            let mut r = RowView::new(item, &v.zone);
            r.gl_error = Some(explain(&e));
            (r, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => return Err(e.into()),
    };
    let row = RowFragment {
        r,
        q: queue_view(v.state(), &v, connection(&v).await?).await,
    };
    let mut res = fragments(status, vec![row.render()])?;
    if status == StatusCode::OK {
        res.headers_mut().insert(
            "x-message",
            axum::http::HeaderValue::from_static("GL account saved."),
        );
    }
    Ok(res)
}

/// The rows an action takes: the ticked ones, or every row of the tab ("all").
struct Picked {
    ids: Option<Vec<i64>>,
    default_income: Option<String>,
    default_expense: Option<String>,
    reason: String,
    filter: String,
    /// What Ready to Export held when the page was drawn (`ops::queue::ready_mark`): "Export
    /// all" asked about those codes.
    seen: Option<String>,
}

fn picked(body: &[u8]) -> Result<Picked, OpError> {
    let mut p = Picked {
        ids: Some(Vec::new()),
        default_income: None,
        default_expense: None,
        reason: String::new(),
        filter: "ready_to_export".into(),
        seen: None,
    };
    let mut all = false;
    for (k, val) in super::form_pairs(body) {
        match k.as_str() {
            "item_ids" => {
                let id = val
                    .parse()
                    .map_err(|_| OpError::field("item_ids", "must be numbers"))?;
                p.ids.get_or_insert_with(Vec::new).push(id);
            }
            "scope" | "all" => all |= val == "all" || val == "1",
            "default_income" if !val.is_empty() => p.default_income = Some(val),
            "default_expense" if !val.is_empty() => p.default_expense = Some(val),
            "reason" => p.reason = val,
            "filter" => p.filter = filter_key(Some(&val))?.to_owned(),
            "seen" => p.seen = Some(val),
            _ => {}
        }
    }
    if all {
        p.ids = None;
    }
    Ok(p)
}

/// An action on a whole tab that found nothing left in it, in the words of the tab the person
/// was looking at (the API's "no item is in a state for this action" named neither).
fn none_left(e: OpError, filter: &str) -> OpError {
    match e {
        OpError::Items(items) if items.is_empty() => {
            let tab = filter_entry(filter).map_or("this tab", |(_, _, label)| label);
            OpError::Conflict(format!(
                "Costbridge found no codes in {tab} any more: another approver may have acted. \
                 Reload the page."
            ))
        }
        e => e,
    }
}

async fn start_job(state: &AppState, v: &Viewer, body: &[u8], what: Start) -> WebResult<Response> {
    let p = picked(body)?;
    // "Export all" asked about the rows the page showed; codes sent or taken since would go
    // (or stay) unseen, and an export cannot be taken back.
    let seen = match (&p.ids, &p.seen, &what) {
        (None, Some(seen), Start::Export) => Some(ops::seen_of(seen)?),
        _ => None,
    };
    let pick = Pick {
        item_ids: p.ids,
        gl_income_account: p.default_income,
        gl_expense_account: p.default_expense,
    };
    let (job, _) = ops::start(state, &v.caller.user, v.company(), &pick, what, seen)
        .await
        .map_err(|e| none_left(e, &p.filter))?;
    Ok(htmx_redirect(&format!(
        "/erp?filter={}&job={job}",
        p.filter
    )))
}

#[tracing::instrument(skip_all)]
async fn export(v: Viewer, body: Bytes) -> WebResult<Response> {
    start_job(v.state(), &v, &body, Start::Export).await
}

#[tracing::instrument(skip_all)]
async fn retry(v: Viewer, body: Bytes) -> WebResult<Response> {
    start_job(v.state(), &v, &body, Start::Retry).await
}

#[tracing::instrument(skip_all)]
async fn reject(v: Viewer, body: Bytes) -> WebResult<Response> {
    let p = picked(&body)?;
    let scope = if p.ids.is_none() { "all" } else { "selected" };
    let again = |error: Option<String>, problem: Option<String>| RejectForm {
        filter: p.filter.clone(),
        scope: scope.into(),
        reason: p.reason.clone(),
        error,
        problem,
    };
    let body = Reject {
        item_ids: p.ids.clone(),
        reason: p.reason.clone(),
    };
    let rejected = ops::reject(v.state(), &v.caller.user, v.company(), &body)
        .await
        .map_err(|e| none_left(e, &p.filter));
    match rejected {
        Ok(n) => Ok(htmx_redirect(&format!(
            "/erp?filter={}&rejected={n}",
            p.filter
        ))),
        // A refusal is the dialog's to show (a bad reason beside its field, rows another
        // approver took meanwhile above it): the dialog is modal, and a message drawn behind
        // it could be neither read nor dismissed.
        Err(e) if matches!(&e, OpError::Invalid(f) if f.contains_key("reason")) => fragments(
            StatusCode::UNPROCESSABLE_ENTITY,
            vec![again(Some(explain(&e)), None).render()],
        ),
        Err(e @ (OpError::Invalid(_) | OpError::Items(_) | OpError::Conflict(_))) => fragments(
            StatusCode::UNPROCESSABLE_ENTITY,
            vec![again(None, Some(explain(&e))).render()],
        ),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_tab_is_named() {
        let said = explain(&none_left(OpError::Items(Vec::new()), "failed"));
        assert_eq!(
            said,
            "Costbridge found no codes in Failed to Export any more: another approver may have \
             acted. Reload the page."
        );
        // Codes that cannot take the action are the action's refusal, not an emptied tab.
        let problem = costbridge_storage::queue::ItemProblem {
            id: 1,
            full_code: Some("01".into()),
            errors: vec!["is synced".into()],
        };
        let said = explain(&none_left(OpError::Items(vec![problem]), "failed"));
        assert!(
            said.starts_with("Costbridge refused 1 code for this action"),
            "{said}"
        );
    }
}
