//! Incident roles: assigned, reassigned and recorded on the timeline.

use assurance_proto::incident::v1 as pb;

use super::*;

crate::on_both_backends!(roles_are_assigned_reassigned_and_recorded,);

async fn roles_are_assigned_reassigned_and_recorded(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, new_incident("Suspicious OAuth consent")).await;
    let assign = |kind: pb::RoleKind, person: &str, team: &str| {
        let mut client = app.incidents();
        let request = pb::AssignRoleRequest {
            parent: declared.name.clone(),
            role: Some(pb::Role {
                kind: kind as i32,
                person: person.into(),
                team: team.into(),
                ..Default::default()
            }),
        };
        async move { client.assign_role(request).await.map(|r| r.into_inner()) }
    };
    let lead = assign(
        pb::RoleKind::IncidentResponseLead,
        "ana@example.com",
        "security-response",
    )
    .await
    .expect("lead");
    assert_eq!(
        lead.name,
        format!("{}/roles/incident-response-lead", declared.name)
    );
    assign(
        pb::RoleKind::SecurityIncidentOwner,
        "sam@example.com",
        "exchange-online",
    )
    .await
    .expect("owner");
    assign(
        pb::RoleKind::IncidentResponseLead,
        "kim@example.com",
        "security-response",
    )
    .await
    .expect("handover");
    let err = assign(pb::RoleKind::Unspecified, "x y", "Bad Team")
        .await
        .expect_err("invalid");
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(fields, ["role.kind", "role.person", "role.team"]);

    let roles = app
        .incidents()
        .list_roles(pb::ListRolesRequest {
            parent: declared.name.clone(),
            ..Default::default()
        })
        .await
        .expect("roles")
        .into_inner()
        .roles;
    let paged = super::one_at_a_time(|page_token| {
        let mut client = app.incidents();
        let parent = declared.name.clone();
        async move {
            let page = client
                .list_roles(pb::ListRolesRequest {
                    parent,
                    page_size: 1,
                    page_token,
                })
                .await
                .expect("a page of roles")
                .into_inner();
            (page.roles, page.next_page_token)
        }
    })
    .await;
    assert_eq!(paged, roles, "roles page in role order");
    let holders: Vec<(i32, &str)> = roles.iter().map(|r| (r.kind, r.person.as_str())).collect();
    assert_eq!(
        holders,
        [
            (pb::RoleKind::IncidentResponseLead as i32, "kim@example.com"),
            (
                pb::RoleKind::SecurityIncidentOwner as i32,
                "sam@example.com"
            ),
        ]
    );
    let timeline = app
        .incidents()
        .list_timeline_events(pb::ListTimelineEventsRequest {
            parent: declared.name.clone(),
            ..Default::default()
        })
        .await
        .expect("timeline")
        .into_inner();
    assert!(
        timeline.timeline_events.iter().any(|e| e.summary
            == "incident-response-lead: ana@example.com → kim@example.com (security-response)"),
        "{:?}",
        timeline
            .timeline_events
            .iter()
            .map(|e| &e.summary)
            .collect::<Vec<_>>()
    );
}
