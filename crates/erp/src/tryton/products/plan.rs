//! What the GL side of an export batch does to Tryton's products, decided from what Tryton
//! holds: each line's (income, expense) account pair and its category, whether its service
//! product is created or updated, and the rows of each `create`/`write` step. No I/O: the caller
//! reads Tryton, runs each step over RPC and hands the results back, in the order below.
use super::super::calls::{Item, with_hint};
use super::super::rpc::{as_bool, as_id};
use super::Wanted;
use crate::GlAccount;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

/// The Tryton ids of a line's income and expense accounts.
pub(super) type Pair = (Option<i64>, Option<i64>);

/// A service product (`product.template`) as Tryton holds it now.
#[derive(Debug, Clone)]
pub(super) struct Template {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub category: Option<i64>,
    pub active: bool,
    pub variants: Vec<i64>,
}

/// The GL account codes of the batch, each once.
pub(super) fn gl_codes<'a>(wanted: &[Wanted<'a>]) -> Vec<&'a str> {
    let mut codes: Vec<&str> = Vec::new();
    for w in wanted {
        for a in [&w.line.income, &w.line.expense].into_iter().flatten() {
            if !codes.contains(&a.code.as_str()) {
                codes.push(&a.code);
            }
        }
    }
    codes
}

/// The template codes to look up: each line's code, and its previous code when it was renamed.
pub(super) fn template_codes<'a>(wanted: &[Wanted<'a>]) -> Vec<&'a str> {
    let mut codes: Vec<&str> = Vec::new();
    for w in wanted {
        codes.push(w.line.full_code);
        if let Some(p) = &w.line.previous
            && p.full_code != w.line.full_code
        {
            codes.push(p.full_code);
        }
    }
    codes
}

/// What to do about the accounting category of each pair.
#[derive(Default)]
pub(super) struct Categories {
    /// Found as they should be.
    pub found: HashMap<Pair, Result<i64, String>>,
    pub creates: Vec<(Pair, Item)>,
    /// Found by name with other GL accounts (changed in Tryton): put right.
    pub fixes: Vec<(Pair, Item)>,
}

/// One accounting category per pair, named in `names`: `found` are the categories with those
/// names (`name`, `account_revenue`, `account_expense`).
pub(super) fn categories(names: &HashMap<Pair, String>, found: &[Value]) -> Categories {
    let mut out = Categories::default();
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
        if let Some(id) = same_name
            .iter()
            .find(|r| accounts(r) == pair)
            .and_then(|r| as_id(r.get("id")))
        {
            out.found.insert(pair, Ok(id));
        } else if let Some(id) = same_name.first().and_then(|r| as_id(r.get("id"))) {
            let item = Item {
                vals: json!({"account_revenue": pair.0, "account_expense": pair.1}),
                id,
                tag: None,
            };
            out.fixes.push((pair, item));
        } else {
            let item = Item {
                vals: json!({
                    "name": name,
                    "accounting": true,
                    "account_revenue": pair.0,
                    "account_expense": pair.1,
                }),
                id: 0,
                tag: None,
            };
            out.creates.push((pair, item));
        }
    }
    out
}

pub(super) struct Plan<'w, 'a> {
    wanted: &'w [Wanted<'a>],
    res: Vec<Result<(), String>>,
    pairs: Vec<Option<Pair>>,
    /// Lines whose template is created, with their category.
    creates: Vec<(usize, i64)>,
    /// Lines whose template exists, with their category and the template.
    updates: Vec<(usize, i64, Template)>,
    now_active: HashSet<i64>,
    /// New templates of inactive codes, to deactivate with their variants.
    deactivate_new: Vec<(usize, i64)>,
    /// Variants that follow their template's active flag.
    variants: Vec<Item>,
}

