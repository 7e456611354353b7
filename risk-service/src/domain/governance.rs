//! Governance of a risk: who may approve a response — the level follows the risk's severity
//! (DESIGN.md): `LOW` a risk owner, `MEDIUM` a service manager, `HIGH` the trust team,
//! `CRITICAL` an ERM executive, and a role higher in that order qualifies too; `admin` is a
//! technical role and approves nothing — the review cadence, and the vocabulary of approvals,
//! action items and the decision log.

use assurance_runtime::auth::{Role, Roles};

/// The `ApprovalState` of a response (`assurance.risk.v1` numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalState {
    Pending = 1,
    Approved = 2,
    Rejected = 3,
}

numbered!(ApprovalState {
    Pending => "PENDING",
    Approved => "APPROVED",
    Rejected => "REJECTED",
});

/// The `ActionItemStatus` of `assurance.risk.v1`; the discriminants are its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionItemStatus {
    Open = 1,
    InProgress = 2,
    Blocked = 3,
    Done = 4,
    WontDo = 5,
}

numbered!(ActionItemStatus {
    Open => "OPEN",
    InProgress => "IN_PROGRESS",
    Blocked => "BLOCKED",
    Done => "DONE",
    WontDo => "WONT_DO",
});

impl ActionItemStatus {
    /// The statuses of items that no longer need work.
    pub const FINISHED: [ActionItemStatus; 2] = [ActionItemStatus::Done, ActionItemStatus::WontDo];
}

/// Whether an item of the stored `status` no longer needs work.
pub fn is_finished(status: i32) -> bool {
    ActionItemStatus::FINISHED
        .iter()
        .any(|s| *s as i32 == status)
}

/// The `SyncState` of an action item's tracker link (`assurance.risk.v1` numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncState {
    NotLinked = 1,
    Pending = 2,
    Synced = 3,
    Failed = 4,
    Broken = 5,
}

numbered!(SyncState {
    NotLinked => "NOT_LINKED",
    Pending => "PENDING",
    Synced => "SYNCED",
    Failed => "FAILED",
    Broken => "BROKEN",
});

/// What a decision-log entry records (`DecisionKind`; the discriminants are its numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecisionKind {
    ResponseProposed = 1,
    StrategyOverridden = 2,
    ResponseApproved = 3,
    ResponseRejected = 4,
    ActionsCompleted = 5,
    AcceptanceExpired = 6,
    RiskClosed = 7,
    ExceptionRequested = 8,
    ExceptionApproved = 9,
    ExceptionRejected = 10,
    ExceptionRevoked = 11,
    ExceptionExpired = 12,
    ReassessmentRequired = 13,
    ResponseFailed = 14,
}

numbered!(DecisionKind {
    ResponseProposed => "RESPONSE_PROPOSED",
    StrategyOverridden => "STRATEGY_OVERRIDDEN",
    ResponseApproved => "RESPONSE_APPROVED",
    ResponseRejected => "RESPONSE_REJECTED",
    ActionsCompleted => "ACTIONS_COMPLETED",
    AcceptanceExpired => "ACCEPTANCE_EXPIRED",
    RiskClosed => "RISK_CLOSED",
    ExceptionRequested => "EXCEPTION_REQUESTED",
    ExceptionApproved => "EXCEPTION_APPROVED",
    ExceptionRejected => "EXCEPTION_REJECTED",
    ExceptionRevoked => "EXCEPTION_REVOKED",
    ExceptionExpired => "EXCEPTION_EXPIRED",
    ReassessmentRequired => "REASSESSMENT_REQUIRED",
    ResponseFailed => "RESPONSE_FAILED",
});

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
    fn finished_items() {
        assert!(is_finished(ActionItemStatus::Done as i32));
        assert!(is_finished(ActionItemStatus::WontDo as i32));
        for s in [
            ActionItemStatus::Open,
            ActionItemStatus::InProgress,
            ActionItemStatus::Blocked,
        ] {
            assert!(!is_finished(s as i32));
        }
        assert!(!is_finished(0));
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
