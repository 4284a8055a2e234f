//! Company settings → ERP connection: the profile, the connector's settings (secrets only
//! ever shown masked; leaving a masked secret as it is keeps the stored one) and a Test
//! connection button.
use super::{Errors, Form, Layout, Viewer, WebResult, fragments};
use crate::ops::OpError;
use crate::ops::codes;
use crate::ops::connection as ops;
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use costbridge_domain::ErpProfile;
use costbridge_erp::{CONNECTORS, Field, Input, MASK, Registration};
use costbridge_storage::codes::CodeList;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/erp", get(page).post(save))
        .route("/settings/erp/test", post(test))
}

/// The connection form's fields, filled from the stored (masked) settings or from a post: the
/// profile, the chosen kind, and every connector's fields as `<kind>.<field>` (each connector
/// has its own fieldset, drawn from its registration; only the chosen one is sent on).
#[derive(Default, Clone)]
struct Fields {
    profile: String,
    kind: String,
    /// The list to make the ERP list, as its id; empty for the current one (or a new one).
    erp_list: String,
    values: HashMap<String, String>,
}

fn input_name(kind: &str, field: &Field) -> String {
    format!("{kind}.{}", field.name)
}

impl Fields {
    fn from_post(mut values: HashMap<String, String>) -> Fields {
        Fields {
            profile: values.remove("profile").unwrap_or_default(),
            kind: values.remove("kind").unwrap_or_default(),
            erp_list: values.remove("erp_list_id").unwrap_or_default(),
            values,
        }
    }

    fn from_masked(profile: &str, m: &Value) -> Fields {
        let kind = str_of(&m["kind"]).to_owned();
        let mut values = HashMap::new();
        if let Some(r) = Registration::find(&kind) {
            for field in r.fields {
                let v = &m[field.name];
                let text = match field.input {
                    Input::GlAccounts => v
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
                        .unwrap_or_default(),
                    _ => str_of(v).to_owned(),
                };
                values.insert(input_name(&kind, field), text);
            }
        }
        Fields {
            profile: profile.to_owned(),
            kind,
            erp_list: String::new(),
            values,
        }
    }

    fn value(&self, kind: &str, field: &Field) -> &str {
        self.values
            .get(&input_name(kind, field))
            .map_or("", String::as_str)
    }

    /// The `connector` object the API takes (docs/api.md) for the chosen kind (an unknown kind goes on alone, for
    /// the API to refuse).
    fn connector(&self) -> Result<Value, Errors> {
        let mut connector = json!({"kind": self.kind});
        let Some(r) = Registration::find(&self.kind) else {
            return Ok(connector);
        };
        for field in r.fields {
            let text = self.value(r.kind, field);
            connector[field.name] = match field.input {
                Input::Text | Input::Url => json!(text.trim()),
                Input::Secret | Input::Choice(_) => json!(text),
                Input::GlAccounts => json!(gl_accounts(field.name, text)?),
            };
        }
        Ok(connector)
    }

