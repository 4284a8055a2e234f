//! Export: one analytic account per cost code, idempotent by looking codes up before writing.
//!
//! The round trips for a batch of new codes: find the root, one bulk `search_read` by code
//! (1,000 codes per call), one `create` per tier level (1,000 records per call). Updates add
//! one `write` call for all changed rows (plus one before, to reactivate inactive records, which
//! Tryton keeps read-only), and codes with GL accounts add the product calls (`products`).
use super::rpc::{Fault, Rpc, as_bool, as_id, as_text};
use super::{ANALYTIC, Item, ROOT_CODE, apply, down, find_root, products, with_hint};
use crate::{ConnectorError, ExportContext, ExportLine, LineResult, Previous, fit_description};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// Records per `create`/`write` call and codes per lookup (the verified sweet spot).
const CHUNK: usize = 1000;

/// An analytic account as Tryton holds it now.
#[derive(Debug, Clone)]
pub(super) struct Account {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub active: bool,
    pub kind: String,
    pub parent: Option<i64>,
    pub has_children: bool,
}

#[derive(Debug, Clone, Copy)]
enum Parent {
    Id(i64),
    /// A code of this batch that is created in this batch.
    Line(usize),
}

struct Row<'a> {
    line: &'a ExportLine,
    name: &'a str,
    existing: Option<Account>,
    parent: Option<Parent>,
    view: bool,
    id: Option<i64>,
    failed: Option<String>,
}

impl Row<'_> {
    fn ok(&self) -> bool {
        self.failed.is_none()
    }
}

