//! The JSON a webhook receiver gets (`Batch`) and answers (`Reply`), as the module comment of
//! `webhook` describes them.
use serde::{Deserialize, Serialize};

use crate::{ExportContext, ExportLine, GlAccount, fit_description};

#[derive(Serialize)]
pub(super) struct Batch<'a> {
    event: &'static str,
    job_id: i64,
    codes: Vec<Code<'a>>,
}

#[derive(Serialize)]
struct Code<'a> {
    item_id: i64,
    code: &'a str,
    full_code: &'a str,
    description: &'a str,
    active: bool,
    parent_full_code: Option<&'a str>,
    origin_id: Option<&'a str>,
    previous: Option<PreviousOut<'a>>,
    gl_income_account: Option<Account<'a>>,
    gl_expense_account: Option<Account<'a>>,
}

#[derive(Serialize)]
struct PreviousOut<'a> {
    code: &'a str,
    full_code: &'a str,
    description: &'a str,
    active: bool,
}

#[derive(Serialize)]
struct Account<'a> {
    code: &'a str,
    name: &'a str,
}

impl<'a> Account<'a> {
    fn of(account: Option<&'a GlAccount>) -> Option<Self> {
        account.map(|a| Account {
            code: &a.code,
            name: &a.name,
        })
    }
}

impl<'a> Batch<'a> {
    /// The `cost_codes.export` event for `lines`, descriptions cut to the profile's length.
    pub fn of(ctx: &ExportContext, lines: &[ExportLine<'a>]) -> Self {
        Batch {
            event: "cost_codes.export",
            job_id: ctx.job_id,
            codes: lines
                .iter()
                .map(|l| Code {
                    item_id: l.item_id,
                    code: l.code,
                    full_code: l.full_code,
                    description: fit_description(l.description, ctx.max_description),
                    active: l.active,
                    parent_full_code: l.parent_full_code,
                    origin_id: l.origin_id,
                    previous: l.previous.map(|p| PreviousOut {
                        code: p.code,
                        full_code: p.full_code,
                        description: p.description,
                        active: p.active,
                    }),
                    gl_income_account: Account::of(l.income),
                    gl_expense_account: Account::of(l.expense),
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct Reply {
    pub results: Vec<ReplyLine>,
}

#[derive(Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub(super) enum ReplyLine {
    Synced {
        item_id: i64,
        origin_id: OriginId,
    },
    Failed {
        item_id: i64,
        #[serde(default)]
        message: Option<String>,
    },
}

/// ERPs key records by text or by number; both are kept as text.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum OriginId {
    Text(String),
    Number(i64),
}
