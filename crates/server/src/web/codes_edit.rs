//! Changing codes in place: add a child or a top-tier code, edit (and move), (de)activate,
//! delete, retrieve from the queue; lists themselves are in `lists`. Field errors come back as
//! the same form at 422 (which htmx swaps); any other refusal becomes a message.
use super::codes::{CodeRights, NodeView, load_nodes};
use super::send::fresh_panel;
use super::{Errors, Form, Viewer, WebResult, fragments, htmx_redirect, percent_encode};
use crate::ops::codes::{self as ops, CreateCode, UpdateCode};
use crate::ops::{OpResult, Window, send};
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use costbridge_storage::codes::CostCode;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/codes/{lid}/new", get(new_form).post(create))
        .route("/codes/{lid}/{id}/edit", get(edit_form).post(update))
        .route("/codes/{lid}/{id}/active", post(set_active))
        .route("/codes/{lid}/{id}/delete", post(delete))
        .route("/codes/{lid}/{id}/retrieve", post(retrieve))
}

#[derive(Template)]
#[template(path = "_code_form.html")]
struct CodeForm {
    lid: i64,
    /// `Some(id)` when editing that code.
    id: Option<i64>,
    parent_id: Option<i64>,
    /// Shown in the label, so it is clear where the new code goes.
    parent_full: Option<String>,
    code: String,
    description: String,
    /// When editing: the parent's full code, which may be changed to move the code.
    parent_edit: Option<String>,
    errors: Errors,
}

impl CodeForm {
    fn action(&self) -> String {
        match self.id {
            Some(id) => format!("/codes/{}/{id}/edit", self.lid),
            None => format!("/codes/{}/new", self.lid),
        }
    }

    fn key(&self) -> String {
        match (self.id, self.parent_id) {
            (Some(id), _) => format!("e{id}"),
            (None, Some(p)) => format!("c{p}"),
            (None, None) => "top".to_owned(),
        }
    }
}

#[derive(Template)]
#[template(path = "_node.html")]
struct NodeFragment {
    lid: i64,
    n: NodeView,
    rights: CodeRights,
}

/// The list's code count in the heading and its empty state, swapped out of band after a
/// code is added or deleted, so the page agrees with the tree without a reload.
#[derive(Template)]
#[template(path = "_tree_count.html")]
struct TreeCount {
    n: i64,
    empty: bool,
    rights: CodeRights,
    oob: bool,
}

async fn tree_count(state: &AppState, v: &Viewer, lid: i64) -> WebResult<askama::Result<String>> {
    let list = ops::list(state, &v.caller.user, v.company(), lid).await?;
    Ok(TreeCount {
        n: list.codes_count,
        empty: list.codes_count == 0,
        rights: CodeRights::of(v),
        oob: true,
    }
    .render())
}

#[derive(Deserialize)]
struct NewQuery {
    parent: Option<i64>,
}

#[tracing::instrument(skip_all)]
async fn new_form(
    v: Viewer, Path(lid): Path<i64>, Query(q): Query<NewQuery>,
) -> WebResult<Response> {
    let form = CodeForm {
        lid,
        id: None,
        parent_id: q.parent,
        parent_full: parent_full(&v, lid, q.parent).await?,
        code: String::new(),
        description: String::new(),
        parent_edit: None,
        errors: Errors::default(),
    };
    fragments(StatusCode::OK, vec![form.render()])
}

/// The full code of the parent a new code goes under, for the form's label ("New code under
/// 01").
async fn parent_full(v: &Viewer, lid: i64, parent: Option<i64>) -> WebResult<Option<String>> {
    Ok(match parent {
        Some(p) => Some(
            ops::code(v.state(), &v.caller.user, v.company(), lid, p)
                .await?
                .full_code,
        ),
        None => None,
    })
}

#[derive(Deserialize)]
struct CodeFields {
    code: String,
    description: String,
    parent_id: Option<i64>,
    /// The edit form's parent, by full code (empty: the top tier).
    parent: Option<String>,
}

