//! How a risk in the register is described: where its threat comes from and how it was
//! identified.

/// The `Threat` of `assurance.risk.v1`; the discriminants are its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Threat {
    Internal = 1,
    External = 2,
}

numbered!(Threat {
    Internal => "INTERNAL",
    External => "EXTERNAL",
});

/// The `IdentificationSource` of `assurance.risk.v1`; the discriminants are its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentificationSource {
    Interview = 1,
    VulnerabilityScan = 2,
    AttackSimulation = 3,
    AuditFinding = 4,
    Incident = 5,
    ContinuousMonitoring = 6,
    Other = 7,
}

numbered!(IdentificationSource {
    Interview => "INTERVIEW",
    VulnerabilityScan => "VULNERABILITY_SCAN",
    AttackSimulation => "ATTACK_SIMULATION",
    AuditFinding => "AUDIT_FINDING",
    Incident => "INCIDENT",
    ContinuousMonitoring => "CONTINUOUS_MONITORING",
    Other => "OTHER",
});
