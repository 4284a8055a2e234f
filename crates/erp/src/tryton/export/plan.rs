//! What one export batch does to Tryton's analytic accounts, decided from what Tryton holds now:
//! which lines update an existing account and which create one (at which tier level), which
//! fail before anything is written (a code twice, a conflict, a missing parent), and the rows of
//! each `create`/`write` step. No I/O: the caller looks the accounts up, runs each step over RPC
//! and hands the results back, in the order of the steps below.
use super::super::calls::{Item, with_hint};
use super::super::products;
use super::rows::{Account, Parent, Row, classify, create_level, edits, origin_id, parent};
use crate::{ExportLine, LineResult};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};

/// The rows of one `create` or `write` call and, for each, the line it is for (`None`: an
/// account outside the batch, e.g. a parent that becomes a view).
pub(super) struct Step<W> {
    pub items: Vec<Item>,
    pub who: Vec<W>,
}

impl<W> Step<W> {
    fn new() -> Self {
        Step {
            items: Vec::new(),
            who: Vec::new(),
        }
    }

    fn push(&mut self, who: W, item: Item) {
        self.who.push(who);
        self.items.push(item);
    }
}

/// The codes to look up (the batch's and their parents', each once) and the origin ids.
pub(super) fn lookups<'a>(lines: &[ExportLine<'a>]) -> (Vec<&'a str>, Vec<i64>) {
    let mut codes: Vec<&str> = Vec::new();
    let mut seen = HashSet::new();
    for l in lines {
        for c in std::iter::once(l.full_code).chain(l.parent_full_code) {
            if seen.insert(c) {
                codes.push(c);
            }
        }
    }
    let origin_ids = lines.iter().filter_map(origin_id).collect();
    (codes, origin_ids)
}

pub(super) struct Plan<'a> {
    rows: Vec<Row<'a>>,
    root: i64,
    found: Vec<Account>,
    /// Existing accounts that are the parent of a row.
    parent_ids: HashSet<i64>,
    /// The tier level at which each new row is created.
    level: Vec<Option<usize>>,
    reactivated: HashSet<usize>,
    pub created: usize,
    pub updated: usize,
}

