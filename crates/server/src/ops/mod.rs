//! What the application does, whoever asks. Each operation takes the state, the caller (the
//! signed-in user) and typed inputs; it checks access and input before it writes, and says
//! what went wrong as an [`OpError`]. The JSON API (`api`) and the pages (`web`) are adapters
//! that map that error their own way; the worker, the CLI and the demo call here too.
use costbridge_domain::profile::InvalidCode;
use costbridge_domain::send::SendBlock;
use costbridge_erp::ConnectorError;
use costbridge_storage::StoreError;
use costbridge_storage::erp::SendError;
use costbridge_storage::import::{ImportError, RowError};
use costbridge_storage::queue::{ItemProblem, QueueError};
use costbridge_storage::users::User;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

pub mod account;
pub mod audit;
pub mod clients;
pub mod codes;
pub mod company;
pub mod connection;
pub mod events;
pub mod imports;
pub mod qbwc;
pub mod queue;
pub mod send;
pub mod submissions;
pub mod users;

/// Field-level problems: `{field: [messages]}`.
pub type Fields = BTreeMap<String, Vec<String>>;

/// Why an operation did not happen. `Display` is the sentence the API puts in `message`.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The caller lacks this permission (as `admin_tool=admin and can_push_to_accounting`).
    #[error("this needs {0}")]
    Forbidden(&'static str),
    #[error("{}", first_field(.0))]
    Invalid(Fields),
    /// Missing, or in another company (which must look the same).
    #[error("no such resource")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// The code waits on the approver and cannot change now.
    #[error("{0}")]
    Locked(String),
    /// Queue items that cannot take the action; empty when none was in a state for it.
    #[error("{}", items_message(.0))]
    Items(Vec<ItemProblem>),
    /// Every bad row of a CSV file; nothing was imported.
    #[error("{} row(s) are invalid; nothing was imported", .0.len())]
    Rows(Vec<RowError>),
    /// Send to ERP is not possible now, and for `invalid_codes` the codes that break the rules.
    #[error("{}", .0.message)]
    Blocked(SendBlock, Vec<InvalidCode>),
    #[error("the company has no ERP connection")]
    NoConnection,
    /// The ERP (or the export folder) did not answer as expected.
    #[error("the ERP did not answer as expected: {0}")]
    Erp(String),
    /// The ERP asks Costbridge to slow down (Xero's rate limit): try again after `after`.
    #[error(
        "the ERP asks Costbridge to slow down (its rate limit): try again in {} s",
        after.as_secs().max(1)
    )]
    ErpBusy { after: std::time::Duration },
    /// The connector cannot do this (e.g. read codes back from a file).
    #[error("{0}")]
    NotSupported(String),
    /// Something the request depends on is unusable: stored settings this version cannot
    /// read, or a password hash that could not be made.
    #[error("{0}")]
    Broken(String),
    /// Too many failed sign-ins from this client or on this account; the seconds to wait.
    #[error("too many sign-in attempts; wait and try again")]
    RateLimited(u64),
    #[error("the email or password is wrong")]
    BadCredentials,
    /// The database failed; the adapters log it and show no internals.
    #[error("{UNSAVED}")]
    Store(StoreError),
}

/// What an unexpected failure (a database error, a panic) did, for the person who sent the
/// request: the step that failed rolled back, and an earlier step of the same request may
/// have been saved.
pub const UNSAVED: &str = "Costbridge failed unexpectedly while handling this request; the \
     cause is in its log. What it was saving when it failed was not saved: read back what the \
     request changes before you try again, or tell the operator if it happens again.";

pub type OpResult<T> = Result<T, OpError>;

/// The rows of a list one page holds: at most `limit`, after skipping `offset`.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub limit: i64,
    pub offset: i64,
}

fn first_field(fields: &Fields) -> String {
    fields
        .iter()
        .next()
        .map(|(f, m)| format!("{f} {}", m.join("; ")))
        .unwrap_or_default()
}

fn items_message(items: &[ItemProblem]) -> String {
    if items.is_empty() {
        "no item is in a state for this action".to_owned()
    } else {
        format!("{} item(s) cannot take this action", items.len())
    }
}

impl OpError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        OpError::Invalid(BTreeMap::from([(field.to_owned(), vec![message.into()])]))
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => OpError::NotFound,
            StoreError::Invalid(fields) => OpError::Invalid(fields),
            StoreError::Conflict(m) => OpError::Conflict(m),
            StoreError::Locked(m) => OpError::Locked(m),
            other => OpError::Store(other),
        }
    }
}

impl From<SendError> for OpError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Store(e) => e.into(),
            SendError::Blocked(block, invalid) => OpError::Blocked(block, invalid),
        }
    }
}

impl From<QueueError> for OpError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Store(e) => e.into(),
            QueueError::Items(items) => OpError::Items(items),
            QueueError::Changed(ready) => OpError::Conflict(format!(
                "Nothing was exported: Ready to Export changed since this page was drawn (codes \
                 were sent, exported or rejected meanwhile; it holds {} now). Reload the page, \
                 look them over, then export all again.",
                crate::web::format::codes(ready)
            )),
        }
    }
}

impl From<ImportError> for OpError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Store(e) => e.into(),
            ImportError::Rows(rows) => OpError::Rows(rows),
        }
    }
}

impl From<ConnectorError> for OpError {
    fn from(e: ConnectorError) -> Self {
        match e {
            ConnectorError::Unavailable(m) => OpError::Erp(m),
            ConnectorError::NotSupported(m) => OpError::NotSupported(m),
            ConnectorError::RateLimited { after, .. } => OpError::ErpBusy { after },
        }
    }
}

/// Company-scoped operations answer `NotFound` for any company but the caller's own.
pub fn company(caller: &User, company_id: i64) -> OpResult<i64> {
    if caller.company_id == company_id {
        Ok(company_id)
    } else {
        Err(OpError::NotFound)
    }
}

/// `Forbidden(required)` unless `ok`.
pub fn require(ok: bool, required: &'static str) -> OpResult<()> {
    if ok {
        Ok(())
    } else {
        Err(OpError::Forbidden(required))
    }
}

/// A change input's field that cannot be cleared: absent keeps it, `null` is refused by name.
/// Read as absent, `{"description": null}` answered 200 with the description unchanged, and a
/// client that meant to clear it never learned it had not.
pub fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    match Option::<T>::deserialize(d)? {
        Some(v) => Ok(Some(v)),
        None => Err(serde::de::Error::custom(CANNOT_CLEAR)),
    }
}

/// What [`present`] says of a `null`; `extract::json_rejection` answers it as a field error.
pub const CANNOT_CLEAR: &str =
    "cannot be cleared (it was null): leave it out to keep its value, or give one";

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`) in change inputs.
pub fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Plain text a person typed: required, bounded, no control characters.
pub fn text(field: &str, value: &str, max: usize) -> OpResult<String> {
    if value.trim().is_empty() {
        return Err(OpError::field(field, "is required"));
    }
    if value.chars().count() > max {
        return Err(OpError::field(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(OpError::field(
            field,
            costbridge_domain::wbs::control_character(c as u32, field != "email"),
        ));
    }
    Ok(value.trim().to_owned())
}
