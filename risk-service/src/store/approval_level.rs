//! The severity that sets the approval level of a proposed response: the highest severity the
//! risk has had since its last approved response, not its severity now, so that a proposer who
//! downgrades a risk just before proposing does not lower the level.
//!
//! "Since" is in the order of ids: assessments and decision-log entries are minted (UUIDv7)
//! while their risk is locked, so their ids order them as they were applied, whatever clock the
//! service's time-driven rules follow.

use assurance_runtime::ApiResult;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::entities::{assessment, decision, risk};
use crate::domain::governance::DecisionKind;

/// The highest severity of `history` (an assessment's id and severity, in any order) since the
/// approval whose decision-log entry is `last_approval`, and `current`. The severity in force
/// when the response was approved (the latest assessment before it) counts: the risk had it
/// since. Without an approval, every assessment counts.
pub(super) fn highest_since(
    current: i32,
    last_approval: Option<Uuid>,
    history: &[(Uuid, i32)],
) -> i32 {
    let mut highest = current;
    let mut in_force: Option<(Uuid, i32)> = None;
    for &(id, severity) in history {
        match last_approval {
            Some(approved) if id < approved => {
                if in_force.is_none_or(|(latest, _)| id > latest) {
                    in_force = Some((id, severity));
                }
            }
            _ => highest = highest.max(severity),
        }
    }
    in_force.map_or(highest, |(_, severity)| highest.max(severity))
}

/// [`highest_since`] for `risk`, read in `conn` (the proposing transaction, with the risk locked).
pub(super) async fn governing_severity(
    conn: &impl ConnectionTrait,
    risk: &risk::Model,
) -> ApiResult<i32> {
    let approvals: Vec<Uuid> = decision::Entity::find()
        .select_only()
        .column(decision::Column::Id)
        .filter(decision::Column::RiskId.eq(risk.id))
        .filter(decision::Column::Kind.eq(DecisionKind::ResponseApproved as i32))
        .into_tuple()
        .all(conn)
        .await?;
    let history: Vec<(Uuid, i32)> = assessment::Entity::find()
        .select_only()
        .column(assessment::Column::Id)
        .column(assessment::Column::Severity)
        .filter(assessment::Column::RiskId.eq(risk.id))
        .into_tuple()
        .all(conn)
        .await?;
    let last_approval = approvals.into_iter().max();
    Ok(highest_since(risk.severity, last_approval, &history))
}

#[cfg(test)]
mod tests {
    use super::highest_since;
    use uuid::Uuid;

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n)
            .map(|i| Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0000 + i as u128))
            .collect()
    }

    #[test]
    fn a_downgrade_before_the_first_proposal_keeps_the_level() {
        let id = ids(2);
        // HIGH, then downgraded to LOW: the level is still HIGH's.
        assert_eq!(highest_since(1, None, &[(id[0], 3), (id[1], 1)]), 3);
        assert_eq!(highest_since(1, None, &[(id[1], 1), (id[0], 3)]), 3);
    }

    #[test]
    fn the_severity_in_force_at_the_last_approval_counts() {
        let id = ids(5);
        // CRITICAL, approved at id[2] while HIGH (id[1]); then LOW: HIGH's level.
        let history = [(id[0], 4), (id[1], 3), (id[3], 1)];
        assert_eq!(highest_since(1, Some(id[2]), &history), 3);
        // Approved again at id[4], while LOW: LOW's level from then on.
        assert_eq!(highest_since(1, Some(id[4]), &history), 1);
    }

    #[test]
    fn assessments_since_the_approval_count_and_the_current_severity_too() {
        let id = ids(4);
        let history = [(id[0], 1), (id[2], 4), (id[3], 2)];
        assert_eq!(highest_since(2, Some(id[1]), &history), 4);
        // A risk without assessments (or a severity without one) keeps its own.
        assert_eq!(highest_since(2, None, &[]), 2);
        assert_eq!(highest_since(3, Some(id[1]), &[(id[0], 1)]), 3);
    }
}
