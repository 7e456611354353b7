//! Who may approve a risk response: the level follows the risk's severity (DESIGN.md) —
//! `LOW` a risk owner, `MEDIUM` a service manager, `HIGH` the trust team, `CRITICAL` an ERM
//! executive — and a role higher in that order qualifies too. `admin` is a technical role and
//! approves nothing.

use assurance_runtime::auth::{Role, Roles};

/// The approval levels, lowest first.
pub const APPROVAL_CHAIN: [Role; 4] = [
    Role::RiskOwner,
    Role::ServiceManager,
    Role::TrustTeam,
    Role::ErmExecutive,
];

/// The role an approver of a response to a risk of `severity` (1 LOW … 4 CRITICAL) needs.
pub fn required_role(severity: i32) -> Role {
    let index = usize::try_from(severity.clamp(1, 4) - 1).unwrap_or(0);
    APPROVAL_CHAIN[index]
}

/// Whether someone with `roles` may approve at the level of `required`.
pub fn may_approve(roles: Roles, required: Role) -> bool {
    let Some(level) = APPROVAL_CHAIN.iter().position(|r| *r == required) else {
        return false;
    };
    APPROVAL_CHAIN[level..].iter().any(|r| roles.contains(*r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_severity_and_higher_roles_qualify() {
        assert_eq!(required_role(1), Role::RiskOwner);
        assert_eq!(required_role(2), Role::ServiceManager);
        assert_eq!(required_role(3), Role::TrustTeam);
        assert_eq!(required_role(4), Role::ErmExecutive);
        let owner = Roles::of(&[Role::RiskOwner]);
        let trust = Roles::of(&[Role::TrustTeam]);
        assert!(may_approve(owner, Role::RiskOwner));
        assert!(!may_approve(owner, Role::ServiceManager));
        assert!(may_approve(trust, Role::ServiceManager));
        assert!(may_approve(trust, Role::TrustTeam));
        assert!(!may_approve(trust, Role::ErmExecutive));
        assert!(!may_approve(Roles::of(&[Role::Admin]), Role::RiskOwner));
        assert!(may_approve(
            Roles::of(&[Role::ErmExecutive]),
            Role::RiskOwner
        ));
    }
}
