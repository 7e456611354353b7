//! The role matrix: for every RPC, the roles that may call it. One table for every server;
//! the matrix in `docs/security.md` is rendered from it (`render_markdown`) and a test keeps the two equal.
//! An RPC missing from the table is refused to everyone.
//!
//! Service scope is checked on top, by the handlers: a principal scoped to some services may
//! change only their records.

use std::{collections::HashMap, sync::LazyLock};

use super::{Role, Role::*, Roles};

/// Everyone with any role: the risk register and org hierarchy are readable by all staff
/// systems.
const ANYONE: Roles = Roles::of(&Role::ALL);
const RISK_WRITERS: Roles = Roles::of(&[
    RiskOwner,
    ServiceManager,
    TrustTeam,
    SecurityLead,
    System,
    Admin,
]);
const RISK_CLOSERS: Roles = Roles::of(&[ServiceManager, TrustTeam, System, Admin]);
/// Approvers of risk responses; the level a response needs (by the highest severity the risk
/// has had since its last approved response) is checked on top: risk_owner < service_manager <
/// trust_team < erm_executive. `admin` approves nothing.
const RISK_APPROVERS: Roles = Roles::of(&[RiskOwner, ServiceManager, TrustTeam, ErmExecutive]);
/// Action plans are also updated by the bug trackers that sync them (their status and tracker
/// link only: the handlers refuse other fields to a tracker); trackers create nothing.
const ACTION_WRITERS: Roles = RISK_WRITERS.union(Roles::of(&[Tracker]));
/// Who reads the tracker sync's state: the trust team, the trackers themselves.
const SYNC_READERS: Roles = Roles::of(&[TrustTeam, Tracker, Admin]);
/// Realisations of a risk arrive from the incident relay (the `system` principal) or are
/// recorded by the incident side's leads.
const REALIZATION_RECORDERS: Roles = Roles::of(&[SecurityLead, TrustTeam, System, Admin]);
/// Monitoring results arrive from risk writers, responders and monitoring systems.
const OBSERVERS: Roles = RISK_WRITERS.union(Roles::of(&[Responder]));
/// Rejections need the approval level too (a rejection is the approver's decision, so not
/// `admin`'s), except that proposers (who may be security leads) may withdraw their own.
const RISK_REJECTERS: Roles = RISK_APPROVERS.union(Roles::of(&[SecurityLead]));
const ORG_ADMINS: Roles = Roles::of(&[TrustTeam, System, Admin]);
const SERVICE_EDITORS: Roles = Roles::of(&[ServiceManager, TrustTeam, System, Admin]);
/// The controls catalogue is enterprise-wide, kept by the trust team (and its import job);
/// service teams link controls to their risks as risk writers.
const CONTROL_EDITORS: Roles = Roles::of(&[TrustTeam, System, Admin]);
/// Incidents are need-to-know: responders, the security lead, service managers (the service
/// team of the federated model), the trust team.
const INCIDENT_READERS: Roles = Roles::of(&[
    Responder,
    SecurityLead,
    ServiceManager,
    TrustTeam,
    System,
    Admin,
]);
const METRICS_READERS: Roles = INCIDENT_READERS.union(Roles::of(&[Reporter, ErmExecutive]));
const RESPONDERS: Roles = Roles::of(&[Responder, SecurityLead, ServiceManager, System, Admin]);
/// Who records that an incident realised or relates to a risk: responders, the security lead
/// and the trust team (and the relay's `system` principal).
const RISK_LINKERS: Roles = Roles::of(&[Responder, SecurityLead, TrustTeam, System, Admin]);
/// Post-incident follow-ups are written by responders and the trust team (which runs the
/// lessons-learned cycle); the bug trackers that sync them also update and read them.
const FOLLOW_UP_WRITERS: Roles = RESPONDERS.union(Roles::of(&[TrustTeam]));
const FOLLOW_UP_SYNCERS: Roles = FOLLOW_UP_WRITERS.union(Roles::of(&[Tracker]));
const FOLLOW_UP_READERS: Roles = INCIDENT_READERS.union(Roles::of(&[Tracker]));
const INCIDENT_LEADS: Roles = Roles::of(&[Responder, SecurityLead, System, Admin]);
/// Approvers of incident notifications: a security lead other than the drafter (admin
/// approves nothing).
const APPROVERS: Roles = Roles::of(&[SecurityLead]);
const AUDITORS: Roles = Roles::of(&[TrustTeam, Admin]);
/// Deciders of security/compliance exceptions (approve and reject; admin approves nothing).
/// The handler also refuses the requester's own approval.
const EXCEPTION_APPROVERS: Roles = Roles::of(&[TrustTeam, ErmExecutive]);
const EXCEPTION_REVOKERS: Roles = Roles::of(&[TrustTeam, ErmExecutive, System, Admin]);

