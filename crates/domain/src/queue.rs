//! The states of the rows behind the ERP Integrations queue: a queue item (one sent code on its
//! way through the approver to the ERP), an export job, and an outbox email. Storage stores
//! them by [`as_str`](ItemStatus::as_str) and decodes them strictly: an unknown value read back
//! is an error, never a default.
use crate::sync::SyncState;
use serde::Serialize;
use thiserror::Error;

/// The refuser of a row Costbridge failed itself (a check of its own, a folder it cannot
/// write, an ERP it gave up on), as opposed to a refusal the ERP answered.
pub const COSTBRIDGE: &str = "Costbridge";

/// Who refused, as the start of a sentence about `what` ("it", "3 codes"): Costbridge, the ERP
/// by name, or for a refusal recorded before its refuser was, the ERP. The pages and the mails
/// say it alike.
pub fn refused(by: Option<&str>, what: &str) -> String {
    match by {
        Some(COSTBRIDGE) => format!("Costbridge did not export {what}"),
        Some(erp) => format!("{erp} refused {what}"),
        None => format!("The ERP refused {what}"),
    }
}

/// A stored state this version does not know (written by a newer version, or by hand).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown {kind} state '{value}'")]
pub struct UnknownState {
    pub kind: &'static str,
    pub value: String,
}

/// A queue item's state. Ready, exporting and failed are *open*: the code waits on the
/// approver or the ERP, and a code has at most one open item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Ready,
    Exporting,
    Synced,
    Failed,
    Rejected,
    /// The admin took the code back before the approver decided.
    Retrieved,
}

impl ItemStatus {
    pub const ALL: [ItemStatus; 6] = [
        ItemStatus::Ready,
        ItemStatus::Exporting,
        ItemStatus::Failed,
        ItemStatus::Synced,
        ItemStatus::Rejected,
        ItemStatus::Retrieved,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Ready => "ready",
            ItemStatus::Exporting => "exporting",
            ItemStatus::Synced => "synced",
            ItemStatus::Failed => "failed",
            ItemStatus::Rejected => "rejected",
            ItemStatus::Retrieved => "retrieved",
        }
    }

    pub fn parse(s: &str) -> Result<ItemStatus, UnknownState> {
        decode(&Self::ALL, Self::as_str, "queue item", s)
    }

    pub fn is_open(self) -> bool {
        Self::open_for_any().contains(&self)
    }

    /// The open states, each the open item of one code state.
    pub fn open_for_any() -> [ItemStatus; 3] {
        [ItemStatus::Ready, ItemStatus::Exporting, ItemStatus::Failed]
    }

    /// The open item a code in `state` has; `None` when it must have none.
    pub fn open_for(state: SyncState) -> Option<ItemStatus> {
        match state {
            SyncState::Pending => Some(ItemStatus::Ready),
            SyncState::Exporting => Some(ItemStatus::Exporting),
            SyncState::Failed => Some(ItemStatus::Failed),
            SyncState::New | SyncState::Modified | SyncState::Synced | SyncState::Rejected => None,
        }
    }

    /// The queue's filter for items in this state (API `?filter=`), and its tab label.
    pub const fn filter(self) -> (&'static str, &'static str) {
        match self {
            ItemStatus::Ready => ("ready_to_export", "Ready to Export"),
            ItemStatus::Exporting => ("exporting", "Exporting"),
            ItemStatus::Failed => ("failed", "Failed to Export"),
            ItemStatus::Synced => ("synced", "Synced"),
            ItemStatus::Rejected => ("rejected", "Rejected"),
            ItemStatus::Retrieved => ("retrieved", "Retrieved"),
        }
    }
}

/// An export job's state: queued (waiting or retrying later), running (leased by a worker),
/// done (every item synced or failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = JobState)]
pub enum JobStatus {
    Queued,
    Running,
    Done,
}

impl JobStatus {
    pub const ALL: [JobStatus; 3] = [JobStatus::Queued, JobStatus::Running, JobStatus::Done];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
        }
    }
}

/// An outbox email's state: pending until delivered (or given up on), then sent, failed
/// (the mail server refused it for good) or cancelled (no longer true when its turn came).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MailStatus {
    Pending,
    Sent,
    Failed,
    Cancelled,
}

impl MailStatus {
    pub const ALL: [MailStatus; 4] = [
        MailStatus::Pending,
        MailStatus::Sent,
        MailStatus::Failed,
        MailStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MailStatus::Pending => "pending",
            MailStatus::Sent => "sent",
            MailStatus::Failed => "failed",
            MailStatus::Cancelled => "cancelled",
        }
    }
}

/// The state among `all` stored as `value`, or the error naming what was found.
pub(crate) fn decode<T: Copy>(
    all: &[T], name: fn(T) -> &'static str, kind: &'static str, value: &str,
) -> Result<T, UnknownState> {
    all.iter()
        .copied()
        .find(|s| name(*s) == value)
        .ok_or_else(|| UnknownState {
            kind,
            value: value.to_owned(),
        })
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(ItemStatus, JobStatus, MailStatus, SyncState);

/// `TryFrom<String>` for states stored by `as_str`, decoded strictly among `ALL`; the string
/// names the row in the error.
macro_rules! decode_stored {
    ($($t:ty => $kind:literal),* $(,)?) => {$(
        impl TryFrom<String> for $t {
            type Error = $crate::queue::UnknownState;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                $crate::queue::decode(&Self::ALL, Self::as_str, $kind, &s)
            }
        }
    )*};
}
pub(crate) use decode_stored;
decode_stored!(ItemStatus => "queue item", JobStatus => "export job", MailStatus => "outbox email");

/// `('a', 'b')` for an SQL `IN`, from states' stored names: queries name states through the
/// domain, so a renamed or added state is a compile error here, not a stale literal there.
pub fn sql_in(names: impl IntoIterator<Item = &'static str>) -> String {
    let quoted: Vec<String> = names.into_iter().map(|n| format!("'{n}'")).collect();
    format!("({})", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::ALL_STATES;

    #[test]
    fn every_state_round_trips_and_unknown_ones_are_errors() {
        for s in ItemStatus::ALL {
            assert_eq!(ItemStatus::try_from(s.as_str().to_owned()), Ok(s));
        }
        for s in JobStatus::ALL {
            assert_eq!(JobStatus::try_from(s.as_str().to_owned()), Ok(s));
        }
        for s in MailStatus::ALL {
            assert_eq!(MailStatus::try_from(s.as_str().to_owned()), Ok(s));
        }
        assert_eq!(
            ItemStatus::parse("approved").unwrap_err().to_string(),
            "unknown queue item state 'approved'"
        );
        assert!(JobStatus::try_from("paused".to_owned()).is_err());
    }

    #[test]
    fn locked_codes_and_only_they_have_an_open_item() {
        for state in ALL_STATES {
            let open = ItemStatus::open_for(state);
            assert_eq!(open.is_some(), state.is_locked(), "{state:?}");
            assert!(open.is_none_or(ItemStatus::is_open));
        }
        let filters: std::collections::HashSet<&str> =
            ItemStatus::ALL.iter().map(|s| s.filter().0).collect();
        assert_eq!(filters.len(), ItemStatus::ALL.len());
        assert_eq!(
            sql_in(ItemStatus::open_for_any().map(ItemStatus::as_str)),
            "('ready', 'exporting', 'failed')"
        );
    }
}
