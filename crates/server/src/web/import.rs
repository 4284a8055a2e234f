//! CSV import from the browser: the file is previewed first (what it would create and change,
//! or every bad row), then applied as one all-or-nothing import, like the API's.
use super::{Form, Viewer, WebResult, explain, fragments, htmx_redirect};
use crate::error::ApiError;
use crate::ops::{OpError, codes, imports};
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::extract::multipart::MultipartError;
use axum::extract::{DefaultBodyLimit, Multipart, Path};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use costbridge_storage::import::ImportPreview;
use serde::Deserialize;

/// Rows of each kind listed in the preview; the counts always cover the whole file.
const SHOWN: usize = 200;

/// Room for a form's other fields and a multipart body's boundaries and headers.
const FORM_SLACK: usize = 64 * 1024;

/// The largest CSV file the server takes (`[server] max_import_bytes`).
#[derive(Clone, Copy)]
struct ImportLimit(usize);

pub fn router(max_import_bytes: usize) -> Router<AppState> {
    // The file travels twice: as itself to the preview, then as a form field to apply, where
    // URL-encoding makes each byte up to three (a file of Cyrillic names grew 2.6 times, over
    // the limit that had taken it at the preview). The import itself holds the file to the
    // limit (`imports::import`).
    let encoded = max_import_bytes
        .saturating_mul(3)
        .saturating_add(FORM_SLACK);
    Router::new()
        .route(
            "/codes/{lid}/import/preview",
            post(preview).layer(DefaultBodyLimit::max(
                max_import_bytes.saturating_add(FORM_SLACK),
            )),
        )
        .route(
            "/codes/{lid}/import",
            post(apply).layer(DefaultBodyLimit::max(encoded)),
        )
        .layer(axum::Extension(ImportLimit(max_import_bytes)))
}

/// A file over the limit, said in the preview: who refused, the limit, and what to do.
fn too_big(limit: ImportLimit) -> String {
    // Rounded down: never more than is taken.
    let size = match limit.0 {
        b if b >= 1 << 20 => format!("{} MB", b >> 20),
        b if b >= 1 << 10 => format!("{} KB", b >> 10),
        b => format!("{b} bytes"),
    };
    format!(
        "Costbridge takes CSV files of up to {size}, and this one is larger. Split it into \
         smaller files and import them one after another, or ask your operator to raise \
         [server] max_import_bytes."
    )
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
async fn preview(
    v: Viewer, Path(lid): Path<i64>, axum::Extension(limit): axum::Extension<ImportLimit>,
    mut multipart: Multipart,
) -> WebResult<Response> {
    // Access is refused before the file is read.
    codes::write(&v.caller.user, v.company())?;
    // Over the limit, the preview says so (the body's limit leaves room for the form around
    // the file; the file's own is exact).
    let (bytes, too_large) = match file_field(&mut multipart).await {
        Ok(bytes) if bytes.len() <= limit.0 => (bytes, None),
        Ok(_) => (Vec::new(), Some(too_big(limit))),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => (Vec::new(), Some(too_big(limit))),
        Err(e) => return Err(ApiError::bad_request(e.body_text()).into()),
    };
    let csv = String::from_utf8_lossy(&bytes).into_owned();
    let (preview, problems) = match too_large {
        Some(said) => (None, vec![said]),
        None => match imports::preview(v.state(), &v.caller.user, v.company(), lid, &bytes).await {
            Ok(p) => (Some(p), Vec::new()),
            Err(e) => (None, problems(e)?),
        },
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

/// The form's `file` field (empty when there is none).
async fn file_field(multipart: &mut Multipart) -> Result<Vec<u8>, MultipartError> {
    let mut bytes = Vec::new();
    while let Some(field) = multipart.next_field().await? {
        if field.name() == Some("file") {
            bytes = field.bytes().await?.to_vec();
        }
    }
    Ok(bytes)
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
async fn apply(
    v: Viewer, Path(lid): Path<i64>, axum::Extension(limit): axum::Extension<ImportLimit>,
    Form(f): Form<ApplyForm>,
) -> WebResult<Response> {
    // The form's limit is three times the file's (URL-encoding); the file's own is this one.
    if f.csv.len() > limit.0 {
        // The sentence says whose limit it is; as a field error it read "File Costbridge takes…".
        return Err(OpError::NotSupported(too_big(limit)).into());
    }
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
