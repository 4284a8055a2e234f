//! Company settings → ERP connection: the profile, the connector's settings (secrets only
//! ever shown masked; leaving a masked secret as it is keeps the stored one) and a Test
//! connection button.
use super::{Errors, Form, Layout, Viewer, WebResult, fragments};
use crate::ops::OpError;
use crate::ops::connection as ops;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use costbridge_domain::ErpProfile;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/erp", get(page).post(save))
        .route("/settings/erp/test", post(test))
}

/// The connection form's fields, filled from the stored (masked) settings or from a post.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct Fields {
    profile: String,
    kind: String,
    directory: String,
    format: String,
    file_gl: String,
    tryton_url: String,
    database: String,
    username: String,
    password: String,
    webhook_url: String,
    secret: String,
    webhook_gl: String,
}

impl Fields {
    fn from_masked(profile: &str, m: &Value) -> Fields {
        let s = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
        let gl = m["gl_accounts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|g| {
                        format!(
                            "{},{},{}",
                            str_of(&g["code"]),
                            str_of(&g["name"]),
                            str_of(&g["kind"])
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        let kind = s("kind");
        Fields {
            profile: profile.to_owned(),
            directory: s("directory"),
            format: s("format"),
            file_gl: if kind == "file" {
                gl.clone()
            } else {
                String::new()
            },
            tryton_url: if kind == "tryton" {
                s("url")
            } else {
                String::new()
            },
            database: s("database"),
            username: s("username"),
            password: s("password"),
            webhook_url: if kind == "webhook" {
                s("url")
            } else {
                String::new()
            },
            secret: s("secret"),
            webhook_gl: if kind == "webhook" { gl } else { String::new() },
            kind,
        }
    }

    /// The `connector` object the API takes, for the chosen kind.
    fn connector(&self) -> Result<Value, Errors> {
        Ok(match self.kind.as_str() {
            "tryton" => {
                json!({"kind": "tryton", "url": self.tryton_url.trim(), "database": self.database.trim(),
                               "username": self.username.trim(), "password": self.password})
            }
            "webhook" => {
                json!({"kind": "webhook", "url": self.webhook_url.trim(), "secret": self.secret,
                                "gl_accounts": gl_accounts(&self.webhook_gl)?})
            }
            _ => json!({"kind": "file", "directory": self.directory.trim(), "format": self.format,
                        "gl_accounts": gl_accounts(&self.file_gl)?}),
        })
    }
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// One account a line, `code,name,kind` (kind is income or expense).
fn gl_accounts(text: &str) -> Result<Vec<Value>, Errors> {
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let parts: Vec<&str> = line.splitn(3, ',').map(str::trim).collect();
        match parts.as_slice() {
            [code, name, kind] if !code.is_empty() && matches!(*kind, "income" | "expense") => {
                out.push(json!({"code": code, "name": name, "kind": kind}))
            }
            _ => {
                let mut e = Errors::default();
                e.merge(OpError::field(
                    "connector.gl_accounts",
                    format!(
                        "line {} must be code,name,income or code,name,expense",
                        n + 1
                    ),
                ));
                return Err(e);
            }
        }
    }
    Ok(out)
}

#[derive(Template, WebTemplate)]
#[template(path = "erp_settings.html")]
struct Page {
    layout: Layout,
    sub: &'static str,
    form: ConnForm,
    current: Option<String>,
    can_test: bool,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "_erp_form.html")]
struct ConnForm {
    f: Fields,
    profiles: Vec<ErpProfile>,
    errors: Errors,
    can_edit: bool,
}

#[derive(Deserialize, Default)]
struct PageQuery {
    saved: Option<String>,
}

#[tracing::instrument(skip_all, fields(company = v.company(), user = v.caller.user.id))]
async fn page(
    State(state): State<AppState>,
    v: Viewer,
    Query(pq): Query<PageQuery>,
) -> WebResult<Response> {
    let p = v.caller.user.permissions;
    let conn = match ops::get(&state, &v.caller.user, v.company()).await {
        Ok(c) => Some(c),
        Err(OpError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let (fields, current) = match &conn {
        Some(c) => (
            Fields::from_masked(&c.profile.id, &c.settings.masked()),
            Some(format!(
                "{} through the {} connector. Cost codes created here: {}. Income account required: {}.",
                c.profile.name,
                c.settings.kind(),
                if c.profile.create_cost_codes {
                    "yes"
                } else {
                    "no (the ERP owns its codes)"
                },
                if c.profile.rules.income_account_required {
                    "yes"
                } else {
                    "no"
                },
            )),
        ),
        None => (
            Fields {
                kind: "file".into(),
                format: "iif".into(),
                ..Fields::default()
            },
            None,
        ),
    };
    Ok(Page {
        layout: Layout::new(&state, &v, "settings", "ERP connection").await?,
        sub: "erp",
        form: ConnForm {
            f: fields,
            profiles: ErpProfile::builtin(),
            errors: Errors::default(),
            can_edit: p.can_manage_users(),
        },
        current,
        can_test: conn.is_some() && (p.can_manage_users() || p.is_approver()),
        notice: pq.saved.map(|_| "Connection saved.".to_owned()),
    }
    .into_response())
}

#[tracing::instrument(skip_all, fields(company = v.company(), user = v.caller.user.id))]
async fn save(
    State(state): State<AppState>,
    v: Viewer,
    Form(f): Form<Fields>,
) -> WebResult<Response> {
    let again = |errors: Errors| ConnForm {
        f: Fields {
            password: String::new(),
            secret: String::new(),
            ..f.clone()
        },
        profiles: ErpProfile::builtin(),
        errors,
        can_edit: true,
    };
    let connector = match f.connector() {
        Ok(c) => c,
        Err(errors) => {
            return fragments(
                StatusCode::UNPROCESSABLE_ENTITY,
                vec![again(errors).render()],
            );
        }
    };
    match ops::put(&state, &v.caller.user, v.company(), &f.profile, &connector).await {
        Ok(_) => Ok(super::htmx_redirect("/settings/erp?saved=1")),
        Err(e) => {
            let errors = Errors::from_op(e)?;
            fragments(
                StatusCode::UNPROCESSABLE_ENTITY,
                vec![again(errors).render()],
            )
        }
    }
}

#[derive(Template)]
#[template(path = "_erp_test.html")]
struct TestResult {
    ok: bool,
    message: String,
}

#[tracing::instrument(skip_all, fields(company = v.company(), user = v.caller.user.id))]
async fn test(State(state): State<AppState>, v: Viewer) -> WebResult<Response> {
    let (ok, message) = ops::test(&state, &v.caller.user, v.company()).await?;
    fragments(StatusCode::OK, vec![TestResult { ok, message }.render()])
}
