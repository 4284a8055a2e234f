//! qbXML 13.0: the requests Costbridge sends QuickBooks (through the Web Connector) and the
//! answers it reads back. Element order follows Intuit's schema (`qbxmlops130.xsd`), which the
//! tests validate every message against.
use super::xml::{Element, esc, parse};
use crate::{GlAccount, GlKind};

/// How a query names the item it looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    FullName(String),
    ListId(String),
}

/// A service item as Costbridge wants it in QuickBooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// This level's name (at most 31 characters).
    pub name: String,
    /// The parent's full name (`01`, `01:01-100`), for a sub-item.
    pub parent: Option<String>,
    pub description: String,
    pub active: bool,
    /// Account full names.
    pub income: Option<String>,
    pub expense: Option<String>,
}

impl Desired {
    pub fn full_name(&self) -> String {
        match &self.parent {
            Some(p) => format!("{p}:{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// A service item as QuickBooks holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QbItem {
    pub list_id: String,
    pub edit_sequence: String,
    pub name: String,
    pub full_name: String,
    pub parent: Option<String>,
    pub description: String,
    pub active: bool,
    pub income: Option<String>,
    pub expense: Option<String>,
}

impl QbItem {
    /// Whether QuickBooks already holds exactly what Costbridge would send.
    pub fn holds(&self, d: &Desired) -> bool {
        self.full_name == d.full_name()
            && self.description == d.description
            && self.active == d.active
            && (d.income.is_none() || self.income == d.income)
            && (d.expense.is_none() || self.expense == d.expense)
    }

    /// The item in words, for a conflict message.
    pub fn shown(&self) -> String {
        format!(
            "'{}', description '{}', {}, income account {}, expense account {}",
            self.full_name,
            self.description,
            if self.active { "active" } else { "inactive" },
            self.income.as_deref().unwrap_or("none"),
            self.expense.as_deref().unwrap_or("none"),
        )
    }
}

/// One request in a message; `id` comes back as the answer's `requestID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The income, expense and cost-of-goods-sold accounts.
    Accounts {
        id: String,
    },
    /// One item by full name or ListID (`500` when there is none).
    Query {
        id: String,
        key: Key,
    },
    /// Every service item, active or not (Sync from ERP).
    QueryAll {
        id: String,
    },
    Add {
        id: String,
        item: Desired,
    },
    Mod {
        id: String,
        list_id: String,
        edit_sequence: String,
        item: Desired,
    },
}

fn tag(out: &mut String, name: &str, text: &str) {
    out.push_str(&format!("<{name}>{}</{name}>", esc(text)));
}

fn account_ref(out: &mut String, name: &str, full_name: &Option<String>) {
    if let Some(a) = full_name {
        out.push_str(&format!("<{name}>"));
        tag(out, "FullName", a);
        out.push_str(&format!("</{name}>"));
    }
}

/// The fields of an add or a modification after the name, in the schema's order: with an
/// expense account the item is for sales and purchases, else for sales only.
fn item_body(out: &mut String, d: &Desired, modify: bool) {
    tag(out, "Name", &d.name);
    tag(out, "IsActive", if d.active { "true" } else { "false" });
    if let Some(p) = &d.parent {
        out.push_str("<ParentRef>");
        tag(out, "FullName", p);
        out.push_str("</ParentRef>");
    }
    let suffix = if modify { "Mod" } else { "" };
    if d.expense.is_some() {
        out.push_str(&format!("<SalesAndPurchase{suffix}>"));
        tag(out, "SalesDesc", &d.description);
        account_ref(out, "IncomeAccountRef", &d.income);
        tag(out, "PurchaseDesc", &d.description);
        account_ref(out, "ExpenseAccountRef", &d.expense);
        out.push_str(&format!("</SalesAndPurchase{suffix}>"));
    } else {
        out.push_str(&format!("<SalesOrPurchase{suffix}>"));
        tag(out, "Desc", &d.description);
        account_ref(out, "AccountRef", &d.income);
        out.push_str(&format!("</SalesOrPurchase{suffix}>"));
    }
}

/// A whole qbXML message: QuickBooks carries on after a request it refuses, so one bad code
/// does not stop the others.
pub fn render(requests: &[Request]) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><?qbxml version=\"13.0\"?><QBXML><QBXMLMsgsRq onError=\"continueOnError\">",
    );
    for r in requests {
        match r {
            Request::Accounts { id } => {
                out.push_str(&format!("<AccountQueryRq requestID=\"{}\">", esc(id)));
                tag(&mut out, "ActiveStatus", "ActiveOnly");
                for t in [
                    "CostOfGoodsSold",
                    "Expense",
                    "Income",
                    "OtherExpense",
                    "OtherIncome",
                ] {
                    tag(&mut out, "AccountType", t);
                }
                out.push_str("</AccountQueryRq>");
            }
            Request::Query { id, key } => {
                out.push_str(&format!("<ItemServiceQueryRq requestID=\"{}\">", esc(id)));
                match key {
                    Key::FullName(n) => tag(&mut out, "FullName", n),
                    Key::ListId(l) => tag(&mut out, "ListID", l),
                }
                out.push_str("</ItemServiceQueryRq>");
            }
            Request::QueryAll { id } => {
                out.push_str(&format!("<ItemServiceQueryRq requestID=\"{}\">", esc(id)));
                tag(&mut out, "ActiveStatus", "All");
                out.push_str("</ItemServiceQueryRq>");
            }
            Request::Add { id, item } => {
                out.push_str(&format!(
                    "<ItemServiceAddRq requestID=\"{}\"><ItemServiceAdd>",
                    esc(id)
                ));
                item_body(&mut out, item, false);
                out.push_str("</ItemServiceAdd></ItemServiceAddRq>");
            }
            Request::Mod {
                id,
                list_id,
                edit_sequence,
                item,
            } => {
                out.push_str(&format!(
                    "<ItemServiceModRq requestID=\"{}\"><ItemServiceMod>",
                    esc(id)
                ));
                tag(&mut out, "ListID", list_id);
                tag(&mut out, "EditSequence", edit_sequence);
                item_body(&mut out, item, true);
                out.push_str("</ItemServiceMod></ItemServiceModRq>");
            }
        }
    }
    out.push_str("</QBXMLMsgsRq></QBXML>");
    out
}

