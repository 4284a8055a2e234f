//! What each line of an export batch is, against the accounts Tryton holds: an update (found by
//! origin id, else by code) or a new account, its parent, and why it cannot be exported (a code
//! twice, a conflict, a missing parent). Pure functions over the rows `plan` keeps.
use super::super::calls::ROOT_CODE;
use crate::{ExportLine, Previous, fit_description};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

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
pub(super) enum Parent {
    Id(i64),
    /// A code of this batch that is created in this batch.
    Line(usize),
}

pub(super) struct Row<'a> {
    pub line: &'a ExportLine<'a>,
    /// The description as exported (cut to the profile's length).
    pub name: &'a str,
    pub existing: Option<Account>,
    pub parent: Option<Parent>,
    /// A code with children is a `view`.
    pub view: bool,
    pub id: Option<i64>,
    pub failed: Option<String>,
}

impl Row<'_> {
    pub fn ok(&self) -> bool {
        self.failed.is_none()
    }
}

pub(super) fn origin_id(l: &ExportLine<'_>) -> Option<i64> {
    l.origin_id.and_then(|o| o.trim().parse().ok())
}

/// A line as an update of an existing account (found by origin id, else by code) or a new one,
/// or why it cannot be exported.
pub(super) fn classify<'a>(
    l: &'a ExportLine<'a>, max_description: Option<usize>, in_batch: &HashMap<&str, usize>,
    by_id: &HashMap<i64, &Account>, by_code: &HashMap<&str, Vec<&Account>>,
) -> Row<'a> {
    let name = fit_description(l.description, max_description);
    let mut row = Row {
        line: l,
        name,
        existing: None,
        parent: None,
        view: false,
        id: None,
        failed: None,
    };
    if in_batch.contains_key(l.full_code) {
        row.failed = Some(format!(
            "the code '{}' appears twice in this export",
            l.full_code
        ));
        return row;
    }
    let same_code = by_code.get(l.full_code).map_or(&[][..], Vec::as_slice);
    let by_origin = origin_id(l).and_then(|id| by_id.get(&id).copied());
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
        row.failed = conflict(a, prev, l, name, max_description);
    }
    row
}

/// A row's parent: a code of this batch, else an existing account, else the root for tier 1.
pub(super) fn parent(
    rows: &[Row], i: usize, root: i64, in_batch: &HashMap<&str, usize>,
    by_code: &HashMap<&str, Vec<&Account>>,
) -> Result<Parent, String> {
    let l = rows[i].line;
    let Some(p) = l.parent_full_code else {
        return Ok(Parent::Id(root));
    };
    if p == l.full_code {
        return Err(format!("the code '{p}' cannot be its own parent"));
    }
    match in_batch.get(p).copied() {
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
    }
}

/// The tier level at which a new row is created (0 when its parent exists), `None` for rows
/// that are not created.
pub(super) fn create_level(rows: &[Row], level: &[Option<usize>], i: usize) -> Option<usize> {
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
pub(super) fn edits(r: &Row, rows: &[Row]) -> Map<String, Value> {
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
    a: &Account, prev: &Previous<'_>, l: &ExportLine<'_>, name: &str, max: Option<usize>,
) -> Option<String> {
    let same_name_as_prev =
        a.name == prev.description || a.name == fit_description(prev.description, max);
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
