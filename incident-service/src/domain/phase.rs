//! The incident phase machine (NIST SP 800-61 Rev.2 life cycle, as DESIGN.md words it).
//!
//! `DETECTION_ANALYSIS → CONTAINMENT → ERADICATION → RECOVERY → POST_INCIDENT`, forward one step
//! at a time. From containment, eradication, recovery or post-incident the incident may go back
//! to detection & analysis or to containment (new affected hosts, reinfection) with a reason.
//! An `EVENT` must be classified `SECURITY_INCIDENT` before it leaves analysis. `CLOSED` is
//! reached only by closing: from post-incident once the review is complete, or from analysis
//! when classified `NOT_AN_INCIDENT`.

use std::fmt;

numbered! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Phase {
        DetectionAnalysis = 1 => "DETECTION_ANALYSIS",
        Containment = 2 => "CONTAINMENT",
        Eradication = 3 => "ERADICATION",
        Recovery = 4 => "RECOVERY",
        PostIncident = 5 => "POST_INCIDENT",
        Closed = 6 => "CLOSED",
    }
}

numbered! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Classification {
        /// Under analysis: not yet known to be an incident.
        Event = 1 => "EVENT",
        SecurityIncident = 2 => "SECURITY_INCIDENT",
        NotAnIncident = 3 => "NOT_AN_INCIDENT",
    }
}

/// A move the machine refused, with the moves it would allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    /// The phase the incident is in.
    pub phase: Phase,
    pub allowed: Vec<String>,
}

impl Phase {
    /// The next phase forward, if any (closing is not a phase advance).
    pub fn next(self) -> Option<Phase> {
        match self {
            Phase::DetectionAnalysis => Some(Phase::Containment),
            Phase::Containment => Some(Phase::Eradication),
            Phase::Eradication => Some(Phase::Recovery),
            Phase::Recovery => Some(Phase::PostIncident),
            Phase::PostIncident | Phase::Closed => None,
        }
    }

    /// Phases an incident may return to from here (with a reason).
    fn back_targets(self) -> &'static [Phase] {
        match self {
            Phase::Containment => &[Phase::DetectionAnalysis],
            Phase::Eradication | Phase::Recovery | Phase::PostIncident => {
                &[Phase::DetectionAnalysis, Phase::Containment]
            }
            Phase::DetectionAnalysis | Phase::Closed => &[],
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a move goes forward or back; back moves need a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Back,
}

/// Phase moves allowed from `phase`, in words (`advance to CONTAINMENT`, …), with the way
/// forward through another change when the move itself is not open yet (an incident still
/// under analysis can be reclassified, then advanced or closed).
fn phase_moves(phase: Phase, classification: Classification) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(next) = phase.next() {
        if phase != Phase::DetectionAnalysis || classification == Classification::SecurityIncident {
            out.push(format!("advance to {next}"));
        } else {
            out.push(format!(
                "reclassify SECURITY_INCIDENT (UpdateIncident) then advance to {next}"
            ));
        }
    }
    for back in phase.back_targets() {
        out.push(format!("return to {back} (with a reason)"));
    }
    if phase == Phase::DetectionAnalysis && classification != Classification::NotAnIncident {
        out.push("reclassify NOT_AN_INCIDENT (UpdateIncident) then close".to_string());
    }
    out
}

/// Every move allowed from `phase`, in words (`advance to CONTAINMENT`, `close`, …).
pub fn allowed_moves(
    phase: Phase,
    classification: Classification,
    review_complete: bool,
) -> Vec<String> {
    let mut out = phase_moves(phase, classification);
    if check_close(phase, classification, review_complete).is_ok() {
        out.push("close".to_string());
    } else if phase == Phase::PostIncident {
        out.push("record the post-incident review then close".to_string());
    }
    out
}

fn refuse(
    message: String,
    phase: Phase,
    classification: Classification,
    review_complete: bool,
) -> Refusal {
    Refusal {
        message,
        phase,
        allowed: allowed_moves(phase, classification, review_complete),
    }
}

