//! Tool levels and the privileges built on them (docs/rules.md §1).
use serde::{Deserialize, Serialize};

/// One level per tool, ordered so that `>=` reads as "at least".
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Hash,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    None,
    ReadOnly,
    Standard,
    Admin,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::None, Level::ReadOnly, Level::Standard, Level::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::ReadOnly => "read_only",
            Level::Standard => "standard",
            Level::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "none" => Some(Level::None),
            "read_only" => Some(Level::ReadOnly),
            "standard" => Some(Level::Standard),
            "admin" => Some(Level::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    pub admin_tool: Level,
    pub erp_integrations: Level,
    pub can_push_to_accounting: bool,
}

impl Permissions {
    /// What `bootstrap` gives the first user of a company.
    pub const FULL: Permissions = Permissions {
        admin_tool: Level::Admin,
        erp_integrations: Level::Admin,
        can_push_to_accounting: true,
    };

    pub fn can_read_codes(&self) -> bool {
        self.admin_tool >= Level::ReadOnly
    }

    /// Creating, renaming, deleting codes, importing and sending need the Admin tool at `admin`.
    pub fn can_write_codes(&self) -> bool {
        self.admin_tool >= Level::Admin
    }

    /// `standard` on the Admin tool may only toggle a code's `active` flag.
    pub fn can_toggle_active(&self) -> bool {
        self.admin_tool >= Level::Standard
    }

    pub fn can_manage_users(&self) -> bool {
        self.admin_tool >= Level::Admin
    }

    pub fn can_read_erp_queue(&self) -> bool {
        self.erp_integrations >= Level::ReadOnly
    }

    /// The accounting approver of docs/rules.md §1.
    pub fn is_approver(&self) -> bool {
        self.erp_integrations >= Level::Standard && self.can_push_to_accounting
    }

    /// The ERP Integrations levels at which someone holding Push to accounting is an approver
    /// (for queries that must find the approvers among stored users).
    pub fn approver_levels() -> impl Iterator<Item = Level> {
        Level::ALL.into_iter().filter(|&l| {
            Permissions {
                admin_tool: Level::None,
                erp_integrations: l,
                can_push_to_accounting: true,
            }
            .is_approver()
        })
    }

    /// Only an Admin-tool admin who holds the privilege may hand it out (or take it away).
    pub fn may_grant_push(&self) -> bool {
        self.admin_tool >= Level::Admin && self.can_push_to_accounting
    }

    /// Checks a change of `old` into `new` made by `self`; the error names what is missing.
    /// Nobody hands out a level they do not hold: an Admin-tool admin without the ERP tool
    /// could otherwise raise themselves (or a user whose password they chose) to
    /// `erp_integrations=admin` and reach the ERP connection and its queue.
    pub fn authorize_change(
        &self, old: &Permissions, new: &Permissions,
    ) -> Result<(), &'static str> {
        if !self.can_manage_users() {
            return Err("admin_tool=admin");
        }
        if old.can_push_to_accounting != new.can_push_to_accounting && !self.may_grant_push() {
            return Err("admin_tool=admin and can_push_to_accounting");
        }
        self.lacks(new).map_or(Ok(()), Err)
    }

    /// Changing another user's password, email or permissions (or sending them a reset link)
    /// needs a user manager who holds every permission the target holds: otherwise taking over
    /// the account would hand the caller rights nobody granted them. The error names the first
    /// permission missing.
    pub fn authorize_account_change(&self, target: &Permissions) -> Result<(), &'static str> {
        if !self.can_manage_users() {
            return Err("admin_tool=admin");
        }
        self.lacks(target).map_or(Ok(()), Err)
    }

    /// The first permission `other` holds that `self` does not, as the API names it; `None`
    /// when `self` holds all of them.
    pub fn lacks(&self, other: &Permissions) -> Option<&'static str> {
        let level = |tool: [&'static str; 3], mine: Level, theirs: Level| {
            (mine < theirs).then(|| match theirs {
                Level::Admin => tool[2],
                Level::Standard => tool[1],
                _ => tool[0],
            })
        };
        let admin = [
            "admin_tool=read_only",
            "admin_tool=standard",
            "admin_tool=admin",
        ];
        let erp = [
            "erp_integrations=read_only",
            "erp_integrations=standard",
            "erp_integrations=admin",
        ];
        level(admin, self.admin_tool, other.admin_tool)
            .or_else(|| level(erp, self.erp_integrations, other.erp_integrations))
            .or_else(|| {
                (other.can_push_to_accounting && !self.can_push_to_accounting)
                    .then_some("can_push_to_accounting")
            })
    }
}

/// Who a `users` row is: a person, or the row a machine client acts through. The API names
/// them `user` and `api_client`; the database stores `as_str`, decoded strictly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserKind {
    User,
    ApiClient,
}

impl UserKind {
    pub const ALL: [UserKind; 2] = [UserKind::User, UserKind::ApiClient];

    /// The stored name (`users.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            UserKind::User => "person",
            UserKind::ApiClient => "api_client",
        }
    }
}

