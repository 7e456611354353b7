//! The vocabulary of periodic reviews, review cycles and monitoring observations.

/// The `ReviewOutcome` of `assurance.risk.v1`; the discriminants are its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewOutcome {
    NoChange = 1,
    ReassessmentRequired = 2,
    Reassessed = 3,
}

numbered!(ReviewOutcome {
    NoChange => "NO_CHANGE",
    ReassessmentRequired => "REASSESSMENT_REQUIRED",
    Reassessed => "REASSESSED",
});

/// The `ReviewCycleState` of `assurance.risk.v1`; the discriminants are its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewCycleState {
    Open = 1,
    Closed = 2,
}

numbered!(ReviewCycleState {
    Open => "OPEN",
    Closed => "CLOSED",
});

/// The `ObservationSource` of `assurance.risk.v1`; the discriminants are its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObservationSource {
    SecurityMonitoring = 1,
    PenetrationTest = 2,
    VulnerabilityScan = 3,
    Audit = 4,
    ControlTest = 5,
    Incident = 6,
    Other = 7,
}

numbered!(ObservationSource {
    SecurityMonitoring => "SECURITY_MONITORING",
    PenetrationTest => "PENETRATION_TEST",
    VulnerabilityScan => "VULNERABILITY_SCAN",
    Audit => "AUDIT",
    ControlTest => "CONTROL_TEST",
    Incident => "INCIDENT",
    Other => "OTHER",
});

/// The `ObservationEffect` of `assurance.risk.v1`; the discriminants are its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObservationEffect {
    Informational = 1,
    LikelihoodUp = 2,
    ImpactUp = 3,
    ControlFailed = 4,
    RiskReduced = 5,
}

numbered!(ObservationEffect {
    Informational => "INFORMATIONAL",
    LikelihoodUp => "LIKELIHOOD_UP",
    ImpactUp => "IMPACT_UP",
    ControlFailed => "CONTROL_FAILED",
    RiskReduced => "RISK_REDUCED",
});
