//! Send to ERP: whether the button is enabled and, when not, the one reason why (docs/rules.md §4).
use crate::sync::{ConfirmedValues, SyncState};
use crate::{ErpProfile, Permissions};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SendReason {
    NoPermission,
    NoErpConnection,
    ErpOwnsCostCodes,
    NotErpList,
    NothingToSend,
    InvalidCodes,
    StalePage,
}

impl SendReason {
    pub fn code(self) -> &'static str {
        match self {
            SendReason::NoPermission => "no_permission",
            SendReason::NoErpConnection => "no_erp_connection",
            SendReason::ErpOwnsCostCodes => "erp_owns_cost_codes",
            SendReason::NotErpList => "not_erp_list",
            SendReason::NothingToSend => "nothing_to_send",
            SendReason::InvalidCodes => "invalid_codes",
            SendReason::StalePage => "stale_page",
        }
    }
}

/// Why sending is not possible, with the sentence the UI shows on hover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendBlock {
    pub reason: SendReason,
    pub message: String,
}

/// What the rule needs to know about one list at one moment.
pub struct SendContext<'a> {
    pub permissions: &'a Permissions,
    pub profile: Option<&'a ErpProfile>,
    pub is_erp_list: bool,
    pub unsynced_count: u64,
    pub invalid_count: usize,
    /// What changed among the codes a send would take since the client's page was drawn;
    /// `None` when nothing did, or when the caller only asks (GET).
    pub changed_since_seen: Option<Changed>,
}

/// The unsynced codes that changed since a client read the list: their full codes (the first
/// few) and how many there are. Zero means codes left the set (sent, retrieved or deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub codes: Vec<String>,
    pub total: usize,
}

/// How many changed codes a stale-page message names before it says "and N more".
pub const CHANGED_NAMED: usize = 5;

/// Whether an edit moving a code from `(before, was)` to `(after, is)` changes what Send to ERP
/// would send: the code enters or leaves the unsynced set, or an unsynced code's values move.
/// Only such writes make a client's page stale; edits elsewhere in the list do not.
pub fn changes_send(
    before: (SyncState, &ConfirmedValues), after: (SyncState, &ConfirmedValues),
) -> bool {
    let (was, is) = (before.0.is_unsynced(), after.0.is_unsynced());
    was != is || (is && before.1 != after.1)
}

pub fn label(sent_before: bool) -> &'static str {
    if sent_before {
        "Re-send to ERP"
    } else {
        "Send to ERP"
    }
}

/// What stops a caller who may not send, before anything of the list is read.
pub fn no_permission() -> SendBlock {
    SendBlock {
        reason: SendReason::NoPermission,
        message: "Only admins of the Admin tool can send codes to the ERP.".into(),
    }
}

