//! The sync state machine of a code in the ERP list (docs/rules.md §3). Every transition the
//! product makes goes through [`SyncState::apply`], so that table lives in one match.
use serde::Serialize;
use std::collections::BTreeMap;
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    New,
    Modified,
    Pending,
    Exporting,
    Synced,
    Failed,
    Rejected,
}

pub const ALL_STATES: [SyncState; 7] = [
    SyncState::New,
    SyncState::Modified,
    SyncState::Pending,
    SyncState::Exporting,
    SyncState::Synced,
    SyncState::Failed,
    SyncState::Rejected,
];

/// What happens to a code. `differs` on an edit says whether the code's values now differ from
/// the last values the ERP confirmed (always true for a code the ERP never confirmed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Edited {
        differs: bool,
    },
    Sent,
    /// The admin takes a pending code back; `before` is the state it had when sent.
    Retrieved {
        before: SyncState,
    },
    Rejected,
    Exported,
    Confirmed,
    Refused,
    Retried,
    /// Sync from ERP found this code in the ERP; `erp_agrees` says whether the ERP's values
    /// are the code's current ones.
    Pulled {
        erp_agrees: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransitionError {
    #[error("the code is {0} and locked until the approver decides")]
    Locked(&'static str),
    #[error("a {from} code cannot be {event}")]
    NotAllowed {
        from: &'static str,
        event: &'static str,
    },
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::New => "new",
            SyncState::Modified => "modified",
            SyncState::Pending => "pending",
            SyncState::Exporting => "exporting",
            SyncState::Synced => "synced",
            SyncState::Failed => "failed",
            SyncState::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<SyncState> {
        ALL_STATES.into_iter().find(|st| st.as_str() == s)
    }

    /// The states Send to ERP takes, by stored name (for SQL).
    pub fn unsynced_names() -> impl Iterator<Item = &'static str> {
        ALL_STATES
            .into_iter()
            .filter(|s| s.is_unsynced())
            .map(SyncState::as_str)
    }

    /// New, modified and rejected codes are what Send to ERP sends.
    pub fn is_unsynced(self) -> bool {
        matches!(
            self,
            SyncState::New | SyncState::Modified | SyncState::Rejected
        )
    }

    /// Pending and exporting codes are in the approver's hands; a failed code waits for the
    /// approver to retry or reject it, so it is locked too (our choice: an edit under a failed
    /// row would make "retry" export values nobody reviewed).
    pub fn is_locked(self) -> bool {
        matches!(
            self,
            SyncState::Pending | SyncState::Exporting | SyncState::Failed
        )
    }

    pub fn apply(self, event: Event) -> Result<SyncState, TransitionError> {
        use SyncState::*;
        let next = match (self, event) {
            (Pending | Exporting | Failed, Event::Edited { .. }) => {
                return Err(TransitionError::Locked(self.as_str()));
            }
            (New, Event::Edited { .. }) => New,
            (Synced | Modified, Event::Edited { differs }) => {
                if differs {
                    Modified
                } else {
                    Synced
                }
            }
            // A rejected code keeps its reason visible until sent again, unless the edit
            // brings it back to what the ERP already has.
            (Rejected, Event::Edited { differs }) => {
                if differs {
                    Rejected
                } else {
                    Synced
                }
            }
            (New | Modified | Rejected, Event::Sent) => Pending,
            (Pending, Event::Retrieved { before }) if before.is_unsynced() => before,
            (Pending | Failed, Event::Rejected) => Rejected,
            (Pending, Event::Exported) => Exporting,
            (Exporting, Event::Confirmed) => Synced,
            (Exporting, Event::Refused) => Failed,
            (Failed, Event::Retried) => Exporting,
            // The ERP's values become the confirmed ones of a synced code; a waiting code the
            // ERP already has exactly is synced. Anything else is a conflict, shown, not applied.
            (Synced, Event::Pulled { .. }) => Synced,
            (New | Modified | Rejected, Event::Pulled { erp_agrees: true }) => Synced,
            (from, event) => {
                return Err(TransitionError::NotAllowed {
                    from: from.as_str(),
                    event: event.verb(),
                });
            }
        };
        Ok(next)
    }
}

impl TryFrom<String> for SyncState {
    type Error = crate::queue::UnknownState;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        crate::queue::decode(&ALL_STATES, SyncState::as_str, "cost code", &s)
    }
}

impl Event {
    fn verb(self) -> &'static str {
        match self {
            Event::Edited { .. } => "edited",
            Event::Sent => "sent",
            Event::Retrieved { .. } => "retrieved",
            Event::Rejected => "rejected",
            Event::Exported => "exported",
            Event::Confirmed => "confirmed",
            Event::Refused => "refused",
            Event::Retried => "retried",
            Event::Pulled { .. } => "pulled",
        }
    }
}