crate::queue::decode_stored!(UserKind => "user kind");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lacks_names_the_first_permission_missing() {
        let p = |a: Level, e: Level, push: bool| Permissions {
            admin_tool: a,
            erp_integrations: e,
            can_push_to_accounting: push,
        };
        let plain = p(Level::Admin, Level::Standard, false);
        assert_eq!(plain.lacks(&p(Level::None, Level::Standard, false)), None);
        assert_eq!(
            plain.lacks(&p(Level::None, Level::Standard, true)),
            Some("can_push_to_accounting")
        );
        assert_eq!(
            plain.lacks(&p(Level::None, Level::Admin, false)),
            Some("erp_integrations=admin")
        );
        let staff = p(Level::Standard, Level::None, false);
        assert_eq!(
            staff.lacks(&plain),
            Some("admin_tool=admin"),
            "a user who no longer manages users lacks what they had"
        );
    }

    #[test]
    fn approvers_are_found_at_the_levels_the_rule_allows() {
        let levels: Vec<Level> = Permissions::approver_levels().collect();
        assert_eq!(levels, [Level::Standard, Level::Admin]);
    }

    fn p(admin: Level, erp: Level, push: bool) -> Permissions {
        Permissions {
            admin_tool: admin,
            erp_integrations: erp,
            can_push_to_accounting: push,
        }
    }

    #[test]
    fn user_kinds_read_back_and_unknown_ones_are_refused() {
        for k in UserKind::ALL {
            assert_eq!(UserKind::try_from(k.as_str().to_owned()), Ok(k));
        }
        assert_eq!(
            UserKind::try_from("robot".to_owned())
                .unwrap_err()
                .to_string(),
            "unknown user kind state 'robot'"
        );
    }

    #[test]
    fn levels_are_ordered() {
        assert!(
            Level::None < Level::ReadOnly
                && Level::ReadOnly < Level::Standard
                && Level::Standard < Level::Admin
        );
        for l in [Level::None, Level::ReadOnly, Level::Standard, Level::Admin] {
            assert_eq!(Level::parse(l.as_str()), Some(l));
        }
        assert_eq!(Level::parse("root"), None);
    }

    #[test]
    fn approver_needs_level_and_privilege() {
        assert!(p(Level::None, Level::Standard, true).is_approver());
        assert!(!p(Level::Admin, Level::ReadOnly, true).is_approver());
        assert!(!p(Level::Admin, Level::Admin, false).is_approver());
    }

    #[test]
    fn only_privileged_admins_grant_push() {
        let plain = p(Level::Standard, Level::None, false);
        let granted = Permissions {
            can_push_to_accounting: true,
            ..plain
        };
        assert!(Permissions::FULL.authorize_change(&plain, &granted).is_ok());
        assert_eq!(
            p(Level::Admin, Level::Admin, false).authorize_change(&plain, &granted),
            Err("admin_tool=admin and can_push_to_accounting")
        );
        // An admin without the privilege still manages everything else.
        let renamed_level = Permissions {
            admin_tool: Level::ReadOnly,
            ..plain
        };
        assert!(
            p(Level::Admin, Level::None, false)
                .authorize_change(&plain, &renamed_level)
                .is_ok()
        );
        assert_eq!(
            p(Level::Standard, Level::Admin, true).authorize_change(&plain, &granted),
            Err("admin_tool=admin")
        );
        // Nor does anyone hand out a level they do not hold, to themselves or another.
        let no_erp = p(Level::Admin, Level::None, false);
        assert_eq!(
            no_erp.authorize_change(&no_erp, &p(Level::Admin, Level::Admin, false)),
            Err("erp_integrations=admin")
        );
        assert_eq!(
            p(Level::Admin, Level::Standard, true)
                .authorize_change(&plain, &p(Level::Standard, Level::Admin, false)),
            Err("erp_integrations=admin")
        );
    }

    #[test]
    fn account_changes_need_every_permission_of_the_target() {
        let plain_admin = p(Level::Admin, Level::Standard, false);
        let approver = p(Level::None, Level::Standard, true);
        assert_eq!(
            plain_admin.authorize_account_change(&approver),
            Err("can_push_to_accounting")
        );
        assert_eq!(
            plain_admin.authorize_account_change(&Permissions::FULL),
            Err("erp_integrations=admin")
        );
        assert_eq!(
            p(Level::Admin, Level::None, true).authorize_account_change(&p(
                Level::None,
                Level::ReadOnly,
                false
            )),
            Err("erp_integrations=read_only")
        );
        assert!(
            plain_admin
                .authorize_account_change(&p(Level::Admin, Level::Standard, false))
                .is_ok()
        );
        assert!(
            Permissions::FULL
                .authorize_account_change(&approver)
                .is_ok()
        );
        assert!(
            Permissions::FULL
                .authorize_account_change(&Permissions::FULL)
                .is_ok()
        );
        // Holding everything is not enough without managing users.
        assert_eq!(
            p(Level::Standard, Level::Admin, true).authorize_account_change(&approver),
            Err("admin_tool=admin")
        );
    }
}