impl<'w, 'a> Plan<'w, 'a> {
    /// Each line's account pair, from Tryton's open accounts with the batch's codes (`id`,
    /// `code`, `type.revenue`, `type.expense`); the category name of each pair.
    pub fn new(wanted: &'w [Wanted<'a>], accounts: &[Value]) -> (Self, HashMap<Pair, String>) {
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
        let mut res: Vec<Result<(), String>> = wanted.iter().map(|_| Ok(())).collect();
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
                    let code = |a: Option<&GlAccount>| a.map_or("-".to_owned(), |a| a.code.clone());
                    let name = format!(
                        "Costbridge {} | {}",
                        code(w.line.income),
                        code(w.line.expense)
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
        let plan = Plan {
            wanted,
            res,
            pairs,
            creates: Vec::new(),
            updates: Vec::new(),
            now_active: HashSet::new(),
            deactivate_new: Vec::new(),
            variants: Vec::new(),
        };
        (plan, names)
    }

    /// Whether each line's template is created or updated, from the category of each pair
    /// and the templates found by [`template_codes`].
    pub fn match_templates(
        &mut self, category: &HashMap<Pair, Result<i64, String>>,
        by_code: &HashMap<String, Vec<Template>>,
    ) {
        let mut taken = HashSet::new();
        for (k, w) in self.wanted.iter().enumerate() {
            if self.res[k].is_err() {
                continue;
            }
            let Some(pair) = self.pairs[k] else { continue };
            let cat = match category.get(&pair) {
                Some(Ok(c)) => *c,
                Some(Err(m)) => {
                    self.res[k] = Err(m.clone());
                    continue;
                }
                None => continue,
            };
            let l = w.line;
            let mut found = by_code.get(l.full_code).cloned().unwrap_or_default();
            if found.is_empty()
                && let Some(p) = &l.previous
            {
                found = by_code.get(p.full_code).cloned().unwrap_or_default();
            }
            match &found[..] {
                [] => self.creates.push((k, cat)),
                [t] if taken.insert(t.id) => self.updates.push((k, cat, t.clone())),
                [t] => {
                    self.res[k] = Err(format!(
                        "the service product {} is claimed by two codes of this export",
                        t.id
                    ));
                }
                many => {
                    self.res[k] = Err(format!(
                        "{} service products in Tryton have the code '{}'; keep one and export again",
                        many.len(),
                        l.full_code
                    ));
                }
            }
        }
    }

    pub fn has_creates(&self) -> bool {
        !self.creates.is_empty()
    }

    /// Step 1: new templates, each with its variant, in the unit `uom`.
    pub fn creates(&self, uom: &Value) -> Vec<Item> {
        self.creates
            .iter()
            .map(|&(k, cat)| Item {
                vals: json!({
                    "code": self.wanted[k].line.full_code,
                    "name": self.wanted[k].name,
                    "type": "service",
                    "default_uom": uom,
                    "account_category": cat,
                    "products": [["create", [{}]]],
                }),
                id: 0,
                tag: Some(format!("\"[{}] ", self.wanted[k].line.full_code)),
            })
            .collect()
    }

    pub fn created(&mut self, results: Vec<Result<i64, String>>) {
        for (&(k, _), r) in self.creates.iter().zip(results) {
            match r {
                Ok(id) if !self.wanted[k].line.active => self.deactivate_new.push((k, id)),
                Ok(_) => {}
                Err(m) => self.res[k] = Err(with_hint(&m)),
            }
        }
    }

    /// Step 2: reactivate the existing templates that are to be edited (an inactive template is
    /// read-only).
    pub fn reactivations(&self) -> Vec<Item> {
        self.updates
            .iter()
            .filter(|(k, cat, t)| {
                !t.active
                    && (self.wanted[*k].line.active || !edits(&self.wanted[*k], *cat, t).is_empty())
            })
            .map(|(_, _, t)| Item {
                vals: json!({"active": true}),
                id: t.id,
                tag: None,
            })
            .collect()
    }

    pub fn reactivated(&mut self, items: &[Item], results: Vec<Result<i64, String>>) {
        for (item, r) in items.iter().zip(results) {
            match r {
                Ok(_) => {
                    self.now_active.insert(item.id);
                }
                Err(m) => {
                    if let Some((k, _, _)) = self.updates.iter().find(|(_, _, t)| t.id == item.id) {
                        self.res[*k] = Err(with_hint(&m));
                    }
                }
            }
        }
    }

    /// Step 3: the edits of existing templates, with the line of each.
    pub fn edits(&self) -> (Vec<usize>, Vec<Item>) {
        let mut who = Vec::new();
        let mut items = Vec::new();
        for (k, cat, t) in &self.updates {
            if self.res[*k].is_err() {
                continue;
            }
            let w = &self.wanted[*k];
            let active_now = t.active || self.now_active.contains(&t.id);
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
        (who, items)
    }

    /// Records step 3; the variants of the updated templates then follow their template.
    pub fn edited(&mut self, who: Vec<usize>, results: Vec<Result<i64, String>>) {
        for (k, r) in who.into_iter().zip(results) {
            if let Err(m) = r {
                self.res[k] = Err(with_hint(&m));
            }
        }
        for (k, _, t) in &self.updates {
            let active = self.wanted[*k].line.active;
            if self.res[*k].is_ok() && t.active != active {
                self.variants.extend(t.variants.iter().map(|&v| Item {
                    vals: json!({"active": active}),
                    id: v,
                    tag: None,
                }));
            }
        }
    }

    /// The templates created in step 1 for inactive codes.
    pub fn new_inactive(&self) -> Vec<i64> {
        self.deactivate_new.iter().map(|&(_, id)| id).collect()
    }

    /// Step 4: deactivate the templates of [`Self::new_inactive`]; `variants` are their
    /// variants (`id`), which join the variants to switch.
    pub fn deactivations(&mut self, variants: &[Value]) -> Vec<Item> {
        let off = |id| Item {
            vals: json!({"active": false}),
            id,
            tag: None,
        };
        self.variants
            .extend(variants.iter().filter_map(|r| as_id(r.get("id"))).map(off));
        self.new_inactive().into_iter().map(off).collect()
    }

    pub fn deactivated(&mut self, results: Vec<Result<i64, String>>) {
        for (&(k, _), r) in self.deactivate_new.iter().zip(results) {
            if let Err(m) = r {
                self.res[k] = Err(with_hint(&m));
            }
        }
    }

    /// Step 5: variants follow their template's active flag (Tryton does not do it by itself,
    /// and an active variant keeps its code taken). Their failures fail no line.
    pub fn variants(&self) -> &[Item] {
        &self.variants
    }

    /// One result per wanted line, in order.
    pub fn results(self) -> Vec<Result<(), String>> {
        self.res
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExportLine, GlKind, Previous};

    fn line<'a>(full: &'a str, income: Option<&str>, expense: Option<&str>) -> ExportLine<'a> {
        let account = |code: Option<&str>, kind| {
            code.map(|c| crate::test_account(c, &format!("Account {c}"), kind))
        };
        ExportLine {
            income: account(income, GlKind::Income),
            expense: account(expense, GlKind::Expense),
            ..crate::test_line(1, full)
        }
    }

    fn wanted<'a>(lines: &'a [ExportLine<'a>]) -> Vec<Wanted<'a>> {
        lines
            .iter()
            .map(|l| Wanted {
                line: l,
                name: l.description,
            })
            .collect()
    }

    /// Tryton's chart: 4000 revenue (id 40), 5000 expense (id 50), 6000 both kinds (61 revenue,
    /// 62 expense).
    fn chart() -> Vec<Value> {
        vec![
            json!({"id": 40, "code": "4000", "type.": {"revenue": true, "expense": false}}),
            json!({"id": 50, "code": "5000", "type.": {"revenue": false, "expense": true}}),
            json!({"id": 61, "code": "6000", "type.": {"revenue": true, "expense": false}}),
            json!({"id": 62, "code": "6000", "type.": {"revenue": false, "expense": true}}),
        ]
    }

    fn template(id: i64, code: &str, name: &str, category: i64) -> Template {
        Template {
            id,
            code: code.into(),
            name: name.into(),
            category: Some(category),
            active: true,
            variants: vec![id * 10],
        }
    }

    #[test]
    fn codes_to_look_up_are_listed_once_with_a_renamed_codes_previous_code() {
        let mut renamed = line("02", Some("4000"), None);
        renamed.previous = Some(Previous {
            code: "01",
            full_code: "01",
            description: "",
            active: true,
        });
        let lines = [renamed, line("03", Some("4000"), Some("5000"))];
        let w = wanted(&lines);
        assert_eq!(gl_codes(&w), ["4000", "5000"]);
        assert_eq!(template_codes(&w), ["02", "01", "03"]);
    }

    #[test]
    fn each_pair_gets_a_named_category_and_an_unknown_account_fails_its_line() {
        let lines = [
            line("01", Some("4000"), Some("5000")),
            line("02", Some("4000"), Some("5000")),
            line("03", Some("6000"), Some("6000")),
            line("04", Some("9999"), None),
        ];
        let w = wanted(&lines);
        let (plan, names) = Plan::new(&w, &chart());
        assert_eq!(names.len(), 2);
        assert_eq!(names[&(Some(40), Some(50))], "Costbridge 4000 | 5000");
        // An account code of both kinds resolves to the account of the right kind.
        assert_eq!(names[&(Some(61), Some(62))], "Costbridge 6000 | 6000");
        let res = plan.results();
        assert!(res[..3].iter().all(Result::is_ok));
        assert_eq!(
            res[3],
            Err(
                "the GL account '9999' (Account 9999) is not an open account of Tryton's chart"
                    .into()
            )
        );
    }

    #[test]
    fn categories_are_found_put_right_or_created() {
        let names = HashMap::from([
            ((Some(40), Some(50)), "Costbridge 4000 | 5000".to_owned()),
            ((Some(40), None), "Costbridge 4000 | -".to_owned()),
            ((None, Some(50)), "Costbridge - | 5000".to_owned()),
        ]);
        let found = [
            json!({"id": 7, "name": "Costbridge 4000 | 5000", "account_revenue": 40, "account_expense": 50}),
            json!({"id": 8, "name": "Costbridge 4000 | -", "account_revenue": 41, "account_expense": null}),
        ];
        let c = categories(&names, &found);
        assert_eq!(c.found.len(), 1);
        assert_eq!(c.found[&(Some(40), Some(50))], Ok(7));
        assert_eq!(c.fixes.len(), 1);
        let (pair, fix) = &c.fixes[0];
        assert_eq!((*pair, fix.id), ((Some(40), None), 8));
        assert_eq!(
            fix.vals,
            json!({"account_revenue": 40, "account_expense": null})
        );
        assert_eq!(c.creates.len(), 1);
        assert_eq!(
            c.creates[0].1.vals,
            json!({"name": "Costbridge - | 5000", "accounting": true, "account_revenue": null, "account_expense": 50})
        );
    }

    #[test]
    fn templates_are_created_updated_or_refused() {
        let mut gone = line("05", Some("4000"), None);
        gone.active = false;
        let lines = [
            line("01", Some("4000"), None),
            line("02", Some("4000"), None),
            line("03", Some("4000"), None),
            line("04", Some("4000"), None),
            gone,
        ];
        let w = wanted(&lines);
        let (mut plan, _) = Plan::new(&w, &chart());
        let category = HashMap::from([((Some(40), None), Ok(7))]);
        let by_code = HashMap::from([
            ("02".to_owned(), vec![template(20, "02", "Desc 02", 7)]),
            ("03".to_owned(), vec![template(30, "03", "Old name", 9)]),
            (
                "04".to_owned(),
                vec![template(40, "04", "x", 7), template(41, "04", "y", 7)],
            ),
        ]);
        plan.match_templates(&category, &by_code);
        assert!(plan.has_creates());
        let creates = plan.creates(&json!(1));
        assert_eq!(creates.len(), 2);
        assert_eq!(
            creates[0].vals,
            json!({"code": "01", "name": "Desc 01", "type": "service", "default_uom": 1,
                "account_category": 7, "products": [["create", [{}]]]})
        );
        plan.created(vec![Ok(100), Ok(500)]);
        assert_eq!(plan.new_inactive(), [500]);
        assert!(plan.reactivations().is_empty());
        // "02" is as wanted: nothing to write. "03" gets its name and category back.
        let (who, items) = plan.edits();
        assert_eq!(who, [2]);
        assert_eq!(
            items[0].vals,
            json!({"name": "Desc 03", "account_category": 7})
        );
        plan.edited(who, vec![Ok(30)]);
        let items = plan.deactivations(&[json!({"id": 5000, "template": 500})]);
        assert_eq!(
            (items[0].id, &items[0].vals),
            (500, &json!({"active": false}))
        );
        plan.deactivated(vec![Ok(500)]);
        assert_eq!(plan.variants().len(), 1);
        assert_eq!(plan.variants()[0].id, 5000);
        let res = plan.results();
        assert!(res[0].is_ok() && res[1].is_ok() && res[2].is_ok() && res[4].is_ok());
        assert_eq!(
            res[3],
            Err(
                "2 service products in Tryton have the code '04'; keep one and export again".into()
            )
        );
    }

    #[test]
    fn an_inactive_template_is_reactivated_and_its_variants_follow() {
        let lines = [line("01", Some("4000"), None)];
        let w = wanted(&lines);
        let (mut plan, _) = Plan::new(&w, &chart());
        let mut t = template(20, "01", "Desc 01", 7);
        t.active = false;
        let category = HashMap::from([((Some(40), None), Ok(7))]);
        plan.match_templates(&category, &HashMap::from([("01".to_owned(), vec![t])]));
        assert!(!plan.has_creates());
        let items = plan.reactivations();
        assert_eq!(
            (items[0].id, &items[0].vals),
            (20, &json!({"active": true}))
        );
        plan.reactivated(&items, vec![Ok(20)]);
        let (who, items) = plan.edits();
        assert!(who.is_empty() && items.is_empty());
        plan.edited(who, Vec::new());
        assert_eq!(
            (plan.variants()[0].id, &plan.variants()[0].vals),
            (200, &json!({"active": true}))
        );

        // A refused reactivation fails the line with Tryton's words and a hint.
        let (mut plan, _) = Plan::new(&w, &chart());
        let mut t = template(20, "01", "Desc 01", 7);
        t.active = false;
        plan.match_templates(&category, &HashMap::from([("01".to_owned(), vec![t])]));
        let items = plan.reactivations();
        plan.reactivated(&items, vec![Err("You are not allowed to write".into())]);
        let m = plan.results().remove(0).unwrap_err();
        assert!(
            m.starts_with("Tryton: You are not allowed to write (hint:"),
            "{m}"
        );
    }

    #[test]
    fn a_category_that_could_not_be_made_fails_its_lines() {
        let lines = [line("01", Some("4000"), None)];
        let w = wanted(&lines);
        let (mut plan, _) = Plan::new(&w, &chart());
        let category = HashMap::from([((Some(40), None), Err("Tryton: no".to_owned()))]);
        plan.match_templates(&category, &HashMap::new());
        assert!(!plan.has_creates());
        assert_eq!(plan.results(), [Err("Tryton: no".to_owned())]);
    }
}