impl CodeFields {
    /// Without the spaces around what was typed: a phone keyboard adds one after a word, which
    /// the person cannot see in the field. The API keeps refusing them: there a stray space is
    /// the calling program's bug to hear about.
    fn trimmed(mut self) -> Self {
        self.code = self.code.trim().to_owned();
        self.description = self.description.trim().to_owned();
        self
    }
}

#[tracing::instrument(skip_all)]
async fn create(v: Viewer, Path(lid): Path<i64>, Form(f): Form<CodeFields>) -> WebResult<Response> {
    let f = f.trimmed();
    let body = CreateCode {
        code: f.code.clone(),
        description: f.description.clone(),
        parent_id: f.parent_id,
    };
    let result = ops::create_code(v.state(), &v.caller.user, v.company(), lid, body).await;
    let created = match or_form(result)? {
        Ok(c) => c,
        // Drawn again as it was sent, under the parent it names (a parent gone meanwhile is
        // the form's error, and its label is then plain).
        Err(errors) => {
            return invalid(CodeForm {
                lid,
                id: None,
                parent_id: f.parent_id,
                parent_full: parent_full(&v, lid, f.parent_id).await.ok().flatten(),
                code: f.code.clone(),
                description: f.description.clone(),
                parent_edit: None,
                errors,
            });
        }
    };
    let panel = fresh_panel(v.state(), &v, lid).await?;
    let count = tree_count(v.state(), &v, lid).await?;
    let mut res = match f.parent_id {
        // The parent opens, showing its children with the new one among them.
        Some(pid) => {
            let parent = ops::code(v.state(), &v.caller.user, v.company(), lid, pid).await?;
            let kids = load_nodes(v.state(), &v, lid, Some(pid), 1, "", "").await?;
            let mut n = NodeView::new(parent, Some(kids.total));
            n.kids_html = Some(kids.render()?);
            let node = NodeFragment {
                lid,
                n,
                rights: CodeRights::of(&v),
            };
            retarget(
                &format!("#node-{pid}"),
                "outerHTML",
                vec![node.render(), panel.render(), count],
            )
        }
        None => {
            let top = load_nodes(v.state(), &v, lid, None, 1, "", "").await?;
            let cleared = "<div id=\"new-top\" class=\"detail\" hx-swap-oob=\"true\"></div>";
            retarget(
                "#tree",
                "innerHTML",
                vec![top.render(), Ok(cleared.into()), panel.render(), count],
            )
        }
    }?;
    let said = percent_encode(&format!("Added {}.", created.full_code));
    if let Ok(v) = HeaderValue::from_str(&said) {
        res.headers_mut().insert("x-message", v);
    }
    Ok(res)
}

/// Invalid input becomes the form's errors; anything else stays an error.
fn or_form(r: OpResult<CostCode>) -> WebResult<Result<CostCode, Errors>> {
    match r {
        Ok(c) => Ok(Ok(c)),
        Err(e) => Ok(Err(Errors::from_op(e)?)),
    }
}

fn invalid(form: CodeForm) -> WebResult<Response> {
    fragments(StatusCode::UNPROCESSABLE_ENTITY, vec![form.render()])
}

/// A success swaps somewhere else than the form that was sent.
fn retarget(
    target: &str, swap: &'static str, parts: Vec<askama::Result<String>>,
) -> WebResult<Response> {
    let mut res = fragments(StatusCode::OK, parts)?;
    if let Ok(t) = HeaderValue::from_str(target) {
        res.headers_mut().insert("hx-retarget", t);
        res.headers_mut()
            .insert("hx-reswap", HeaderValue::from_static(swap));
    }
    Ok(res)
}

#[tracing::instrument(skip_all)]
async fn edit_form(v: Viewer, Path((lid, id)): Path<(i64, i64)>) -> WebResult<Response> {
    let c = ops::code(v.state(), &v.caller.user, v.company(), lid, id).await?;
    let parent = match c.parent_id {
        Some(p) => {
            ops::code(v.state(), &v.caller.user, v.company(), lid, p)
                .await?
                .full_code
        }
        None => String::new(),
    };
    let form = CodeForm {
        lid,
        id: Some(id),
        parent_id: c.parent_id,
        parent_full: None,
        code: c.code,
        description: c.description,
        parent_edit: Some(parent),
        errors: Errors::default(),
    };
    fragments(StatusCode::OK, vec![form.render()])
}

