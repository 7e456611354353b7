//! Two incident-service replicas on one PostgreSQL database, their relays delivering to one
//! risk-service through a recorder: every event is delivered, and risk-service is asked for
//! each identified risk exactly once.

use std::time::{Duration, Instant};

use assurance_proto::{
    incident::v1::{
        self as ipb, incident_service_client::IncidentServiceClient,
        outbox_service_client::OutboxServiceClient,
    },
    outbox::v1 as opb,
    risk::v1 as pb,
};
use assurance_runtime::serve::Shutdown;

use super::taps;
use crate::helpers::*;

super::postgres_only!(two_incident_replicas_relay_each_event_once);

/// An incident-service replica whose relay delivers to risk-service at `risk`.
async fn incident_replica(db: &TestDb, risk: std::net::SocketAddr) -> App {
    let mut config = incident_config(db);
    config.risk_url = Some(format!("http://{risk}"));
    let token = db.data_dir().join("incident-system.token");
    std::fs::write(&token, db.tokens.token("system")).expect("token file");
    config.service_token_file = Some(token);
    config.relay.relay_poll_ms = 50;
    config.relay.relay_backoff_ms = 100;
    config.relay.relay_max_backoff_ms = 400;
    let running = incident_service::start(&config, Shutdown::new())
        .await
        .expect("incident-service replica starts");
    App::connect(running, db.tokens.clone()).await
}

/// Declares an incident on `app`, takes it to POST_INCIDENT and records a review with one
/// identified risk (an `incident.identified_risk` event for risk-service).
async fn reviewed(app: &App, n: usize) -> String {
    let mut incidents: IncidentServiceClient<Authed> = app.incidents();
    let declared = incidents
        .declare_incident(ipb::DeclareIncidentRequest {
            incident: Some(ipb::Incident {
                classification: ipb::Classification::SecurityIncident as i32,
                affected_services: vec!["services/exchange-online".into()],
                ..phishing_wave()
            }),
            request_id: format!("declare-{n}"),
        })
        .await
        .expect("declare")
        .into_inner();
    for phase in [
        ipb::Phase::Containment,
        ipb::Phase::Eradication,
        ipb::Phase::Recovery,
        ipb::Phase::PostIncident,
    ] {
        incidents
            .advance_phase(ipb::AdvancePhaseRequest {
                name: declared.name.clone(),
                target_phase: phase as i32,
                ..Default::default()
            })
            .await
            .expect("advance");
    }
    incidents
        .create_post_incident_review(ipb::CreatePostIncidentReviewRequest {
            parent: declared.name.clone(),
            review: Some(ipb::PostIncidentReview {
                root_cause: "A phishing kit harvested session cookies.".into(),
                lessons_learned: "Bind sessions to devices.".into(),
                identified_risks: vec![ipb::IdentifiedRisk {
                    title: format!("Session cookie theft {n}"),
                    service: "services/exchange-online".into(),
                    owner: "owner@example.com".into(),
                    threat: ipb::RiskThreat::External as i32,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            request_id: format!("review-{n}"),
        })
        .await
        .expect("review");
    declared.name
}

/// incident-service's events for risk-service (the follow-ups wait for the trackers).
async fn risk_events(app: &App) -> Vec<opb::OutboxEvent> {
    let mut outbox = OutboxServiceClient::new(app.channel_as("admin"));
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = outbox
            .list_outbox_events(opb::ListOutboxEventsRequest {
                page_size: 1000,
                page_token,
                filter: "type != \"incident.follow_up\"".into(),
            })
            .await
            .expect("list outbox")
            .into_inner();
        out.extend(page.outbox_events);
        if page.next_page_token.is_empty() {
            return out;
        }
        page_token = page.next_page_token;
    }
}

async fn two_incident_replicas_relay_each_event_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let risk = risk_service(&db, risk_service::domain::scoring::Methodology::Standard).await;
    org_fixture(&risk).await;
    let (recorder, calls) = taps::recorder(risk.grpc_addr).await;
    let (one, two) = (
        incident_replica(&db, recorder).await,
        incident_replica(&db, recorder).await,
    );

    // Commits on both replicas at once: each relay wakes on its own writes and polls for the
    // other's.
    const INCIDENTS: usize = 24;
    let (first, second) = tokio::join!(
        futures::future::join_all((0..INCIDENTS).step_by(2).map(|n| reviewed(&one, n))),
        futures::future::join_all((1..INCIDENTS).step_by(2).map(|n| reviewed(&two, n))),
    );
    let names: Vec<String> = first.into_iter().chain(second).collect();

    let deadline = Instant::now() + Duration::from_secs(60);
    let events = loop {
        let events = risk_events(&one).await;
        let left: Vec<_> = events
            .iter()
            .filter(|e| e.state != opb::OutboxEventState::Delivered as i32)
            .collect();
        if left.is_empty() {
            break events;
        }
        assert!(Instant::now() < deadline, "undelivered: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(events.len(), INCIDENTS, "one identified risk per review");

    // The receiver's side: risk-service was asked once per event (the event id is the
    // request id), never twice.
    let calls = calls.lock().expect("lock").clone();
    let twice: Vec<_> = calls.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let mut asked: Vec<String> = calls.into_keys().collect();
    let mut ids: Vec<String> = events
        .iter()
        .map(|e| e.name.trim_start_matches("outboxEvents/").to_string())
        .collect();
    asked.sort();
    ids.sort();
    assert_eq!(asked, ids, "each event delivered exactly once");

    // And the register holds one risk per reviewed incident.
    for name in &names {
        let found = risk
            .risks()
            .list_risks(pb::ListRisksRequest {
                filter: format!("source_reference = {name:?}"),
                ..Default::default()
            })
            .await
            .expect("list risks")
            .into_inner()
            .risks;
        assert_eq!(found.len(), 1, "{name}: {found:?}");
    }
    one.stop().await;
    two.stop().await;
    risk.stop().await;
}
