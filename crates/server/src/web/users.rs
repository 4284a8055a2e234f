//! Company settings → Users: who can do what. Adding and changing users goes through the
//! operations the API uses too (`ops::users`), so the granting rule (only an Admin-tool admin
//! who holds Push to accounting may grant it) is the domain's; the page only greys out what it
//! would refuse.
use super::error::permission_words;
use super::{Errors, Form, Layout, Viewer, WebResult, fragments, htmx_redirect};
use crate::ops::users::{self as ops, CreateUser, UpdateUser};
use crate::ops::{OpError, require};
use crate::state::AppState;
use crate::throttle::ClientAddr;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use costbridge_domain::{Level, Permissions};
use costbridge_storage::users::User;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/users", get(page).post(create))
        .route("/settings/users/{uid}", get(row).post(update))
        .route("/settings/users/{uid}/edit", get(edit))
}

pub const LEVELS: [(&str, &str); 4] = [
    ("none", "None"),
    ("read_only", "Read-only"),
    ("standard", "Standard"),
    ("admin", "Admin"),
];

/// Whether the viewer may change users at all, and the push privilege in particular.
#[derive(Clone, Copy)]
pub struct UserRights {
    pub manage: bool,
    pub grant_push: bool,
}

impl UserRights {
    pub fn of(v: &Viewer) -> UserRights {
        let p = v.caller.user.permissions;
        UserRights {
            manage: p.can_manage_users(),
            grant_push: p.may_grant_push(),
        }
    }
}

pub const GRANT_RULE: &str =
    "Only an Admin-tool admin who holds Push to accounting may grant or remove it.";

#[derive(Template)]
#[template(path = "_user_row.html")]
struct Row {
    u: User,
    rights: UserRights,
}

/// A level in the words the edit forms use ("Read-only", not `read_only`), for the users' and
/// the API clients' rows.
pub fn level_words(l: &Level) -> &'static str {
    LEVELS
        .iter()
        .find(|(k, _)| *k == l.as_str())
        .map_or("", |(_, label)| label)
}

#[derive(Template)]
#[template(path = "_user_edit.html")]
struct EditRow {
    u: User,
    rights: UserRights,
    errors: Errors,
}

impl EditRow {
    fn push_id(&self) -> String {
        format!("push-{}", self.u.id)
    }
}

#[derive(Template)]
#[template(path = "_user_new.html")]
struct NewForm {
    rights: UserRights,
    errors: Errors,
    f: UserFields,
}

/// A user's row, as the viewer may act on it.
fn row_fragment(u: User, v: &Viewer) -> WebResult<Response> {
    let rights = UserRights::of(v);
    fragments(StatusCode::OK, vec![Row { u, rights }.render()])
}

/// A user's edit form, with what was wrong with the last try.
/// Why Costbridge refused to change another person, and who can: the bare "You do not have
/// permission for this" did not say that the rule is about what *they* hold.
fn refused_change(name: &str, required: &str) -> String {
    if required.contains("can_push_to_accounting") && required.contains(" and ") {
        return "Costbridge refused: only an admin who holds Push to accounting may give it or \
                take it away. Ask such an admin, or leave Push to accounting as it is."
            .to_owned();
    }
    format!(
        "Costbridge refused: changing {name} needs an admin who holds every permission {name} \
         holds, and you lack {}. Ask an admin who holds it to make the change.",
        permission_words(required)
    )
}

fn edit_fragment(status: StatusCode, u: User, v: &Viewer, errors: Errors) -> WebResult<Response> {
    let form = EditRow {
        u,
        rights: UserRights::of(v),
        errors,
    };
    fragments(status, vec![form.render()])
}

#[derive(Template, WebTemplate)]
#[template(path = "users.html")]
struct Page {
    layout: Layout,
    sub: &'static str,
    users: Vec<Row>,
    rights: UserRights,
    new_form: NewForm,
    notice: Option<String>,
    zone: super::company::ZoneForm,
}

