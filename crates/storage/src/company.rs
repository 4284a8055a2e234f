//! Company-wide settings: the time zone its people read times in.
use crate::audit;
use crate::tx::Queries;
use crate::{Db, StoreError};
use serde_json::json;

impl Db {
    /// The company's time zone (an IANA name), or `None` for the server's own.
    pub async fn company_time_zone(&self, company: i64) -> Result<Option<String>, StoreError> {
        let row: Option<(Option<String>,)> = self
            .pool()
            .fetch_optional(
                "SELECT time_zone FROM companies WHERE id = $1",
                [company.into()],
            )
            .await?;
        row.map(|(z,)| z).ok_or(StoreError::NotFound)
    }

    /// Sets the company's time zone (`None`: the server's), recorded in the audit log when it
    /// changes. The caller has checked the name.
    pub async fn set_company_time_zone(
        &self, company: i64, actor: i64, zone: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                let (before,): (Option<String>,) = tx
                    .fetch_optional(
                        "SELECT time_zone FROM companies WHERE id = $1",
                        [company.into()],
                    )
                    .await?
                    .ok_or(StoreError::NotFound)?;
                if before.as_deref() == zone {
                    return Ok(());
                }
                tx.execute(
                    "UPDATE companies SET time_zone = $2 WHERE id = $1",
                    [company.into(), zone.into()],
                )
                .await?;
                audit::record(
                    tx,
                    company,
                    Some(actor),
                    "company.updated",
                    ("company", company),
                    Some(json!({ "time_zone": before })),
                    Some(json!({ "time_zone": zone })),
                )
                .await
            })
        })
        .await
    }
}
