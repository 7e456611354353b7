//! Incident roles: the kinds of role an incident has (the names of `RoleKind` in
//! `assurance.incident.v1`) and their ids in resource names. Each role of an incident has one
//! current holder.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleKind {
    IncidentResponseLead = 1,
    SecurityIncidentOwner = 2,
    Forensics = 3,
    Communications = 4,
    Legal = 5,
    ServiceEngineer = 6,
    Scribe = 7,
}

impl RoleKind {
    /// The role's id in resource names: `incidents/{id}/roles/incident-response-lead`.
    pub fn slug(self) -> &'static str {
        match self {
            RoleKind::IncidentResponseLead => "incident-response-lead",
            RoleKind::SecurityIncidentOwner => "security-incident-owner",
            RoleKind::Forensics => "forensics",
            RoleKind::Communications => "communications",
            RoleKind::Legal => "legal",
            RoleKind::ServiceEngineer => "service-engineer",
            RoleKind::Scribe => "scribe",
        }
    }
}
