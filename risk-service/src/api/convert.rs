//! Wire ↔ domain: `From`/`TryFrom` between the domain enums and the `assurance.risk.v1` ones,
//! and the mapping between stored rows and messages.

/// The wire types: this package's, and the shared `assurance.type.v1` enums it uses.
mod pb {
    pub use assurance_proto::risk::v1::*;
    pub use assurance_proto::r#type::v1::{Severity, WorkItemStatus};
}
use assurance_runtime::time::to_timestamp;

use crate::domain::{
    controls::Effectiveness,
    exceptions::ExceptionStatus,
    governance::{ActionItemStatus, ApprovalState, DecisionKind, SyncState},
    register::{IdentificationSource, Threat},
    reviews::{ObservationEffect, ObservationSource, ReviewCycleState, ReviewOutcome},
    scoring::{Derived, Methodology, RiskLevel, Severity, Strategy},
    status::{Decision, RiskStatus},
};

/// `From<domain> for proto` and `TryFrom<proto> for domain` (refusing `UNSPECIFIED`), variant
/// for variant: the domain enum and the proto one name the same things.
macro_rules! wire_enum {
    ($domain:ident <=> $wire:ident { $($variant:ident),+ $(,)? }) => {
        impl From<$domain> for pb::$wire {
            fn from(v: $domain) -> Self {
                match v {
                    $($domain::$variant => pb::$wire::$variant),+
                }
            }
        }

        impl TryFrom<pb::$wire> for $domain {
            type Error = pb::$wire;

            fn try_from(v: pb::$wire) -> Result<Self, pb::$wire> {
                match v {
                    $(pb::$wire::$variant => Ok($domain::$variant),)+
                    unspecified => Err(unspecified),
                }
            }
        }
    };
}

wire_enum!(RiskStatus <=> RiskStatus {
    Identified,
    Assessed,
    ResponsePlanned,
    InTreatment,
    Monitoring,
    Closed,
});
wire_enum!(Severity <=> Severity { Low, Medium, High, Critical });
wire_enum!(Strategy <=> ResponseStrategy { Tolerate, Operate, Monitor, Improve });
wire_enum!(RiskLevel <=> RiskLevel { VeryLow, Low, Moderate, High, VeryHigh });
wire_enum!(Methodology <=> Methodology { Standard, Nist80030 });
wire_enum!(Decision <=> ResponseDecision { Mitigate, Avoid, Transfer, Accept });
wire_enum!(ApprovalState <=> ApprovalState { Pending, Approved, Rejected });
wire_enum!(ActionItemStatus <=> WorkItemStatus {
    Open,
    InProgress,
    Blocked,
    Done,
    WontDo,
});
wire_enum!(SyncState <=> SyncState { NotLinked, Pending, Synced, Failed, Broken });
wire_enum!(DecisionKind <=> DecisionKind {
    ResponseProposed,
    StrategyOverridden,
    ResponseApproved,
    ResponseRejected,
    ActionsCompleted,
    AcceptanceExpired,
    RiskClosed,
    ExceptionRequested,
    ExceptionApproved,
    ExceptionRejected,
    ExceptionRevoked,
    ExceptionExpired,
    ReassessmentRequired,
    ResponseFailed,
});
wire_enum!(ExceptionStatus <=> PolicyExceptionStatus {
    Requested,
    Active,
    Expired,
    Revoked,
    Rejected,
});
wire_enum!(Effectiveness <=> ControlEffectiveness {
    Effective,
    PartiallyEffective,
    Ineffective,
    NotTested,
});
wire_enum!(ReviewOutcome <=> ReviewOutcome { NoChange, ReassessmentRequired, Reassessed });
wire_enum!(ReviewCycleState <=> ReviewCycleState { Open, Closed });
wire_enum!(Threat <=> Threat { Internal, External });
wire_enum!(IdentificationSource <=> IdentificationSource {
    Interview,
    VulnerabilityScan,
    AttackSimulation,
    AuditFinding,
    Incident,
    ContinuousMonitoring,
    Other,
});
wire_enum!(ObservationSource <=> ObservationSource {
    SecurityMonitoring,
    PenetrationTest,
    VulnerabilityScan,
    Audit,
    ControlTest,
    Incident,
    Other,
});
wire_enum!(ObservationEffect <=> ObservationEffect {
    Informational,
    LikelihoodUp,
    ImpactUp,
    ControlFailed,
    RiskReduced,
});
use crate::store::{
    entities::{assessment, business_unit, risk, service},
    etag,
};

pub fn business_unit(m: &business_unit::Model) -> pb::BusinessUnit {
    pb::BusinessUnit {
        name: format!("businessUnits/{}", m.id),
        display_name: m.display_name.clone(),
        description: m.description.clone(),
        owner: m.owner.clone(),
        etag: etag(m.version),
        create_time: Some(to_timestamp(m.create_time)),
        update_time: Some(to_timestamp(m.update_time)),
    }
}

pub fn service(m: &service::Model) -> pb::Service {
    pb::Service {
        name: format!("services/{}", m.id),
        business_unit: format!("businessUnits/{}", m.business_unit_id),
        display_name: m.display_name.clone(),
        description: m.description.clone(),
        owner: m.owner.clone(),
        etag: etag(m.version),
        create_time: Some(to_timestamp(m.create_time)),
        update_time: Some(to_timestamp(m.update_time)),
    }
}

