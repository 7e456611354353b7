//! The risk status machine of DESIGN.md, as a pure function of (status, event), and the
//! decisions a response can take.

/// The `RiskStatus` of `assurance.risk.v1`; the discriminants are its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RiskStatus {
    Identified = 1,
    Assessed = 2,
    ResponsePlanned = 3,
    InTreatment = 4,
    Monitoring = 5,
    Closed = 6,
}

numbered!(RiskStatus {
    Identified => "IDENTIFIED",
    Assessed => "ASSESSED",
    ResponsePlanned => "RESPONSE_PLANNED",
    InTreatment => "IN_TREATMENT",
    Monitoring => "MONITORING",
    Closed => "CLOSED",
});

/// The decisions a response can take (`ResponseDecision`; the discriminants are its numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Mitigate = 1,
    Avoid = 2,
    Transfer = 3,
    Accept = 4,
}

numbered!(Decision {
    Mitigate => "MITIGATE",
    Avoid => "AVOID",
    Transfer => "TRANSFER",
    Accept => "ACCEPT",
});

/// What happens to a risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskEvent {
    /// An assessment (first or re-assessment).
    Assessed,
    /// A response is proposed for approval.
    ResponseProposed,
    ResponseRejected,
    ResponseApproved(Decision),
    /// Every action item is DONE or WONT_DO.
    ActionsFinished,
    /// A review asks for reassessment, an observation arrives, or an acceptance expires.
    ReassessmentRequired,
    /// An incident realised the risk or a control it relies on failed: the response in force
    /// did not hold.
    ResponseFailed,
    /// DeleteRisk with a reason.
    Closed,
}

impl RiskStatus {
    pub fn is_open(self) -> bool {
        self != RiskStatus::Closed
    }

    /// The status after `event`, or `None` when the machine refuses the move.
    pub fn apply(self, event: RiskEvent) -> Option<RiskStatus> {
        use RiskEvent as E;
        use RiskStatus as S;
        match (self, event) {
            (S::Closed, _) => None,
            (_, E::Closed) => Some(S::Closed),
            (S::Identified | S::Assessed | S::Monitoring, E::Assessed) => Some(S::Assessed),
            // A reassessment while a response is pending or under treatment updates the
            // residual risk without restarting the response.
            (S::ResponsePlanned | S::InTreatment, E::Assessed) => Some(self),
            (S::Assessed, E::ResponseProposed) => Some(S::ResponsePlanned),
            (S::ResponsePlanned, E::ResponseRejected) => Some(S::Assessed),
            (S::ResponsePlanned, E::ResponseApproved(Decision::Accept)) => Some(S::Monitoring),
            (S::ResponsePlanned, E::ResponseApproved(_)) => Some(S::InTreatment),
            (S::InTreatment, E::ActionsFinished) => Some(S::Monitoring),
            (S::Monitoring, E::ReassessmentRequired) => Some(S::Assessed),
            (S::InTreatment | S::Monitoring, E::ResponseFailed) => Some(S::Assessed),
            _ => None,
        }
    }

    /// The events this status accepts, for "allowed moves" in refusals.
    pub fn allowed(self) -> Vec<&'static str> {
        [
            (RiskEvent::Assessed, "assess"),
            (RiskEvent::ResponseProposed, "propose a response"),
            (RiskEvent::ResponseRejected, "reject the response"),
            (
                RiskEvent::ResponseApproved(Decision::Mitigate),
                "approve the response",
            ),
            (RiskEvent::ActionsFinished, "finish every action item"),
            (RiskEvent::ReassessmentRequired, "require reassessment"),
            (RiskEvent::ResponseFailed, "record a response failure"),
            (RiskEvent::Closed, "close"),
        ]
        .into_iter()
        .filter(|(e, _)| self.apply(*e).is_some())
        .map(|(_, label)| label)
        .collect()
    }
}

impl std::fmt::Display for RiskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RiskEvent as E;
    use RiskStatus as S;
    use proptest::prelude::*;

    #[test]
    fn the_documented_path() {
        let mut s = S::Identified;
        for (event, expect) in [
            (E::Assessed, S::Assessed),
            (E::ResponseProposed, S::ResponsePlanned),
            (E::ResponseRejected, S::Assessed),
            (E::ResponseProposed, S::ResponsePlanned),
            (E::ResponseApproved(Decision::Mitigate), S::InTreatment),
            (E::ActionsFinished, S::Monitoring),
            (E::ReassessmentRequired, S::Assessed),
            (E::ResponseProposed, S::ResponsePlanned),
            (E::ResponseApproved(Decision::Accept), S::Monitoring),
            (E::Assessed, S::Assessed),
            (E::Closed, S::Closed),
        ] {
            s = s
                .apply(event)
                .unwrap_or_else(|| panic!("{s} refused {event:?}"));
            assert_eq!(s, expect);
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(S::Identified.apply(E::ResponseProposed), None);
        assert_eq!(
            S::Assessed.apply(E::ResponseApproved(Decision::Avoid)),
            None
        );
        assert_eq!(S::Monitoring.apply(E::ActionsFinished), None);
        assert_eq!(S::Identified.allowed(), ["assess", "close"]);
        assert!(S::Closed.allowed().is_empty());
    }

    #[test]
    fn a_failed_response_sends_treatment_and_monitoring_back_to_assessment() {
        for s in [S::InTreatment, S::Monitoring] {
            assert_eq!(s.apply(E::ResponseFailed), Some(S::Assessed));
            assert!(s.allowed().contains(&"record a response failure"));
        }
        for s in [S::Identified, S::Assessed, S::ResponsePlanned, S::Closed] {
            assert_eq!(s.apply(E::ResponseFailed), None, "{s}");
        }
    }

    #[test]
    fn every_approved_treatment_goes_to_treatment() {
        for d in [Decision::Mitigate, Decision::Avoid, Decision::Transfer] {
            assert_eq!(
                S::ResponsePlanned.apply(E::ResponseApproved(d)),
                Some(S::InTreatment)
            );
        }
    }

    fn arb_event() -> impl Strategy<Value = RiskEvent> {
        prop_oneof![
            Just(E::Assessed),
            Just(E::ResponseProposed),
            Just(E::ResponseRejected),
            Just(E::ResponseApproved(Decision::Mitigate)),
            Just(E::ResponseApproved(Decision::Accept)),
            Just(E::ActionsFinished),
            Just(E::ReassessmentRequired),
            Just(E::ResponseFailed),
            Just(E::Closed),
        ]
    }

    proptest! {
        #[test]
        fn closed_is_terminal_and_only_reached_by_closing(events in proptest::collection::vec(arb_event(), 0..40)) {
            let mut s = S::Identified;
            for e in events {
                let was_closed = s == S::Closed;
                match s.apply(e) {
                    Some(next) => {
                        prop_assert!(!was_closed);
                        prop_assert_eq!(next == S::Closed, e == E::Closed);
                        s = next;
                    }
                    None => prop_assert!(was_closed || !s.allowed().is_empty()),
                }
            }
        }
    }
}