/// Readers of the ERM posture and the risk appetite (reporting jobs among them).
const POSTURE_READERS: Roles = Roles::of(&[
    Viewer,
    Reporter,
    RiskOwner,
    ServiceManager,
    TrustTeam,
    ErmExecutive,
    SecurityLead,
    Admin,
]);
/// The services' aggregate RPCs: posture readers, and the gateway's `system` credential.
const SUMMARIZERS: Roles = POSTURE_READERS.union(Roles::of(&[System]));
/// Setters of risk appetite; the handler requires `erm_executive` for the enterprise and
/// `trust_team` for business-unit and service overrides (admin sets none).
const APPETITE_SETTERS: Roles = Roles::of(&[ErmExecutive, TrustTeam, Admin]);
/// Creators of formal reports; the handler requires `trust_team` or `erm_executive` (admin
/// creates none: it passes the matrix only so that its requests are validated).
const REPORT_CREATORS: Roles = Roles::of(&[TrustTeam, ErmExecutive, Admin]);
/// Confirmers of a service's part of a report: the handler requires a `service_manager` whose
/// scope includes the service, or `trust_team`. A confirmation approves the service's figures:
/// not `admin`'s.
const REPORT_CONFIRMERS: Roles = Roles::of(&[ServiceManager, TrustTeam]);
/// Rejecters of a report: the handler requires a confirmer (as for ConfirmReport, of one of
/// the report's services) or an `erm_executive`.
const REPORT_REJECTERS: Roles = REPORT_CONFIRMERS.union(Roles::of(&[ErmExecutive]));
/// Signers of a report: the handler requires `erm_executive`, never the report's creator. A
/// sign-off is the report's approval: not `admin`'s.
const REPORT_SIGNERS: Roles = Roles::of(&[ErmExecutive]);

const RISK: &str = "assurance.risk.v1.RiskService";
const ORG: &str = "assurance.risk.v1.OrganizationService";
const RISK_AUDIT: &str = "assurance.risk.v1.AuditService";
const RISK_OUTBOX: &str = "assurance.risk.v1.OutboxService";
const CONTROL: &str = "assurance.risk.v1.ControlService";
const EXCEPTION: &str = "assurance.risk.v1.ExceptionService";
const REVIEW: &str = "assurance.risk.v1.ReviewService";
const INCIDENT: &str = "assurance.incident.v1.IncidentService";
const INCIDENT_AUDIT: &str = "assurance.incident.v1.AuditService";
const INCIDENT_OUTBOX: &str = "assurance.incident.v1.OutboxService";
const RISK_SUMMARY: &str = "assurance.risk.v1.RiskSummaryService";
const INCIDENT_SUMMARY: &str = "assurance.incident.v1.IncidentSummaryService";
const POSTURE: &str = "assurance.gateway.v1.PostureService";
const REPORT: &str = "assurance.gateway.v1.ReportService";
const GATEWAY_AUDIT: &str = "assurance.gateway.v1.AuditService";
const WORK_ITEM: &str = "assurance.gateway.v1.WorkItemService";
const TRACKER_SYNC: &str = "assurance.gateway.v1.TrackerSyncService";