#[tracing::instrument(skip_all)]
async fn update(
    v: Viewer, Path((lid, id)): Path<(i64, i64)>, Form(f): Form<CodeFields>,
) -> WebResult<Response> {
    let f = f.trimmed();
    let user = &v.caller.user;
    let again = |errors| {
        invalid(CodeForm {
            lid,
            id: Some(id),
            parent_id: f.parent_id,
            parent_full: None,
            code: f.code.clone(),
            description: f.description.clone(),
            parent_edit: f.parent.clone(),
            errors,
        })
    };
    // A parent typed by full code moves the code; an unchanged one is no move at all (a move
    // is refused while descendants wait on the approver).
    let before = ops::code(v.state(), user, v.company(), lid, id).await?;
    let parent = match &f.parent {
        Some(text) => match ops::parent_by_full_code(v.state(), user, v.company(), lid, text).await
        {
            Ok(p) => p,
            Err(e) => return again(Errors::from_op(e)?),
        },
        None => before.parent_id,
    };
    let moved = parent != before.parent_id;
    let body = UpdateCode {
        code: Some(f.code.clone()),
        description: Some(f.description.clone()),
        parent_id: moved.then_some(parent),
        ..UpdateCode::default()
    };
    let result = ops::update_code(v.state(), user, v.company(), lid, id, body).await;
    match or_form(result)? {
        // The code now sits elsewhere in the tree: the page is drawn again, searched to it.
        Ok(c) if moved => Ok(htmx_redirect(&format!(
            "/codes?list={lid}&q={}&moved=1",
            form_urlencoded::byte_serialize(c.full_code.as_bytes()).collect::<String>()
        ))),
        Ok(c) => node_and_panel(v.state(), &v, lid, c).await,
        Err(errors) => again(errors),
    }
}

/// The changed code's row (collapsed: a rename changes its children's full codes too) and
/// the Send to ERP panel, which every change to the list affects.
async fn node_and_panel(
    state: &AppState, v: &Viewer, lid: i64, c: CostCode,
) -> WebResult<Response> {
    let kids = ops::children(
        state,
        &v.caller.user,
        v.company(),
        lid,
        Some(c.id),
        Window {
            limit: 1,
            offset: 0,
        },
    )
    .await?
    .1;
    let node = NodeFragment {
        lid,
        n: NodeView::new(c.clone(), Some(kids)),
        rights: CodeRights::of(v),
    };
    let panel = fresh_panel(state, v, lid).await?;
    retarget(
        &format!("#node-{}", c.id),
        "outerHTML",
        vec![node.render(), panel.render()],
    )
}

#[derive(Deserialize)]
struct ActiveForm {
    active: bool,
}

#[tracing::instrument(skip_all)]
async fn set_active(
    v: Viewer, Path((lid, id)): Path<(i64, i64)>, Form(f): Form<ActiveForm>,
) -> WebResult<Response> {
    let body = UpdateCode {
        active: Some(f.active),
        ..UpdateCode::default()
    };
    let c = ops::update_code(v.state(), &v.caller.user, v.company(), lid, id, body).await?;
    node_and_panel(v.state(), &v, lid, c).await
}

#[tracing::instrument(skip_all)]
async fn delete(v: Viewer, Path((lid, id)): Path<(i64, i64)>) -> WebResult<Response> {
    ops::delete_code(v.state(), &v.caller.user, v.company(), lid, id).await?;
    let panel = fresh_panel(v.state(), &v, lid).await?;
    let count = tree_count(v.state(), &v, lid).await?;
    // A body of out-of-band parts only: the row it is swapped over goes away.
    fragments(StatusCode::OK, vec![panel.render(), count])
}

#[tracing::instrument(skip_all)]
async fn retrieve(v: Viewer, Path((lid, id)): Path<(i64, i64)>) -> WebResult<Response> {
    let c = send::retrieve(v.state(), &v.caller.user, v.company(), lid, id).await?;
    node_and_panel(v.state(), &v, lid, c).await
}