#[derive(Deserialize, Default)]
struct PageQuery {
    added: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn page(v: Viewer, Query(pq): Query<PageQuery>) -> WebResult<Response> {
    let rights = UserRights::of(&v);
    let users: Vec<Row> = ops::list(v.state(), &v.caller.user, v.company())
        .await?
        .into_iter()
        .map(|u| Row { u, rights })
        .collect();
    // Only a person of the list: the link's own text is not Costbridge's to say.
    let notice = pq
        .added
        .filter(|e| users.iter().any(|r| r.u.email.eq_ignore_ascii_case(e)))
        .map(|e| format!("Added {e}."));
    Ok(Page {
        layout: Layout::new(v.state(), &v, "settings", "Users").await?,
        sub: "users",
        users,
        rights,
        new_form: NewForm {
            rights,
            errors: Errors::default(),
            f: UserFields::default(),
        },
        notice,
        zone: super::company::ZoneForm::new(v.state(), &v).await?,
    }
    .into_response())
}

/// The permission fields of a user form; a disabled checkbox is not sent, so the form sends
/// the current value in `push_current` beside it.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub(super) struct UserFields {
    email: String,
    pub name: String,
    password: String,
    admin_tool: String,
    erp_integrations: String,
    pub push: Option<String>,
    push_current: Option<String>,
}

impl UserFields {
    pub fn permissions(&self) -> Permissions {
        let level = |s: &str| Level::parse(s).unwrap_or(Level::None);
        Permissions {
            admin_tool: level(&self.admin_tool),
            erp_integrations: level(&self.erp_integrations),
            can_push_to_accounting: self.push.is_some()
                || self.push_current.as_deref() == Some("true"),
        }
    }

    pub fn level_is(&self, which: &str, level: &str) -> bool {
        match which {
            "admin_tool" => self.admin_tool == level,
            _ => self.erp_integrations == level,
        }
    }
}

#[tracing::instrument(skip_all)]
async fn create(v: Viewer, Form(f): Form<UserFields>) -> WebResult<Response> {
    let body = CreateUser {
        email: f.email.clone(),
        name: f.name.clone(),
        password: f.password.clone(),
        permissions: f.permissions(),
    };
    match ops::create(v.state(), &v.caller.user, v.company(), body).await {
        Ok(u) => {
            let q: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("added", &u.email)
                .finish();
            Ok(htmx_redirect(&format!("/settings/users?{q}")))
        }
        Err(e) => {
            let f = UserFields {
                password: String::new(),
                ..f
            };
            let form = NewForm {
                rights: UserRights::of(&v),
                errors: Errors::from(e),
                f,
            };
            fragments(StatusCode::UNPROCESSABLE_ENTITY, vec![form.render()])
        }
    }
}

#[tracing::instrument(skip_all)]
async fn row(v: Viewer, Path(uid): Path<i64>) -> WebResult<Response> {
    let u = ops::get(v.state(), &v.caller.user, v.company(), uid).await?;
    row_fragment(u, &v)
}

#[tracing::instrument(skip_all)]
async fn edit(v: Viewer, Path(uid): Path<i64>) -> WebResult<Response> {
    require(
        v.caller.user.permissions.can_manage_users(),
        "admin_tool=admin",
    )?;
    let u = ops::get(v.state(), &v.caller.user, v.company(), uid).await?;
    edit_fragment(StatusCode::OK, u, &v, Errors::default())
}

#[tracing::instrument(skip_all)]
async fn update(
    v: Viewer, ClientAddr(client): ClientAddr, Path(uid): Path<i64>, Form(f): Form<UserFields>,
) -> WebResult<Response> {
    let body = UpdateUser {
        name: Some(f.name.clone()),
        permissions: Some(f.permissions()),
        ..UpdateUser::default()
    };
    match ops::update(
        v.state(),
        &v.caller.user,
        v.caller.credential(),
        v.company(),
        uid,
        body,
        client,
    )
    .await
    {
        Ok(u) => row_fragment(u, &v),
        Err(e) => {
            // The form again as it was sent, not as stored: the refused change stays in view
            // to be corrected (a cleared name showed the stored one beside "is required").
            let mut u = ops::get(v.state(), &v.caller.user, v.company(), uid).await?;
            let errors = match e {
                OpError::Forbidden(required) if uid != v.caller.user.id => {
                    Errors::message(refused_change(&u.name, required))
                }
                e => Errors::from(e),
            };
            u.name = f.name.clone();
            u.permissions = f.permissions();
            edit_fragment(StatusCode::UNPROCESSABLE_ENTITY, u, &v, errors)
        }
    }
}
