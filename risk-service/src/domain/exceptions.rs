//! The lifecycle of a security or compliance exception, and who may approve one.
//!
//! REQUESTED → ACTIVE (approve) | REJECTED (reject); ACTIVE → REVOKED (revoke) | EXPIRED (the
//! expiry job); the last three are terminal.

use assurance_runtime::auth::{Role, Roles};

use super::governance::DecisionKind;

/// The `ExceptionStatus` of `assurance.risk.v1`; the discriminants are its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExceptionStatus {
    Requested = 1,
    Active = 2,
    Expired = 3,
    Revoked = 4,
    Rejected = 5,
}

numbered!(ExceptionStatus {
    Requested => "REQUESTED",
    Active => "ACTIVE",
    Expired => "EXPIRED",
    Revoked => "REVOKED",
    Rejected => "REJECTED",
});

/// Who may approve an exception: the trust team or an ERM executive. `admin` is a technical
/// role and approves nothing; `system` jobs never approve.
pub const EXCEPTION_APPROVERS: Roles = Roles::of(&[Role::TrustTeam, Role::ErmExecutive]);

/// Whether someone with `roles` may approve (or reject) an exception.
pub fn may_approve(roles: Roles) -> bool {
    roles.intersects(EXCEPTION_APPROVERS)
}

/// A change of an exception's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Approve,
    Reject,
    Revoke,
    Expire,
}

impl Move {
    pub const ALL: [Move; 4] = [Move::Approve, Move::Reject, Move::Revoke, Move::Expire];

    /// The verb of refusals and `allowed` lists.
    pub fn label(self) -> &'static str {
        match self {
            Move::Approve => "approve",
            Move::Reject => "reject",
            Move::Revoke => "revoke",
            Move::Expire => "expire",
        }
    }

    /// The decision-log entry a move appends to a linked risk.
    pub fn kind(self) -> DecisionKind {
        match self {
            Move::Approve => DecisionKind::ExceptionApproved,
            Move::Reject => DecisionKind::ExceptionRejected,
            Move::Revoke => DecisionKind::ExceptionRevoked,
            Move::Expire => DecisionKind::ExceptionExpired,
        }
    }
}

/// The status `mv` leads to from `status`, if it is allowed.
pub fn apply(status: ExceptionStatus, mv: Move) -> Option<ExceptionStatus> {
    use ExceptionStatus as S;
    match (status, mv) {
        (S::Requested, Move::Approve) => Some(S::Active),
        (S::Requested, Move::Reject) => Some(S::Rejected),
        (S::Active, Move::Revoke) => Some(S::Revoked),
        (S::Active, Move::Expire) => Some(S::Expired),
        _ => None,
    }
}

/// The moves a caller may make from `status` (expiry is the job's).
pub fn allowed(status: ExceptionStatus) -> Vec<&'static str> {
    [Move::Approve, Move::Reject, Move::Revoke]
        .into_iter()
        .filter(|m| apply(status, *m).is_some())
        .map(Move::label)
        .collect()
}

/// A stored status's name (`ACTIVE`), `UNKNOWN` for a number no status has.
pub fn status_name(status: i32) -> &'static str {
    ExceptionStatus::try_from(status).map_or("UNKNOWN", ExceptionStatus::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExceptionStatus as S;

    #[test]
    fn every_status_and_move() {
        for &status in S::ALL {
            for mv in Move::ALL {
                let expected = match (status, mv) {
                    (S::Requested, Move::Approve) => Some(S::Active),
                    (S::Requested, Move::Reject) => Some(S::Rejected),
                    (S::Active, Move::Revoke) => Some(S::Revoked),
                    (S::Active, Move::Expire) => Some(S::Expired),
                    _ => None,
                };
                assert_eq!(apply(status, mv), expected, "{status:?} × {mv:?}");
            }
        }
    }

    #[test]
    fn terminal_states_allow_nothing() {
        for terminal in [S::Expired, S::Revoked, S::Rejected] {
            assert!(allowed(terminal).is_empty());
            for mv in Move::ALL {
                assert_eq!(apply(terminal, mv), None);
            }
        }
        assert_eq!(allowed(S::Requested), vec!["approve", "reject"]);
        // Expiry is the job's, so it is never offered to a caller.
        assert_eq!(allowed(S::Active), vec!["revoke"]);
    }

    #[test]
    fn names() {
        assert_eq!(status_name(2), "ACTIVE");
        assert_eq!(status_name(0), "UNKNOWN");
        assert_eq!(status_name(9), "UNKNOWN");
    }

    #[test]
    fn approvers() {
        assert!(may_approve(Roles::of(&[Role::TrustTeam])));
        assert!(may_approve(Roles::of(&[Role::ErmExecutive, Role::Viewer])));
        assert!(!may_approve(Roles::of(&[Role::Admin])));
        assert!(!may_approve(Roles::of(&[Role::System])));
        assert!(!may_approve(Roles::of(&[Role::ServiceManager])));
    }
}