pub(super) async fn export(
    rpc: &Rpc,
    ctx: &ExportContext,
    lines: &[ExportLine],
) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
    let started = Instant::now();
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    let root = find_root(rpc, true).await.map_err(down)?.ok_or_else(|| {
        ConnectorError::Unavailable(format!(
            "Tryton did not create the analytic root {ROOT_CODE}"
        ))
    })?;

    // 1. Everything this batch refers to, in bulk: its codes, its parents' codes, its origin ids.
    let mut codes: Vec<&str> = Vec::new();
    let mut seen = HashSet::new();
    for l in lines {
        for c in std::iter::once(l.full_code.as_str()).chain(l.parent_full_code.as_deref()) {
            if seen.insert(c) {
                codes.push(c);
            }
        }
    }
    let origin_ids: Vec<i64> = lines
        .iter()
        .filter_map(|l| l.origin_id.as_deref().and_then(|o| o.trim().parse().ok()))
        .collect();
    let found = find_accounts(rpc, root, &codes, &origin_ids)
        .await
        .map_err(down)?;
    let by_id: HashMap<i64, &Account> = found.iter().map(|a| (a.id, a)).collect();
    let mut by_code: HashMap<&str, Vec<&Account>> = HashMap::new();
    for a in &found {
        by_code.entry(a.code.as_str()).or_default().push(a);
    }

    // 2. What each line is: an update of an existing account, or a new one.
    let mut rows: Vec<Row> = Vec::with_capacity(lines.len());
    let mut in_batch: HashMap<&str, usize> = HashMap::new();
    for (i, l) in lines.iter().enumerate() {
        let name = fit_description(&l.description, ctx.max_description);
        let mut row = Row {
            line: l,
            name,
            existing: None,
            parent: None,
            view: false,
            id: None,
            failed: None,
        };
        if in_batch.contains_key(l.full_code.as_str()) {
            row.failed = Some(format!(
                "the code '{}' appears twice in this export",
                l.full_code
            ));
            rows.push(row);
            continue;
        }
        in_batch.insert(l.full_code.as_str(), i);
        let same_code = by_code
            .get(l.full_code.as_str())
            .map_or(&[][..], Vec::as_slice);
        let by_origin = l
            .origin_id
            .as_deref()
            .and_then(|o| o.trim().parse::<i64>().ok())
            .and_then(|id| by_id.get(&id).copied());
        match (by_origin, same_code) {
            (Some(a), _) => {
                if let Some(other) = same_code.iter().find(|o| o.id != a.id) {
                    row.failed = Some(format!(
                        "the code '{}' is already used by another analytic account in Tryton (id {}, \"{}\"); give that account another code (or delete it) in Tryton first",
                        l.full_code, other.id, other.name
                    ));
                }
                row.existing = Some(a.clone());
            }
            (None, []) => {
                if let Some(o) = &l.origin_id {
                    tracing::warn!(code = %l.full_code, origin_id = %o, "the synced analytic account is gone from Tryton; creating it again");
                }
            }
            (None, [a]) => row.existing = Some((*a).clone()),
            (None, many) => {
                let ids: Vec<String> = many.iter().map(|a| a.id.to_string()).collect();
                row.failed = Some(format!(
                    "{} analytic accounts in Tryton have the code '{}' (ids {}); keep one (give the others another code, or delete them, in Tryton) and export again",
                    many.len(),
                    l.full_code,
                    ids.join(", ")
                ));
            }
        }
        if row.failed.is_none()
            && let (Some(a), Some(prev)) = (&row.existing, &l.previous)
        {
            row.failed = conflict(a, prev, l, name, ctx.max_description);
        }
        rows.push(row);
    }

    // 3. Parents: a code of this batch, else an existing account, else the root for tier 1.
    for i in 0..rows.len() {
        if rows[i].failed.is_some() && rows[i].existing.is_none() {
            continue;
        }
        let l = rows[i].line;
        let parent = match l.parent_full_code.as_deref() {
            None => Ok(Parent::Id(root)),
            Some(p) if p == l.full_code => Err(format!("the code '{p}' cannot be its own parent")),
            Some(p) => match in_batch.get(p).copied() {
                Some(j) => match (&rows[j].existing, &rows[j].failed) {
                    (Some(a), _) => Ok(Parent::Id(a.id)),
                    (None, None) => Ok(Parent::Line(j)),
                    (None, Some(_)) => Err(format!(
                        "the parent code '{p}' could not be exported, see its own message"
                    )),
                },
                None => match by_code.get(p).map_or(&[][..], Vec::as_slice) {
                    [a] => Ok(Parent::Id(a.id)),
                    [] => Err(format!(
                        "the parent code '{p}' does not exist in Tryton (under {ROOT_CODE}); export the parent first"
                    )),
                    many => Err(format!(
                        "the parent code '{p}' is used by {} analytic accounts in Tryton; keep one and export again",
                        many.len()
                    )),
                },
            },
        };
        match parent {
            Ok(p) => rows[i].parent = Some(p),
            Err(m) => {
                if rows[i].failed.is_none() {
                    rows[i].failed = Some(m);
                }
            }
        }
    }

    // 4. Types: a code with children is a `view`.
    let mut parent_ids: HashSet<i64> = HashSet::new();
    let mut parent_lines: HashSet<usize> = HashSet::new();
    for r in rows.iter().filter(|r| r.ok()) {
        match r.parent {
            Some(Parent::Id(p)) => {
                parent_ids.insert(p);
            }
            Some(Parent::Line(j)) => {
                parent_lines.insert(j);
            }
            None => {}
        }
    }
    for (i, r) in rows.iter_mut().enumerate() {
        r.view = parent_lines.contains(&i)
            || r.existing
                .as_ref()
                .is_some_and(|a| a.has_children || parent_ids.contains(&a.id));
    }

    // 5. Reactivate inactive accounts that are to be edited (an inactive record is read-only).
    let mut reactivated: HashSet<usize> = HashSet::new();
    {
        let mut items = Vec::new();
        let mut who = Vec::new();
        for (i, r) in rows.iter().enumerate().filter(|(_, r)| r.ok()) {
            let Some(a) = &r.existing else { continue };
            let moves_to_new = matches!(r.parent, Some(Parent::Line(_)));
            if !a.active && (r.line.active || moves_to_new || !edits(r, &rows).is_empty()) {
                items.push(Item {
                    vals: json!({"active": true}),
                    id: a.id,
                    tag: None,
                });
                who.push(i);
            }
        }
        let results = apply(rpc, ANALYTIC, false, &items, CHUNK).await?;
        for (i, res) in who.into_iter().zip(results) {
            match res {
                Ok(_) => {
                    reactivated.insert(i);
                    if let Some(a) = rows[i].existing.as_mut() {
                        a.active = true;
                    }
                }
                Err(m) => rows[i].failed = Some(with_hint(&m)),
            }
        }
    }

    // 6. New accounts, one create per tier level (children need their parent's id).
    let mut level: Vec<Option<usize>> = vec![None; rows.len()];
    for i in 0..rows.len() {
        level[i] = create_level(&rows, &level, i);
    }
    let max_level = level.iter().flatten().copied().max().map_or(0, |m| m + 1);
    let mut created = 0usize;
    for depth in 0..max_level {
        let mut items = Vec::new();
        let mut who = Vec::new();
        for i in 0..rows.len() {
            if level[i] != Some(depth) || !rows[i].ok() {
                continue;
            }
            let parent = match rows[i].parent {
                Some(Parent::Id(p)) => p,
                Some(Parent::Line(j)) => match rows[j].id {
                    Some(p) => p,
                    None => {
                        rows[i].failed = Some(format!(
                            "the parent code '{}' could not be created, see its own message",
                            rows[j].line.full_code
                        ));
                        continue;
                    }
                },
                None => continue,
            };
            let r = &rows[i];
            items.push(Item {
                vals: json!({
                    "name": r.name,
                    "code": r.line.full_code,
                    "type": if r.view { "view" } else { "normal" },
                    "root": root,
                    "parent": parent,
                    "state": "opened",
                }),
                id: 0,
                tag: Some(format!("\"{} - ", r.line.full_code)),
            });
            who.push(i);
        }
        let results = apply(rpc, ANALYTIC, true, &items, CHUNK).await?;
        for (i, res) in who.into_iter().zip(results) {
            match res {
                Ok(id) => {
                    rows[i].id = Some(id);
                    created += 1;
                }
                Err(m) => rows[i].failed = Some(with_hint(&m)),
            }
        }
    }

    // 7. Edits of existing accounts (moves included, after the new parents exist), parents that
    //    get children become views, and new codes that are inactive get deactivated.
    for i in 0..rows.len() {
        if let (true, Some(_), Some(Parent::Line(j))) =
            (rows[i].ok(), &rows[i].existing, rows[i].parent)
            && rows[j].id.is_none()
        {
            rows[i].failed = Some(format!(
                "the new parent code '{}' could not be created, see its own message",
                rows[j].line.full_code
            ));
        }
    }
    let mut items = Vec::new();
    let mut who: Vec<Option<usize>> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        if !r.ok() {
            continue;
        }
        if let Some(a) = &r.existing {
            let mut vals = edits(r, &rows);
            if a.active && !r.line.active {
                vals.insert("active".into(), Value::Bool(false));
            }
            if !vals.is_empty() {
                items.push(Item {
                    vals: Value::Object(vals),
                    id: a.id,
                    tag: Some(format!("\"{} - ", r.line.full_code)),
                });
                who.push(Some(i));
            }
        } else if let (Some(id), false) = (r.id, r.line.active) {
            items.push(Item {
                vals: json!({"active": false}),
                id,
                tag: None,
            });
            who.push(Some(i));
        }
    }
    // Parents outside this batch (or unchanged in it) that get a child while `normal`.
    let in_rows: HashSet<i64> = rows
        .iter()
        .filter_map(|r| r.existing.as_ref().map(|a| a.id))
        .collect();
    let mut switched = HashSet::new();
    for a in &found {
        if parent_ids.contains(&a.id)
            && !in_rows.contains(&a.id)
            && a.kind == "normal"
            && a.active
            && switched.insert(a.id)
        {
            items.push(Item {
                vals: json!({"type": "view"}),
                id: a.id,
                tag: None,
            });
            who.push(None);
        }
    }
    let results = apply(rpc, ANALYTIC, false, &items, CHUNK).await?;
    let mut updated = 0usize;
    let mut undo = Vec::new();
    for ((w, res), item) in who.into_iter().zip(results).zip(&items) {
        match (w, res) {
            (Some(i), Ok(_)) => {
                if rows[i].existing.is_some() {
                    updated += 1;
                }
            }
            (Some(i), Err(m)) => rows[i].failed = Some(with_hint(&m)),
            (None, Ok(_)) => {}
            (None, Err(m)) => {
                tracing::warn!(
                    id = item.id,
                    "could not make the Tryton parent account a view: {m}"
                );
            }
        }
    }
    // A failed row leaves Tryton as it was: deactivate again what step 5 reactivated for it.
    for &i in &reactivated {
        if let (false, Some(a)) = (rows[i].ok(), &rows[i].existing) {
            undo.push(Item {
                vals: json!({"active": false}),
                id: a.id,
                tag: None,
            });
        }
    }
    if !undo.is_empty() {
        for res in apply(rpc, ANALYTIC, false, &undo, CHUNK).await? {
            if let Err(m) = res {
                tracing::warn!("could not deactivate a Tryton analytic account again: {m}");
            }
        }
    }
    for r in rows.iter_mut() {
        if r.ok()
            && r.id.is_none()
            && let Some(a) = &r.existing
        {
            r.id = Some(a.id);
        }
    }

    // 8. Service products for codes with GL accounts.
    let with_gl: Vec<usize> = (0..rows.len())
        .filter(|&i| {
            rows[i].ok()
                && rows[i].id.is_some()
                && (rows[i].line.income.is_some() || rows[i].line.expense.is_some())
        })
        .collect();
    if !with_gl.is_empty() {
        let wanted: Vec<products::Wanted> = with_gl
            .iter()
            .map(|&i| products::Wanted {
                line: rows[i].line,
                name: rows[i].name,
            })
            .collect();
        let results = products::sync(rpc, &wanted).await?;
        for (i, res) in with_gl.into_iter().zip(results) {
            if let Err(m) = res {
                rows[i].failed = Some(format!(
                    "the analytic account was exported (id {}), but its service product for the GL accounts was not: {m}",
                    rows[i].id.unwrap_or_default()
                ));
            }
        }
    }

    let failed = rows.iter().filter(|r| !r.ok()).count();
    tracing::info!(
        lines = lines.len(),
        created,
        updated,
        failed,
        ms = started.elapsed().as_millis() as u64,
        "Tryton export batch done"
    );
    Ok(rows
        .into_iter()
        .map(|r| {
            let result = match (r.failed, r.id) {
                (None, Some(id)) => LineResult::Synced {
                    origin_id: id.to_string(),
                },
                (Some(message), _) => LineResult::Failed { message },
                (None, None) => LineResult::Failed {
                    message: "not exported (no account id)".into(),
                },
            };
            (r.line.item_id, result)
        })
        .collect())
}

