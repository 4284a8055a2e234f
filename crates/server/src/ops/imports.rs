//! CSV import into a list: parsed whole first (every bad row reported), then previewed or
//! applied all or nothing.
use super::codes::write;
use super::{OpError, OpResult};
use crate::csvio::{self, CsvError};
use crate::state::AppState;
use costbridge_storage::import::{ImportPreview, ImportRow, ImportSummary};
use costbridge_storage::users::User;

fn parse_csv(bytes: &[u8], progress: impl FnMut(u64)) -> OpResult<Vec<ImportRow>> {
    match csvio::parse(bytes, progress) {
        Ok(rows) => Ok(rows),
        Err(CsvError::File(fields)) => Err(OpError::Invalid(fields)),
        Err(CsvError::Rows(rows)) => Err(OpError::Rows(rows)),
    }
}

/// What importing `bytes` would create and change, without applying anything.
#[tracing::instrument(skip(state, caller, bytes), fields(user = caller.id, bytes = bytes.len()))]
pub async fn preview(
    state: &AppState, caller: &User, cid: i64, lid: i64, bytes: &[u8],
) -> OpResult<ImportPreview> {
    let company = write(caller, cid)?;
    let rows = parse_csv(bytes, |_| {})?;
    Ok(state.db.preview_import(company, lid, &rows).await?)
}

/// Parses and applies a CSV file; `progress` hears how many bytes were read.
#[tracing::instrument(skip(state, caller, bytes, progress), fields(user = caller.id, bytes = bytes.len()))]
pub async fn import(
    state: &AppState, caller: &User, cid: i64, lid: i64, bytes: &[u8], progress: impl FnMut(u64),
) -> OpResult<ImportSummary> {
    let company = write(caller, cid)?;
    let rows = parse_csv(bytes, progress)?;
    Ok(state
        .db
        .import_codes(company, lid, caller.id, &rows)
        .await?)
}
