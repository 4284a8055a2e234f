//! The GL side of a cost code: a service product (`product.template` with one variant) whose
//! accounting category carries the income (revenue) and expense accounts. In Tryton 8.2 the
//! accounts live only on the category, so there is one category per (income, expense) pair,
//! named `Costbridge <income> | <expense>` and shared by every code with that pair. `plan`
//! decides what to write from what Tryton holds; this module reads Tryton and runs its steps.
mod plan;

use super::calls::{Item, apply, with_hint};
use super::rpc::{Fault, Rpc, as_bool, as_id, as_text};
use crate::{ConnectorError, ExportLine};
use plan::{Pair, Plan, Template};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Templates created with their variant per call: SQLite fails above ~85 (scripts/tryton/README.md, service products).
const TEMPLATE_CHUNK: usize = 80;
const CHUNK: usize = 1000;

pub(super) struct Wanted<'a> {
    pub line: &'a ExportLine<'a>,
    /// The description as exported (cut to the profile's length).
    pub name: &'a str,
}

/// Finds or creates the category and the service product of each wanted line; one result per
/// line, in order. A lookup that Tryton refuses (e.g. the product module is not activated)
/// fails these lines; the analytic accounts stay exported.
#[tracing::instrument(level = "debug", skip_all, fields(lines = wanted.len()))]
pub(super) async fn sync(
    rpc: &Rpc, wanted: &[Wanted<'_>],
) -> Result<Vec<Result<(), String>>, ConnectorError> {
    match run(rpc, wanted).await {
        Ok(res) => Ok(res),
        Err(Fault::Down(m)) => Err(ConnectorError::Unavailable(m)),
        Err(Fault::Refused(m)) => {
            let m = with_hint(&m);
            Ok(wanted.iter().map(|_| Err(m.clone())).collect())
        }
    }
}

async fn write(
    rpc: &Rpc, model: &str, create: bool, items: &[Item], chunk: usize,
) -> Result<Vec<Result<i64, String>>, Fault> {
    apply(rpc, model, create, items, chunk)
        .await
        .map_err(|e| Fault::Down(e.to_string()))
}

async fn run(rpc: &Rpc, wanted: &[Wanted<'_>]) -> Result<Vec<Result<(), String>>, Fault> {
    const TEMPLATE: &str = "product.template";
    let company = rpc.session().await?.company;
    let accounts = rpc
        .search_read(
            "account.account",
            json!([
                ["code", "in", plan::gl_codes(wanted)],
                ["closed", "!=", true],
                ["company", "=", company]
            ]),
            None,
            json!([["id", "ASC"]]),
            &["code", "type.revenue", "type.expense"],
            true,
        )
        .await?;
    let (mut plan, names) = Plan::new(wanted, &accounts);
    let category = categories(rpc, &names).await?;
    let by_code = templates(rpc, &plan::template_codes(wanted)).await?;
    plan.match_templates(&category, &by_code);

    if plan.has_creates() {
        let uom = rpc
            .model(
                "ir.model.data",
                "get_id",
                vec![json!("product"), json!("uom_unit")],
                true,
            )
            .await?;
        let results = write(rpc, TEMPLATE, true, &plan.creates(&uom), TEMPLATE_CHUNK).await?;
        plan.created(results);
    }

    let reactivate = plan.reactivations();
    let results = write(rpc, TEMPLATE, false, &reactivate, CHUNK).await?;
    plan.reactivated(&reactivate, results);

    let (who, items) = plan.edits();
    let results = write(rpc, TEMPLATE, false, &items, CHUNK).await?;
    plan.edited(who, results);

    let new_inactive = plan.new_inactive();
    if !new_inactive.is_empty() {
        let variants = rpc
            .search_read(
                "product.product",
                json!([["template", "in", new_inactive]]),
                None,
                Value::Null,
                &["template"],
                false,
            )
            .await?;
        let items = plan.deactivations(&variants);
        let results = write(rpc, TEMPLATE, false, &items, CHUNK).await?;
        plan.deactivated(results);
    }
    for r in write(rpc, "product.product", false, plan.variants(), CHUNK).await? {
        if let Err(m) = r {
            tracing::warn!("could not change a Tryton product variant's active flag: {m}");
        }
    }
    Ok(plan.results())
}

/// The templates with one of `codes`, by code.
async fn templates(rpc: &Rpc, codes: &[&str]) -> Result<HashMap<String, Vec<Template>>, Fault> {
    let mut by_code: HashMap<String, Vec<Template>> = HashMap::new();
    for part in codes.chunks(CHUNK) {
        let found = rpc
            .search_read(
                "product.template",
                json!([["code", "in", part]]),
                None,
                json!([["id", "ASC"]]),
                &["code", "name", "account_category", "active", "products"],
                false,
            )
            .await?;
        for r in found {
            let Some(id) = as_id(r.get("id")) else {
                continue;
            };
            let t = Template {
                id,
                code: as_text(r.get("code")).unwrap_or_default(),
                name: as_text(r.get("name")).unwrap_or_default(),
                category: as_id(r.get("account_category")),
                active: as_bool(r.get("active")),
                variants: r
                    .get("products")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_i64).collect())
                    .unwrap_or_default(),
            };
            let list = by_code.entry(t.code.clone()).or_default();
            if !list.iter().any(|x| x.id == id) {
                list.push(t);
            }
        }
    }
    Ok(by_code)
}

/// The accounting category of each pair, found by name (and corrected) or created.
async fn categories(
    rpc: &Rpc, names: &HashMap<Pair, String>,
) -> Result<HashMap<Pair, Result<i64, String>>, Fault> {
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let all: Vec<&String> = names.values().collect();
    let found = rpc
        .search_read(
            "product.category",
            json!([["name", "in", all], ["accounting", "=", true]]),
            None,
            json!([["id", "ASC"]]),
            &["name", "account_revenue", "account_expense"],
            false,
        )
        .await?;
    let plan = plan::categories(names, &found);
    let mut out = plan.found;
    for (pair, item) in &plan.fixes {
        tracing::warn!(
            id = item.id,
            "the Tryton category {} had other GL accounts; putting them back",
            names[pair]
        );
    }
    for (create, list) in [(true, plan.creates), (false, plan.fixes)] {
        if list.is_empty() {
            continue;
        }
        let (pairs, items): (Vec<Pair>, Vec<Item>) = list.into_iter().unzip();
        let results = write(rpc, "product.category", create, &items, CHUNK).await?;
        for (pair, r) in pairs.into_iter().zip(results) {
            out.insert(pair, r.map_err(|m| with_hint(&m)));
        }
    }
    Ok(out)
}