/// `(service, method, roles)` for every RPC.
pub const MATRIX: &[(&str, &str, Roles)] = &[
    (ORG, "CreateBusinessUnit", ORG_ADMINS),
    (ORG, "GetBusinessUnit", ANYONE),
    (ORG, "ListBusinessUnits", ANYONE),
    (ORG, "UpdateBusinessUnit", ORG_ADMINS),
    (ORG, "DeleteBusinessUnit", ORG_ADMINS),
    (ORG, "CreateService", ORG_ADMINS),
    (ORG, "GetService", ANYONE),
    (ORG, "ListServices", ANYONE),
    (ORG, "UpdateService", SERVICE_EDITORS),
    (ORG, "DeleteService", ORG_ADMINS),
    (RISK, "CreateRisk", RISK_WRITERS),
    (RISK, "GetRisk", ANYONE),
    (RISK, "ListRisks", ANYONE),
    (RISK, "UpdateRisk", RISK_WRITERS),
    (RISK, "DeleteRisk", RISK_CLOSERS),
    (RISK, "AssessRisk", RISK_WRITERS),
    (RISK, "ListAssessments", ANYONE),
    (RISK, "GetAssessment", ANYONE),
    (RISK, "CreateRiskResponse", RISK_WRITERS),
    (RISK, "ApproveRiskResponse", RISK_APPROVERS),
    (RISK, "RejectRiskResponse", RISK_REJECTERS),
    (RISK, "ListRiskResponses", ANYONE),
    (RISK, "GetRiskResponse", ANYONE),
    (RISK, "ListDecisions", ANYONE),
    (RISK, "GetDecision", ANYONE),
    (RISK, "CreateActionPlan", RISK_WRITERS),
    (RISK, "UpdateActionPlan", RISK_WRITERS),
    (RISK, "GetActionPlan", ANYONE),
    (RISK, "CreateActionItem", RISK_WRITERS),
    (RISK, "UpdateActionItem", ACTION_WRITERS),
    (RISK, "ListActionItems", ANYONE),
    (RISK, "GetActionItem", ANYONE),
    (RISK, "RecordRiskRealization", REALIZATION_RECORDERS),
    (RISK, "GetResponseEffectiveness", ANYONE),
    (REVIEW, "CreateReview", RISK_WRITERS),
    (REVIEW, "GetReview", ANYONE),
    (REVIEW, "ListReviews", ANYONE),
    (REVIEW, "OpenReviewCycle", SERVICE_EDITORS),
    (REVIEW, "GetReviewCycle", ANYONE),
    (REVIEW, "ListReviewCycles", ANYONE),
    (REVIEW, "UpdateReviewCycle", SERVICE_EDITORS),
    (REVIEW, "CloseReviewCycle", SERVICE_EDITORS),
    (REVIEW, "CreateObservation", OBSERVERS),
    (REVIEW, "GetObservation", ANYONE),
    (REVIEW, "ListObservations", ANYONE),
    (EXCEPTION, "CreatePolicyException", RISK_WRITERS),
    (EXCEPTION, "GetPolicyException", ANYONE),
    (EXCEPTION, "ListPolicyExceptions", ANYONE),
    (EXCEPTION, "ApprovePolicyException", EXCEPTION_APPROVERS),
    (EXCEPTION, "RejectPolicyException", EXCEPTION_APPROVERS),
    (EXCEPTION, "RevokePolicyException", EXCEPTION_REVOKERS),
    (CONTROL, "CreateControl", CONTROL_EDITORS),
    (CONTROL, "GetControl", ANYONE),
    (CONTROL, "ListControls", ANYONE),
    (CONTROL, "UpdateControl", CONTROL_EDITORS),
    (CONTROL, "DeleteControl", CONTROL_EDITORS),
    (CONTROL, "CreateRiskControlLink", RISK_WRITERS),
    (CONTROL, "GetRiskControlLink", ANYONE),
    (CONTROL, "ListRiskControlLinks", ANYONE),
    (CONTROL, "DeleteRiskControlLink", RISK_WRITERS),
    (CONTROL, "ListRiskControls", ANYONE),
    (CONTROL, "ListControlRisks", ANYONE),
    (RISK_AUDIT, "ListAuditEvents", AUDITORS),
    (RISK_AUDIT, "GetAuditEvent", AUDITORS),
    (RISK_OUTBOX, "ListOutboxEvents", AUDITORS),
    (RISK_OUTBOX, "GetOutboxEvent", AUDITORS),
    (RISK_OUTBOX, "ReplayOutboxEvent", AUDITORS),
    (INCIDENT, "DeclareIncident", RESPONDERS),
    (INCIDENT, "GetIncident", INCIDENT_READERS),
    (INCIDENT, "ListIncidents", INCIDENT_READERS),
    (INCIDENT, "UpdateIncident", RESPONDERS),
    (INCIDENT, "AdvancePhase", RESPONDERS),
    (INCIDENT, "CloseIncident", INCIDENT_LEADS),
    (INCIDENT, "CreatePostIncidentReview", INCIDENT_LEADS),
    (INCIDENT, "GetPostIncidentReview", INCIDENT_READERS),
    (INCIDENT, "ListResponseTemplates", INCIDENT_READERS),
    (INCIDENT, "ListContacts", INCIDENT_READERS),
    (INCIDENT, "ListNotificationRules", INCIDENT_READERS),
    (INCIDENT, "CreateTask", RESPONDERS),
    (INCIDENT, "UpdateTask", RESPONDERS),
    (INCIDENT, "LinkIncidentRisk", RISK_LINKERS),
    (INCIDENT, "CreateFollowUp", FOLLOW_UP_WRITERS),
    (INCIDENT, "UpdateFollowUp", FOLLOW_UP_SYNCERS),
    (INCIDENT, "GetFollowUp", FOLLOW_UP_READERS),
    (INCIDENT, "ListFollowUps", FOLLOW_UP_READERS),
    (INCIDENT, "GetTask", INCIDENT_READERS),
    (INCIDENT, "ListTasks", INCIDENT_READERS),
    (INCIDENT, "AssignRole", INCIDENT_LEADS),
    (INCIDENT, "ListRoles", INCIDENT_READERS),
    (INCIDENT, "GetRole", INCIDENT_READERS),
    (INCIDENT, "CreateEvidence", RESPONDERS),
    (INCIDENT, "ListEvidence", INCIDENT_READERS),
    (INCIDENT, "GetEvidence", INCIDENT_READERS),
    (INCIDENT, "CreateCustodyRecord", RESPONDERS),
    (INCIDENT, "ListCustodyRecords", INCIDENT_READERS),
    (INCIDENT, "GetCustodyRecord", INCIDENT_READERS),
    (INCIDENT, "CreateNotification", INCIDENT_LEADS),
    (INCIDENT, "ApproveNotification", APPROVERS),
    (INCIDENT, "MarkNotificationSent", INCIDENT_LEADS),
    (INCIDENT, "UpdateNotification", INCIDENT_LEADS),
    (INCIDENT, "ListNotifications", INCIDENT_READERS),
    (INCIDENT, "GetNotification", INCIDENT_READERS),
    (INCIDENT, "ExportIncidentReport", INCIDENT_READERS),
    (INCIDENT, "GetIncidentMetrics", METRICS_READERS),
    (INCIDENT, "CreateIndicator", RESPONDERS),
    (INCIDENT, "ListIndicators", INCIDENT_READERS),
    (INCIDENT, "GetIndicator", INCIDENT_READERS),
    (INCIDENT, "SearchIndicators", INCIDENT_READERS),
    (INCIDENT, "CreateTimelineEvent", RESPONDERS),
    (INCIDENT, "ListTimelineEvents", INCIDENT_READERS),
    (INCIDENT, "GetTimelineEvent", INCIDENT_READERS),
    (INCIDENT, "WatchIncident", INCIDENT_READERS),
    (INCIDENT_AUDIT, "ListAuditEvents", AUDITORS),
    (INCIDENT_AUDIT, "GetAuditEvent", AUDITORS),
    (INCIDENT_OUTBOX, "ListOutboxEvents", AUDITORS),
    (INCIDENT_OUTBOX, "GetOutboxEvent", AUDITORS),
    (INCIDENT_OUTBOX, "ReplayOutboxEvent", AUDITORS),
    (RISK_SUMMARY, "SummarizeRisks", SUMMARIZERS),
    (RISK_SUMMARY, "ListReportRisks", SUMMARIZERS),
    (INCIDENT_SUMMARY, "SummarizeIncidents", SUMMARIZERS),
    (POSTURE, "GetPosture", POSTURE_READERS),
    (POSTURE, "GetRiskAppetite", POSTURE_READERS),
    (POSTURE, "SetRiskAppetite", APPETITE_SETTERS),
    (POSTURE, "ListRiskAppetiteVersions", POSTURE_READERS),
    (
        POSTURE,
        "CreateSnapshot",
        Roles::of(&[TrustTeam, ErmExecutive, Admin]),
    ),
    (POSTURE, "GetSnapshot", POSTURE_READERS),
    (POSTURE, "ListSnapshots", POSTURE_READERS),
    (POSTURE, "GetPostureTrend", POSTURE_READERS),
    (POSTURE, "WatchPosture", POSTURE_READERS),
    (GATEWAY_AUDIT, "ListAuditEvents", AUDITORS),
    (GATEWAY_AUDIT, "GetAuditEvent", AUDITORS),
    (REPORT, "CreateReport", REPORT_CREATORS),
    (REPORT, "GetReport", POSTURE_READERS),
    (REPORT, "ListReports", POSTURE_READERS),
    (REPORT, "ConfirmReport", REPORT_CONFIRMERS),
    (REPORT, "RejectReport", REPORT_REJECTERS),
    (REPORT, "SignOffReport", REPORT_SIGNERS),
    (REPORT, "ExportReport", POSTURE_READERS),
    // Readers of both kinds: action items are read by anyone, follow-ups by their readers.
    (WORK_ITEM, "ListWorkItems", FOLLOW_UP_READERS),
    (TRACKER_SYNC, "GetTrackerSync", SYNC_READERS),
    (TRACKER_SYNC, "ListTrackerLinks", SYNC_READERS),
    (TRACKER_SYNC, "ResyncWorkItem", AUDITORS),
];

