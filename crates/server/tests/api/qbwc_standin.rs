//! `QuickBooksStandIn`: QuickBooks Desktop cannot run here, so this plays it behind the
//! scripted Web Connector. It keeps service items by ListID with an EditSequence that moves on
//! every change, and answers qbXML the way QuickBooks does: 500 for a query that finds
//! nothing, 3100 for a name in use, 3140 for a reference to an account or parent it does not
//! have, 3200 for a stale EditSequence. Every request it is handed and every answer it gives is
//! validated against Intuit's schema with `xmllint` (Debian's libxml2-utils, see scripts/setup).
use costbridge_erp::qbwc::xml::{Element, esc, parse};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// `../shared/erp/qbxml/qbxmlops130.xsd` beside the repository (never copied into it).
fn schema() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/erp/qbxml/qbxmlops130.xsd")
}

/// Validates a qbXML message against Intuit's schema; panics with xmllint's words if invalid.
pub fn validate(what: &str, message: &str) {
    let schema = schema();
    assert!(
        schema.exists(),
        "Intuit's qbXML schema is missing at {}",
        schema.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("message.xml");
    std::fs::write(&file, message).expect("write message");
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(&file)
        .output()
        .expect("xmllint runs (scripts/setup installs libxml2-utils)");
    assert!(
        out.status.success(),
        "{what} does not validate against qbxmlops130.xsd:\n{}\n{message}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A service item as QuickBooks keeps it, in the order of the `ItemServiceRet` it answers with.
#[derive(Debug, Clone)]
pub struct Item {
    pub list_id: String,
    pub edit_sequence: u64,
    pub name: String,
    pub active: bool,
    /// The parent's ListID, not its name: renaming a parent renames its sub-items.
    pub parent: Option<String>,
    pub description: String,
    pub income: Option<String>,
    pub expense: Option<String>,
}

pub struct QuickBooksStandIn {
    pub items: BTreeMap<String, Item>,
    /// `(full name, type, number)`.
    pub accounts: Vec<(String, String, String)>,
    /// Names QuickBooks holds for other kinds of lists (customers, inventory items…): an item
    /// may not take them.
    pub other_names: Vec<String>,
    next_id: u64,
    clock: u64,
    /// Every request message handed to it, in order.
    pub requests: Vec<String>,
}

impl QuickBooksStandIn {
    pub fn new() -> Self {
        QuickBooksStandIn {
            items: BTreeMap::new(),
            accounts: vec![
                ("Construction Income".into(), "Income".into(), "4000".into()),
                ("Service Income".into(), "Income".into(), "4100".into()),
                (
                    "Job Materials".into(),
                    "CostOfGoodsSold".into(),
                    "5000".into(),
                ),
                ("Subcontractors".into(), "Expense".into(), "5100".into()),
                ("Checking".into(), "Bank".into(), "1000".into()),
            ],
            other_names: Vec::new(),
            next_id: 0x8000_0001,
            clock: 1_700_000_000,
            requests: Vec::new(),
        }
    }

    pub fn full_name(&self, item: &Item) -> String {
        match &item.parent {
            Some(p) => format!("{}:{}", self.full_name(&self.items[p]), item.name),
            None => item.name.clone(),
        }
    }

    pub fn by_full_name(&self, full: &str) -> Option<&Item> {
        self.items.values().find(|i| self.full_name(i) == full)
    }

    /// Adds a service item the way a QuickBooks user would; returns its ListID.
    pub fn add_by_hand(&mut self, name: &str, parent: Option<&str>, description: &str) -> String {
        let parent = parent.map(|p| self.by_full_name(p).expect("parent").list_id.clone());
        self.next_id += 1;
        self.clock += 1;
        let list_id = format!("{:X}-{}", self.next_id, self.clock);
        self.items.insert(
            list_id.clone(),
            Item {
                list_id: list_id.clone(),
                edit_sequence: self.clock,
                name: name.into(),
                active: true,
                parent,
                description: description.into(),
                income: Some("Construction Income".into()),
                expense: None,
            },
        );
        list_id
    }

    /// Changes an item the way a QuickBooks user would: its EditSequence moves on.
    pub fn edit(&mut self, full: &str, description: &str) {
        let id = self.by_full_name(full).expect("item").list_id.clone();
        self.clock += 1;
        let clock = self.clock;
        let item = self.items.get_mut(&id).unwrap();
        item.description = description.into();
        item.edit_sequence = clock;
    }

    fn ret(&self, i: &Item) -> String {
        let mut s = format!(
            "<ItemServiceRet><ListID>{}</ListID><EditSequence>{}</EditSequence><Name>{}</Name><FullName>{}</FullName><IsActive>{}</IsActive>",
            i.list_id,
            i.edit_sequence,
            esc(&i.name),
            esc(&self.full_name(i)),
            i.active
        );
        if let Some(p) = &i.parent {
            s.push_str(&format!(
                "<ParentRef><ListID>{p}</ListID><FullName>{}</FullName></ParentRef>",
                esc(&self.full_name(&self.items[p]))
            ));
        }
        s.push_str(&format!(
            "<Sublevel>{}</Sublevel>",
            self.full_name(i).matches(':').count()
        ));
        let acct = |tag: &str, a: &Option<String>| {
            a.as_ref()
                .map(|a| format!("<{tag}><FullName>{}</FullName></{tag}>", esc(a)))
                .unwrap_or_default()
        };
        if i.expense.is_some() {
            s.push_str(&format!(
                "<SalesAndPurchase><SalesDesc>{d}</SalesDesc>{}<PurchaseDesc>{d}</PurchaseDesc>{}</SalesAndPurchase>",
                acct("IncomeAccountRef", &i.income),
                acct("ExpenseAccountRef", &i.expense),
                d = esc(&i.description)
            ));
        } else {
            s.push_str(&format!(
                "<SalesOrPurchase><Desc>{}</Desc>{}</SalesOrPurchase>",
                esc(&i.description),
                acct("AccountRef", &i.income)
            ));
        }
        s.push_str("</ItemServiceRet>");
        s
    }

    /// The answer QuickBooks gives to one request message.
    pub fn handle(&mut self, request: &str) -> String {
        validate("the request Costbridge sent", request);
        self.requests.push(request.to_owned());
        let root = parse(request).expect("request parses");
        let msgs = root.child("QBXMLMsgsRq").expect("QBXMLMsgsRq");
        let mut out = String::from("<?xml version=\"1.0\" ?><QBXML><QBXMLMsgsRs>");
        for rq in &msgs.children {
            out.push_str(&self.answer(rq));
        }
        out.push_str("</QBXMLMsgsRs></QBXML>");
        validate("the stand-in's answer", &out);
        out
    }

    fn status(rs: &str, id: &str, code: i64, message: &str, body: &str) -> String {
        let severity = match code {
            0 => "Info",
            500 => "Warn",
            _ => "Error",
        };
        format!(
            "<{rs} requestID=\"{}\" statusCode=\"{code}\" statusSeverity=\"{severity}\" statusMessage=\"{}\">{body}</{rs}>",
            esc(id),
            esc(message)
        )
    }

    fn answer(&mut self, rq: &Element) -> String {
        let id = rq.attr("requestID").unwrap_or_default().to_owned();
        match rq.name.as_str() {
            "AccountQueryRq" => {
                let types: Vec<&str> = rq
                    .children("AccountType")
                    .map(|t| t.text.as_str())
                    .collect();
                let body: String = self
                    .accounts
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, t, _))| types.is_empty() || types.contains(&t.as_str()))
                    .map(|(n, (name, t, number))| {
                        format!(
                            "<AccountRet><ListID>{:X}-1</ListID><EditSequence>1</EditSequence><Name>{}</Name><FullName>{}</FullName><IsActive>true</IsActive><Sublevel>0</Sublevel><AccountType>{t}</AccountType><AccountNumber>{number}</AccountNumber></AccountRet>",
                            n + 1, esc(name), esc(name)
                        )
                    })
                    .collect();
                Self::status("AccountQueryRs", &id, 0, "Status OK", &body)
            }
            "ItemServiceQueryRq" => {
                let wanted: Vec<&Item> = if let Some(f) = rq.child("FullName") {
                    self.by_full_name(&f.text).into_iter().collect()
                } else if let Some(l) = rq.child("ListID") {
                    self.items.get(&l.text).into_iter().collect()
                } else {
                    self.items.values().collect()
                };
                if wanted.is_empty() {
                    let what = rq
                        .child("FullName")
                        .or(rq.child("ListID"))
                        .map(|e| e.text.clone())
                        .unwrap_or_default();
                    return Self::status(
                        "ItemServiceQueryRs",
                        &id,
                        500,
                        &format!(
                            "The query request has not been fully completed. There was a required element (\"{what}\") that could not be found in QuickBooks."
                        ),
                        "",
                    );
                }
                let body: String = wanted.iter().map(|i| self.ret(i)).collect();
                Self::status("ItemServiceQueryRs", &id, 0, "Status OK", &body)
            }
            "ItemServiceAddRq" => {
                let add = rq.child("ItemServiceAdd").expect("ItemServiceAdd");
                match self.write(add, None) {
                    Ok(item) => Self::status("ItemServiceAddRs", &id, 0, "Status OK", &item),
                    Err((code, m)) => Self::status("ItemServiceAddRs", &id, code, &m, ""),
                }
            }
            "ItemServiceModRq" => {
                let m = rq.child("ItemServiceMod").expect("ItemServiceMod");
                let list_id = m.text_of("ListID").unwrap_or_default().to_owned();
                let seq = m.text_of("EditSequence").unwrap_or_default().to_owned();
                let answer = match self.items.get(&list_id) {
                    None => Err((
                        3000,
                        format!(
                            "The given object ID \"{list_id}\" in the field \"list id\" is invalid."
                        ),
                    )),
                    Some(i) if i.edit_sequence.to_string() != seq => Err((
                        3200,
                        format!("The provided edit sequence \"{seq}\" is out-of-date. "),
                    )),
                    Some(_) => self.write(m, Some(list_id)),
                };
                match answer {
                    Ok(item) => Self::status("ItemServiceModRs", &id, 0, "Status OK", &item),
                    Err((code, m)) => Self::status("ItemServiceModRs", &id, code, &m, ""),
                }
            }
            other => panic!("the stand-in was sent a request it does not know: {other}"),
        }
    }

    /// Adds (`existing` none) or modifies an item from an add or mod element.
    fn write(&mut self, e: &Element, existing: Option<String>) -> Result<String, (i64, String)> {
        let name = e.text_of("Name").unwrap_or_default().to_owned();
        let parent = match e.path(&["ParentRef", "FullName"]) {
            Some(p) => Some(self.by_full_name(p).map(|i| i.list_id.clone()).ok_or((
                3140,
                format!(
                    "There is an invalid reference to QuickBooks Item \"{p}\" in the Item Service."
                ),
            ))?),
            None => None,
        };
        let full = match &parent {
            Some(p) => format!("{}:{name}", self.full_name(&self.items[p])),
            None => name.clone(),
        };
        let taken = self
            .by_full_name(&full)
            .is_some_and(|i| Some(&i.list_id) != existing.as_ref())
            || self.other_names.contains(&full);
        if taken {
            return Err((
                3100,
                format!("The name \"{full}\" of the list element is already in use."),
            ));
        }
        let (sp, sap) = (
            e.child("SalesOrPurchase").or(e.child("SalesOrPurchaseMod")),
            e.child("SalesAndPurchase")
                .or(e.child("SalesAndPurchaseMod")),
        );
        let (description, income, expense) = match (sp, sap) {
            (Some(sp), _) => (
                sp.text_of("Desc"),
                sp.path(&["AccountRef", "FullName"]),
                None,
            ),
            (_, Some(s)) => (
                s.text_of("SalesDesc"),
                s.path(&["IncomeAccountRef", "FullName"]),
                s.path(&["ExpenseAccountRef", "FullName"]),
            ),
            _ => (None, None, None),
        };
        for a in [income, expense].into_iter().flatten() {
            if !self.accounts.iter().any(|(n, _, _)| n == a) {
                return Err((
                    3140,
                    format!(
                        "There is an invalid reference to QuickBooks Account \"{a}\" in the Item Service."
                    ),
                ));
            }
        }
        self.clock += 1;
        let list_id = existing.unwrap_or_else(|| {
            self.next_id += 1;
            format!("{:X}-{}", self.next_id, self.clock)
        });
        let item = Item {
            list_id: list_id.clone(),
            edit_sequence: self.clock,
            name,
            active: e.text_of("IsActive") != Some("false"),
            parent,
            description: description.unwrap_or_default().to_owned(),
            income: income.map(str::to_owned),
            expense: expense.map(str::to_owned),
        };
        self.items.insert(list_id.clone(), item);
        Ok(self.ret(&self.items[&list_id]))
    }
}

#[test]
fn the_schema_check_refuses_what_quickbooks_would() {
    let bad = "<?xml version=\"1.0\"?><?qbxml version=\"13.0\"?><QBXML><QBXMLMsgsRq onError=\"continueOnError\"><ItemServiceAddRq><ItemServiceAdd><Name>a name longer than thirty-one characters</Name><SalesOrPurchase><Desc>x</Desc></SalesOrPurchase></ItemServiceAdd></ItemServiceAddRq></QBXMLMsgsRq></QBXML>";
    let refused = std::panic::catch_unwind(|| validate("a bad add", bad));
    assert!(refused.is_err(), "xmllint must refuse a 41-character Name");
    validate(
        "a good add",
        &bad.replace("a name longer than thirty-one characters", "01-100"),
    );
}
