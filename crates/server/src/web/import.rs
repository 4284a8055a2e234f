//! CSV import from the browser: the file is previewed first (what it would create and change,
//! or every bad row), then applied as one all-or-nothing import, like the API's.
use super::{Form, Viewer, WebResult, explain, fragments, htmx_redirect};
use crate::error::ApiError;
use crate::ops::{OpError, codes, imports};
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use costbridge_storage::import::ImportPreview;
use serde::Deserialize;

/// Rows of each kind listed in the preview; the counts always cover the whole file.
const SHOWN: usize = 200;

pub fn router(max_import_bytes: usize) -> Router<AppState> {
    // The file travels twice (preview, then apply as a form field), so both take its size.
    Router::new()
        .route("/codes/{lid}/import/preview", post(preview))
        .route("/codes/{lid}/import", post(apply))
        .layer(DefaultBodyLimit::max(max_import_bytes.saturating_mul(2)))
}

#[derive(Template)]
#[template(path = "_import.html")]
struct Preview {
    lid: i64,
    csv: String,
    preview: Option<ImportPreview>,
    /// Every bad row (or the problem with the file as a whole) when it cannot apply.
    problems: Vec<String>,
    shown: usize,
}

#[tracing::instrument(skip_all)]
async fn preview(v: Viewer, Path(lid): Path<i64>, mut multipart: Multipart) -> WebResult<Response> {
    // Access is refused before the file is read.
    codes::write(&v.caller.user, v.company())?;
    let mut bytes = Vec::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(e.body_text()))?
    {
        if field.name() == Some("file") {
            bytes = field
                .bytes()
                .await
                .map_err(|e| ApiError::bad_request(e.body_text()))?
                .to_vec();
        }
    }
    let csv = String::from_utf8_lossy(&bytes).into_owned();
    let (preview, problems) =
        match imports::preview(v.state(), &v.caller.user, v.company(), lid, &bytes).await {
            Ok(p) => (Some(p), Vec::new()),
            Err(e) => (None, problems(e)?),
        };
    let page = Preview {
        lid,
        csv,
        preview,
        problems,
        shown: SHOWN,
    };
    fragments(StatusCode::OK, vec![page.render()])
}

/// Every row's errors of a refused file, one line per row, or what is wrong with the file as
/// a whole; other failures stay errors.
fn problems(e: OpError) -> Result<Vec<String>, OpError> {
    match e {
        OpError::Rows(rows) => Ok(rows
            .iter()
            .map(|r| format!("Row {} ({}): {}", r.row, r.full_code, r.errors.join("; ")))
            .collect()),
        e @ OpError::Invalid(_) => Ok(vec![explain(&e)]),
        e => Err(e),
    }
}

#[derive(Deserialize)]
struct ApplyForm {
    csv: String,
}

#[tracing::instrument(skip_all)]
async fn apply(v: Viewer, Path(lid): Path<i64>, Form(f): Form<ApplyForm>) -> WebResult<Response> {
    let s = imports::import(
        v.state(),
        &v.caller.user,
        v.company(),
        lid,
        f.csv.as_bytes(),
        |_| {},
    )
    .await?;
    // Counts only: the page words them, so a crafted link cannot show its own text as
    // Costbridge's notice.
    Ok(htmx_redirect(&format!(
        "/codes?list={lid}&imported={},{},{}",
        s.created, s.updated, s.unchanged
    )))
}
