//! `Incident.risk_links`: set by hand through UpdateIncident (mask path `risk_links`),
//! validated, stored in their own table and returned by Get, List and Update.

use assurance_proto::incident::v1 as pb;
use prost_types::FieldMask;

use super::*;

crate::on_both_backends!(risk_links_are_set_validated_and_returned,);

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
