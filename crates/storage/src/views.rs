//! Reads shaped for the web pages: the code tree one tier at a time (so a list of any size
//! opens at once: the top tier a page at a time, then each code's children when expanded),
//! the items of one export job (its live status), and the company's name.
use crate::codes::{CODE_COLS, CodeRow, CostCode, PAGE_ORDER};
use crate::queue::{ITEM_SELECT, Item, ItemRow};
use crate::tx::{PageQuery, Queries};
use crate::{Db, StoreError};
use sqlx::AssertSqlSafe;

/// A code and how many children it has (whether it can be expanded).
#[derive(Debug, Clone)]
pub struct TreeNode {
    pub code: CostCode,
    pub children: i64,
}

/// A code as the tree reads it, with its number of children (packed on SQLite as
/// `[[code columns…], children]`).
#[derive(sqlx::FromRow, serde::Deserialize)]
struct NodeRow {
    #[sqlx(flatten)]
    code: CodeRow,
    children: i64,
}

impl Db {
    /// One page of the codes directly under `parent` (the top tier for `None`), in natural
    /// order, and how many there are in all.
    pub async fn code_children(
        &self, company: i64, list: i64, parent: Option<i64>, limit: i64, offset: i64,
    ) -> Result<(Vec<TreeNode>, i64), StoreError> {
        // Two statements rather than `parent_id = $2 OR $2 IS NULL`, so each uses its index.
        // The list must be the caller's company's: checked in the statements (as a list page
        // does), and the list's own row read only when the page comes back empty, to tell an
        // empty branch from a list that is not theirs. Reading it first cost every tree page
        // and every branch opened a round trip.
        let under = match parent {
            Some(_) => "c.parent_id = $2",
            None => "c.parent_id IS NULL AND $2 IS NULL",
        };
        let theirs = "EXISTS (SELECT 1 FROM cost_code_lists l WHERE l.id = $1 AND l.company_id \
                      = $3)";
        let list_sql = format!(
            "SELECT {CODE_COLS}, c.sort_key, (SELECT COUNT(*) FROM cost_codes k \
             WHERE k.parent_id = c.id) AS children FROM cost_codes c \
             WHERE c.list_id = $1 AND {theirs} AND {under} ORDER BY {PAGE_ORDER}"
        );
        let count_sql = format!(
            "SELECT COUNT(*) FROM cost_codes c WHERE c.list_id = $1 AND {theirs} AND \
             {under}"
        );
        let (rows, total): (Vec<NodeRow>, i64) = self
            .packed_page(
                PageQuery {
                    list_sql: &list_sql,
                    count_sql: &count_sql,
                    args: vec![list.into(), parent.into(), company.into()],
                    limit,
                    offset,
                },
                &format!("json_array({CODE_COLS}), c.children"),
                PAGE_ORDER,
            )
            .await?;
        if rows.is_empty() {
            self.list(company, list).await?;
        }
        let nodes = rows
            .into_iter()
            .map(|r| TreeNode {
                code: CostCode::from(r.code),
                children: r.children,
            })
            .collect();
        Ok((nodes, total))
    }

    /// The items of one export job in export order (parents first), at most `limit` of them.
    pub async fn job_items(
        &self, company: i64, job: i64, limit: i64,
    ) -> Result<Vec<Item>, StoreError> {
        let sql = format!(
            "{ITEM_SELECT} WHERE i.company_id = $1 AND i.export_job_id = \
             $2 ORDER BY i.sort_key, i.id LIMIT $3"
        );
        let rows: Vec<ItemRow> = self
            .pool()
            .fetch_all(
                AssertSqlSafe(sql),
                [company.into(), job.into(), limit.into()],
            )
            .await?;
        let items = rows
            .into_iter()
            .map(Item::try_from)
            .collect::<Result<_, _>>()?;
        self.with_delivery(items).await
    }

    pub async fn company_name(&self, company: i64) -> Result<String, StoreError> {
        self.pool()
            .scalar_optional("SELECT name FROM companies WHERE id = $1", [company.into()])
            .await?
            .ok_or(StoreError::NotFound)
    }
}