/// The values that decide whether a code differs from what the ERP has. The parent is part of
/// `full_code`, so a move or an ancestor's rename shows up there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConfirmedValues {
    pub code: String,
    pub full_code: String,
    pub description: String,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldChange {
    pub from: serde_json::Value,
    pub to: serde_json::Value,
}

/// Whether an item is a code the ERP has never seen or a change to one it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    New,
    Modified,
}

impl ConfirmedValues {
    /// The field-by-field diff (old → new) the approver sees; empty when nothing differs.
    pub fn diff(&self, now: &ConfirmedValues) -> BTreeMap<&'static str, FieldChange> {
        let mut out = BTreeMap::new();
        let mut field = |name, from: serde_json::Value, to: serde_json::Value| {
            if from != to {
                out.insert(name, FieldChange { from, to });
            }
        };
        field("code", self.code.clone().into(), now.code.clone().into());
        field(
            "full_code",
            self.full_code.clone().into(),
            now.full_code.clone().into(),
        );
        field(
            "description",
            self.description.clone().into(),
            now.description.clone().into(),
        );
        field("active", self.active.into(), now.active.into());
        out
    }
}

/// Whether the current values differ from the confirmed ones (a never-confirmed code differs).
pub fn differs(confirmed: Option<&ConfirmedValues>, now: &ConfirmedValues) -> bool {
    confirmed.is_none_or(|c| c != now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use SyncState::*;
    use proptest::prelude::*;

    fn any_state() -> impl Strategy<Value = SyncState> {
        proptest::sample::select(ALL_STATES.to_vec())
    }

    fn any_event() -> impl Strategy<Value = Event> {
        prop_oneof![
            any::<bool>().prop_map(|differs| Event::Edited { differs }),
            Just(Event::Sent),
            any_state().prop_map(|before| Event::Retrieved { before }),
            Just(Event::Rejected),
            Just(Event::Exported),
            Just(Event::Confirmed),
            Just(Event::Refused),
            Just(Event::Retried),
            any::<bool>().prop_map(|erp_agrees| Event::Pulled { erp_agrees }),
        ]
    }

    #[test]
    fn the_spec_table() {
        let e = |d| Event::Edited { differs: d };
        assert_eq!(New.apply(e(true)), Ok(New));
        assert_eq!(Synced.apply(e(true)), Ok(Modified));
        assert_eq!(Synced.apply(e(false)), Ok(Synced));
        assert_eq!(Modified.apply(e(false)), Ok(Synced));
        assert_eq!(Modified.apply(e(true)), Ok(Modified));
        for s in [New, Modified, Rejected] {
            assert_eq!(s.apply(Event::Sent), Ok(Pending));
        }
        assert_eq!(
            Pending.apply(Event::Retrieved { before: Modified }),
            Ok(Modified)
        );
        assert_eq!(
            Pending.apply(Event::Retrieved { before: Rejected }),
            Ok(Rejected)
        );
        assert_eq!(Pending.apply(Event::Rejected), Ok(Rejected));
        assert_eq!(Pending.apply(Event::Exported), Ok(Exporting));
        assert_eq!(Exporting.apply(Event::Confirmed), Ok(Synced));
        assert_eq!(Exporting.apply(Event::Refused), Ok(Failed));
        assert_eq!(Failed.apply(Event::Retried), Ok(Exporting));
        assert_eq!(Failed.apply(Event::Rejected), Ok(Rejected));
        assert_eq!(Rejected.apply(e(true)), Ok(Rejected));
        assert_eq!(Rejected.apply(e(false)), Ok(Synced));
    }

    #[test]
    fn locked_and_forbidden() {
        assert_eq!(
            Pending.apply(Event::Edited { differs: true }),
            Err(TransitionError::Locked("pending"))
        );
        assert_eq!(
            Exporting.apply(Event::Edited { differs: false }),
            Err(TransitionError::Locked("exporting"))
        );
        assert!(Synced.apply(Event::Sent).is_err());
        assert!(Pending.apply(Event::Sent).is_err());
        assert!(Pending.apply(Event::Retrieved { before: Synced }).is_err());
        assert!(Synced.apply(Event::Retried).is_err());
        assert!(New.apply(Event::Confirmed).is_err());
    }

    #[test]
    fn send_and_pull_go_where_storage_expects() {
        // Storage moves every unsynced code with one statement to New's target on Sent.
        let targets: Vec<_> = ALL_STATES
            .into_iter()
            .filter(|s| s.is_unsynced())
            .map(|s| s.apply(Event::Sent))
            .collect();
        assert!(targets.iter().all(|t| *t == Ok(Pending)), "{targets:?}");
        let pulled = |erp_agrees| Event::Pulled { erp_agrees };
        assert_eq!(Synced.apply(pulled(false)), Ok(Synced));
        assert_eq!(Modified.apply(pulled(true)), Ok(Synced));
        assert_eq!(Rejected.apply(pulled(true)), Ok(Synced));
        assert!(Modified.apply(pulled(false)).is_err());
        assert!(Pending.apply(pulled(true)).is_err());
        assert!(Exporting.apply(pulled(true)).is_err());
        assert_eq!(
            SyncState::try_from("weird".to_owned())
                .unwrap_err()
                .to_string(),
            "unknown cost code state 'weird'"
        );
    }

    #[test]
    fn diff_lists_changed_fields_only() {
        let old = ConfirmedValues {
            code: "100".into(),
            full_code: "01-100".into(),
            description: "A".into(),
            active: true,
        };
        let new = ConfirmedValues {
            description: "B".into(),
            active: false,
            ..old.clone()
        };
        let d = old.diff(&new);
        assert_eq!(
            d.keys().copied().collect::<Vec<_>>(),
            vec!["active", "description"]
        );
        assert_eq!(
            d["description"],
            FieldChange {
                from: "A".into(),
                to: "B".into()
            }
        );
        assert!(old.diff(&old).is_empty());
        assert!(differs(None, &old));
        assert!(!differs(Some(&old), &old));
    }

    proptest! {
        /// Whatever happens, a locked code is never edited, only sendable states become pending,
        /// and only the approver's decisions and the ERP move a code out of the queue.
        #[test]
        fn every_transition_respects_the_invariants(start in any_state(), events in proptest::collection::vec(any_event(), 0..40)) {
            let mut state = start;
            for event in events {
                match state.apply(event) {
                    Ok(next) => {
                        if let Event::Edited { .. } = event { prop_assert!(!state.is_locked()); }
                        if next == Pending { prop_assert!(state.is_unsynced() && event == Event::Sent); }
                        if next == Synced && state != Synced {
                            let by_erp_or_edit_back = matches!(event, Event::Confirmed | Event::Edited { differs: false } | Event::Pulled { erp_agrees: true });
                            prop_assert!(by_erp_or_edit_back);
                        }
                        if state == Exporting { prop_assert!(matches!(event, Event::Confirmed | Event::Refused)); }
                        state = next;
                    }
                    Err(TransitionError::Locked(_)) => prop_assert!(state.is_locked()),
                    Err(TransitionError::NotAllowed { .. }) => {}
                }
            }
        }

        #[test]
        fn send_then_retrieve_is_identity(start in any_state()) {
            if start.is_unsynced() {
                let pending = start.apply(Event::Sent).unwrap();
                prop_assert_eq!(pending.apply(Event::Retrieved { before: start }), Ok(start));
            } else {
                prop_assert!(start.apply(Event::Sent).is_err());
            }
        }
    }
}

/// docs/rules.md §2: only a code the ERP never had, and that no approver holds, may be deleted;
/// any other is deactivated instead (which is itself a change that syncs).
pub fn may_delete(state: SyncState, ever_synced: bool) -> bool {
    !ever_synced && !state.is_locked()
}

/// docs/rules.md §3: parents reach the ERP before their children. A child may be exported when it
/// has no parent, its parent is synced, or its parent travels in the same export (and goes first).
pub fn parent_problem(
    parent_full_code: Option<&str>, parent_state: Option<SyncState>, parent_in_export: bool,
) -> Option<String> {
    let parent = parent_full_code?;
    if parent_in_export || parent_state == Some(SyncState::Synced) {
        return None;
    }
    let state = parent_state.map(SyncState::as_str).unwrap_or("missing");
    Some(format!(
        "parent '{parent}' is {state} and not part of this export; send and export the parent first"
    ))
}

#[cfg(test)]
mod parent_tests {
    use super::*;

    #[test]
    fn only_never_synced_free_codes_are_deleted() {
        assert!(may_delete(SyncState::New, false));
        assert!(may_delete(SyncState::Rejected, false));
        assert!(!may_delete(SyncState::Modified, true));
        assert!(!may_delete(SyncState::Rejected, true));
        assert!(!may_delete(SyncState::Pending, false));
    }

    #[test]
    fn parents_go_first() {
        assert_eq!(parent_problem(None, None, false), None);
        assert_eq!(
            parent_problem(Some("01"), Some(SyncState::Synced), false),
            None
        );
        assert_eq!(
            parent_problem(Some("01"), Some(SyncState::Exporting), true),
            None
        );
        let msg = parent_problem(Some("01"), Some(SyncState::Rejected), false).unwrap();
        assert!(msg.contains("'01' is rejected"), "{msg}");
    }
}