/// Checks an `AdvancePhase` from `phase` to `target`.
pub fn check_advance(
    phase: Phase,
    target: Phase,
    classification: Classification,
    review_complete: bool,
) -> Result<Direction, Refusal> {
    let refusal = |why: String| refuse(why, phase, classification, review_complete);
    if phase == Phase::Closed {
        return Err(refusal("the incident is CLOSED".into()));
    }
    if target == Phase::Closed {
        return Err(refusal(
            "CLOSED is reached only through CloseIncident".into(),
        ));
    }
    if Some(target) == phase.next() {
        if phase == Phase::DetectionAnalysis && classification != Classification::SecurityIncident {
            return Err(refusal(format!(
                "an incident classified {} cannot leave DETECTION_ANALYSIS; classify it SECURITY_INCIDENT first",
                classification.as_str()
            )));
        }
        return Ok(Direction::Forward);
    }
    if phase.back_targets().contains(&target) {
        return Ok(Direction::Back);
    }
    Err(refusal(format!("cannot move from {phase} to {target}")))
}

/// Checks a `CloseIncident`.
pub fn check_close(
    phase: Phase,
    classification: Classification,
    review_complete: bool,
) -> Result<(), Refusal> {
    let ok = match phase {
        Phase::PostIncident => review_complete,
        Phase::DetectionAnalysis => classification == Classification::NotAnIncident,
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let why = match phase {
        Phase::PostIncident => "the post-incident review is not complete".to_string(),
        Phase::DetectionAnalysis => {
            "only an incident classified NOT_AN_INCIDENT closes from analysis".to_string()
        }
        Phase::Closed => "the incident is already CLOSED".to_string(),
        other => format!("an incident in {other} cannot close"),
    };
    let mut allowed = phase_moves(phase, classification);
    // Closing is refused, so the allowed moves are the phase moves and what opens closing.
    if phase == Phase::PostIncident {
        allowed.push("record the post-incident review then close".to_string());
    }
    Err(Refusal {
        message: why,
        phase,
        allowed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Classification as C;
    use Phase as P;
    use proptest::prelude::*;

    #[test]
    fn forward_one_step_at_a_time() {
        let mut p = P::DetectionAnalysis;
        while let Some(next) = p.next() {
            assert_eq!(
                check_advance(p, next, C::SecurityIncident, false),
                Ok(Direction::Forward)
            );
            p = next;
        }
        assert_eq!(p, P::PostIncident);
        assert!(
            check_advance(
                P::DetectionAnalysis,
                P::Eradication,
                C::SecurityIncident,
                false
            )
            .is_err()
        );
        assert!(check_advance(P::Containment, P::Recovery, C::SecurityIncident, false).is_err());
    }

    #[test]
    fn events_must_be_classified_before_leaving_analysis() {
        let err = check_advance(P::DetectionAnalysis, P::Containment, C::Event, false)
            .expect_err("refused");
        assert!(err.message.contains("classify it SECURITY_INCIDENT"));
        assert!(
            check_advance(
                P::DetectionAnalysis,
                P::Containment,
                C::NotAnIncident,
                false
            )
            .is_err()
        );
    }

    #[test]
    fn going_back() {
        for from in [P::Eradication, P::Recovery, P::PostIncident] {
            for to in [P::DetectionAnalysis, P::Containment] {
                assert_eq!(
                    check_advance(from, to, C::SecurityIncident, false),
                    Ok(Direction::Back),
                    "{from}→{to}"
                );
            }
        }
        assert_eq!(
            check_advance(
                P::Containment,
                P::DetectionAnalysis,
                C::SecurityIncident,
                false
            ),
            Ok(Direction::Back)
        );
        assert!(check_advance(P::Recovery, P::Eradication, C::SecurityIncident, false).is_err());
        assert!(check_advance(P::PostIncident, P::Recovery, C::SecurityIncident, false).is_err());
    }

    #[test]
    fn closing() {
        assert!(check_close(P::PostIncident, C::SecurityIncident, true).is_ok());
        assert!(check_close(P::PostIncident, C::SecurityIncident, false).is_err());
        assert!(check_close(P::DetectionAnalysis, C::NotAnIncident, false).is_ok());
        assert!(check_close(P::DetectionAnalysis, C::Event, false).is_err());
        assert!(check_close(P::Recovery, C::SecurityIncident, true).is_err());
        assert!(check_advance(P::PostIncident, P::Closed, C::SecurityIncident, true).is_err());
        assert!(check_advance(P::Closed, P::Containment, C::SecurityIncident, true).is_err());
    }

    #[test]
    fn refusals_name_the_allowed_moves() {
        let err = check_advance(P::Containment, P::PostIncident, C::SecurityIncident, false)
            .expect_err("refused");
        assert_eq!(
            err.allowed,
            [
                "advance to ERADICATION",
                "return to DETECTION_ANALYSIS (with a reason)"
            ]
        );
        assert_eq!(
            allowed_moves(P::PostIncident, C::SecurityIncident, true),
            [
                "return to DETECTION_ANALYSIS (with a reason)",
                "return to CONTAINMENT (with a reason)",
                "close"
            ]
        );
        assert_eq!(
            allowed_moves(P::DetectionAnalysis, C::NotAnIncident, false),
            [
                "reclassify SECURITY_INCIDENT (UpdateIncident) then advance to CONTAINMENT",
                "close"
            ]
        );
        assert!(allowed_moves(P::Closed, C::SecurityIncident, true).is_empty());
    }

    #[test]
    fn an_unclassified_event_is_told_it_can_be_reclassified_or_closed() {
        let err = check_advance(P::DetectionAnalysis, P::Containment, C::Event, false)
            .expect_err("an EVENT does not leave analysis");
        assert_eq!(
            err.allowed,
            [
                "reclassify SECURITY_INCIDENT (UpdateIncident) then advance to CONTAINMENT",
                "reclassify NOT_AN_INCIDENT (UpdateIncident) then close"
            ]
        );
        let err = check_close(P::DetectionAnalysis, C::Event, false).expect_err("not closable");
        assert_eq!(err.allowed.len(), 2);
        let err = check_close(P::PostIncident, C::SecurityIncident, false).expect_err("no review");
        assert!(
            err.allowed
                .contains(&"record the post-incident review then close".to_string()),
            "{:?}",
            err.allowed
        );
        // Only CLOSED is terminal.
        for &phase in Phase::ALL {
            for class in [C::Event, C::SecurityIncident, C::NotAnIncident] {
                for review in [false, true] {
                    let moves = allowed_moves(phase, class, review);
                    assert_eq!(moves.is_empty(), phase == P::Closed, "{phase} {class:?}");
                    // The `allowed` metadata is comma-separated.
                    assert!(moves.iter().all(|m| !m.contains(',')), "{moves:?}");
                }
            }
        }
    }

    fn arb_phase() -> impl Strategy<Value = Phase> {
        proptest::sample::select(Phase::ALL.to_vec())
    }

    fn arb_class() -> impl Strategy<Value = Classification> {
        proptest::sample::select(vec![C::Event, C::SecurityIncident, C::NotAnIncident])
    }

    proptest! {
        #[test]
        fn every_accepted_move_is_listed_and_every_refusal_says_why(
            from in arb_phase(), to in arb_phase(), class in arb_class(), review in any::<bool>()
        ) {
            let moves = allowed_moves(from, class, review);
            match check_advance(from, to, class, review) {
                Ok(Direction::Forward) => {
                    let expected = format!("advance to {to}");
                    prop_assert!(moves.contains(&expected));
                }
                Ok(Direction::Back) => {
                    let expected = format!("return to {to} (with a reason)");
                    prop_assert!(moves.contains(&expected));
                }
                Err(r) => {
                    prop_assert!(!r.message.is_empty());
                    prop_assert_eq!(r.allowed, moves);
                }
            }
            prop_assert_ne!(check_advance(from, to, class, review).ok().map(|_| to), Some(Phase::Closed));
        }
    }
}
