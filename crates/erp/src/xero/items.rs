//! Pure decisions about Xero Items: how a cost code becomes an item, what to do with each line
//! once Xero's items are known (create, update, leave, or refuse as a conflict), and how Xero's
//! answer to a batch becomes one result per line. No I/O here.
use crate::{ErpCode, ExportLine, GlAccount, GlKind, LineResult};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Xero keeps at most this many characters of an item's `Name`.
pub const NAME_MAX: usize = 50;

/// An item as Xero's Accounting API reads and writes it (`#/components/schemas/Item`); fields
/// Costbridge does not use are left out, and what only Xero writes is never sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Item {
    #[serde(rename = "ItemID", default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales_details: Option<Details>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_details: Option<Details>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_tracked_as_inventory: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_sold: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_purchased: Option<bool>,
    #[serde(default, skip_serializing)]
    pub validation_errors: Vec<Message>,
}

/// `SalesDetails` / `PurchaseDetails` (`#/components/schemas/Purchase`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Details {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_code: Option<String>,
}

/// A validation error as Xero words it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Message {
    #[serde(default)]
    pub message: String,
}

/// The `{"Items": [...]}` envelope Xero takes and answers.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Items {
    #[serde(default)]
    pub items: Vec<Item>,
}

impl Item {
    /// Whether the item can be used on sales or purchases: Xero's API cannot archive an item, so
    /// a deactivated code is an item neither sold nor purchased.
    fn active(&self) -> bool {
        self.is_sold != Some(false) || self.is_purchased != Some(false)
    }

    fn account(details: &Option<Details>) -> Option<&str> {
        details.as_ref().and_then(|d| d.account_code.as_deref())
    }

    /// The values a person sees and a conflict is judged on, in words.
    fn shown(&self) -> String {
        format!(
            "code '{}', name '{}', description '{}', {}",
            self.code,
            self.name.as_deref().unwrap_or(""),
            self.description.as_deref().unwrap_or(""),
            if self.active() { "active" } else { "inactive" }
        )
    }

    /// Whether Xero's item already holds what `wanted` would write.
    fn holds(&self, wanted: &Item) -> bool {
        let same_text = self.code == wanted.code
            && self.name == wanted.name
            && self.active() == wanted.active();
        // Xero empties the description and the accounts of an item neither sold nor purchased.
        same_text
            && (!wanted.active()
                || (self.description == wanted.description
                    && Item::account(&self.sales_details) == Item::account(&wanted.sales_details)
                    && Item::account(&self.purchase_details)
                        == Item::account(&wanted.purchase_details)))
    }

    /// Whether Xero's item still holds what Costbridge last wrote (`confirmed`): the fields a
    /// person edits in Xero. Accounts are not compared: the approver picks them at each export.
    fn matches(&self, confirmed: &Item) -> bool {
        self.code == confirmed.code
            && self.name == confirmed.name
            && self.active() == confirmed.active()
            && (!confirmed.active() || self.description == confirmed.description)
    }
}

/// `description` cut to at most `max` characters, at the last space that keeps it within
/// (a single word longer than `max` is cut inside); never empty when the description is not.
pub fn item_name(description: &str, max: usize) -> String {
    let description = description.trim();
    let Some((cut, _)) = description.char_indices().nth(max) else {
        return description.to_owned();
    };
    let head = &description[..cut];
    // A cut that falls between two words needs no backing off.
    let at_boundary = description[cut..].starts_with(char::is_whitespace);
    let kept = if at_boundary {
        head
    } else {
        head.rfind(char::is_whitespace)
            .map_or(head, |space| &head[..space])
    };
    kept.trim_end().to_owned()
}

/// The item a line asks for. `max_name` is the profile's limit for descriptions, within
/// Xero's own.
pub fn item_for(line: &ExportLine<'_>, max_name: Option<usize>) -> Item {
    let max = max_name.map_or(NAME_MAX, |m| m.min(NAME_MAX));
    let name = match item_name(line.description, max) {
        n if n.is_empty() => line.full_code.to_owned(),
        n => n,
    };
    let details = |a: Option<&GlAccount>| {
        a.map(|a| Details {
            account_code: Some(a.code.clone()),
        })
    };
    Item {
        code: line.full_code.to_owned(),
        name: Some(name),
        // Xero nulls the description and the sales details of an item that is not sold.
        description: line.active.then(|| line.description.to_owned()),
        sales_details: if line.active {
            details(line.income)
        } else {
            None
        },
        purchase_details: if line.active {
            details(line.expense)
        } else {
            None
        },
        is_tracked_as_inventory: Some(false),
        is_sold: Some(line.active),
        is_purchased: Some(line.active),
        ..Item::default()
    }
}

