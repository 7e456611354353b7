//! Response effectiveness: what the incidents that realised a risk and the failed tests of its
//! controls suggest for its next assessment. The proposal is shown to the assessor and never
//! applied on its own.

use super::scoring::Severity;

/// The window of evidence that moves a proposal.
pub const WINDOW_MICROS: i64 = 365 * 24 * 3600 * 1_000_000;

/// The impact an incident of `severity` suggests: LOW 2, MEDIUM 3, HIGH 4, CRITICAL 5.
pub fn impact_of(severity: Severity) -> i32 {
    severity as i32 + 1
}

/// A proposal for the next assessment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub likelihood: i32,
    pub impact: i32,
    pub rationale: String,
}

/// The proposal from the current `likelihood` and `impact` (0 when not assessed), the
/// severities of the incidents that realised the risk within the window, and the number of
/// failed control tests within it:
/// - each realisation raises likelihood one step, and any failed control test one more, up
///   to 5 (from 1 when not assessed);
/// - impact rises to the worst realising incident's [`impact_of`] when that is higher.
pub fn propose(
    likelihood: i32,
    impact: i32,
    realisations: &[Severity],
    control_failures: usize,
) -> Proposal {
    let steps = realisations.len() + usize::from(control_failures > 0);
    let base_likelihood = likelihood.max(1);
    let proposed_likelihood =
        (base_likelihood + i32::try_from(steps).unwrap_or(i32::MAX).min(5)).min(5);
    let worst = realisations.iter().map(|s| impact_of(*s)).max();
    let proposed_impact = impact.max(worst.unwrap_or(0)).max(1);
    let mut why = Vec::new();
    if !realisations.is_empty() {
        why.push(format!(
            "{} incident(s) realised the risk in the last 12 months (likelihood +{})",
            realisations.len(),
            realisations.len()
        ));
    }
    if control_failures > 0 {
        why.push(format!(
            "{control_failures} failed control test(s) in the last 12 months (likelihood +1)"
        ));
    }
    if let Some(w) = worst
        && w > impact
    {
        why.push(format!("the worst realising incident suggests impact {w}"));
    }
    let rationale = if why.is_empty() {
        "no realisation or failed control test in the last 12 months: keep the assessment".into()
    } else {
        format!(
            "{}; proposed likelihood {proposed_likelihood}, impact {proposed_impact}",
            why.join("; ")
        )
    };
    Proposal {
        likelihood: proposed_likelihood,
        impact: proposed_impact,
        rationale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_happened_keeps_the_assessment() {
        let p = propose(3, 4, &[], 0);
        assert_eq!((p.likelihood, p.impact), (3, 4));
        assert!(p.rationale.contains("keep"));
    }

    #[test]
    fn each_realisation_raises_likelihood_and_the_worst_sets_impact() {
        let p = propose(2, 2, &[Severity::Medium, Severity::Critical], 0);
        assert_eq!((p.likelihood, p.impact), (4, 5));
        // Impact never falls: a LOW incident on a high-impact risk keeps it.
        let p = propose(2, 4, &[Severity::Low], 0);
        assert_eq!((p.likelihood, p.impact), (3, 4));
    }

    #[test]
    fn failed_controls_count_once_and_likelihood_caps_at_five() {
        assert_eq!(propose(2, 3, &[], 3).likelihood, 3);
        let many = vec![Severity::High; 9];
        let p = propose(4, 3, &many, 2);
        assert_eq!((p.likelihood, p.impact), (5, 4));
    }

    #[test]
    fn an_unassessed_risk_starts_from_one() {
        let p = propose(0, 0, &[Severity::High], 0);
        assert_eq!((p.likelihood, p.impact), (2, 4));
    }
}
