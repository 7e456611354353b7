//! Events between the services (`gateway --embedded`, where incident-service's relay reaches
//! risk-service in process): a review's identified risks become risks of the register with
//! links both ways, realisations reach the risk's response effectiveness, an event the
//! receiver refuses is parked and holds back its aggregate until replayed, and
//! `affected_services` are checked against the org registry.

use assurance_proto::{
    incident::v1::{self as pb, outbox_service_client::OutboxServiceClient},
    outbox::v1 as opb,
    risk::v1 as rpb,
};
use tonic::Code;

use super::*;

crate::on_both_backends!(
    identified_risks_become_risks_linked_both_ways,
    realisations_reach_risk_service_and_refused_events_park,
    affected_services_are_checked_against_the_registry,
);

fn outbox(app: &App, who: &str) -> OutboxServiceClient<crate::helpers::Authed> {
    OutboxServiceClient::new(app.channel_as(who))
}

/// The outbox events of `aggregate`, oldest first.
async fn events_of(app: &App, aggregate: &str) -> Vec<opb::OutboxEvent> {
    outbox(app, "trust_team")
        .list_outbox_events(opb::ListOutboxEventsRequest {
            filter: format!("aggregate = {aggregate:?}"),
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("list outbox events")
        .into_inner()
        .outbox_events
}

/// `aggregate`'s events of `kind` once each is in `state`.
async fn settled(
    app: &App,
    aggregate: &str,
    kind: &str,
    state: opb::OutboxEventState,
) -> Vec<opb::OutboxEvent> {
    eventually(
        &format!("{kind} events of {aggregate} {state:?}"),
        || async {
            let events: Vec<_> = events_of(app, aggregate)
                .await
                .into_iter()
                .filter(|e| e.r#type == kind)
                .collect();
            if !events.is_empty() && events.iter().all(|e| e.state == state as i32) {
                Ok(events)
            } else {
                Err(format!("{events:?}"))
            }
        },
    )
    .await
}

async fn reviewed_incident(app: &App) -> pb::Incident {
    let mut incident = new_incident("Token theft");
    incident.classification = pb::Classification::SecurityIncident as i32;
    let declared = declare(app, incident).await;
    advance_through(app, &declared.name, &FORWARD_TO_POST_INCIDENT).await;
    app.incidents()
        .create_post_incident_review(pb::CreatePostIncidentReviewRequest {
            parent: declared.name.clone(),
            review: Some(post_incident_review()),
            request_id: String::new(),
        })
        .await
        .expect("review");
    declared
}

async fn identified_risks_become_risks_linked_both_ways(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    let declared = reviewed_incident(&app).await;

    let delivered = settled(
        &app,
        &declared.name,
        "incident.identified_risk",
        opb::OutboxEventState::Delivered,
    )
    .await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].attempts, 1);
    assert!(delivered[0].deliver_time.is_some());
    // The follow-ups' events are the embedded gateway's tracker sync's to take (they wake its
    // scan): delivered too, none left behind.
    let follow_ups = settled(
        &app,
        &declared.name,
        "incident.follow_up",
        opb::OutboxEventState::Delivered,
    )
    .await;
    assert_eq!(follow_ups.len(), 2);

    // The register has the risk, once, with the incident as its source.
    let risks = app
        .risks()
        .list_risks(rpb::ListRisksRequest {
            filter: format!("source_reference = {:?}", declared.name),
            ..Default::default()
        })
        .await
        .expect("list risks")
        .into_inner()
        .risks;
    assert_eq!(risks.len(), 1, "{risks:?}");
    let risk = &risks[0];
    assert_eq!(risk.title, "Legacy authentication bypasses MFA");
    assert_eq!(
        risk.identification_source,
        rpb::IdentificationSource::Incident as i32
    );
    assert_eq!(risk.threat, rpb::Threat::External as i32);
    assert_eq!(risk.category, "access-control");
    assert_eq!(risk.service, "services/exchange-online");

    // The incident links it as IDENTIFIED, and the review names it.
    let incident = eventually("the IDENTIFIED link", || async {
        let got = app
            .incidents()
            .get_incident(pb::GetIncidentRequest {
                name: declared.name.clone(),
            })
            .await
            .expect("get incident")
            .into_inner();
        if got.risk_links.is_empty() {
            Err("no links yet".to_string())
        } else {
            Ok(got)
        }
    })
    .await;
    assert_eq!(
        incident.risk_links,
        [pb::RiskLink {
            risk: risk.name.clone(),
            relation: pb::RiskLinkRelation::Identified as i32,
        }]
    );
    let review = app
        .incidents()
        .get_post_incident_review(pb::GetPostIncidentReviewRequest {
            name: format!("{}/review", declared.name),
        })
        .await
        .expect("get review")
        .into_inner();
    assert_eq!(review.identified_risks[0].risk, risk.name);
}

async fn realisations_reach_risk_service_and_refused_events_park(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    let risk = create_risk(&app, new_risk("Phishing", "exchange-online")).await;
    let declared = declare(&app, new_incident("Phished")).await;
    let link = |risk: String, request_id: &str| {
        let mut client = app.incidents_as("responder");
        let request = pb::LinkIncidentRiskRequest {
            name: declared.name.clone(),
            risk,
            relation: pb::RiskLinkRelation::Realized as i32,
            request_id: request_id.into(),
            ..Default::default()
        };
        async move { client.link_incident_risk(request).await }
    };

    // A realisation of a risk the register does not have is refused for good: parked.
    let missing = "risks/0190a1b2-c3d4-7e5f-8a9b-000000000001".to_string();
    link(missing.clone(), "link-missing").await.expect("link");
    let dead = settled(
        &app,
        &declared.name,
        "incident.risk_realized",
        opb::OutboxEventState::Dead,
    )
    .await;
    assert_eq!(dead.len(), 1);
    assert!(dead[0].last_error.contains("NotFound"), "{:?}", dead[0]);
    assert!(dead[0].dead_time.is_some());

    // It holds back the incident's next realisation.
    link(risk.name.clone(), "link-real").await.expect("link");
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let events = events_of(&app, &declared.name).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].state, opb::OutboxEventState::Pending as i32);
    assert_eq!(events[1].attempts, 0, "not tried behind a dead letter");

    // The dead-letter list is for admin and trust_team only.
    let dead_letters = |who: &'static str| {
        let mut client = outbox(&app, who);
        async move {
            client
                .list_outbox_events(opb::ListOutboxEventsRequest {
                    filter: "state = DEAD".into(),
                    ..Default::default()
                })
                .await
        }
    };
    let err = dead_letters("responder").await.expect_err("responder");
    assert_eq!(err.code(), Code::PermissionDenied);
    let listed = dead_letters("admin").await.expect("admin").into_inner();
    assert_eq!(listed.outbox_events, dead);

    // Replaying a pending event is refused; replaying the dead letter retries it (parked
    // again: the risk is still missing), and `Get` shows the same event.
    let replay = |name: String| {
        let mut client = outbox(&app, "trust_team");
        async move {
            client
                .replay_outbox_event(opb::ReplayOutboxEventRequest { name })
                .await
        }
    };
    let err = replay(events[1].name.clone()).await.expect_err("pending");
    assert_reason(&err, Code::FailedPrecondition, "OUTBOX_EVENT_NOT_DEAD");
    let err = replay("outboxEvents/nope".into())
        .await
        .expect_err("bad name");
    assert_eq!(violations(&err), ["name"]);
    let replayed = replay(dead[0].name.clone())
        .await
        .expect("replay")
        .into_inner();
    assert_eq!(replayed.attempts, 0);
    eventually("the replayed event parked again", || async {
        let got = outbox(&app, "admin")
            .get_outbox_event(opb::GetOutboxEventRequest {
                name: dead[0].name.clone(),
            })
            .await
            .expect("get")
            .into_inner();
        if got.state == opb::OutboxEventState::Dead as i32 && got.attempts == 1 {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;

    // A fresh incident's realisation of the real risk is delivered: the risk's response
    // effectiveness lists the incident.
    let other = declare(&app, new_incident("Phished again")).await;
    app.incidents_as("responder")
        .link_incident_risk(pb::LinkIncidentRiskRequest {
            name: other.name.clone(),
            risk: risk.name.clone(),
            relation: pb::RiskLinkRelation::Realized as i32,
            ..Default::default()
        })
        .await
        .expect("link");
    settled(
        &app,
        &other.name,
        "incident.risk_realized",
        opb::OutboxEventState::Delivered,
    )
    .await;
    let effectiveness = app
        .risks()
        .get_response_effectiveness(rpb::GetResponseEffectivenessRequest {
            risk: risk.name.clone(),
        })
        .await
        .expect("effectiveness")
        .into_inner();
    let realised: Vec<&str> = effectiveness
        .responses
        .iter()
        .flat_map(|r| &r.realizations)
        .map(|r| r.incident.as_str())
        .collect();
    assert_eq!(realised, [other.name.as_str()]);
}

async fn affected_services_are_checked_against_the_registry(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    let mut incident = new_incident("Unknown service");
    incident.affected_services = vec![
        "services/exchange-online".into(),
        "services/no-such-service".into(),
    ];
    let err = app
        .incidents()
        .declare_incident(pb::DeclareIncidentRequest {
            incident: Some(incident),
            request_id: String::new(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(violations(&err), ["incident.affected_services[1]"]);
    assert_mentions(&err, "not in the org registry");
    let declared = declare(&app, new_incident("Known service")).await;
    let err = app
        .incidents()
        .update_incident(pb::UpdateIncidentRequest {
            incident: Some(pb::Incident {
                name: declared.name.clone(),
                affected_services: vec!["services/missing".into()],
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["affected_services".into()],
            }),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(violations(&err), ["incident.affected_services[0]"]);

    // A standalone incident-service whose risk-service cannot be reached accepts them.
    let mut config = incident_config(&db);
    config.risk_url = Some("http://127.0.0.1:9".into());
    let token = db.data_dir().join("incident-system.token");
    std::fs::write(&token, db.tokens.token("system")).expect("token file");
    config.service_token_file = Some(token);
    let running = incident_service::start(&config, assurance_runtime::serve::Shutdown::new())
        .await
        .expect("incident-service starts");
    let standalone = App::connect(running, db.tokens.clone()).await;
    let mut incident = new_incident("Registry unreachable");
    incident.affected_services = vec!["services/not-registered".into()];
    let accepted = declare(&standalone, incident).await;
    assert_eq!(accepted.affected_services, ["services/not-registered"]);
}