pub fn risk(r: &risk::Model) -> pb::Risk {
    let latest_assessment = r.latest_assessment_id.map(|aid| pb::Assessment {
        name: format!("risks/{}/assessments/{aid}", r.id),
        impact: r.impact,
        likelihood: r.likelihood,
        control_deficiency: r.control_deficiency,
        rationale: r.assessment_rationale.clone(),
        assessor: r.assessor.clone(),
        assess_time: r.assess_time.map(to_timestamp),
        exposure: r.exposure,
        score: r.score,
        severity: r.severity,
        strategy: r.strategy,
        risk_level: r.risk_level,
        methodology: r.methodology,
        policy: r.policy_id.clone(),
        control_deficiency_derived: r.control_deficiency_derived,
    });
    pb::Risk {
        name: format!("risks/{}", r.id),
        title: r.title.clone(),
        description: r.description.clone(),
        service: format!("services/{}", r.service_id),
        business_unit: format!("businessUnits/{}", r.business_unit_id),
        category: r.category.clone(),
        threat: r.threat,
        identification_source: r.identification_source,
        source_reference: r.source_reference.clone(),
        owner: r.owner.clone(),
        status: r.status,
        labels: crate::store::labels_from_json(&r.labels),
        latest_assessment,
        etag: etag(r.version),
        create_time: Some(to_timestamp(r.create_time)),
        update_time: Some(to_timestamp(r.update_time)),
        close_reason: r.close_reason.clone(),
        close_time: r.close_time.map(to_timestamp),
        next_review_time: r.next_review_time.map(to_timestamp),
    }
}

pub fn assessment(a: &assessment::Model) -> pb::Assessment {
    pb::Assessment {
        name: format!("risks/{}/assessments/{}", a.risk_id, a.id),
        impact: a.impact,
        likelihood: a.likelihood,
        control_deficiency: a.control_deficiency,
        rationale: a.rationale.clone(),
        assessor: a.assessor.clone(),
        assess_time: Some(to_timestamp(a.assess_time)),
        exposure: a.exposure,
        score: a.score,
        severity: a.severity,
        strategy: a.strategy,
        risk_level: a.risk_level,
        methodology: a.methodology,
        policy: a.policy_id.clone(),
        control_deficiency_derived: a.control_deficiency_derived,
    }
}

/// The stored numbers of derived values (the proto enum numbers; 0 = not applicable).
pub fn derived_numbers(d: &Derived) -> [i32; 6] {
    [
        i32::from(d.exposure),
        i32::from(d.score),
        i32::from(d.severity),
        i32::from(d.strategy),
        d.risk_level.map_or(0, i32::from),
        i32::from(d.methodology),
    ]
}

/// The assessment row of validated metrics (1–5 each), derived by `policy`.
pub fn assessment_model(
    policy: &crate::domain::scoring::ScoringPolicy,
    a: &pb::Assessment,
) -> assessment::Model {
    // In range 1–5, checked by the caller.
    let metric = |x: i32| u8::try_from(x).unwrap_or(1);
    let derived = policy.derive(
        metric(a.impact),
        metric(a.likelihood),
        metric(a.control_deficiency),
    );
    let [exposure, score, severity, strategy, risk_level, methodology] = derived_numbers(&derived);
    assessment::Model {
        // Assigned when the assessment is applied, in commit order.
        id: uuid::Uuid::nil(),
        risk_id: uuid::Uuid::nil(),
        impact: a.impact,
        likelihood: a.likelihood,
        control_deficiency: a.control_deficiency,
        exposure,
        score,
        severity,
        strategy,
        risk_level,
        methodology,
        policy_id: policy.id(),
        rationale: a.rationale.clone(),
        assessor: a.assessor.clone(),
        assess_time: 0,
        control_deficiency_derived: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every proto value but `UNSPECIFIED` converts to the domain enum and back to its number,
    /// which is also the domain discriminant the database stores; `UNSPECIFIED` and unknown
    /// numbers are refused; the names agree.
    macro_rules! round_trips {
        ($($test:ident: $domain:ident <=> $wire:ident;)+) => {$(
            #[test]
            fn $test() {
                let mut converted = 0;
                for n in -1..=64 {
                    match pb::$wire::try_from(n) {
                        Ok(pb::$wire::Unspecified) => {
                            assert!($domain::try_from(pb::$wire::Unspecified).is_err());
                            assert_eq!($domain::try_from(n), Err(n));
                        }
                        Ok(wire) => {
                            let domain = $domain::try_from(wire)
                                .unwrap_or_else(|_| panic!("{wire:?} has no domain value"));
                            assert_eq!(pb::$wire::from(domain) as i32, n);
                            assert_eq!(i32::from(domain), n);
                            assert_eq!($domain::try_from(n), Ok(domain));
                            assert!(wire.as_str_name().ends_with(&format!("_{}", domain.as_str())));
                            converted += 1;
                        }
                        Err(_) => assert_eq!($domain::try_from(n), Err(n)),
                    }
                }
                assert_eq!(converted, $domain::ALL.len());
            }
        )+};
    }

    round_trips! {
        risk_status: RiskStatus <=> RiskStatus;
        severity: Severity <=> Severity;
        response_strategy: Strategy <=> ResponseStrategy;
        risk_level: RiskLevel <=> RiskLevel;
        methodology: Methodology <=> Methodology;
        response_decision: Decision <=> ResponseDecision;
        approval_state: ApprovalState <=> ApprovalState;
        action_item_status: ActionItemStatus <=> WorkItemStatus;
        sync_state: SyncState <=> SyncState;
        decision_kind: DecisionKind <=> DecisionKind;
        exception_status: ExceptionStatus <=> PolicyExceptionStatus;
        control_effectiveness: Effectiveness <=> ControlEffectiveness;
        review_outcome: ReviewOutcome <=> ReviewOutcome;
        review_cycle_state: ReviewCycleState <=> ReviewCycleState;
        threat: Threat <=> Threat;
        identification_source: IdentificationSource <=> IdentificationSource;
        observation_source: ObservationSource <=> ObservationSource;
        observation_effect: ObservationEffect <=> ObservationEffect;
    }
}
