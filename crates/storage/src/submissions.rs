//! Submissions as an auditor reads them: who sent what when, and where each sent code is now.
use crate::queue::{Item, Person};
use crate::tx::{PageQuery, Queries};
use crate::{Db, StoreError};
use costbridge_domain::permission::UserKind;
use serde::Serialize;
use sqlx::AssertSqlSafe;
use std::collections::BTreeMap;
use time::OffsetDateTime;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 1, "list_id": 1, "sent_by": {"id": 1, "email": "admin@demo.example", "kind": "user", "name": "Demo Admin"}, "sent_at": "2026-11-30T15:01:00Z",
    "code_count": 12, "item_counts": {"synced": 11, "rejected": 1}, "export_job_ids": [1]}))]
pub struct Submission {
    pub id: i64,
    pub list_id: i64,
    pub sent_by: Person,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    pub code_count: i64,
    /// How many of its items are in each queue state (`ready`, `exporting`, `synced`, `failed`,
    /// `rejected`, `retrieved`).
    pub item_counts: BTreeMap<String, i64>,
    /// The export jobs that took its items, oldest first.
    pub export_job_ids: Vec<i64>,
}

type SubmissionRow = (i64, i64, i64, String, String, String, OffsetDateTime, i64);

const SUBMISSION_SELECT: &str = "SELECT s.id, s.list_id, s.sent_by, u.email, u.name, u.kind, s.sent_at, \
                                 s.code_count FROM submissions s JOIN users u ON u.id = \
                                 s.sent_by";

/// The company's (`$1`) newest submission id, 0 before the first.
pub(crate) const LATEST_SUBMISSION: &str =
    "SELECT COALESCE(MAX(id), 0) FROM submissions WHERE company_id = $1";

impl Db {
    /// One page of the company's submissions, newest first, and how many there are.
    pub async fn submissions(
        &self, company: i64, limit: i64, offset: i64,
    ) -> Result<(Vec<Submission>, i64), StoreError> {
        let (rows, total): (Vec<SubmissionRow>, i64) = self
            .page(PageQuery {
                list_sql: &format!(
                    "{SUBMISSION_SELECT} WHERE s.company_id = $1 ORDER BY s.id \
                     DESC"
                ),
                count_sql: "SELECT COUNT(*) FROM submissions WHERE company_id = $1",
                args: vec![company.into()],
                limit,
                offset,
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.with_counts(row).await?);
        }
        Ok((out, total))
    }

    /// The company's latest submission's id (0 before the first): what changes whenever codes
    /// are sent to Ready to Export.
    pub async fn latest_submission(&self, company: i64) -> Result<i64, StoreError> {
        self.pool()
            .scalar(LATEST_SUBMISSION, [company.into()])
            .await
    }

    pub async fn submission(&self, company: i64, id: i64) -> Result<Submission, StoreError> {
        let sql = format!("{SUBMISSION_SELECT} WHERE s.company_id = $1 AND s.id = $2");
        let row: Option<SubmissionRow> = self
            .pool()
            .fetch_optional(AssertSqlSafe(sql), [company.into(), id.into()])
            .await?;
        self.with_counts(row.ok_or(StoreError::NotFound)?).await
    }

    /// One page of a submission's items (what was sent, and where each stands now).
    pub async fn submission_items(
        &self, company: i64, id: i64, limit: i64, offset: i64,
    ) -> Result<(Vec<Item>, i64), StoreError> {
        self.item_page(
            "i.company_id = $1 AND i.submission_id = $2",
            "SELECT COUNT(*) FROM erp_items WHERE company_id = $1 AND submission_id = $2",
            vec![company.into(), id.into()],
            limit,
            offset,
        )
        .await
    }

    async fn with_counts(&self, row: SubmissionRow) -> Result<Submission, StoreError> {
        let (id, list_id, sent_by, email, name, kind, sent_at, code_count) = row;
        let kind = UserKind::try_from(kind).map_err(StoreError::decode)?;
        let counts = self.counts_by_status("submission_id", id).await?;
        let jobs: Vec<(i64,)> = self
            .pool()
            .fetch_all(
                "SELECT DISTINCT export_job_id FROM erp_items WHERE \
                 submission_id = $1 AND export_job_id IS NOT NULL ORDER BY \
                 export_job_id",
                [id.into()],
            )
            .await?;
        Ok(Submission {
            id,
            list_id,
            sent_by: Person {
                id: sent_by,
                email,
                kind,
                name,
            },
            sent_at,
            code_count,
            item_counts: counts.into_iter().collect(),
            export_job_ids: jobs.into_iter().map(|(j,)| j).collect(),
        })
    }
}
