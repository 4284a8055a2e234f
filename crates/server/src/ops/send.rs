//! Send to ERP (whether it is possible and why not, and the send itself) and retrieving a
//! pending code before the approver decides.
use super::codes::{read, write};
use super::connection::stored_profile;
use super::{OpResult, company};
use crate::state::AppState;
use costbridge_storage::codes::{CodeList, CostCode};
use costbridge_storage::erp::{SendStatus, Sender};
use costbridge_storage::users::User;

/// The rules a send is checked against: the connected ERP's profile and the company delimiter.
struct ErpRules {
    profile: Option<costbridge_domain::ErpProfile>,
    delimiter: char,
}

impl ErpRules {
    async fn of(state: &AppState, company: i64) -> OpResult<ErpRules> {
        let (delimiter, profile) = state.db.send_rules(company).await?;
        Ok(ErpRules {
            profile: profile.as_deref().map(stored_profile).transpose()?,
            delimiter,
        })
    }

    /// The caller as a sender under these rules.
    fn sender<'a>(&'a self, caller: &'a User) -> Sender<'a> {
        Sender {
            user_id: caller.id,
            permissions: &caller.permissions,
            profile: self.profile.as_ref(),
            delimiter: self.delimiter,
        }
    }
}

/// The Send to ERP button for this caller and list. `seen_version` is the list version the
/// caller shows; a different current one answers `stale_page`.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn status(
    state: &AppState, caller: &User, cid: i64, lid: i64, seen_version: Option<i64>,
) -> OpResult<SendStatus> {
    let company = read(caller, cid)?;
    let list = state.db.list(company, lid).await?;
    judge(state, caller, company, &list, seen_version).await
}

/// [`status`] for a list the caller already read with [`super::codes::lists`].
#[tracing::instrument(skip(state, caller, list), fields(user = caller.id, list = list.id))]
pub async fn status_of(
    state: &AppState, caller: &User, cid: i64, list: &CodeList,
) -> OpResult<SendStatus> {
    let company = read(caller, cid)?;
    judge(state, caller, company, list, None).await
}

async fn judge(
    state: &AppState, caller: &User, company: i64, list: &CodeList, seen_version: Option<i64>,
) -> OpResult<SendStatus> {
    let rules = ErpRules::of(state, company).await?;
    Ok(state
        .db
        .send_status(
            list,
            &rules.sender(caller),
            seen_version,
            &state.unsynced_checks,
        )
        .await?)
}

/// Sends every unsynced code of the list; returns the submission id and how many were sent.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn send(
    state: &AppState, caller: &User, cid: i64, lid: i64, list_version: i64,
) -> OpResult<(i64, i64)> {
    let company = company(caller, cid)?;
    // Refused before the list is taken for writing or its codes are read and checked.
    if !caller.permissions.can_write_codes() {
        return Err(super::OpError::Blocked(
            costbridge_domain::send::no_permission(),
            Vec::new(),
        ));
    }
    let rules = ErpRules::of(state, company).await?;
    Ok(state
        .db
        .send_to_erp(
            company,
            lid,
            &rules.sender(caller),
            list_version,
            &state.unsynced_checks,
        )
        .await?)
}

/// Takes a pending code back from the approver's queue; returns the code as it is now.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn retrieve(
    state: &AppState, caller: &User, cid: i64, lid: i64, id: i64,
) -> OpResult<CostCode> {
    let company = write(caller, cid)?;
    Ok(state.db.retrieve_code(company, lid, caller.id, id).await?)
}
