//! Costbridge's rules, free of I/O. A state transition, a validation rule or a permission
//! check lives here and nowhere else; storage and handlers call into it.
#![forbid(unsafe_code)]

pub mod csv_cell;
pub mod events;
pub mod permission;
pub mod profile;
pub mod queue;
pub mod send;
pub mod sync;
pub mod url;
pub mod wbs;
pub mod xero;

pub use permission::{Level, Permissions};
pub use profile::{DescriptionOverflow, ErpProfile};
pub use send::{SendBlock, SendReason};
pub use sync::{Change, ConfirmedValues, SyncState, TransitionError};
pub use wbs::{CodeSegment, Description, WbsError};