impl<'a> Plan<'a> {
    /// Each line as an update or a create, its parent, and its type, from the accounts found
    /// under `root` by [`lookups`].
    pub fn new(
        lines: &'a [ExportLine<'a>], max_description: Option<usize>, root: i64, found: Vec<Account>,
    ) -> Self {
        let mut rows: Vec<Row> = Vec::with_capacity(lines.len());
        {
            let by_id: HashMap<i64, &Account> = found.iter().map(|a| (a.id, a)).collect();
            let mut by_code: HashMap<&str, Vec<&Account>> = HashMap::new();
            for a in &found {
                by_code.entry(a.code.as_str()).or_default().push(a);
            }
            let mut in_batch: HashMap<&str, usize> = HashMap::new();
            for (i, l) in lines.iter().enumerate() {
                let row = classify(l, max_description, &in_batch, &by_id, &by_code);
                if !in_batch.contains_key(l.full_code) {
                    in_batch.insert(l.full_code, i);
                }
                rows.push(row);
            }
            for i in 0..rows.len() {
                if rows[i].failed.is_some() && rows[i].existing.is_none() {
                    continue;
                }
                match parent(&rows, i, root, &in_batch, &by_code) {
                    Ok(p) => rows[i].parent = Some(p),
                    Err(m) => {
                        if rows[i].failed.is_none() {
                            rows[i].failed = Some(m);
                        }
                    }
                }
            }
        }

        // A code with children is a `view`.
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

        let mut level: Vec<Option<usize>> = vec![None; rows.len()];
        for i in 0..rows.len() {
            level[i] = create_level(&rows, &level, i);
        }
        Plan {
            rows,
            root,
            found,
            parent_ids,
            level,
            reactivated: HashSet::new(),
            created: 0,
            updated: 0,
        }
    }

    /// Step 1: reactivate the inactive accounts that are to be edited (Tryton keeps an inactive
    /// record read-only).
    pub fn reactivations(&self) -> Step<usize> {
        let mut step = Step::new();
        for (i, r) in self.rows.iter().enumerate().filter(|(_, r)| r.ok()) {
            let Some(a) = &r.existing else { continue };
            let moves_to_new = matches!(r.parent, Some(Parent::Line(_)));
            if !a.active && (r.line.active || moves_to_new || !edits(r, &self.rows).is_empty()) {
                let item = Item {
                    vals: json!({"active": true}),
                    id: a.id,
                    tag: None,
                };
                step.push(i, item);
            }
        }
        step
    }

    pub fn reactivated(&mut self, step: Step<usize>, results: Vec<Result<i64, String>>) {
        for (i, res) in step.who.into_iter().zip(results) {
            match res {
                Ok(_) => {
                    self.reactivated.insert(i);
                    if let Some(a) = self.rows[i].existing.as_mut() {
                        a.active = true;
                    }
                }
                Err(m) => self.rows[i].failed = Some(with_hint(&m)),
            }
        }
    }

    /// How many tier levels of new accounts there are: one `create` step each.
    pub fn depths(&self) -> usize {
        self.level
            .iter()
            .flatten()
            .copied()
            .max()
            .map_or(0, |m| m + 1)
    }

    /// Step 2, once per level from 0: the new accounts of `depth` (children need their parent's
    /// id, so their level comes after it). A row whose new parent was not created fails here.
    pub fn creates(&mut self, depth: usize) -> Step<usize> {
        let mut step = Step::new();
        for i in 0..self.rows.len() {
            if self.level[i] != Some(depth) || !self.rows[i].ok() {
                continue;
            }
            let parent = match self.rows[i].parent {
                Some(Parent::Id(p)) => p,
                Some(Parent::Line(j)) => match self.rows[j].id {
                    Some(p) => p,
                    None => {
                        self.rows[i].failed = Some(format!(
                            "the parent code '{}' could not be created, see its own message",
                            self.rows[j].line.full_code
                        ));
                        continue;
                    }
                },
                None => continue,
            };
            let r = &self.rows[i];
            let item = Item {
                vals: json!({
                    "name": r.name,
                    "code": r.line.full_code,
                    "type": if r.view { "view" } else { "normal" },
                    "root": self.root,
                    "parent": parent,
                    "state": "opened",
                }),
                id: 0,
                tag: Some(format!("\"{} - ", r.line.full_code)),
            };
            step.push(i, item);
        }
        step
    }

    pub fn created(&mut self, step: Step<usize>, results: Vec<Result<i64, String>>) {
        for (i, res) in step.who.into_iter().zip(results) {
            match res {
                Ok(id) => {
                    self.rows[i].id = Some(id);
                    self.created += 1;
                }
                Err(m) => self.rows[i].failed = Some(with_hint(&m)),
            }
        }
    }

    /// Step 3: edits of existing accounts (moves included, now that the new parents exist),
    /// existing parents that get a child while `normal` become views, and new codes that are
    /// inactive get deactivated.
    pub fn edits(&mut self) -> Step<Option<usize>> {
        for i in 0..self.rows.len() {
            if let (true, Some(_), Some(Parent::Line(j))) = (
                self.rows[i].ok(),
                &self.rows[i].existing,
                self.rows[i].parent,
            ) && self.rows[j].id.is_none()
            {
                self.rows[i].failed = Some(format!(
                    "the new parent code '{}' could not be created, see its own message",
                    self.rows[j].line.full_code
                ));
            }
        }
        let mut step = Step::new();
        for (i, r) in self.rows.iter().enumerate() {
            if !r.ok() {
                continue;
            }
            if let Some(a) = &r.existing {
                let mut vals = edits(r, &self.rows);
                if a.active && !r.line.active {
                    vals.insert("active".into(), Value::Bool(false));
                }
                if !vals.is_empty() {
                    let item = Item {
                        vals: Value::Object(vals),
                        id: a.id,
                        tag: Some(format!("\"{} - ", r.line.full_code)),
                    };
                    step.push(Some(i), item);
                }
            } else if let (Some(id), false) = (r.id, r.line.active) {
                let item = Item {
                    vals: json!({"active": false}),
                    id,
                    tag: None,
                };
                step.push(Some(i), item);
            }
        }
        // Parents outside this batch (or unchanged in it) that get a child while `normal`.
        let in_rows: HashSet<i64> = self
            .rows
            .iter()
            .filter_map(|r| r.existing.as_ref().map(|a| a.id))
            .collect();
        let mut switched = HashSet::new();
        for a in &self.found {
            if self.parent_ids.contains(&a.id)
                && !in_rows.contains(&a.id)
                && a.kind == "normal"
                && a.active
                && switched.insert(a.id)
            {
                let item = Item {
                    vals: json!({"type": "view"}),
                    id: a.id,
                    tag: None,
                };
                step.push(None, item);
            }
        }
        step
    }

    /// Records step 3; returns what Tryton refused for accounts outside the batch (id and
    /// message), which fails no line.
    pub fn edited(
        &mut self, step: Step<Option<usize>>, results: Vec<Result<i64, String>>,
    ) -> Vec<(i64, String)> {
        let mut refused = Vec::new();
        for ((w, res), item) in step.who.into_iter().zip(results).zip(&step.items) {
            match (w, res) {
                (Some(i), Ok(_)) => {
                    if self.rows[i].existing.is_some() {
                        self.updated += 1;
                    }
                }
                (Some(i), Err(m)) => self.rows[i].failed = Some(with_hint(&m)),
                (None, Ok(_)) => {}
                (None, Err(m)) => refused.push((item.id, m)),
            }
        }
        refused
    }

    /// Step 4: a failed row leaves Tryton as it was, so what step 1 reactivated for it is
    /// deactivated again. Every row that went through now has its account id.
    pub fn undo(&mut self) -> Vec<Item> {
        let mut undo = Vec::new();
        for &i in &self.reactivated {
            if let (false, Some(a)) = (self.rows[i].ok(), &self.rows[i].existing) {
                undo.push(Item {
                    vals: json!({"active": false}),
                    id: a.id,
                    tag: None,
                });
            }
        }
        for r in self.rows.iter_mut() {
            if r.ok()
                && r.id.is_none()
                && let Some(a) = &r.existing
            {
                r.id = Some(a.id);
            }
        }
        undo
    }

    /// Step 5: the service products of the exported codes that carry GL accounts, with the
    /// row each is for.
    pub fn products(&self) -> (Vec<usize>, Vec<products::Wanted<'a>>) {
        (0..self.rows.len())
            .filter(|&i| {
                let r = &self.rows[i];
                r.ok() && r.id.is_some() && (r.line.income.is_some() || r.line.expense.is_some())
            })
            .map(|i| {
                let r = &self.rows[i];
                let wanted = products::Wanted {
                    line: r.line,
                    name: r.name,
                };
                (i, wanted)
            })
            .unzip()
    }

    pub fn products_synced(&mut self, who: Vec<usize>, results: Vec<Result<(), String>>) {
        for (i, res) in who.into_iter().zip(results) {
            if let Err(m) = res {
                self.rows[i].failed = Some(format!(
                    "the analytic account was exported (id {}), but its service product for the GL accounts was not: {m}",
                    self.rows[i].id.unwrap_or_default()
                ));
            }
        }
    }

    pub fn failed(&self) -> usize {
        self.rows.iter().filter(|r| !r.ok()).count()
    }

    /// One result per line, in the order of the lines.
    pub fn results(self) -> Vec<(i64, LineResult)> {
        self.rows
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
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GlKind, Previous};

    const ROOT: i64 = 1;

    fn line<'a>(id: i64, full: &'a str, parent: Option<&'a str>) -> ExportLine<'a> {
        ExportLine {
            parent_full_code: parent,
            ..crate::test_line(id, full)
        }
    }

    fn account(id: i64, code: &str, parent: i64, kind: &str) -> Account {
        Account {
            id,
            code: code.into(),
            name: format!("Desc {code}"),
            active: true,
            kind: kind.into(),
            parent: Some(parent),
            has_children: false,
        }
    }

    fn ok_all<W>(step: &Step<W>, first_id: i64) -> Vec<Result<i64, String>> {
        (0..step.items.len())
            .map(|k| Ok(first_id + k as i64))
            .collect()
    }

    fn message(results: &[(i64, LineResult)], item: i64) -> String {
        match results.iter().find(|(id, _)| *id == item) {
            Some((_, LineResult::Failed { message })) => message.clone(),
            other => panic!("line {item} did not fail: {other:?}"),
        }
    }

    #[test]
    fn lookups_name_each_code_and_parent_once() {
        let mut child = line(2, "01-100", Some("01"));
        child.origin_id = Some(" 42 ");
        let lines = [line(1, "01", None), child, line(3, "02-100", Some("02"))];
        let (codes, ids) = lookups(&lines);
        assert_eq!(codes, ["01", "01-100", "02-100", "02"]);
        assert_eq!(ids, [42]);
    }

    #[test]
    fn new_codes_are_created_tier_by_tier_under_their_new_parents() {
        let lines = [
            line(1, "01", None),
            line(2, "01-100", Some("01")),
            line(3, "01-100-20", Some("01-100")),
        ];
        let mut plan = Plan::new(&lines, None, ROOT, Vec::new());
        assert_eq!(plan.depths(), 3);
        assert!(plan.reactivations().items.is_empty());
        let mut parents = Vec::new();
        for depth in 0..3 {
            let step = plan.creates(depth);
            assert_eq!(step.who, [depth]);
            parents.push(step.items[0].vals["parent"].clone());
            assert_eq!(step.items[0].vals["root"], ROOT);
            let id = 100 + depth as i64;
            plan.created(step, vec![Ok(id)]);
        }
        assert_eq!(parents, [json!(ROOT), json!(100), json!(101)]);
        assert!(plan.edits().items.is_empty());
        assert!(plan.undo().is_empty());
        assert_eq!(plan.created, 3);
        let results = plan.results();
        assert_eq!(
            results[2],
            (
                3,
                LineResult::Synced {
                    origin_id: "102".into()
                }
            )
        );
    }

    #[test]
    fn types_follow_children_and_a_normal_parent_outside_the_batch_becomes_a_view() {
        let lines = [line(1, "01", None), line(2, "01-100", Some("01"))];
        // "01" exists as `normal`; the batch gives it a child, so the row makes it a view.
        let found = vec![account(10, "01", ROOT, "normal")];
        let mut plan = Plan::new(&lines, None, ROOT, found);
        let step = plan.creates(0);
        assert_eq!(step.items[0].vals["type"], "normal");
        assert_eq!(step.items[0].vals["parent"], 10);
        plan.created(step, vec![Ok(11)]);
        let step = plan.edits();
        assert_eq!(step.who, [Some(0)]);
        assert_eq!(step.items[0].vals, json!({"type": "view"}));

        // The same parent outside the batch is switched by a row of no line.
        let lines = [line(2, "01-100", Some("01"))];
        let found = vec![account(10, "01", ROOT, "normal")];
        let mut plan = Plan::new(&lines, None, ROOT, found);
        let step = plan.creates(0);
        plan.created(step, vec![Ok(11)]);
        let step = plan.edits();
        assert_eq!(step.who, [None]);
        assert_eq!(
            (step.items[0].id, &step.items[0].vals),
            (10, &json!({"type": "view"}))
        );
        let refused = plan.edited(step, vec![Err("no".into())]);
        assert_eq!(refused, [(10, "no".to_owned())]);
        assert!(matches!(plan.results()[0].1, LineResult::Synced { .. }));
    }

    #[test]
    fn an_existing_code_is_updated_in_place_and_counted() {
        let mut l = line(1, "01", None);
        l.description = "Sitework and more";
        let lines = [l];
        let mut plan = Plan::new(
            &lines,
            Some(8),
            ROOT,
            vec![account(10, "01", ROOT, "normal")],
        );
        assert_eq!(plan.depths(), 0);
        let step = plan.edits();
        assert_eq!(step.items[0].vals, json!({"name": "Sitework"}));
        let results = ok_all(&step, 10);
        assert!(plan.edited(step, results).is_empty());
        assert!(plan.undo().is_empty());
        assert_eq!(plan.updated, 1);
        assert_eq!(
            plan.results()[0].1,
            LineResult::Synced {
                origin_id: "10".into()
            }
        );
    }

    #[test]
    fn refusals_before_any_write_name_the_reason() {
        let mut by_origin = line(3, "03", None);
        by_origin.origin_id = Some("30");
        let lines = [
            line(1, "01", None),
            line(2, "01", None),
            by_origin,
            line(4, "04", None),
            line(5, "05-1", Some("05")),
            line(6, "06", Some("06")),
            line(7, "07-1", Some("07")),
        ];
        let found = vec![
            account(30, "03-old", ROOT, "normal"),
            account(31, "03", ROOT, "normal"),
            account(40, "04", ROOT, "normal"),
            account(41, "04", ROOT, "normal"),
            account(70, "07", ROOT, "view"),
            account(71, "07", ROOT, "view"),
        ];
        let plan = Plan::new(&lines, None, ROOT, found);
        let results = plan.results();
        assert!(message(&results, 2).contains("appears twice"));
        assert!(
            message(&results, 3)
                .contains("already used by another analytic account in Tryton (id 31")
        );
        assert!(
            message(&results, 4)
                .contains("2 analytic accounts in Tryton have the code '04' (ids 40, 41)")
        );
        assert!(message(&results, 5).contains("the parent code '05' does not exist in Tryton"));
        assert!(message(&results, 6).contains("cannot be its own parent"));
        assert!(message(&results, 7).contains("is used by 2 analytic accounts"));
    }

    #[test]
    fn a_change_made_in_tryton_since_the_last_export_is_a_conflict() {
        let mut l = line(1, "01", None);
        l.origin_id = Some("10");
        l.description = "New name";
        l.previous = Some(Previous {
            code: "01",
            full_code: "01",
            description: "Old name",
            active: true,
        });
        let mut changed = account(10, "01", ROOT, "normal");
        changed.name = "Renamed in Tryton".into();
        let lines = [l];
        let plan = Plan::new(&lines, None, ROOT, vec![changed]);
        let m = message(&plan.results(), 1);
        assert!(
            m.starts_with("conflict:") && m.contains("Renamed in Tryton"),
            "{m}"
        );

        // As last confirmed (or already as wanted): no conflict, an update.
        let mut same = account(10, "01", ROOT, "normal");
        same.name = "Old name".into();
        let mut plan = Plan::new(&lines, None, ROOT, vec![same]);
        assert_eq!(plan.edits().items[0].vals, json!({"name": "New name"}));
    }

    #[test]
    fn an_inactive_account_is_reactivated_to_be_edited_and_deactivated_again_if_the_edit_fails() {
        let mut l = line(1, "01", None);
        l.description = "New";
        let lines = [l];
        let mut inactive = account(10, "01", ROOT, "normal");
        inactive.active = false;
        let mut plan = Plan::new(&lines, None, ROOT, vec![inactive]);
        let step = plan.reactivations();
        assert_eq!(
            (step.items[0].id, &step.items[0].vals),
            (10, &json!({"active": true}))
        );
        plan.reactivated(step, vec![Ok(10)]);
        let step = plan.edits();
        plan.edited(
            step,
            vec![Err("A value is required for field \"Name\"".into())],
        );
        let undo = plan.undo();
        assert_eq!((undo[0].id, &undo[0].vals), (10, &json!({"active": false})));
        assert!(message(&plan.results(), 1).contains("hint: the description is empty"));
    }

    #[test]
    fn a_child_of_a_parent_that_was_not_created_fails_naming_the_parent() {
        let mut inactive_child = line(3, "01-200", Some("01"));
        inactive_child.active = false;
        let lines = [
            line(1, "01", None),
            line(2, "01-100", Some("01")),
            inactive_child,
        ];
        let mut plan = Plan::new(&lines, None, ROOT, Vec::new());
        let step = plan.creates(0);
        plan.created(step, vec![Err("Tryton says no".into())]);
        assert!(plan.creates(1).items.is_empty());
        let results = plan.results();
        assert_eq!(message(&results, 1), "Tryton: Tryton says no");
        assert!(message(&results, 2).contains("the parent code '01' could not be created"));
    }

    #[test]
    fn a_new_inactive_code_is_created_then_deactivated_and_gl_codes_get_products() {
        let mut l = line(1, "01", None);
        l.active = false;
        l.income = Some(crate::test_account("4000", "Income", GlKind::Income));
        let lines = [l, line(2, "02", None)];
        let mut plan = Plan::new(&lines, None, ROOT, Vec::new());
        let step = plan.creates(0);
        plan.created(step, vec![Ok(10), Ok(20)]);
        let step = plan.edits();
        assert_eq!(step.who, [Some(0)]);
        assert_eq!(
            (step.items[0].id, &step.items[0].vals),
            (10, &json!({"active": false}))
        );
        plan.edited(step, vec![Ok(10)]);
        plan.undo();
        let (who, wanted) = plan.products();
        assert_eq!(who, [0]);
        assert_eq!(wanted[0].line.full_code, "01");
        plan.products_synced(who, vec![Err("no category".into())]);
        let m = message(&plan.results(), 1);
        assert!(
            m.contains("exported (id 10), but its service product") && m.ends_with("no category"),
            "{m}"
        );
    }
}
