//! The server agrees with the REQUIRED field behaviours: an empty request names every required
//! field, and an empty nested message names every required field inside it.

use assurance_proto::incident::v1 as pb;

use super::*;

crate::on_both_backends!(empty_requests_name_every_required_field,);

fn sorted(err: &tonic::Status) -> Vec<String> {
    let mut v = violations(err);
    v.sort();
    v.dedup();
    v
}

async fn empty_requests_name_every_required_field(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let mut c = app.incidents();
    let err = c
        .declare_incident(pb::DeclareIncidentRequest::default())
        .await
        .expect_err("empty");
    assert!(sorted(&err).contains(&"incident".to_string()), "{err:?}");
    let err = c
        .declare_incident(pb::DeclareIncidentRequest {
            incident: Some(pb::Incident {
                phase: pb::Phase::Closed as i32,
                resolution: "output only".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("empty incident");
    assert_eq!(
        sorted(&err),
        [
            "incident.classification",
            "incident.functional_impact",
            "incident.information_impacts",
            "incident.recoverability",
            "incident.title"
        ]
    );
    let err = c
        .create_task(pb::CreateTaskRequest {
            task: Some(pb::Task::default()),
            ..Default::default()
        })
        .await
        .expect_err("task");
    assert_eq!(
        sorted(&err),
        ["parent", "task.owner_team", "task.phase", "task.title"]
    );
    let err = c
        .create_evidence(pb::CreateEvidenceRequest {
            evidence: Some(pb::Evidence::default()),
            ..Default::default()
        })
        .await
        .expect_err("evidence");
    assert_eq!(
        sorted(&err),
        [
            "evidence.collector",
            "evidence.description",
            "evidence.hash",
            "evidence.location",
            "parent"
        ]
    );
    let err = c
        .create_custody_record(pb::CreateCustodyRecordRequest {
            custody_record: Some(pb::CustodyRecord::default()),
            ..Default::default()
        })
        .await
        .expect_err("custody");
    assert_eq!(
        sorted(&err),
        [
            "custody_record.purpose",
            "custody_record.to_custodian",
            "evidence"
        ]
    );
    let err = c
        .create_indicator(pb::CreateIndicatorRequest {
            indicator: Some(pb::Indicator::default()),
            ..Default::default()
        })
        .await
        .expect_err("indicator");
    assert_eq!(
        sorted(&err),
        [
            "indicator.tlp",
            "indicator.type",
            "indicator.value",
            "parent"
        ]
    );
    let err = c
        .search_indicators(pb::SearchIndicatorsRequest::default())
        .await
        .expect_err("search");
    assert_eq!(sorted(&err), ["type", "value"]);
    let err = c
        .create_notification(pb::CreateNotificationRequest {
            notification: Some(pb::Notification::default()),
            ..Default::default()
        })
        .await
        .expect_err("notification");
    assert_eq!(
        sorted(&err),
        [
            "notification.audience",
            "notification.body",
            "notification.subject",
            "parent"
        ]
    );
    let err = c
        .assign_role(pb::AssignRoleRequest {
            role: Some(pb::Role::default()),
            ..Default::default()
        })
        .await
        .expect_err("role");
    assert_eq!(
        sorted(&err),
        ["parent", "role.kind", "role.person", "role.team"]
    );
    let err = c
        .create_post_incident_review(pb::CreatePostIncidentReviewRequest {
            review: Some(pb::PostIncidentReview::default()),
            ..Default::default()
        })
        .await
        .expect_err("review");
    assert_eq!(
        sorted(&err),
        ["parent", "review.lessons_learned", "review.root_cause"]
    );
    let err = c
        .close_incident(pb::CloseIncidentRequest::default())
        .await
        .expect_err("close");
    assert_eq!(sorted(&err), ["name", "resolution"]);
    let err = c
        .advance_phase(pb::AdvancePhaseRequest::default())
        .await
        .expect_err("advance");
    assert_eq!(sorted(&err), ["name", "target_phase"]);
}
