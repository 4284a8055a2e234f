//! The Tryton connector: cost codes become analytic accounts (`analytic_account.account`) under
//! the root `COSTCODES`, GL accounts are read from Tryton's chart, and a code that carries GL
//! accounts also becomes a service product whose accounting category holds the pair.
//!
//! Everything goes over JSON-RPC (see `rpc`); the verified call shapes and limits are in
//! `scripts/tryton/README.md`.
//!
//! Tryton does not enforce unique codes, so every export first looks up the codes it is about
//! to write (in bulk) and updates what exists: an export that is run twice (after a crash, or a
//! retry) creates nothing twice.
mod calls;
mod export;
mod products;
mod rpc;

use crate::{
    Connector, ConnectorError, Env, ErpCode, ExportContext, Field, FieldErrors, GlAccount, GlKind,
    Input, LineResult, Lines, Secret,
};
use calls::{ANALYTIC, down, find_root};
use rpc::{Fault, LoginError, Rpc, as_bool, as_id, as_text};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Codes per export call: Tryton's recipes show 1,000 analytic accounts per call is safe.
pub const BATCH: usize = 1000;

/// A Tryton server reached over JSON-RPC (`url` is the server root, e.g. `http://host:8000/`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrytonSettings {
    /// The Tryton server's root, e.g. `http://erp.example:8000/`.
    pub url: String,
    pub database: String,
    pub username: String,
    /// Shown as `********`; sending `********` back keeps the stored one.
    #[schema(value_type = String, format = Password)]
    pub password: Secret,
}

pub struct Tryton {
    rpc: Rpc,
}

