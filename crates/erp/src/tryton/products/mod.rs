//! The GL side of a cost code: a service product (`product.template` with one variant) whose
//! accounting category carries the income (revenue) and expense accounts. In Tryton 8.2 the
//! accounts live only on the category, so there is one category per (income, expense) pair,
//! named `Costbridge <income> | <expense>` and shared by every code with that pair.
use super::rpc::{Fault, Rpc, as_bool, as_id, as_text};
use super::{Item, apply, with_hint};
use crate::{ConnectorError, ExportLine, GlAccount};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

/// Templates created with their variant per call: SQLite fails above ~85 (TRYTON-GL.md §2d).
const TEMPLATE_CHUNK: usize = 80;
const CHUNK: usize = 1000;

pub(super) struct Wanted<'a> {
    pub line: &'a ExportLine,
    /// The description as exported (cut to the profile's length).
    pub name: &'a str,
}

#[derive(Clone)]
struct Template {
    id: i64,
    code: String,
    name: String,
    category: Option<i64>,
    active: bool,
    variants: Vec<i64>,
}

type Pair = (Option<i64>, Option<i64>);

/// Finds or creates the category and the service product of each wanted line; one result per
/// line, in order. A lookup that Tryton refuses (e.g. the product module is not activated)
/// fails these lines; the analytic accounts stay exported.
pub(super) async fn sync(
    rpc: &Rpc,
    wanted: &[Wanted<'_>],
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

fn unavailable(e: ConnectorError) -> Fault {
    Fault::Down(e.to_string())
}

async fn run(rpc: &Rpc, wanted: &[Wanted<'_>]) -> Result<Vec<Result<(), String>>, Fault> {
    let mut res: Vec<Result<(), String>> = wanted.iter().map(|_| Ok(())).collect();

    // 1. GL account codes → Tryton account ids.
    let company = rpc.session().await?.company;
    let mut gl_codes: Vec<&str> = Vec::new();
    for w in wanted {
        for a in [&w.line.income, &w.line.expense].into_iter().flatten() {
            if !gl_codes.contains(&a.code.as_str()) {
                gl_codes.push(&a.code);
            }
        }
    }
    let accounts = rpc
        .search_read(
            "account.account",
            json!([
                ["code", "in", gl_codes],
                ["closed", "!=", true],
                ["company", "=", company]
            ]),
            None,
            json!([["id", "ASC"]]),
            &["code", "type.revenue", "type.expense"],
            true,
        )
        .await?;
    let account_id = |a: &GlAccount, flag: &str| -> Result<i64, String> {
        let same: Vec<&Value> = accounts
            .iter()
            .filter(|r| r.get("code").and_then(Value::as_str) == Some(a.code.as_str()))
            .collect();
        same.iter()
            .find(|r| as_bool(r.get("type.").and_then(|t| t.get(flag))))
            .or(same.first())
            .and_then(|r| as_id(r.get("id")))
            .ok_or_else(|| {
                format!(
                    "the GL account '{}' ({}) is not an open account of Tryton's chart",
                    a.code, a.name
                )
            })
    };
    let mut pairs: Vec<Option<Pair>> = Vec::with_capacity(wanted.len());
    let mut names: HashMap<Pair, String> = HashMap::new();
    for (k, w) in wanted.iter().enumerate() {
        let inc = w
            .line
            .income
            .as_ref()
            .map(|a| account_id(a, "revenue"))
            .transpose();
        let exp = w
            .line
            .expense
            .as_ref()
            .map(|a| account_id(a, "expense"))
            .transpose();
        match (inc, exp) {
            (Ok(i), Ok(e)) => {
                let code =
                    |a: &Option<GlAccount>| a.as_ref().map_or("-".to_owned(), |a| a.code.clone());
                let name = format!(
                    "Costbridge {} | {}",
                    code(&w.line.income),
                    code(&w.line.expense)
                )
                .replace(" / ", "/");
                names.entry((i, e)).or_insert(name);
                pairs.push(Some((i, e)));
            }
            (Err(m), _) | (_, Err(m)) => {
                res[k] = Err(m);
                pairs.push(None);
            }
        }
    }

    // 2. One accounting category per pair: found by name, its accounts put right if they were
    //    changed in Tryton, else created.
    let category = categories(rpc, &names).await?;

    // 3. Templates by code (the previous code too, for a renamed code).
    let mut codes: Vec<&str> = Vec::new();
    for w in wanted {
        codes.push(&w.line.full_code);
        if let Some(p) = &w.line.previous
            && p.full_code != w.line.full_code
        {
            codes.push(&p.full_code);
        }
    }
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

    // 4. Create or update each line's template.
    let mut creates: Vec<(usize, i64)> = Vec::new();
    let mut updates: Vec<(usize, i64, Template)> = Vec::new();
    let mut taken = HashSet::new();
    for (k, w) in wanted.iter().enumerate() {
        if res[k].is_err() {
            continue;
        }
        let Some(pair) = pairs[k] else { continue };
        let cat = match category.get(&pair) {
            Some(Ok(c)) => *c,
            Some(Err(m)) => {
                res[k] = Err(m.clone());
                continue;
            }
            None => continue,
        };
        let l = w.line;
        let mut found = by_code.get(&l.full_code).cloned().unwrap_or_default();
        if found.is_empty()
            && let Some(p) = &l.previous
        {
            found = by_code.get(&p.full_code).cloned().unwrap_or_default();
        }
        match &found[..] {
            [] => creates.push((k, cat)),
            [t] if taken.insert(t.id) => updates.push((k, cat, t.clone())),
            [t] => {
                res[k] = Err(format!(
                    "the service product {} is claimed by two codes of this export",
                    t.id
                ));
            }
            many => {
                res[k] = Err(format!(
                    "{} service products in Tryton have the code '{}'; keep one and export again",
                    many.len(),
                    l.full_code
                ));
            }
        }
    }

    // Creates (with their variant), at most 80 per call.
    let mut deactivate_new: Vec<(usize, i64)> = Vec::new();
    if !creates.is_empty() {
        let uom = rpc
            .model(
                "ir.model.data",
                "get_id",
                vec![json!("product"), json!("uom_unit")],
                true,
            )
            .await?;
        let items: Vec<Item> = creates
            .iter()
            .map(|&(k, cat)| Item {
                vals: json!({
                    "code": wanted[k].line.full_code,
                    "name": wanted[k].name,
                    "type": "service",
                    "default_uom": uom,
                    "account_category": cat,
                    "products": [["create", [{}]]],
                }),
                id: 0,
                tag: Some(format!("\"[{}] ", wanted[k].line.full_code)),
            })
            .collect();
        let results = apply(rpc, "product.template", true, &items, TEMPLATE_CHUNK)
            .await
            .map_err(unavailable)?;
        for (&(k, _), r) in creates.iter().zip(results) {
            match r {
                Ok(id) if !wanted[k].line.active => deactivate_new.push((k, id)),
                Ok(_) => {}
                Err(m) => res[k] = Err(with_hint(&m)),
            }
        }
    }

    // Updates: reactivate first (an inactive template is read-only), then edit.
    let reactivate: Vec<Item> = updates
        .iter()
        .filter(|(k, cat, t)| {
            !t.active && (wanted[*k].line.active || !edits(&wanted[*k], *cat, t).is_empty())
        })
        .map(|(_, _, t)| Item {
            vals: json!({"active": true}),
            id: t.id,
            tag: None,
        })
        .collect();
    let reactivated = apply(rpc, "product.template", false, &reactivate, CHUNK)
        .await
        .map_err(unavailable)?;
    let mut now_active: HashSet<i64> = HashSet::new();
    for (item, r) in reactivate.iter().zip(reactivated) {
        match r {
            Ok(_) => {
                now_active.insert(item.id);
            }
            Err(m) => {
                if let Some((k, _, _)) = updates.iter().find(|(_, _, t)| t.id == item.id) {
                    res[*k] = Err(with_hint(&m));
                }
            }
        }
    }
    let mut items = Vec::new();
    let mut who = Vec::new();
    let mut variants: Vec<Item> = Vec::new();
    for (k, cat, t) in &updates {
        if res[*k].is_err() {
            continue;
        }
        let w = &wanted[*k];
        let active_now = t.active || now_active.contains(&t.id);
        let mut vals = edits(w, *cat, t);
        if active_now && !w.line.active {
            vals.insert("active".into(), Value::Bool(false));
        }
        if !vals.is_empty() {
            items.push(Item {
                vals: Value::Object(vals),
                id: t.id,
                tag: Some(format!("\"[{}] ", w.line.full_code)),
            });
            who.push(*k);
        }
    }
    let results = apply(rpc, "product.template", false, &items, CHUNK)
        .await
        .map_err(unavailable)?;
    for (k, r) in who.into_iter().zip(results) {
        if let Err(m) = r {
            res[k] = Err(with_hint(&m));
        }
    }
    for (k, _, t) in &updates {
        let active = wanted[*k].line.active;
        if res[*k].is_ok() && t.active != active {
            variants.extend(t.variants.iter().map(|&v| Item {
                vals: json!({"active": active}),
                id: v,
                tag: None,
            }));
        }
    }

    // New templates of inactive codes: deactivate them and their variants.
    if !deactivate_new.is_empty() {
        let ids: Vec<i64> = deactivate_new.iter().map(|&(_, id)| id).collect();
        let found = rpc
            .search_read(
                "product.product",
                json!([["template", "in", ids]]),
                None,
                Value::Null,
                &["template"],
                false,
            )
            .await?;
        variants.extend(
            found
                .iter()
                .filter_map(|r| as_id(r.get("id")))
                .map(|v| Item {
                    vals: json!({"active": false}),
                    id: v,
                    tag: None,
                }),
        );
        let items: Vec<Item> = ids
            .iter()
            .map(|&id| Item {
                vals: json!({"active": false}),
                id,
                tag: None,
            })
            .collect();
        let results = apply(rpc, "product.template", false, &items, CHUNK)
            .await
            .map_err(unavailable)?;
        for (&(k, _), r) in deactivate_new.iter().zip(results) {
            if let Err(m) = r {
                res[k] = Err(with_hint(&m));
            }
        }
    }
    // Variants follow their template's active flag (Tryton does not do it by itself, and an
    // active variant keeps its code taken).
    for r in apply(rpc, "product.product", false, &variants, CHUNK)
        .await
        .map_err(unavailable)?
    {
        if let Err(m) = r {
            tracing::warn!("could not change a Tryton product variant's active flag: {m}");
        }
    }
    Ok(res)
}

/// The template fields that differ from what the line wants (`active` aside).
fn edits(w: &Wanted, category: i64, t: &Template) -> Map<String, Value> {
    let mut vals = Map::new();
    if t.code != w.line.full_code {
        vals.insert("code".into(), json!(w.line.full_code));
    }
    if t.name != w.name {
        vals.insert("name".into(), json!(w.name));
    }
    if t.category != Some(category) {
        vals.insert("account_category".into(), json!(category));
    }
    if t.variants.is_empty() {
        vals.insert("products".into(), json!([["create", [{}]]]));
    }
    vals
}

/// The accounting category of each pair, found by name (and corrected) or created.
async fn categories(
    rpc: &Rpc,
    names: &HashMap<Pair, String>,
) -> Result<HashMap<Pair, Result<i64, String>>, Fault> {
    let mut out = HashMap::new();
    if names.is_empty() {
        return Ok(out);
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
    let mut creates: Vec<(Pair, Item)> = Vec::new();
    let mut fixes: Vec<(Pair, Item)> = Vec::new();
    for (&pair, name) in names {
        let same_name: Vec<&Value> = found
            .iter()
            .filter(|r| r.get("name").and_then(Value::as_str) == Some(name.as_str()))
            .collect();
        let accounts = |r: &Value| {
            (
                as_id(r.get("account_revenue")),
                as_id(r.get("account_expense")),
            )
        };
        let vals = json!({
            "name": name,
            "accounting": true,
            "account_revenue": pair.0,
            "account_expense": pair.1,
        });
        if let Some(id) = same_name
            .iter()
            .find(|r| accounts(r) == pair)
            .and_then(|r| as_id(r.get("id")))
        {
            out.insert(pair, Ok(id));
        } else if let Some(id) = same_name.first().and_then(|r| as_id(r.get("id"))) {
            tracing::warn!(
                id,
                "the Tryton category {name} had other GL accounts; putting them back"
            );
            fixes.push((
                pair,
                Item {
                    vals: json!({"account_revenue": pair.0, "account_expense": pair.1}),
                    id,
                    tag: None,
                },
            ));
        } else {
            creates.push((
                pair,
                Item {
                    vals,
                    id: 0,
                    tag: None,
                },
            ));
        }
    }
    for (create, list) in [(true, creates), (false, fixes)] {
        if list.is_empty() {
            continue;
        }
        let items: Vec<Item> = list
            .iter()
            .map(|(_, i)| Item {
                vals: i.vals.clone(),
                id: i.id,
                tag: None,
            })
            .collect();
        let results = apply(rpc, "product.category", create, &items, CHUNK)
            .await
            .map_err(unavailable)?;
        for ((pair, _), r) in list.into_iter().zip(results) {
            out.insert(pair, r.map_err(|m| with_hint(&m)));
        }
    }
    Ok(out)
}