/// The item Costbridge wrote when Xero last confirmed the line's code.
fn confirmed_item(line: &ExportLine<'_>, max_name: Option<usize>) -> Option<Item> {
    let p = line.previous?;
    let before = ExportLine {
        full_code: p.full_code,
        description: p.description,
        active: p.active,
        ..*line
    };
    Some(item_for(&before, max_name))
}

/// What to do with one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this item (with `ItemID` for an update).
    Write(Item),
    /// Xero already holds it (a retried or resumed export): synced as it is.
    Done(LineResult),
}

/// Decides each line against Xero's items (looked up by code and by `ItemID`).
pub fn plan(lines: &[ExportLine<'_>], xero: &[Item], max_name: Option<usize>) -> Vec<(i64, Step)> {
    let by_id: HashMap<&str, &Item> = xero
        .iter()
        .filter_map(|i| Some((i.item_id.as_deref()?, i)))
        .collect();
    let by_code: HashMap<&str, &Item> = xero.iter().map(|i| (i.code.as_str(), i)).collect();
    lines
        .iter()
        .map(|line| {
            let wanted = item_for(line, max_name);
            let found = line
                .origin_id
                .and_then(|id| by_id.get(id))
                .or_else(|| by_code.get(line.full_code))
                .copied();
            (line.item_id, step(line, wanted, found, max_name))
        })
        .collect()
}

fn step(
    line: &ExportLine<'_>, wanted: Item, found: Option<&Item>, max_name: Option<usize>,
) -> Step {
    let Some(existing) = found else {
        return Step::Write(wanted);
    };
    let id = existing.item_id.clone().unwrap_or_default();
    if existing.holds(&wanted) {
        return Step::Done(LineResult::Synced { origin_id: id });
    }
    // Costbridge never had this code in Xero, or Xero changed it since: never overwrite
    // someone's work in Xero unseen.
    let changed = match confirmed_item(line, max_name) {
        Some(confirmed) => !existing.matches(&confirmed),
        None => true,
    };
    if changed {
        let why = if line.previous.is_some() {
            "the item was changed in Xero since Costbridge last synced it"
        } else {
            "Xero already has an item with this code that Costbridge did not create"
        };
        return Step::Done(LineResult::Failed {
            message: format!(
                "conflict: {why}. Xero has {}; Costbridge sends {}. Align the code with Xero's \
                 values (or change the item in Xero), then export it again.",
                existing.shown(),
                wanted.shown()
            ),
        });
    }
    Step::Write(Item {
        item_id: Some(id),
        ..wanted
    })
}

/// Maps Xero's answer to a `summarizeErrors=false` POST to one result per written line: the
/// answer lists the items in the order they were sent, each with its `ItemID` or its own
/// validation errors.
pub fn read_answer(sent: &[(i64, Item)], answer: Items) -> Vec<(i64, LineResult)> {
    let mut answered = answer.items.into_iter();
    sent.iter()
        .map(|(id, item)| {
            let result = match answered.next() {
                Some(a) if !a.validation_errors.is_empty() => LineResult::Failed {
                    message: format!(
                        "Xero refused item {}: {}",
                        item.code,
                        a.validation_errors
                            .iter()
                            .map(|m| m.message.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                },
                Some(Item {
                    item_id: Some(origin_id),
                    code,
                    ..
                }) if code == item.code => LineResult::Synced { origin_id },
                _ => LineResult::Failed {
                    message: format!(
                        "Xero's answer did not confirm item {}; it is checked again at the \
                         next export",
                        item.code
                    ),
                },
            };
            (*id, result)
        })
        .collect()
}

/// Xero's items as cost codes (Sync from ERP).
pub fn as_codes(items: Vec<Item>) -> Vec<ErpCode> {
    items
        .into_iter()
        .filter_map(|i| {
            let active = i.active();
            Some(ErpCode {
                origin_id: i.item_id?,
                description: i.description.or(i.name).unwrap_or_default(),
                full_code: i.code,
                active,
            })
        })
        .collect()
}

/// An account from Xero's chart (`#/components/schemas/Account`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Account {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub r#type: String,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Accounts {
    #[serde(default)]
    pub accounts: Vec<Account>,
}

/// The accounts an approver may pick: active ones with a code, income from the revenue types,
/// expense from the cost types.
pub fn gl_accounts(accounts: Vec<Account>) -> Vec<GlAccount> {
    accounts
        .into_iter()
        .filter(|a| a.status.as_deref().unwrap_or("ACTIVE") == "ACTIVE")
        .filter_map(|a| {
            let kind = match a.r#type.as_str() {
                "REVENUE" | "SALES" | "OTHERINCOME" => GlKind::Income,
                "EXPENSE" | "DIRECTCOSTS" | "OVERHEADS" => GlKind::Expense,
                _ => return None,
            };
            Some(GlAccount {
                code: a.code.filter(|c| !c.is_empty())?,
                name: a.name,
                kind,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Previous, test_line};
    use serde_json::json;

    fn account(code: &str, kind: GlKind) -> &'static GlAccount {
        crate::test_account(code, code, kind)
    }

    fn xero(id: &str, line: &ExportLine<'_>) -> Item {
        Item {
            item_id: Some(id.into()),
            ..item_for(line, Some(50))
        }
    }

    #[test]
    fn names_are_cut_at_a_word_boundary() {
        assert_eq!(item_name("Concrete", 50), "Concrete");
        let long = "Cast-in-place concrete forming and reinforcing for foundations";
        let name = item_name(long, 50);
        assert_eq!(name, "Cast-in-place concrete forming and reinforcing for");
        assert!(name.chars().count() <= 50);
        // A cut that lands exactly between two words keeps the whole first part.
        assert_eq!(item_name("abcd efgh", 4), "abcd");
        // One word longer than the limit is cut inside it.
        assert_eq!(item_name(&"x".repeat(60), 50), "x".repeat(50));
        // Characters, not bytes.
        assert_eq!(item_name("Béton armé préfabriqué", 10), "Béton armé");
    }

    #[test]
    fn a_code_becomes_an_item_with_its_accounts_not_tracked() {
        let mut line = test_line(1, "01-100");
        line.description = "Site work and demolition of existing structures on the lot";
        line.income = Some(account("200", GlKind::Income));
        line.expense = Some(account("310", GlKind::Expense));
        let item = serde_json::to_value(item_for(&line, Some(50))).unwrap();
        assert_eq!(
            item,
            json!({"Code": "01-100", "Name": "Site work and demolition of existing structures on",
                "Description": "Site work and demolition of existing structures on the lot",
                "SalesDetails": {"AccountCode": "200"}, "PurchaseDetails": {"AccountCode": "310"},
                "IsTrackedAsInventory": false, "IsSold": true, "IsPurchased": true})
        );
        // Deactivated: neither sold nor purchased (Xero cannot archive an item by API).
        line.active = false;
        let item = serde_json::to_value(item_for(&line, Some(50))).unwrap();
        assert_eq!(
            item,
            json!({"Code": "01-100", "Name": "Site work and demolition of existing structures on",
                "IsTrackedAsInventory": false, "IsSold": false, "IsPurchased": false})
        );
    }

    #[test]
    fn the_plan_creates_updates_skips_and_refuses_conflicts() {
        let new = test_line(1, "01");
        let mut resumed = test_line(2, "02");
        let mut changed_here = test_line(3, "03");
        let mut changed_in_xero = test_line(4, "04");
        let foreign = test_line(5, "05");
        let in_xero = vec![
            xero("id-2", &resumed),
            xero("id-3", &changed_here),
            Item {
                name: Some("Renamed in Xero".into()),
                ..xero("id-4", &changed_in_xero)
            },
            Item {
                description: Some("Someone else's".into()),
                ..xero("id-5", &foreign)
            },
        ];
        resumed.origin_id = None;
        let previous = |l: ExportLine<'static>| Previous {
            code: l.code,
            full_code: l.full_code,
            description: l.description,
            active: true,
        };
        changed_here.previous = Some(previous(changed_here));
        changed_here.origin_id = Some("id-3");
        changed_here.description = "New words";
        changed_in_xero.previous = Some(previous(changed_in_xero));
        changed_in_xero.origin_id = Some("id-4");
        changed_in_xero.description = "Ours changed too";
        let lines = [new, resumed, changed_here, changed_in_xero, foreign];
        let steps = plan(&lines, &in_xero, Some(50));
        assert_eq!(steps[0], (1, Step::Write(item_for(&new, Some(50)))));
        assert_eq!(
            steps[1],
            (
                2,
                Step::Done(LineResult::Synced {
                    origin_id: "id-2".into()
                })
            )
        );
        let Step::Write(update) = &steps[2].1 else {
            panic!("{:?}", steps[2])
        };
        assert_eq!(update.item_id.as_deref(), Some("id-3"));
        assert_eq!(update.description.as_deref(), Some("New words"));
        for (i, why) in [
            (3, "changed in Xero since Costbridge last synced it"),
            (4, "Costbridge did not create"),
        ] {
            let Step::Done(LineResult::Failed { message }) = &steps[i].1 else {
                panic!("{:?}", steps[i])
            };
            assert!(message.starts_with("conflict: "), "{message}");
            assert!(message.contains(why), "{message}");
        }
        let Step::Done(LineResult::Failed { message }) = &steps[3].1 else {
            unreachable!()
        };
        assert!(
            message.contains("Xero has code '04', name 'Renamed in Xero'"),
            "{message}"
        );
        assert!(
            message.contains("Costbridge sends code '04', name 'Ours changed too'"),
            "{message}"
        );
    }

    #[test]
    fn an_item_found_by_its_id_is_updated_even_after_a_code_change() {
        let mut line = test_line(1, "01-200");
        let before = test_line(1, "01-100");
        line.previous = Some(Previous {
            code: "100",
            full_code: "01-100",
            description: before.description,
            active: true,
        });
        line.origin_id = Some("id-1");
        let steps = plan(&[line], &[xero("id-1", &before)], Some(50));
        let Step::Write(update) = &steps[0].1 else {
            panic!("{steps:?}")
        };
        assert_eq!(update.item_id.as_deref(), Some("id-1"));
        assert_eq!(update.code, "01-200");
    }

    #[test]
    fn each_item_of_the_answer_is_its_lines_result() {
        let sent = vec![
            (1, item_for(&test_line(1, "01"), None)),
            (2, item_for(&test_line(2, "02"), None)),
            (3, item_for(&test_line(3, "03"), None)),
        ];
        let answer: Items = serde_json::from_value(json!({"Items": [
            {"ItemID": "a", "Code": "01", "UpdatedDateUTC": "/Date(1552331871707+0000)/"},
            {"Code": "02", "ValidationErrors": [{"Message": "Account code '999' is not valid"}]},
        ]}))
        .unwrap();
        let results = read_answer(&sent, answer);
        assert_eq!(
            results[0],
            (
                1,
                LineResult::Synced {
                    origin_id: "a".into()
                }
            )
        );
        assert_eq!(
            results[1],
            (
                2,
                LineResult::Failed {
                    message: "Xero refused item 02: Account code '999' is not valid".into()
                }
            )
        );
        assert!(
            matches!(&results[2].1, LineResult::Failed { message } if message.contains("did not confirm item 03"))
        );
    }

    #[test]
    fn only_active_revenue_and_cost_accounts_are_offered() {
        let accounts: Accounts = serde_json::from_value(json!({"Accounts": [
            {"Code": "200", "Name": "Sales", "Type": "REVENUE", "Status": "ACTIVE"},
            {"Code": "260", "Name": "Other Revenue", "Type": "OTHERINCOME", "Status": "ACTIVE"},
            {"Code": "310", "Name": "Cost of Goods Sold", "Type": "DIRECTCOSTS", "Status": "ACTIVE"},
            {"Code": "400", "Name": "Advertising", "Type": "OVERHEADS", "Status": "ARCHIVED"},
            {"Code": "090", "Name": "Bank", "Type": "BANK", "Status": "ACTIVE"},
            {"Name": "No code", "Type": "EXPENSE", "Status": "ACTIVE"},
        ]}))
        .unwrap();
        let picked: Vec<(String, GlKind)> = gl_accounts(accounts.accounts)
            .into_iter()
            .map(|a| (a.code, a.kind))
            .collect();
        assert_eq!(
            picked,
            [
                ("200".into(), GlKind::Income),
                ("260".into(), GlKind::Income),
                ("310".into(), GlKind::Expense)
            ]
        );
    }
}