impl Connector for Tryton {
    type Settings = TrytonSettings;
    const KIND: &'static str = "tryton";
    const LABEL: &'static str = "Tryton (JSON-RPC)";
    const FIELDS: &'static [Field] = &[
        Field::new("url", "Server URL", Input::Url),
        Field::new("database", "Database", Input::Text),
        Field::new("username", "User name", Input::Text),
        Field::new("password", "Password", Input::Secret),
    ];
    const BATCH: usize = BATCH;
    const CAN_READ_CODES: bool = true;

    fn check(s: &TrytonSettings, _env: &Env, errors: &mut FieldErrors) {
        errors.url("url", &s.url);
        errors.required("database", &s.database);
        errors.required("username", &s.username);
        if s.password.expose().is_empty() || s.password.is_mask() {
            errors.add("password", "is required");
        }
    }

    fn new(settings: &TrytonSettings, env: &Env) -> Self {
        Tryton {
            rpc: Rpc::new(settings, &env.outbound),
        }
    }

    /// Logs in and checks that the analytic accounting module is activated.
    async fn test(&self) -> (bool, String) {
        let url = &self.rpc.shown_url;
        match self.rpc.version().await {
            Ok(_) => {}
            Err(Fault::Down(m)) => {
                return (false, format!("Cannot reach a Tryton server at {url}: {m}"));
            }
            Err(Fault::Refused(m)) => {
                return (
                    false,
                    format!(
                        "The server at {url} answered, but not like a Tryton server ({m}). The URL must be the server's root, e.g. http://host:8000/"
                    ),
                );
            }
        }
        if let Err(e) = self.rpc.login().await {
            let message = match e {
                LoginError::NoDatabase => match self.rpc.databases().await {
                    Ok(dbs) if !dbs.contains(&self.rpc.database) => format!(
                        "The Tryton server at {url} has no database '{}'{}",
                        self.rpc.database,
                        if dbs.is_empty() {
                            String::new()
                        } else {
                            format!(" (it has: {})", dbs.join(", "))
                        }
                    ),
                    _ => self.rpc.login_message(&LoginError::NoDatabase),
                },
                other => self.rpc.login_message(&other),
            };
            return (false, message);
        }
        let modules = self
            .rpc
            .search_read(
                "ir.module",
                json!([["name", "in", ["analytic_account", "account_product"]]]),
                None,
                Value::Null,
                &["name", "state"],
                false,
            )
            .await;
        let modules = match modules {
            Ok(m) => m,
            Err(Fault::Down(m) | Fault::Refused(m)) => {
                return (
                    false,
                    format!("Logged in to Tryton, but could not list its modules: {m}"),
                );
            }
        };
        let activated = |name: &str| {
            modules.iter().any(|m| {
                m.get("name").and_then(Value::as_str) == Some(name)
                    && m.get("state").and_then(Value::as_str) == Some("activated")
            })
        };
        if !activated("analytic_account") {
            return (
                false,
                format!(
                    "The Tryton module 'analytic_account' is not activated in database '{}'; activate it (Administration > Modules, or trytond-admin -d {} -u analytic_account --activate-dependencies)",
                    self.rpc.database, self.rpc.database
                ),
            );
        }
        let mut message = format!(
            "Connected to Tryton database '{}' as {}.",
            self.rpc.database, self.rpc.username
        );
        if !activated("account_product") {
            message.push_str(
                " Note: the module 'account_product' is not activated, so cost codes with GL accounts cannot become service products.",
            );
        }
        (true, message)
    }

    /// The open revenue and expense accounts of the company's chart.
    async fn gl_accounts(&self) -> Result<Vec<GlAccount>, ConnectorError> {
        let company = self.rpc.session().await.map_err(down)?.company;
        let rows = self
            .rpc
            .search_read(
                "account.account",
                json!([
                    [
                        "OR",
                        ["type.revenue", "=", true],
                        ["type.expense", "=", true]
                    ],
                    ["closed", "!=", true],
                    ["company", "=", company],
                ]),
                None,
                json!([["code", "ASC"], ["id", "ASC"]]),
                &["code", "name", "type.revenue", "type.expense"],
                true,
            )
            .await
            .map_err(down)?;
        let mut out = Vec::new();
        for r in rows {
            let Some(code) = as_text(r.get("code")).filter(|c| !c.is_empty()) else {
                continue;
            };
            let name = as_text(r.get("name")).unwrap_or_default();
            let t = r.get("type.");
            for (flag, kind) in [("revenue", GlKind::Income), ("expense", GlKind::Expense)] {
                if as_bool(t.and_then(|t| t.get(flag))) {
                    out.push(GlAccount {
                        code: code.clone(),
                        name: name.clone(),
                        kind,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Creates or updates one analytic account per line (parents first), plus a service product
    /// for lines with GL accounts. One result per line, in the order of `lines`.
    async fn export(
        &self, ctx: &ExportContext, lines: &dyn Lines,
    ) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
        export::export(&self.rpc, ctx, &lines.to_vec()).await
    }

    /// Every analytic account under the root (inactive ones included), except the root itself
    /// and accounts without a code (those cannot be cost codes).
    async fn read_codes(&self) -> Result<Vec<ErpCode>, ConnectorError> {
        let Some(root) = find_root(&self.rpc, false).await.map_err(down)? else {
            return Ok(Vec::new());
        };
        const PAGE: usize = 5000;
        let mut out = Vec::new();
        let mut last = 0i64;
        loop {
            let page = self
                .rpc
                .search_read(
                    ANALYTIC,
                    json!([["root", "=", root], ["id", ">", last]]),
                    Some(PAGE),
                    json!([["id", "ASC"]]),
                    &["code", "name", "active"],
                    false,
                )
                .await
                .map_err(down)?;
            for r in &page {
                let Some(id) = as_id(r.get("id")) else {
                    continue;
                };
                last = last.max(id);
                let Some(code) = as_text(r.get("code")).filter(|c| !c.is_empty()) else {
                    continue;
                };
                out.push(ErpCode {
                    origin_id: id.to_string(),
                    full_code: code,
                    description: as_text(r.get("name")).unwrap_or_default(),
                    active: as_bool(r.get("active")),
                });
            }
            if page.len() < PAGE {
                break;
            }
        }
        Ok(out)
    }
}
