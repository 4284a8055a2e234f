//! Submissions for auditors: each Send to ERP, who made it, and where each sent code stands.
//! Whoever may read the ERP Integrations queue may read them.
use super::queue::reader;
use super::{OpResult, Window};
use crate::state::AppState;
use costbridge_storage::queue::Item;
use costbridge_storage::submissions::Submission;
use costbridge_storage::users::User;

/// One page of the company's submissions, newest first, and how many there are.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn list(
    state: &AppState, caller: &User, cid: i64, page: Window,
) -> OpResult<(Vec<Submission>, i64)> {
    let company = reader(caller, cid)?;
    Ok(state
        .db
        .submissions(company, page.limit, page.offset)
        .await?)
}

#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn one(state: &AppState, caller: &User, cid: i64, id: i64) -> OpResult<Submission> {
    let company = reader(caller, cid)?;
    Ok(state.db.submission(company, id).await?)
}

/// One page of a submission's items; a submission of another company is not found.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn items(
    state: &AppState, caller: &User, cid: i64, id: i64, page: Window,
) -> OpResult<(Vec<Item>, i64)> {
    let company = reader(caller, cid)?;
    state.db.submission(company, id).await?;
    Ok(state
        .db
        .submission_items(company, id, page.limit, page.offset)
        .await?)
}
