//! Mapping between stored rows and `assurance.risk.v1` messages.

use assurance_proto::risk::v1 as pb;
use assurance_runtime::time::to_timestamp;

use crate::domain::scoring::{Derived, Methodology};
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
    }
}

pub fn methodology(m: Methodology) -> pb::Methodology {
    match m {
        Methodology::Standard => pb::Methodology::Standard,
        Methodology::Nist80030 => pb::Methodology::Nist80030,
    }
}

/// The stored numbers of derived values (the proto enum numbers; 0 = not applicable).
pub fn derived_numbers(d: &Derived) -> [i32; 6] {
    [
        i32::from(d.exposure),
        i32::from(d.score),
        d.severity as i32,
        d.strategy as i32,
        d.risk_level.map_or(0, |l| l as i32),
        methodology(d.methodology) as i32,
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
    }
}
