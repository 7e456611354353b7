//! Incidents through a real incident-service, by area: the life cycle (declaration, NIST
//! prioritisation, the phase machine, lists and validation), the timeline and its watchers,
//! response tasks and the preparation they come from, roles, evidence, indicators,
//! communications, the post-incident review, metrics and reports.

use assurance_proto::incident::v1 as pb;
use prost_types::FieldMask;

use crate::helpers::*;

mod communications;
mod decisions;
mod events;
mod evidence;
mod filters;
mod follow_ups;
mod gets;
mod indicators;
mod lifecycle;
mod metrics;
mod need_to_know;
mod preparation;
mod report;
mod required;
mod review;
mod risk_links;
mod roles;
mod streams;
mod tasks;
mod timeline;

/// Pages through a list one item at a time with `fetch(page_token) -> (items, next_page_token)`
/// and returns every item; each page holds exactly one, and only the last has no next token.
async fn one_at_a_time<T, Fut>(mut fetch: impl FnMut(String) -> Fut) -> Vec<T>
where
    Fut: std::future::Future<Output = (Vec<T>, String)>,
{
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let (mut items, next) = fetch(token).await;
        assert_eq!(items.len(), 1, "a page of size 1 holds one item");
        all.append(&mut items);
        if next.is_empty() {
            return all;
        }
        assert!(all.len() < 1000, "paging does not end");
        token = next;
    }
}

fn new_incident(title: &str) -> pb::Incident {
    pb::Incident {
        title: title.into(),
        summary: "Impossible-travel sign-ins for a finance admin.".into(),
        classification: pb::Classification::Event as i32,
        functional_impact: pb::FunctionalImpact::Low as i32,
        information_impacts: vec![pb::InformationImpact::PrivacyBreach as i32],
        recoverability: pb::Recoverability::Regular as i32,
        affected_services: vec!["services/exchange-online".into()],
        detection_source: "siem-alert-4711".into(),
        incident_type: "credential-compromise".into(),
        ..Default::default()
    }
}

async fn declare(app: &App, incident: pb::Incident) -> pb::Incident {
    app.incidents()
        .declare_incident(pb::DeclareIncidentRequest {
            incident: Some(incident),
            request_id: String::new(),
        })
        .await
        .expect("declare")
        .into_inner()
}

/// Closes the incident `name` with `resolution`.
async fn close(app: &App, name: &str, resolution: &str) -> Result<pb::Incident, tonic::Status> {
    app.incidents()
        .close_incident(pb::CloseIncidentRequest {
            name: name.into(),
            resolution: resolution.into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

/// The forward moves from analysis to post-incident, with no step back.
const FORWARD_TO_POST_INCIDENT: [pb::Phase; 4] = [
    pb::Phase::Containment,
    pb::Phase::Eradication,
    pb::Phase::Recovery,
    pb::Phase::PostIncident,
];

/// Advances the incident `name` through `phases`, one after another, with no reason.
async fn advance_through(app: &App, name: &str, phases: &[pb::Phase]) {
    for &phase in phases {
        advance(app, name, phase, "")
            .await
            .unwrap_or_else(|e| panic!("advance to {phase:?}: {e}"));
    }
}

async fn advance(
    app: &App,
    name: &str,
    target: pb::Phase,
    reason: &str,
) -> Result<pb::Incident, tonic::Status> {
    app.incidents()
        .advance_phase(pb::AdvancePhaseRequest {
            name: name.into(),
            target_phase: target as i32,
            reason: reason.into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

/// Classifies `declared` as a SECURITY_INCIDENT with customer data affected (which raises
/// the derived severity to CRITICAL).
async fn classify_security_incident(app: &App, declared: &pb::Incident) -> pb::Incident {
    app.incidents()
        .update_incident(pb::UpdateIncidentRequest {
            incident: Some(pb::Incident {
                name: declared.name.clone(),
                classification: pb::Classification::SecurityIncident as i32,
                customer_data_affected: true,
                etag: declared.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["classification".into(), "customer_data_affected".into()],
            }),
        })
        .await
        .expect("classify")
        .into_inner()
}

/// A declared and classified security incident, still in analysis.
async fn security_incident(app: &App, title: &str) -> pb::Incident {
    let declared = declare(app, new_incident(title)).await;
    classify_security_incident(app, &declared).await
}

/// The reason of the one step back in [`walk_every_phase_with_one_return`].
const REINFECTION: &str = "reinfection on host fin-07";

/// Moves a security incident from analysis to post-incident, going back once from
/// eradication to containment (six phase changes).
async fn walk_every_phase_with_one_return(app: &App, name: &str) {
    for (phase, reason) in [
        (pb::Phase::Containment, ""),
        (pb::Phase::Eradication, ""),
        (pb::Phase::Containment, REINFECTION),
        (pb::Phase::Eradication, ""),
        (pb::Phase::Recovery, ""),
        (pb::Phase::PostIncident, ""),
    ] {
        advance(app, name, phase, reason)
            .await
            .unwrap_or_else(|e| panic!("advance to {phase:?}: {e}"));
    }
}

/// A complete post-incident review.
fn post_incident_review() -> pb::PostIncidentReview {
    pb::PostIncidentReview {
        root_cause: "MFA fatigue on a legacy protocol left enabled.".into(),
        went_well: "Containment within an hour.".into(),
        went_poorly: "Alert routed to the wrong queue.".into(),
        lessons_learned: "Disable legacy auth tenant-wide.".into(),
        participants: vec!["lead@example.com".into(), "owner@example.com".into()],
        follow_ups: vec![
            pb::FollowUpItem {
                title: "Disable legacy authentication".into(),
                owner: "identity-team@example.com".into(),
                due_time: Some(prost_types::Timestamp {
                    seconds: 1_800_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            },
            pb::FollowUpItem {
                title: "Fix alert routing".into(),
                owner: "soc@example.com".into(),
                due_time: Some(prost_types::Timestamp {
                    seconds: 1_800_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            },
        ],
        identified_risks: vec![pb::IdentifiedRisk {
            title: "Legacy authentication bypasses MFA".into(),
            service: "services/exchange-online".into(),
            owner: "owner@example.com".into(),
            threat: pb::RiskThreat::External as i32,
            category: "access-control".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}
