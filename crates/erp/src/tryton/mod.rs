//! The Tryton connector: cost codes become analytic accounts (`analytic_account.account`) under
//! the root `COSTCODES`, GL accounts are read from Tryton's chart, and a code that carries GL
//! accounts also becomes a service product whose accounting category holds the pair.
//!
//! Everything goes over JSON-RPC (see `rpc`); the verified call shapes and limits are in
//! `scripts/tryton/README.md`, `shared/erp/TRYTON.md` and `shared/erp/TRYTON-GL.md`.
//!
//! Tryton does not enforce unique codes, so every export first looks up the codes it is about
//! to write (in bulk) and updates what exists: an export that is run twice (after a crash, or a
//! retry) creates nothing twice.
mod export;
mod products;
mod rpc;

use crate::{
    Connector, ConnectorError, Env, ErpCode, ExportContext, ExportLine, Field, FieldErrors,
    GlAccount, GlKind, Input, LineResult, Secret,
};
use rpc::{Fault, LoginError, Rpc, as_bool, as_id, as_text};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;

/// Codes per export call: Tryton's recipes show 1,000 analytic accounts per call is safe.
pub const BATCH: usize = 1000;

/// The code of the analytic root account that holds the cost-code tree.
pub(crate) const ROOT_CODE: &str = "COSTCODES";
const ROOT_NAME: &str = "Cost codes";
const ANALYTIC: &str = "analytic_account.account";

/// A Tryton server reached over JSON-RPC (`url` is the server root, e.g. `http://host:8000/`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrytonSettings {
    pub url: String,
    pub database: String,
    pub username: String,
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
        Field {
            name: "url",
            label: "Server URL",
            input: Input::Url,
        },
        Field {
            name: "database",
            label: "Database",
            input: Input::Text,
        },
        Field {
            name: "username",
            label: "User name",
            input: Input::Text,
        },
        Field {
            name: "password",
            label: "Password",
            input: Input::Secret,
        },
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
        &self,
        ctx: &ExportContext,
        lines: &[ExportLine],
    ) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
        export::export(&self.rpc, ctx, lines).await
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

fn down(f: Fault) -> ConnectorError {
    match f {
        Fault::Down(m) => ConnectorError::Unavailable(m),
        Fault::Refused(m) => {
            ConnectorError::Unavailable(format!("Tryton refused the request: {m}"))
        }
    }
}

/// The id of the root analytic account `COSTCODES` (the lowest id if several), created when
/// missing and `create` is set.
async fn find_root(rpc: &Rpc, create: bool) -> Result<Option<i64>, Fault> {
    let found = rpc
        .search_read(
            ANALYTIC,
            json!([["code", "=", ROOT_CODE], ["type", "=", "root"]]),
            Some(1),
            json!([["id", "ASC"]]),
            &["active"],
            false,
        )
        .await?;
    if let Some(r) = found.first() {
        let id = as_id(r.get("id"));
        if let Some(id) = id.filter(|_| !as_bool(r.get("active"))) {
            tracing::warn!(
                id,
                "the Tryton root {ROOT_CODE} was inactive; reactivating it"
            );
            rpc.model(
                ANALYTIC,
                "write",
                vec![json!([id]), json!({"active": true})],
                false,
            )
            .await?;
        }
        return Ok(id);
    }
    if !create {
        return Ok(None);
    }
    let ids = rpc
        .model(
            ANALYTIC,
            "create",
            vec![
                json!([{"name": ROOT_NAME, "code": ROOT_CODE, "type": "root", "state": "opened"}]),
            ],
            false,
        )
        .await?;
    tracing::info!("created the Tryton analytic root {ROOT_CODE}");
    Ok(ids.get(0).and_then(Value::as_i64))
}

/// One row of a `create` or `write` that Tryton may refuse.
pub(crate) struct Item {
    /// Create: the values. Write: the values for `id`.
    pub vals: Value,
    pub id: i64,
    /// A piece of text that names this record in Tryton's messages (e.g. `"03 10 - `), used to
    /// single out the refused record of a batch quickly.
    pub tag: Option<String>,
}

/// `create` (ids come back in input order) or `write` of many items, `chunk` per call. A refused
/// call is split (first around the record its message names, else in halves) until every good
/// row is stored and each refused row failed on its own, with Tryton's message. `Ok(id)` per
/// item: the new id (create) or the written id (write).
pub(crate) async fn apply(
    rpc: &Rpc,
    model: &str,
    create: bool,
    items: &[Item],
    chunk: usize,
) -> Result<Vec<Result<i64, String>>, ConnectorError> {
    let call = |group: Vec<usize>| async move {
        let res = if create {
            let vals: Vec<&Value> = group.iter().map(|&i| &items[i].vals).collect();
            rpc.model(model, "create", vec![json!(vals)], false).await
        } else {
            rpc.model(model, "write", write_args(items, &group), false)
                .await
        };
        (group, res)
    };
    split(items, chunk, call, create).await
}

