//! `Incident.risk_links`: set by hand through UpdateIncident (mask path `risk_links`) or one
//! at a time through LinkIncidentRisk, validated, stored in their own table and returned by
//! Get, List and Update; a new REALIZED link queues an event for risk-service.

use assurance_proto::incident::v1 as pb;
use prost_types::FieldMask;

use super::*;

crate::on_both_backends!(
    risk_links_are_set_validated_and_returned,
    link_incident_risk_records_a_realisation_for_risk_service,
);

const RISK_A: &str = "risks/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const RISK_B: &str = "risks/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c";

fn link(risk: &str, relation: pb::RiskLinkRelation) -> pb::RiskLink {
    pb::RiskLink {
        risk: risk.into(),
        relation: relation as i32,
    }
}

async fn set_links(
    app: &App,
    name: &str,
    links: Vec<pb::RiskLink>,
) -> Result<pb::Incident, tonic::Status> {
    app.incidents()
        .update_incident(pb::UpdateIncidentRequest {
            incident: Some(pb::Incident {
                name: name.into(),
                risk_links: links,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["risk_links".into()],
            }),
        })
        .await
        .map(|r| r.into_inner())
}

async fn risk_links_are_set_validated_and_returned(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, new_incident("Ransomware on file server")).await;
    assert!(declared.risk_links.is_empty());
    let links = vec![
        link(RISK_B, pb::RiskLinkRelation::Realized),
        link(RISK_A, pb::RiskLinkRelation::Related),
    ];
    let updated = set_links(&app, &declared.name, links.clone())
        .await
        .expect("link");
    assert_eq!(updated.risk_links, links, "kept in the order given");
    let got = app
        .incidents()
        .get_incident(pb::GetIncidentRequest {
            name: declared.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.risk_links, links);
    let listed = app
        .incidents()
        .list_incidents(pb::ListIncidentsRequest::default())
        .await
        .expect("list")
        .into_inner();
    let mine = listed
        .incidents
        .iter()
        .find(|i| i.name == declared.name)
        .expect("listed");
    assert_eq!(mine.risk_links, links);
    // Another update leaves them alone; a phase move returns them too.
    let moved = advance(&app, &declared.name, pb::Phase::Containment, "").await;
    if let Ok(moved) = moved {
        assert_eq!(moved.risk_links, links);
    }

    // Validation: names, relations, duplicates, at most 100.
    let err = set_links(
        &app,
        &declared.name,
        vec![
            link("risks/not-a-uuid", pb::RiskLinkRelation::Related),
            link(RISK_A, pb::RiskLinkRelation::Unspecified),
            link(RISK_B, pb::RiskLinkRelation::Related),
            link(RISK_B, pb::RiskLinkRelation::Identified),
        ],
    )
    .await
    .expect_err("invalid links");
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        [
            "incident.risk_links[0].risk",
            "incident.risk_links[1].relation",
            "incident.risk_links[3].risk"
        ]
    );
    let many = (0..101)
        .map(|n| {
            link(
                &format!("risks/0190a1b2-c3d4-7e5f-8a9b-{n:012}"),
                pb::RiskLinkRelation::Related,
            )
        })
        .collect();
    let err = set_links(&app, &declared.name, many)
        .await
        .expect_err("too many");
    assert_eq!(violations(&err), ["incident.risk_links"]);

    // The mask path with an empty list clears them.
    let cleared = set_links(&app, &declared.name, Vec::new())
        .await
        .expect("clear");
    assert!(cleared.risk_links.is_empty());
}

async fn link_incident_risk_records_a_realisation_for_risk_service(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, new_incident("Ransomware on file server")).await;
    let link_risk = |risk: &str, relation: pb::RiskLinkRelation, request_id: &str| {
        let mut client = app.incidents_as("responder");
        let request = pb::LinkIncidentRiskRequest {
            name: declared.name.clone(),
            risk: risk.into(),
            relation: relation as i32,
            etag: String::new(),
            request_id: request_id.into(),
        };
        async move {
            client
                .link_incident_risk(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let store = incident_service::store::Store::open(&db.incident_url(), 2)
        .await
        .expect("open store");
    let realized_events = || async {
        store
            .outbox_events(&declared.name)
            .await
            .expect("outbox")
            .into_iter()
            .filter(|e| e.kind == "incident.risk_realized")
            .collect::<Vec<_>>()
    };

    let linked = link_risk(RISK_A, pb::RiskLinkRelation::Realized, "link-1")
        .await
        .expect("link");
    assert_eq!(
        linked.risk_links,
        [link(RISK_A, pb::RiskLinkRelation::Realized)]
    );
    let events = realized_events().await;
    assert_eq!(events.len(), 1, "one event for risk-service");
    assert_eq!(events[0].aggregate, declared.name);
    let payload: serde_json::Value = serde_json::from_str(&events[0].payload).expect("json");
    assert_eq!(payload["risk"], RISK_A);
    assert_eq!(payload["incident"], declared.name.as_str());
    let severity =
        assurance_proto::r#type::v1::Severity::try_from(declared.severity).expect("a severity");
    assert_eq!(payload["incident_severity"], severity.as_str_name());

    // A retry changes nothing; a second risk is appended; relinking changes the relation.
    assert_eq!(
        link_risk(RISK_A, pb::RiskLinkRelation::Realized, "link-1")
            .await
            .expect("retry")
            .risk_links,
        linked.risk_links
    );
    assert_eq!(realized_events().await.len(), 1, "a retry queues nothing");
    link_risk(RISK_B, pb::RiskLinkRelation::Related, "")
        .await
        .expect("related");
    let relinked = link_risk(RISK_A, pb::RiskLinkRelation::Related, "")
        .await
        .expect("relink");
    assert_eq!(
        relinked.risk_links,
        [
            link(RISK_A, pb::RiskLinkRelation::Related),
            link(RISK_B, pb::RiskLinkRelation::Related)
        ]
    );
    assert_eq!(realized_events().await.len(), 1, "RELATED queues nothing");
    // UpdateIncident's risk_links queue the same event for a newly realised risk.
    set_links(
        &app,
        &declared.name,
        vec![link(RISK_B, pb::RiskLinkRelation::Realized)],
    )
    .await
    .expect("update links");
    let events = realized_events().await;
    assert_eq!(events.len(), 2);
    assert!(events[1].payload.contains(RISK_B), "{}", events[1].payload);

    // Bad input names its fields; IDENTIFIED links come from the review.
    let err = app
        .incidents_as("responder")
        .link_incident_risk(pb::LinkIncidentRiskRequest {
            name: declared.name.clone(),
            risk: "risk-42".into(),
            relation: pb::RiskLinkRelation::Identified as i32,
            ..Default::default()
        })
        .await
        .expect_err("bad");
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(fields, ["relation", "risk"]);
    let err = app
        .incidents_as("service_manager")
        .link_incident_risk(pb::LinkIncidentRiskRequest {
            name: declared.name.clone(),
            risk: RISK_A.into(),
            relation: pb::RiskLinkRelation::Realized as i32,
            ..Default::default()
        })
        .await
        .expect_err("not a linker");
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
}
