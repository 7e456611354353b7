//! Who may approve a risk response: the level follows the risk's severity (DESIGN.md) —
//! `LOW` a risk owner, `MEDIUM` a service manager, `HIGH` the trust team, `CRITICAL` an ERM
//! executive — and a role higher in that order qualifies too. `admin` is a technical role and
//! approves nothing.

use assurance_runtime::auth::{Role, Roles};

/// Days between periodic reviews of a risk of `severity` (1 LOW … 4 CRITICAL): `CRITICAL` 30,
/// `HIGH` 90, `MEDIUM` 180, `LOW` 365.
pub fn review_cadence_days(severity: i32) -> i64 {
    match severity {
        4 => 30,
        3 => 90,
        2 => 180,
        _ => 365,
    }
}

/// When the next review of a risk of `severity` is due, counted from `from` (microseconds).
pub fn next_review(from: i64, severity: i32) -> i64 {
    from.saturating_add(review_cadence_days(severity) * 86_400 * 1_000_000)
}

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
    fn review_cadence_by_severity() {
        assert_eq!([1, 2, 3, 4].map(review_cadence_days), [365, 180, 90, 30]);
        assert_eq!(next_review(0, 4), 30 * 86_400 * 1_000_000);
    }

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
