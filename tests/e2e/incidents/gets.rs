//! Standard Gets of an incident's child resources: each returns what its List returns, is
//! readable by the roles that may list it and refused to others, and answers NOT_FOUND naming
//! the resource for a name of another incident or one that does not exist.

use assurance_proto::incident::v1 as pb;
use tonic::Code;

use super::*;

crate::on_both_backends!(every_child_resource_has_a_standard_get,);

async fn every_child_resource_has_a_standard_get(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, new_incident("Token theft from CI runner")).await;
    let other = declare(&app, new_incident("Unrelated")).await;
    let mut admin = app.incidents();
    let task = admin
        .create_task(pb::CreateTaskRequest {
            parent: declared.name.clone(),
            task: Some(pb::Task {
                phase: pb::Phase::DetectionAnalysis as i32,
                owner_team: pb::OwnerTeam::SecurityTeam as i32,
                title: "Rotate runner tokens".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("task")
        .into_inner();
    let role = admin
        .assign_role(pb::AssignRoleRequest {
            parent: declared.name.clone(),
            role: Some(pb::Role {
                kind: pb::RoleKind::IncidentResponseLead as i32,
                // A role holder: evidence is need-to-know (see need_to_know.rs).
                person: "responder@example.com".into(),
                team: "security-response".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("role")
        .into_inner();
    let evidence = admin
        .create_evidence(pb::CreateEvidenceRequest {
            parent: declared.name.clone(),
            evidence: Some(pb::Evidence {
                description: "Runner logs".into(),
                hash: "d41d8cd98f00b204e9800998ecf8427e".into(),
                location: "vault-3".into(),
                collector: "kim@example.com".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("evidence")
        .into_inner();
    let custody = admin
        .create_custody_record(pb::CreateCustodyRecordRequest {
            evidence: evidence.name.clone(),
            custody_record: Some(pb::CustodyRecord {
                to_custodian: "lab@example.com".into(),
                purpose: "imaging".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("custody")
        .into_inner();
    let notification = app
        .incidents_as("security_lead")
        .create_notification(pb::CreateNotificationRequest {
            parent: declared.name.clone(),
            notification: Some(pb::Notification {
                audience: pb::Audience::Internal as i32,
                subject: "CI tokens rotated".into(),
                body: "All runner tokens were rotated.".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("notification")
        .into_inner();
    let indicator = admin
        .create_indicator(pb::CreateIndicatorRequest {
            parent: declared.name.clone(),
            indicator: Some(pb::Indicator {
                r#type: pb::IndicatorType::Domain as i32,
                value: "exfil.example".into(),
                tlp: pb::Tlp::Amber as i32,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("indicator")
        .into_inner();
    let event = admin
        .create_timeline_event(pb::CreateTimelineEventRequest {
            parent: declared.name.clone(),
            summary: "Runner isolated.".into(),
            request_id: String::new(),
        })
        .await
        .expect("note")
        .into_inner();

    for who in ["admin", "responder"] {
        let mut c = app.incidents_as(who);
        macro_rules! get {
            ($method:ident, $req:ident, $name:expr) => {
                c.$method(pb::$req {
                    name: $name.clone(),
                })
                .await
                .unwrap_or_else(|e| panic!("{} as {who}: {e}", stringify!($method)))
                .into_inner()
            };
        }
        assert_eq!(get!(get_task, GetTaskRequest, task.name), task);
        assert_eq!(get!(get_role, GetRoleRequest, role.name), role);
        assert_eq!(
            get!(get_evidence, GetEvidenceRequest, evidence.name).name,
            evidence.name
        );
        assert_eq!(
            get!(get_custody_record, GetCustodyRecordRequest, custody.name),
            custody
        );
        let n = get!(get_notification, GetNotificationRequest, notification.name);
        assert_eq!(
            (n.name, n.subject),
            (notification.name.clone(), notification.subject.clone())
        );
        assert_eq!(
            get!(get_indicator, GetIndicatorRequest, indicator.name),
            indicator
        );
        assert_eq!(
            get!(get_timeline_event, GetTimelineEventRequest, event.name),
            event
        );
    }
    assert_eq!(
        role.name,
        format!("{}/roles/incident-response-lead", declared.name)
    );

    // A role without incident access is refused each Get.
    let mut viewer = app.incidents_as("viewer");
    let refused = [
        viewer
            .get_task(pb::GetTaskRequest {
                name: task.name.clone(),
            })
            .await
            .err(),
        viewer
            .get_role(pb::GetRoleRequest {
                name: role.name.clone(),
            })
            .await
            .err(),
        viewer
            .get_evidence(pb::GetEvidenceRequest {
                name: evidence.name.clone(),
            })
            .await
            .err(),
        viewer
            .get_custody_record(pb::GetCustodyRecordRequest {
                name: custody.name.clone(),
            })
            .await
            .err(),
        viewer
            .get_notification(pb::GetNotificationRequest {
                name: notification.name.clone(),
            })
            .await
            .err(),
        viewer
            .get_indicator(pb::GetIndicatorRequest {
                name: indicator.name.clone(),
            })
            .await
            .err(),
        viewer
            .get_timeline_event(pb::GetTimelineEventRequest {
                name: event.name.clone(),
            })
            .await
            .err(),
    ];
    for err in refused {
        assert_eq!(err.map(|e| e.code()), Some(Code::PermissionDenied));
    }

    // Another incident's name, or a missing one: NOT_FOUND naming the resource.
    let moved = |name: &str| name.replacen(&declared.name, &other.name, 1);
    let err = admin
        .get_task(pb::GetTaskRequest {
            name: moved(&task.name),
        })
        .await
        .expect_err("task of another incident");
    assert_refused(&err, Code::NotFound, &moved(&task.name));
    let err = admin
        .get_evidence(pb::GetEvidenceRequest {
            name: moved(&evidence.name),
        })
        .await
        .expect_err("evidence of another incident");
    assert_refused(&err, Code::NotFound, &moved(&evidence.name));
    let missing = format!("{}/timelineEvents/999", declared.name);
    let err = admin
        .get_timeline_event(pb::GetTimelineEventRequest {
            name: missing.clone(),
        })
        .await
        .expect_err("no such event");
    assert_refused(&err, Code::NotFound, &missing);
    let missing = format!("{}/roles/legal", declared.name);
    let err = admin
        .get_role(pb::GetRoleRequest {
            name: missing.clone(),
        })
        .await
        .expect_err("unassigned role");
    assert_refused(&err, Code::NotFound, &missing);
    let err = admin
        .get_custody_record(pb::GetCustodyRecordRequest {
            name: String::new(),
        })
        .await
        .expect_err("empty name");
    assert_eq!(violations(&err), ["name"]);
    let err = admin
        .get_role(pb::GetRoleRequest {
            name: format!("{}/roles/chef", declared.name),
        })
        .await
        .expect_err("unknown role");
    assert_eq!(violations(&err), ["name"]);
}
