//! What every Tryton step shares: the cost-code root, reading faults as connector errors, and
//! writing many records in calls that split themselves when Tryton refuses one. The connector
//! (`mod.rs`), the export and the products steps all build on it; it builds on `rpc` alone.
use super::rpc::{Fault, Rpc, as_bool, as_id};
use crate::ConnectorError;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;

/// The code of the analytic root account that holds the cost-code tree.
pub(crate) const ROOT_CODE: &str = "COSTCODES";
const ROOT_NAME: &str = "Cost codes";
pub(super) const ANALYTIC: &str = "analytic_account.account";

pub(super) fn down(f: Fault) -> ConnectorError {
    match f {
        Fault::Down(m) => ConnectorError::Unavailable(m),
        Fault::Refused(m) => {
            ConnectorError::Unavailable(format!("Tryton refused the request: {m}"))
        }
    }
}

/// The id of the root analytic account `COSTCODES` (the lowest id if several), created when
/// missing and `create` is set.
pub(super) async fn find_root(rpc: &Rpc, create: bool) -> Result<Option<i64>, Fault> {
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
    rpc: &Rpc, model: &str, create: bool, items: &[Item], chunk: usize,
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
    items: &[Item], chunk: usize, call: F, create: bool,
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