/// The tier level at which a new row is created (0 when its parent exists), `None` for rows
/// that are not created.
fn create_level(rows: &[Row], level: &[Option<usize>], i: usize) -> Option<usize> {
    let r = &rows[i];
    if r.existing.is_some() || !r.ok() {
        return None;
    }
    // Walk up the chain of parents created in this batch (parents normally come first, so
    // their level is known; the walk also copes with any order and stops on a cycle).
    let mut depth = 0;
    let mut at = i;
    loop {
        match rows[at].parent? {
            Parent::Id(_) => return Some(depth),
            Parent::Line(j) => {
                if let Some(l) = level[j] {
                    return Some(depth + l + 1);
                }
                depth += 1;
                at = j;
                if depth > rows.len() {
                    return None;
                }
            }
        }
    }
}

/// The fields of an existing account that differ from what the row wants (`active` aside).
fn edits(r: &Row, rows: &[Row]) -> Map<String, Value> {
    let mut vals = Map::new();
    let Some(a) = &r.existing else { return vals };
    if a.code != r.line.full_code {
        vals.insert("code".into(), json!(r.line.full_code));
    }
    if a.name != r.name {
        vals.insert("name".into(), json!(r.name));
    }
    let parent = match r.parent {
        Some(Parent::Id(p)) => Some(p),
        Some(Parent::Line(j)) => rows[j].id,
        None => None,
    };
    if let Some(p) = parent
        && a.parent != Some(p)
    {
        vals.insert("parent".into(), json!(p));
    }
    let kind = if r.view { "view" } else { "normal" };
    if a.kind != kind {
        vals.insert("type".into(), json!(kind));
    }
    vals
}