/// QuickBooks' answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub request_id: String,
    /// 0 is success; 500 a query that found nothing; 3100, 3140, 3200… a refusal.
    pub status: i64,
    pub message: String,
    pub items: Vec<QbItem>,
    pub accounts: Vec<GlAccount>,
}

/// Reads an account: the approver picks it by its full name (what an item's account reference
/// names), shown with its number where it has one.
fn account(e: &Element) -> Option<GlAccount> {
    let kind = match e.text_of("AccountType")? {
        "Income" | "OtherIncome" => GlKind::Income,
        "Expense" | "OtherExpense" | "CostOfGoodsSold" => GlKind::Expense,
        _ => return None,
    };
    let full = e.text_of("FullName")?.to_owned();
    let name = match e.text_of("AccountNumber").filter(|n| !n.is_empty()) {
        Some(n) => format!("{n} · {full}"),
        None => full.clone(),
    };
    Some(GlAccount {
        code: full,
        name,
        kind,
    })
}

fn item(e: &Element) -> QbItem {
    let text = |p: &[&str]| e.path(p).map(str::to_owned);
    let (description, income, expense) = if e.child("SalesAndPurchase").is_some() {
        (
            text(&["SalesAndPurchase", "SalesDesc"]),
            text(&["SalesAndPurchase", "IncomeAccountRef", "FullName"]),
            text(&["SalesAndPurchase", "ExpenseAccountRef", "FullName"]),
        )
    } else {
        (
            text(&["SalesOrPurchase", "Desc"]),
            text(&["SalesOrPurchase", "AccountRef", "FullName"]),
            None,
        )
    };
    QbItem {
        list_id: text(&["ListID"]).unwrap_or_default(),
        edit_sequence: text(&["EditSequence"]).unwrap_or_default(),
        name: text(&["Name"]).unwrap_or_default(),
        full_name: text(&["FullName"]).unwrap_or_default(),
        parent: text(&["ParentRef", "FullName"]),
        description: description.unwrap_or_default(),
        active: e.text_of("IsActive") != Some("false"),
        income,
        expense,
    }
}