    /// The connector names a bad GL account by its place among the accounts
    /// (`connector.gl_accounts[2]`), which no input of the form has: the error stayed unshown
    /// and Save seemed to do nothing. The form has one box for them, an account a line, so the
    /// error goes beside that box and names the line.
    fn place_account_errors(&self, errors: &mut Errors) {
        let Some(r) = Registration::find(&self.kind) else {
            return;
        };
        for field in r.fields {
            let prefix = format!("connector.{}[", field.name);
            let placed: Vec<String> = errors
                .fields
                .keys()
                .filter(|k| k.starts_with(&prefix))
                .cloned()
                .collect();
            // The accounts are the box's non-blank lines, in order (as `gl_accounts` read them).
            let lines: Vec<usize> = self
                .value(r.kind, field)
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(n, _)| n + 1)
                .collect();
            for key in placed {
                let messages = errors.fields.remove(&key).unwrap_or_default();
                let index = key[prefix.len()..].trim_end_matches(']').parse::<usize>();
                let at = match index.ok().and_then(|i| lines.get(i)) {
                    Some(line) => format!("line {line}"),
                    None => "an account".to_owned(),
                };
                let box_key = format!("connector.{}", field.name);
                errors
                    .fields
                    .entry(box_key)
                    .or_default()
                    .extend(messages.into_iter().map(|m| format!("{at}: {m}")));
            }
        }
    }

    /// The chosen ERP list, if one is chosen.
    fn erp_list(&self) -> Result<Option<i64>, Errors> {
        if self.erp_list.is_empty() {
            return Ok(None);
        }
        self.erp_list.parse().map(Some).map_err(|_| {
            let mut e = Errors::default();
            e.merge(OpError::field(
                "erp_list_id",
                "choose one of the lists shown",
            ));
            e
        })
    }

    /// The same fields with every typed secret emptied, to show a form again; and the labels
    /// of the chosen connector's secrets that were emptied, to ask for them again. A secret
    /// left masked stays masked: it reveals nothing, and emptying it turned "leave as is to
    /// keep it" into "Password is required" on the next save.
    fn without_secrets(&self) -> (Fields, Vec<&'static str>) {
        let mut f = self.clone();
        let mut retype = Vec::new();
        for r in &CONNECTORS {
            for field in r.fields.iter().filter(|x| x.input == Input::Secret) {
                let name = input_name(r.kind, field);
                let typed = f.values.get(&name).filter(|v| v.as_str() != MASK);
                if typed.is_some_and(|v| !v.is_empty()) && r.kind == self.kind {
                    retype.push(field.label);
                }
                if typed.is_some() {
                    f.values.remove(&name);
                }
            }
        }
        (f, retype)
    }

    /// Each connector's fieldset, as the template draws it.
    fn connectors(&self) -> Vec<ConnectorView> {
        CONNECTORS
            .iter()
            .map(|r| ConnectorView {
                kind: r.kind,
                label: r.label,
                fields: r
                    .fields
                    .iter()
                    .map(|field| {
                        let mut view = FieldView::new(r.kind, field, self.value(r.kind, field));
                        // The API names a field's errors `connector.<field>`, whatever the
                        // kind: only the chosen connector's fieldset shows them (a hidden one
                        // took the error, and the focus with it).
                        if r.kind != self.kind {
                            view.key.clear();
                        }
                        view
                    })
                    .collect(),
            })
            .collect()
    }
}

struct ConnectorView {
    kind: &'static str,
    label: &'static str,
    fields: Vec<FieldView>,
}

struct FieldView {
    /// `<kind>-<field>`, for the element ids.
    id: String,
    /// The input's name, `<kind>.<field>`.
    name: String,
    /// Where the API names this field's errors, `connector.<field>`; empty (no errors) in the
    /// fieldsets of the connectors not chosen.
    key: String,
    label: String,
    /// `text`, `url` or `password` for an input; `select` or `gl` for the others.
    input: &'static str,
    value: String,
    options: Vec<ChoiceView>,
}

struct ChoiceView {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

impl FieldView {
    fn new(kind: &str, field: &Field, value: &str) -> FieldView {
        let (input, label, options) = match field.input {
            Input::Text => ("text", field.label.to_owned(), Vec::new()),
            Input::Url => ("url", field.label.to_owned(), Vec::new()),
            Input::Secret => (
                "password",
                format!("{} (shown masked; leave as is to keep it)", field.label),
                Vec::new(),
            ),
            Input::Choice(options) => (
                "select",
                field.label.to_owned(),
                options
                    .iter()
                    .map(|&(v, l)| ChoiceView {
                        value: v,
                        label: l,
                        selected: v == value,
                    })
                    .collect(),
            ),
            Input::GlAccounts => (
                "gl",
                format!(
                    "{}, one per line: code,name,income or code,name,expense",
                    field.label
                ),
                Vec::new(),
            ),
        };
        FieldView {
            id: format!("{kind}-{}", field.name),
            name: input_name(kind, field),
            key: format!("connector.{}", field.name),
            label,
            input,
            value: value.to_owned(),
            options,
        }
    }
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// One account a line, `code,name,kind` (kind is income or expense).
fn gl_accounts(field: &str, text: &str) -> Result<Vec<Value>, Errors> {
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
                    &format!("connector.{field}"),
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
    /// For a Xero connection: the organisation, Connect to Xero, Disconnect.
    xero: Option<super::xero::XeroPart>,
}

#[derive(Template)]
#[template(path = "_erp_form.html")]
struct ConnForm {
    f: Fields,
    profiles: Vec<ErpProfile>,
    /// The company's lists, for choosing the ERP list.
    lists: Vec<CodeList>,
    errors: Errors,
    can_edit: bool,
}

impl ConnForm {
    /// Whether the ERP list picker shows `list` as chosen: the posted choice, else the
    /// current ERP list, else the only list (what saving without a choice would pick).
    fn erp_list_chosen(&self, list: &CodeList) -> bool {
        match self.f.erp_list.parse::<i64>() {
            Ok(id) => id == list.id,
            Err(_) => list.is_erp_list || self.lists.len() == 1,
        }
    }

