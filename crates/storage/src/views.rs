//! Reads shaped for the web pages: the code tree one tier at a time (so a list of any size
//! opens at once: the top tier a page at a time, then each code's children when expanded),
//! the items of one export job (its live status), and the company's name.
use crate::codes::{CODE_COLS, CodeRow, CostCode};
use crate::queue::{ITEM_SELECT, Item, ItemRow};
use crate::{Db, StoreError};

/// A code and how many children it has (whether it can be expanded).
#[derive(Debug, Clone)]
pub struct TreeNode {
    pub code: CostCode,
    pub children: i64,
}

impl Db {
    /// One page of the codes directly under `parent` (the top tier for `None`), in natural
    /// order, and how many there are in all.
    pub async fn code_children(
        &self,
        company: i64,
        list: i64,
        parent: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TreeNode>, i64), StoreError> {
        self.list(company, list).await?;
        // Two statements rather than `parent_id = $2 OR $2 IS NULL`, so each uses its index.
        let under = match parent {
            Some(_) => "c.parent_id = $2",
            None => "c.parent_id IS NULL AND $2 IS NULL",
        };
        let list_sql = format!(
            "SELECT {CODE_COLS}, (SELECT COUNT(*) FROM cost_codes k WHERE k.parent_id = c.id) AS children \
             FROM cost_codes c WHERE c.list_id = $1 AND {under} ORDER BY c.sort_key, c.full_code LIMIT $3 OFFSET $4"
        );
        let count_sql =
            format!("SELECT COUNT(*) FROM cost_codes c WHERE c.list_id = $1 AND {under}");
        let (nodes, total) = with_pool!(self, p => {
            use sqlx::{FromRow, Row};
            let rows = sqlx::query(sqlx::AssertSqlSafe(list_sql))
                .bind(list).bind(parent).bind(limit).bind(offset).fetch_all(p).await?;
            let mut nodes = Vec::with_capacity(rows.len());
            for r in &rows {
                nodes.push(TreeNode { code: CostCode::from(CodeRow::from_row(r)?), children: r.try_get("children")? });
            }
            let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql))
                .bind(list).bind(parent).fetch_one(p).await?;
            (nodes, total)
        });
        Ok((nodes, total))
    }

    /// The items of one export job in export order (parents first), at most `limit` of them.
    pub async fn job_items(
        &self,
        company: i64,
        job: i64,
        limit: i64,
    ) -> Result<Vec<Item>, StoreError> {
        let sql = format!(
            "{ITEM_SELECT} WHERE i.company_id = $1 AND i.export_job_id = $2 ORDER BY i.sort_key, i.id LIMIT $3"
        );
        let rows: Vec<ItemRow> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(company).bind(job).bind(limit).fetch_all(p).await?);
        Ok(rows.into_iter().map(Item::from).collect())
    }

    pub async fn company_name(&self, company: i64) -> Result<String, StoreError> {
        let name: Option<String> = with_pool!(self, p => sqlx::query_scalar("SELECT name FROM companies WHERE id = $1")
            .bind(company).fetch_optional(p).await?);
        name.ok_or(StoreError::NotFound)
    }
}