static BY_PATH: LazyLock<HashMap<String, Roles>> = LazyLock::new(|| {
    MATRIX
        .iter()
        .map(|(service, method, roles)| (format!("/{service}/{method}"), *roles))
        .collect()
});

/// The roles that may call the gRPC method at `path` (`/package.Service/Method`); none for an
/// unknown method.
pub fn allowed(path: &str) -> Roles {
    BY_PATH.get(path).copied().unwrap_or(Roles::NONE)
}

/// Paths served to anyone, without credentials: health checks and reflection.
pub fn is_public(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.v1.ServerReflection/")
        || path.starts_with("/grpc.reflection.v1alpha.ServerReflection/")
}

/// The matrix as a Markdown table: a row per RPC, a column per role.
pub fn render_markdown() -> String {
    let mut out = String::from("| RPC |");
    for role in Role::ALL {
        out.push_str(&format!(" {role} |"));
    }
    out.push_str("\n|---|");
    for _ in Role::ALL {
        out.push_str(":-:|");
    }
    out.push('\n');
    for (service, method, roles) in MATRIX {
        let short = service.trim_start_matches("assurance.");
        out.push_str(&format!("| `{short}/{method}` |"));
        for role in Role::ALL {
            out.push_str(if roles.contains(role) { " ✓ |" } else { " |" });
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert!(allowed("/assurance.risk.v1.RiskService/GetRisk").contains(Viewer));
        assert!(!allowed("/assurance.risk.v1.RiskService/CreateRisk").contains(Viewer));
        assert!(allowed("/assurance.risk.v1.RiskService/Nope").is_empty());
        assert!(is_public("/grpc.health.v1.Health/Check"));
        assert!(!is_public("/assurance.risk.v1.RiskService/GetRisk"));
        let table = render_markdown();
        assert_eq!(table.lines().count(), MATRIX.len() + 2);
    }

    #[test]
    fn work_items_are_read_by_readers_of_both_kinds() {
        let work_items = allowed("/assurance.gateway.v1.WorkItemService/ListWorkItems");
        let action_items = allowed("/assurance.risk.v1.RiskService/ListActionItems");
        let follow_ups = allowed("/assurance.incident.v1.IncidentService/ListFollowUps");
        for role in Role::ALL {
            assert_eq!(
                work_items.contains(role),
                action_items.contains(role) && follow_ups.contains(role),
                "{role}"
            );
        }
        assert!(work_items.contains(Tracker));
    }

    /// The approval RPCs: deciding a risk response, a policy exception, a notification, a
    /// service's part of a report, a report's sign-off. `admin` may call none of them.
    const APPROVALS: &[(&str, &str)] = &[
        (RISK, "ApproveRiskResponse"),
        (RISK, "RejectRiskResponse"),
        (EXCEPTION, "ApprovePolicyException"),
        (EXCEPTION, "RejectPolicyException"),
        (INCIDENT, "ApproveNotification"),
        (REPORT, "ConfirmReport"),
        (REPORT, "RejectReport"),
        (REPORT, "SignOffReport"),
    ];

    #[test]
    fn admin_may_call_everything_but_approvals_and_every_rpc_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for (service, method, roles) in MATRIX {
            let approval = APPROVALS.contains(&(*service, *method));
            assert_eq!(
                roles.contains(Admin),
                !approval,
                "{service}/{method}: admin approves nothing and may call everything else"
            );
            assert!(seen.insert((service, method)), "{service}/{method} twice");
        }
        for (service, method) in APPROVALS {
            assert!(
                seen.contains(&(service, method)),
                "{service}/{method} not listed"
            );
        }
    }

    /// Whether `method` only reads.
    fn is_read(method: &str) -> bool {
        ["Get", "List", "Search", "Watch", "Export"]
            .iter()
            .any(|verb| method.starts_with(verb))
    }

    #[test]
    fn risk_register_reads_are_open_to_every_role() {
        let register = [RISK, ORG, CONTROL, EXCEPTION, REVIEW];
        let mut reads = 0;
        for (service, method, roles) in MATRIX {
            if register.contains(service) && is_read(method) {
                reads += 1;
                for role in Role::ALL {
                    assert!(roles.contains(role), "{service}/{method} refuses {role}");
                }
            }
        }
        assert!(reads >= 30, "{reads} register reads");
    }

    #[test]
    fn incident_reads_are_need_to_know() {
        let mut reads = 0;
        for (service, method, roles) in MATRIX {
            if *service == INCIDENT && is_read(method) {
                reads += 1;
                // Not every role: the register's readers without an incident role are refused.
                for role in [Viewer, RiskOwner] {
                    assert!(!roles.contains(role), "{service}/{method} admits {role}");
                }
                assert!(roles.contains(SecurityLead), "{service}/{method}");
            }
        }
        assert!(reads >= 25, "{reads} incident reads");
        // Incident content (not the aggregate metrics) is not for reporting roles either.
        for method in [
            "GetIncident",
            "ListIncidents",
            "WatchIncident",
            "ListEvidence",
        ] {
            let roles = allowed(&format!("/{INCIDENT}/{method}"));
            for role in [Viewer, Reporter, RiskOwner, ErmExecutive] {
                assert!(!roles.contains(role), "{method} admits {role}");
            }
        }
    }
}

#[cfg(test)]
mod docs {
    /// The role matrix in docs/security.md is this table, rendered. When the matrix changes,
    /// replace the table in docs/security.md with the one this test prints.
    #[test]
    fn security_doc_shows_the_current_matrix() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/security.md"))
                .expect("docs/security.md in the workspace");
        let table = super::render_markdown();
        assert!(
            doc.contains(&table),
            "docs/security.md's role matrix is out of date; replace it with:\n\n{table}"
        );
    }
}
