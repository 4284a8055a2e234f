//! Send to ERP: whether the button is enabled and, when not, the one reason why (docs/rules.md §4).
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
    /// `None` when the caller only asks (GET); `Some(matches)` when it tries to send.
    pub version_matches: Option<bool>,
}

pub fn label(sent_before: bool) -> &'static str {
    if sent_before {
        "Re-send to ERP"
    } else {
        "Send to ERP"
    }
}

/// The first reason, in the order of the table in docs/rules.md §4, that stops a send.
pub fn check(ctx: &SendContext<'_>) -> Result<(), SendBlock> {
    let block = |reason, message: String| Err(SendBlock { reason, message });
    if !ctx.permissions.can_write_codes() {
        return block(
            SendReason::NoPermission,
            "Only admins of the Admin tool can send codes to the ERP.".into(),
        );
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
            "Only the ERP Standard Cost Code list is sent to the ERP.".into(),
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
    if ctx.version_matches == Some(false) {
        return block(
            SendReason::StalePage,
            "The list changed since you loaded it: refresh first.".into(),
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
            version_matches: Some(true),
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
        assert_eq!(
            reason(SendContext {
                version_matches: Some(false),
                ..ctx(&full, Some(&qb))
            }),
            Some(SendReason::StalePage)
        );
        assert_eq!(
            reason(SendContext {
                version_matches: None,
                ..ctx(&full, Some(&qb))
            }),
            None
        );
        assert_eq!(SendReason::InvalidCodes.code(), "invalid_codes");
        assert_eq!(label(true), "Re-send to ERP");
    }
}
