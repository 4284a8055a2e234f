//! Cost code lists on the codes page: a new list, and making a list the ERP list (while
//! nothing was sent from the current one). Field errors come back as the form at 422.
use super::{Errors, Form, Viewer, WebResult, fragments, htmx_redirect};
use crate::ops::OpError;
use crate::ops::codes as ops;
use crate::ops::connection::make_erp_list as designate;
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/codes/lists", post(create_list))
        .route("/codes/{lid}/erp-list", post(make_erp_list))
}

/// Makes this list the ERP list; the page reloads, since its Send panel and notices change.
#[tracing::instrument(skip_all)]
async fn make_erp_list(v: Viewer, Path(lid): Path<i64>) -> WebResult<Response> {
    match designate(v.state(), &v.caller.user, v.company(), lid).await {
        Ok(_) => Ok(htmx_redirect(&format!("/codes?list={lid}&erp_list=1"))),
        // The API names the field (erp_list_id); on this page the sentence stands alone.
        Err(OpError::Invalid(fields)) => {
            let said: Vec<String> = fields.into_values().flatten().collect();
            Err(OpError::Conflict(format!("{}.", said.join(" "))).into())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct ListForm {
    name: String,
}

#[derive(Template)]
#[template(path = "_list_form.html")]
struct ListForm422 {
    name: String,
    errors: Errors,
}

#[tracing::instrument(skip_all)]
async fn create_list(v: Viewer, Form(f): Form<ListForm>) -> WebResult<Response> {
    match ops::create_list(v.state(), &v.caller.user, v.company(), &f.name).await {
        Ok(list) => Ok(htmx_redirect(&format!("/codes?list={}", list.id))),
        Err(e) => {
            let errors = Errors::from_op(e)?;
            fragments(
                StatusCode::UNPROCESSABLE_ENTITY,
                vec![
                    ListForm422 {
                        name: f.name,
                        errors,
                    }
                    .render(),
                ],
            )
        }
    }
}