/// `write` arguments: one `[ids], {vals}` pair per distinct set of values.
fn write_args(items: &[Item], group: &[usize]) -> Vec<Value> {
    let mut pairs: Vec<(Vec<i64>, &Value)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for &i in group {
        let vals = &items[i].vals;
        match index.entry(vals.to_string()) {
            Entry::Occupied(e) => pairs[*e.get()].0.push(items[i].id),
            Entry::Vacant(e) => {
                e.insert(pairs.len());
                pairs.push((vec![items[i].id], vals));
            }
        }
    }
    pairs
        .into_iter()
        .flat_map(|(ids, vals)| [json!(ids), vals.clone()])
        .collect()
}

async fn split<F, Fut>(
    items: &[Item],
    chunk: usize,
    call: F,
    create: bool,
) -> Result<Vec<Result<i64, String>>, ConnectorError>
where
    F: Fn(Vec<usize>) -> Fut,
    Fut: Future<Output = (Vec<usize>, Result<Value, Fault>)>,
{
    let mut out: Vec<Option<Result<i64, String>>> = (0..items.len()).map(|_| None).collect();
    let all: Vec<usize> = (0..items.len()).collect();
    let mut todo: Vec<Vec<usize>> = all
        .chunks(chunk.max(1))
        .rev()
        .map(<[usize]>::to_vec)
        .collect();
    while let Some(group) = todo.pop() {
        let (group, res) = call(group).await;
        match res {
            Ok(v) => {
                for (k, &i) in group.iter().enumerate() {
                    out[i] = Some(if create {
                        v.get(k).and_then(Value::as_i64).ok_or_else(|| {
                            "Tryton did not return the id of the new record".to_owned()
                        })
                    } else {
                        Ok(items[i].id)
                    });
                }
            }
            Err(Fault::Down(m)) => return Err(ConnectorError::Unavailable(m)),
            Err(Fault::Refused(m)) if group.len() == 1 => {
                out[group[0]] = Some(Err(m));
            }
            Err(Fault::Refused(m)) => {
                let named: Vec<usize> = group
                    .iter()
                    .copied()
                    .filter(|&i| {
                        items[i]
                            .tag
                            .as_ref()
                            .is_some_and(|t| m.contains(t.as_str()))
                    })
                    .collect();
                if let [one] = named[..] {
                    // Retry the rest in one call and the named record alone (which then fails
                    // with its own message, or goes through if the guess was wrong).
                    let rest: Vec<usize> = group.iter().copied().filter(|&i| i != one).collect();
                    todo.push(vec![one]);
                    todo.push(rest);
                } else {
                    let (a, b) = group.split_at(group.len() / 2);
                    todo.push(b.to_vec());
                    todo.push(a.to_vec());
                }
                tracing::debug!(
                    size = group.len(),
                    "Tryton refused a batch; splitting it: {m}"
                );
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err("not sent".into())))
        .collect())
}

/// Tryton's message plus a plain-language hint where one is known.
pub(crate) fn with_hint(message: &str) -> String {
    let m = message;
    let hint = if m.contains("A value is required for field \"Name\"") {
        Some("the description is empty; give the code a description")
    } else if m.starts_with("Recursion error") {
        Some("the new parent is this code itself or one of its own sub-codes in Tryton")
    } else if m.contains("for field \"Parent\"") && m.contains("not valid according to its domain")
    {
        Some("the parent account is not in Tryton's COSTCODES tree")
    } else if m.contains("You are not allowed to modify the field") {
        Some(
            "the record is inactive (read-only) in Tryton or locked by its state; reactivate or reopen it in Tryton",
        )
    } else if m.contains("because it has move lines") {
        Some(
            "the account already has analytic lines, so Tryton will not turn it into a grouping (view) account",
        )
    } else if m.contains("\"Account Revenue\"") && m.contains("not valid according to its domain") {
        Some("the income GL account is not a revenue-type account of this company in Tryton")
    } else if m.contains("\"Account Expense\"") && m.contains("not valid according to its domain") {
        Some(
            "the expense GL account is not an expense-type account of this company in Tryton (only accounts whose type has the Expense flag qualify)",
        )
    } else if m.contains("Code of active product must be unique") {
        Some(
            "another active product in Tryton already uses this code; deactivate or recode it in Tryton",
        )
    } else if m.contains("You are not allowed to create records")
        || m.contains("You are not allowed to write")
    {
        Some(
            "the Tryton user lacks access rights for this, or the record belongs to another company",
        )
    } else if m.starts_with("'product.") || m.starts_with("'account.") {
        Some(
            "a Tryton module is missing: activate 'account_product' to give cost codes GL accounts",
        )
    } else if m.contains("maximum recursion depth") || m.contains("parser stack overflow") {
        Some("the batch was too large for Tryton; retry the export")
    } else {
        None
    };
    match hint {
        Some(h) => format!("Tryton: {m} (hint: {h})"),
        None => format!("Tryton: {m}"),
    }
}