/// The first reason, in the order of the spec's table, that stops a send.
pub fn check(ctx: &SendContext<'_>) -> Result<(), SendBlock> {
    let block = |reason, message: String| Err(SendBlock { reason, message });
    if !ctx.permissions.can_write_codes() {
        return Err(no_permission());
    }
    let Some(profile) = ctx.profile else {
        return block(
            SendReason::NoErpConnection,
            "Connect an ERP in company settings first.".into(),
        );
    };
    if !profile.create_cost_codes {
        return block(
            SendReason::ErpOwnsCostCodes,
            format!(
                "{} owns its cost codes: create them there and sync them from the ERP.",
                profile.name
            ),
        );
    }
    if !ctx.is_erp_list {
        return block(
            SendReason::NotErpList,
            "Only the ERP Standard Cost Code list is sent to the ERP. An admin can make this \
             list the ERP list while nothing has been sent from the current one."
                .into(),
        );
    }
    if ctx.unsynced_count == 0 {
        return block(
            SendReason::NothingToSend,
            "Every code is synced, pending or exporting.".into(),
        );
    }
    if ctx.invalid_count > 0 {
        return block(
            SendReason::InvalidCodes,
            format!(
                "{} code(s) break {}'s rules; fix them first.",
                ctx.invalid_count, profile.name
            ),
        );
    }
    if let Some(changed) = &ctx.changed_since_seen {
        let what = if changed.total == 0 {
            "Codes were sent, retrieved or deleted".to_owned()
        } else {
            let more = changed.total.saturating_sub(changed.codes.len());
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            let n = changed.total;
            let s = if n == 1 { "" } else { "s" };
            format!("{n} code{s} changed ({}{tail})", changed.codes.join(", "))
        };
        return block(
            SendReason::StalePage,
            format!(
                "{what} since your page was drawn: refresh to see what Send to ERP would send now."
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Level;

    fn ctx<'a>(p: &'a Permissions, profile: Option<&'a ErpProfile>) -> SendContext<'a> {
        SendContext {
            permissions: p,
            profile,
            is_erp_list: true,
            unsynced_count: 3,
            invalid_count: 0,
            changed_since_seen: None,
        }
    }

    #[test]
    fn each_reason_in_order() {
        let full = Permissions::FULL;
        let viewer = Permissions {
            admin_tool: Level::ReadOnly,
            ..full
        };
        let qb = ErpProfile::find("quickbooks_desktop").unwrap();
        let sage = ErpProfile::find("sage_300_cre").unwrap();
        let reason = |c: SendContext| check(&c).err().map(|b| b.reason);
        assert_eq!(reason(ctx(&full, Some(&qb))), None);
        assert_eq!(
            reason(ctx(&viewer, Some(&qb))),
            Some(SendReason::NoPermission)
        );
        assert_eq!(reason(ctx(&full, None)), Some(SendReason::NoErpConnection));
        let owns = check(&ctx(&full, Some(&sage))).unwrap_err();
        assert_eq!(owns.reason, SendReason::ErpOwnsCostCodes);
        assert!(owns.message.contains("Sage 300 CRE"));
        assert_eq!(
            reason(SendContext {
                is_erp_list: false,
                ..ctx(&full, Some(&qb))
            }),
            Some(SendReason::NotErpList)
        );
        assert_eq!(
            reason(SendContext {
                unsynced_count: 0,
                ..ctx(&full, Some(&qb))
            }),
            Some(SendReason::NothingToSend)
        );
        assert_eq!(
            reason(SendContext {
                invalid_count: 2,
                ..ctx(&full, Some(&qb))
            }),
            Some(SendReason::InvalidCodes)
        );
        let stale = check(&SendContext {
            changed_since_seen: Some(Changed {
                codes: vec!["01-100".into(), "02".into()],
                total: 7,
            }),
            ..ctx(&full, Some(&qb))
        })
        .unwrap_err();
        assert_eq!(stale.reason, SendReason::StalePage);
        assert!(
            stale
                .message
                .starts_with("7 codes changed (01-100, 02 and 5 more)"),
            "{}",
            stale.message
        );
        let gone = check(&SendContext {
            changed_since_seen: Some(Changed {
                codes: vec![],
                total: 0,
            }),
            ..ctx(&full, Some(&qb))
        })
        .unwrap_err();
        assert!(
            gone.message
                .starts_with("Codes were sent, retrieved or deleted")
        );
        assert_eq!(SendReason::InvalidCodes.code(), "invalid_codes");
        assert_eq!(label(true), "Re-send to ERP");
    }

    #[test]
    fn only_changes_to_the_unsynced_set_make_a_page_stale() {
        let v = |d: &str| ConfirmedValues {
            code: "01".into(),
            full_code: "01".into(),
            description: d.into(),
            active: true,
        };
        let (a, b) = (v("General"), v("Site"));
        use SyncState::*;
        // A synced code edited becomes modified: the set grows.
        assert!(changes_send((Synced, &a), (Modified, &b)));
        // An edit back to the confirmed values: the set shrinks.
        assert!(changes_send((Modified, &b), (Synced, &a)));
        // An unsynced code with new values: what would be sent changed.
        assert!(changes_send((New, &a), (New, &b)));
        // The same values written again, or an export finishing: nothing a send takes moved.
        assert!(!changes_send((New, &a), (New, &a)));
        assert!(!changes_send((Exporting, &a), (Synced, &a)));
    }
}