    fn has_erp_list(&self) -> bool {
        self.lists.iter().any(|l| l.is_erp_list)
    }
}

/// The company's lists, for a viewer who may see them (others get no picker).
async fn company_lists(state: &AppState, v: &Viewer) -> WebResult<Vec<CodeList>> {
    match codes::lists(state, &v.caller.user, v.company()).await {
        Ok(lists) => Ok(lists),
        Err(OpError::Forbidden(_)) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
struct PageQuery {
    saved: Option<String>,
    /// What the Xero sign-in or Disconnect just did.
    xero: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn page(v: Viewer, Query(pq): Query<PageQuery>) -> WebResult<Response> {
    let notice = match (pq.saved, pq.xero.as_deref()) {
        (Some(_), _) => Some("Connection saved."),
        (_, Some("connected")) => Some("Connected to Xero."),
        (_, Some("pick")) => Some("Signed in to Xero: pick the organisation below."),
        (_, Some("disconnected")) => {
            Some("Disconnected from Xero: Costbridge's access was revoked.")
        }
        _ => None,
    };
    page_with(v.state(), &v, notice.map(str::to_owned), None).await
}

/// The page with a notice, or with why the last Xero sign-in changed nothing.
pub(super) async fn page_with(
    state: &AppState, v: &Viewer, notice: Option<String>, xero_problem: Option<String>,
) -> WebResult<Response> {
    let p = v.caller.user.permissions;
    let conn = match ops::get(state, &v.caller.user, v.company()).await {
        Ok(c) => Some(c),
        Err(OpError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let (fields, current) = match &conn {
        Some(c) => (
            // A reader sees addresses cut to their host (a hook's path may be its credential).
            Fields::from_masked(
                &c.profile.id,
                &if p.can_manage_users() {
                    c.settings.masked()
                } else {
                    c.settings.summary()
                },
            ),
            Some(format!(
                "{} through the connector “{}”. Cost codes created here: {}. Income account required: {}.",
                c.profile.name,
                Registration::find(c.settings.kind()).map_or(c.settings.kind(), |r| r.label),
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
                kind: CONNECTORS[0].kind.into(),
                ..Fields::default()
            },
            None,
        ),
    };
    let xero = match conn.as_ref().map(|c| c.settings.kind()) {
        Some("xero") => Some(super::xero::XeroPart::new(state, v, xero_problem).await?),
        _ => None,
    };
    Ok(Page {
        layout: Layout::new(state, v, "settings", "ERP connection").await?,
        sub: "erp",
        form: ConnForm {
            f: fields,
            profiles: ErpProfile::builtin(),
            lists: company_lists(state, v).await?,
            errors: Errors::default(),
            can_edit: p.can_manage_users(),
        },
        current,
        can_test: conn.is_some() && (p.can_manage_users() || p.is_approver()),
        notice,
        xero,
    }
    .into_response())
}

#[tracing::instrument(skip_all)]
async fn save(v: Viewer, Form(posted): Form<HashMap<String, String>>) -> WebResult<Response> {
    let f = Fields::from_post(posted);
    let lists = company_lists(v.state(), &v).await?;
    let again = |mut errors: Errors| {
        let (shown, retype) = f.without_secrets();
        for label in retype {
            errors.general.push(format!(
                "Type the {} again: Costbridge does not send a secret you typed back to the page.",
                label.to_lowercase()
            ));
        }
        ConnForm {
            f: shown,
            profiles: ErpProfile::builtin(),
            lists: lists.clone(),
            errors,
            can_edit: true,
        }
    };
    let chosen = f.connector().and_then(|c| Ok((c, f.erp_list()?)));
    let (connector, erp_list) = match chosen {
        Ok(c) => c,
        Err(errors) => {
            return fragments(
                StatusCode::UNPROCESSABLE_ENTITY,
                vec![again(errors).render()],
            );
        }
    };
    let saved = ops::put(
        v.state(),
        &v.caller.user,
        v.company(),
        &f.profile,
        &connector,
        erp_list,
    )
    .await;
    match saved {
        Ok(_) => Ok(super::htmx_redirect("/settings/erp?saved=1")),
        Err(e) => {
            let mut errors = Errors::from_op(e)?;
            f.place_account_errors(&mut errors);
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

#[tracing::instrument(skip_all)]
async fn test(v: Viewer) -> WebResult<Response> {
    let (ok, message) = ops::test(v.state(), &v.caller.user, v.company()).await?;
    fragments(StatusCode::OK, vec![TestResult { ok, message }.render()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use costbridge_erp::ConnectorSettings;

    #[test]
    fn the_form_sends_back_what_it_shows_for_every_connector() {
        let connections = [
            json!({"kind": "file", "directory": "iif/costs", "format": "csv",
                "gl_accounts": [{"code": "4000", "name": "Income", "kind": "income"}]}),
            json!({"kind": "tryton", "url": "http://localhost:8000/", "database": "costs",
                "username": "admin", "password": "s3cret"}),
            json!({"kind": "webhook", "url": "https://erp.example/hook",
                "secret": "whsec_0123456789abcdef", "gl_accounts": []}),
            json!({"kind": "xero"}),
            json!({"kind": "qbwc"}),
        ];
        assert_eq!(connections.len(), CONNECTORS.len());
        for c in connections {
            let masked = ConnectorSettings::parse(None, &c, &Default::default())
                .unwrap()
                .masked();
            let shown = Fields::from_masked("tryton", &masked);
            assert_eq!(shown.connector().ok(), Some(masked.clone()));
            // Shown again after an error, a masked secret stays masked (it keeps the stored
            // one) and nothing is asked for again.
            let (again, retype) = shown.without_secrets();
            assert_eq!(again.connector().ok(), Some(masked.clone()));
            assert!(retype.is_empty(), "{retype:?}");
        }
    }

    #[test]
    fn a_typed_secret_is_emptied_and_asked_for_again() {
        let posted = HashMap::from([
            ("kind".to_owned(), "tryton".to_owned()),
            ("tryton.url".to_owned(), "http://erp.example/".to_owned()),
            ("tryton.password".to_owned(), "typed-secret".to_owned()),
            ("webhook.secret".to_owned(), "another-connector".to_owned()),
        ]);
        let (shown, retype) = Fields::from_post(posted).without_secrets();
        assert_eq!(shown.values.get("tryton.password"), None);
        assert_eq!(shown.values.get("webhook.secret"), None);
        assert_eq!(shown.values["tryton.url"], "http://erp.example/");
        assert_eq!(retype, ["Password"]);
    }

    #[test]
    fn a_bad_gl_account_line_is_named_at_its_field() {
        let posted = HashMap::from([
            ("kind".to_owned(), "file".to_owned()),
            (
                "file.gl_accounts".to_owned(),
                "4000,Income,income\n4100".to_owned(),
            ),
        ]);
        let errors = Fields::from_post(posted).connector().err().unwrap();
        assert_eq!(
            errors.get("connector.gl_accounts").as_deref(),
            Some("line 2 must be code,name,income or code,name,expense")
        );
    }
}