/// `conflict: …` when Tryton's record changed since the last confirmed values and is not
/// already what this export wants.
fn conflict(
    a: &Account,
    prev: &Previous,
    l: &ExportLine,
    name: &str,
    max: Option<usize>,
) -> Option<String> {
    let same_name_as_prev =
        a.name == prev.description || a.name == fit_description(&prev.description, max);
    let as_prev = a.code == prev.full_code && same_name_as_prev && a.active == prev.active;
    let as_new = a.code == l.full_code && a.name == name && a.active == l.active;
    if as_prev || as_new {
        return None;
    }
    let state = |active: bool| if active { "active" } else { "inactive" };
    Some(format!(
        "conflict: the analytic account was changed in Tryton since the last export, so it was not overwritten. Tryton has: code '{}', name '{}', {}. Costbridge last confirmed: code '{}', name '{}', {}. Change it back in Tryton, or edit the code here to match Tryton, then export again.",
        a.code,
        a.name,
        state(a.active),
        prev.full_code,
        prev.description,
        state(prev.active)
    ))
}

/// The accounts under `root` with one of `codes` or one of `ids` (inactive ones included).
async fn find_accounts(
    rpc: &Rpc,
    root: i64,
    codes: &[&str],
    ids: &[i64],
) -> Result<Vec<Account>, Fault> {
    let mut out: Vec<Account> = Vec::new();
    let mut seen = HashSet::new();
    let chunks = codes.len().div_ceil(CHUNK).max(1);
    for k in 0..chunks {
        let part = &codes[(k * CHUNK).min(codes.len())..((k + 1) * CHUNK).min(codes.len())];
        let mut domain = vec![json!(["root", "=", root])];
        if k == 0 && !ids.is_empty() {
            domain.push(json!(["OR", ["code", "in", part], ["id", "in", ids]]));
        } else if part.is_empty() {
            continue;
        } else {
            domain.push(json!(["code", "in", part]));
        }
        let found = rpc
            .search_read(
                ANALYTIC,
                Value::Array(domain),
                None,
                json!([["id", "ASC"]]),
                &["code", "name", "active", "type", "parent", "childs"],
                false,
            )
            .await?;
        for r in found {
            let Some(id) = as_id(r.get("id")) else {
                continue;
            };
            if !seen.insert(id) {
                continue;
            }
            out.push(Account {
                id,
                code: as_text(r.get("code")).unwrap_or_default(),
                name: as_text(r.get("name")).unwrap_or_default(),
                active: as_bool(r.get("active")),
                kind: as_text(r.get("type")).unwrap_or_default(),
                parent: as_id(r.get("parent")),
                has_children: r
                    .get("childs")
                    .and_then(Value::as_array)
                    .is_some_and(|c| !c.is_empty()),
            });
        }
    }
    Ok(out)
}