/// Reads QuickBooks' answer to a message: one [`Answer`] per request it answered.
pub fn read_response(text: &str) -> Result<Vec<Answer>, String> {
    let root = parse(text)?;
    let msgs = root
        .child("QBXMLMsgsRs")
        .ok_or("the answer has no QBXMLMsgsRs")?;
    msgs.children
        .iter()
        .map(|rs| {
            let status = rs
                .attr("statusCode")
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("{} has no statusCode", rs.name))?;
            Ok(Answer {
                request_id: rs.attr("requestID").unwrap_or_default().to_owned(),
                status,
                message: rs.attr("statusMessage").unwrap_or_default().to_owned(),
                items: rs.children("ItemServiceRet").map(item).collect(),
                accounts: rs.children("AccountRet").filter_map(account).collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(expense: Option<&str>) -> Desired {
        Desired {
            name: "01-100".into(),
            parent: Some("01".into()),
            description: "Concrete & rebar".into(),
            active: true,
            income: Some("Construction Income".into()),
            expense: expense.map(Into::into),
        }
    }

    #[test]
    fn requests_follow_the_schema_order() {
        let m = render(&[
            Request::Accounts {
                id: "accounts".into(),
            },
            Request::Query {
                id: "q1".into(),
                key: Key::FullName("01:01-100".into()),
            },
            Request::Add {
                id: "a1".into(),
                item: desired(Some("Job Costs")),
            },
            Request::Mod {
                id: "m2".into(),
                list_id: "80000001-1".into(),
                edit_sequence: "1700".into(),
                item: desired(None),
            },
        ]);
        assert!(m.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?><?qbxml version=\"13.0\"?><QBXML><QBXMLMsgsRq onError=\"continueOnError\"><AccountQueryRq requestID=\"accounts\"><ActiveStatus>ActiveOnly</ActiveStatus><AccountType>CostOfGoodsSold</AccountType>"), "{m}");
        assert!(m.contains("<ItemServiceQueryRq requestID=\"q1\"><FullName>01:01-100</FullName></ItemServiceQueryRq>"));
        assert!(m.contains("<ItemServiceAddRq requestID=\"a1\"><ItemServiceAdd><Name>01-100</Name><IsActive>true</IsActive><ParentRef><FullName>01</FullName></ParentRef><SalesAndPurchase><SalesDesc>Concrete &amp; rebar</SalesDesc><IncomeAccountRef><FullName>Construction Income</FullName></IncomeAccountRef><PurchaseDesc>Concrete &amp; rebar</PurchaseDesc><ExpenseAccountRef><FullName>Job Costs</FullName></ExpenseAccountRef></SalesAndPurchase></ItemServiceAdd></ItemServiceAddRq>"), "{m}");
        assert!(m.contains("<ItemServiceModRq requestID=\"m2\"><ItemServiceMod><ListID>80000001-1</ListID><EditSequence>1700</EditSequence><Name>01-100</Name><IsActive>true</IsActive><ParentRef><FullName>01</FullName></ParentRef><SalesOrPurchaseMod><Desc>Concrete &amp; rebar</Desc><AccountRef><FullName>Construction Income</FullName></AccountRef></SalesOrPurchaseMod></ItemServiceMod></ItemServiceModRq>"), "{m}");
    }

    #[test]
    fn answers_are_read_per_request() {
        let answers = read_response(r#"<?xml version="1.0" ?><QBXML><QBXMLMsgsRs>
            <AccountQueryRs requestID="accounts" statusCode="0" statusSeverity="Info" statusMessage="Status OK">
              <AccountRet><ListID>10</ListID><FullName>Construction Income</FullName><AccountType>Income</AccountType><AccountNumber>4000</AccountNumber></AccountRet>
              <AccountRet><ListID>11</ListID><FullName>Checking</FullName><AccountType>Bank</AccountType></AccountRet>
              <AccountRet><ListID>12</ListID><FullName>Job Costs</FullName><AccountType>CostOfGoodsSold</AccountType></AccountRet>
            </AccountQueryRs>
            <ItemServiceQueryRs requestID="q1" statusCode="500" statusSeverity="Warn" statusMessage="not found" />
            <ItemServiceAddRs requestID="a1" statusCode="0" statusSeverity="Info">
              <ItemServiceRet><ListID>8-1</ListID><EditSequence>17</EditSequence><Name>01-100</Name><FullName>01:01-100</FullName><IsActive>true</IsActive>
              <ParentRef><FullName>01</FullName></ParentRef><SalesOrPurchase><Desc>Concrete</Desc><AccountRef><FullName>Construction Income</FullName></AccountRef></SalesOrPurchase></ItemServiceRet>
            </ItemServiceAddRs>
            <ItemServiceAddRs requestID="a2" statusCode="3100" statusSeverity="Error" statusMessage="The name &quot;01&quot; of the list element is already in use." />
            </QBXMLMsgsRs></QBXML>"#).unwrap();
        assert_eq!(answers.len(), 4);
        assert_eq!(
            answers[0].accounts,
            [
                GlAccount {
                    code: "Construction Income".into(),
                    name: "4000 · Construction Income".into(),
                    kind: GlKind::Income
                },
                GlAccount {
                    code: "Job Costs".into(),
                    name: "Job Costs".into(),
                    kind: GlKind::Expense
                },
            ]
        );
        assert_eq!((answers[1].status, answers[1].items.len()), (500, 0));
        let i = &answers[2].items[0];
        assert_eq!(
            (
                i.list_id.as_str(),
                i.edit_sequence.as_str(),
                i.full_name.as_str(),
                i.parent.as_deref(),
                i.description.as_str(),
                i.income.as_deref(),
                i.active
            ),
            (
                "8-1",
                "17",
                "01:01-100",
                Some("01"),
                "Concrete",
                Some("Construction Income"),
                true
            )
        );
        assert_eq!(answers[3].status, 3100);
        assert!(answers[3].message.contains("\"01\""));
        assert!(read_response("<QBXML/>").is_err());
    }
}
