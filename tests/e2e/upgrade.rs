//! Upgrades never lose data: databases made by an earlier version open with this one, migrate,
//! and keep answering as before — records, audit trails, and the retries of requests made
//! before the upgrade.
//!
//! `tests/fixtures/pre-v1/` holds SQLite databases made by the code before the v1 contract
//! changes (issue #11), through its API (`make.py` says how), with the tokens it was made with.

use std::{collections::HashMap, path::PathBuf};

use assurance_proto::incident::v1::{self as ipb, incident_service_client::IncidentServiceClient};
use assurance_proto::risk::v1::{
    self as pb, control_service_client::ControlServiceClient,
    review_service_client::ReviewServiceClient, risk_service_client::RiskServiceClient,
};
use assurance_runtime::auth::client::Bearer;
use tonic::transport::Channel;

use crate::helpers::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/pre-v1")
        .join(name)
}

/// The fixture's tokens by role (`admin`, `risk_owner`, `trust_team`, `responder`, …).
fn fixture_tokens() -> HashMap<String, String> {
    let text = std::fs::read_to_string(fixture("tokens.txt")).expect("fixture tokens");
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(role, token)| (role.to_string(), token.to_string()))
        .collect()
}

fn fixture_names() -> HashMap<String, String> {
    let text = std::fs::read_to_string(fixture("names.json")).expect("fixture names");
    serde_json::from_str(&text).expect("names.json")
}

/// The embedded gateway over copies of the fixture databases, accepting the fixture's tokens.
async fn upgraded() -> (TestDb, App) {
    let db = TestDb::new(Backend::Sqlite).await;
    for file in ["risk.db", "incident.db"] {
        std::fs::copy(fixture(file), db.data_dir().join(file)).expect("copy fixture database");
    }
    std::fs::copy(fixture("tokens.toml"), &db.tokens.path).expect("fixture tokens file");
    let app = embedded_gateway(&db, Backend::Sqlite).await;
    (db, app)
}

fn as_role(app: &App, tokens: &HashMap<String, String>, role: &str) -> Bearer<Channel> {
    Bearer::new(app.channel.clone(), &tokens[role]).expect("token header")
}

/// The request the fixture's risk owner sent as `fx-risk-1`, byte for byte.
fn fixture_create_risk() -> pb::CreateRiskRequest {
    pb::CreateRiskRequest {
        request_id: "fx-risk-1".into(),
        risk: Some(pb::Risk {
            title: "Stale admin accounts".into(),
            service: "services/exchange-online".into(),
            threat: pb::Threat::Internal as i32,
            identification_source: pb::IdentificationSource::AuditFinding as i32,
            owner: "owner@example.com".into(),
            labels: [("env".to_string(), "prod".to_string())].into(),
            ..Default::default()
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_v1_databases_open_migrate_and_keep_their_data() {
    let (_db, app) = upgraded().await;
    let tokens = fixture_tokens();
    let names = fixture_names();
    let mut risks = RiskServiceClient::new(as_role(&app, &tokens, "admin"));

    let risk = risks
        .get_risk(pb::GetRiskRequest {
            name: names["risk"].clone(),
        })
        .await
        .expect("the fixture's risk")
        .into_inner();
    assert_eq!(risk.title, "Stale admin accounts");
    assert_eq!(risk.labels.get("env").map(String::as_str), Some("prod"));
    let listed = risks
        .list_risks(pb::ListRisksRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.risks.len(), 2, "both risks survive");
    let decisions = risks
        .list_decisions(pb::ListDecisionsRequest {
            parent: names["risk"].clone(),
            ..Default::default()
        })
        .await
        .expect("decisions")
        .into_inner();
    assert!(!decisions.decisions.is_empty(), "the decision log survives");
    ControlServiceClient::new(as_role(&app, &tokens, "admin"))
        .get_control(pb::GetControlRequest {
            name: "controls/mfa-enforcement".into(),
        })
        .await
        .expect("the fixture's control");
    ReviewServiceClient::new(as_role(&app, &tokens, "admin"))
        .get_review_cycle(pb::GetReviewCycleRequest {
            name: names["review_cycle"].clone(),
        })
        .await
        .expect("the fixture's review cycle");

    let mut incidents = IncidentServiceClient::new(as_role(&app, &tokens, "admin"));
    let incident = incidents
        .get_incident(ipb::GetIncidentRequest {
            name: names["incident"].clone(),
        })
        .await
        .expect("the fixture's incident")
        .into_inner();
    assert_eq!(incident.title, "Finance admin account takeover");
    assert_eq!(incident.phase, ipb::Phase::Containment as i32);

    // A retry of a request made before the upgrade, by the principal who made it, still
    // answers with what it produced…
    let retried = RiskServiceClient::new(as_role(&app, &tokens, "risk_owner"))
        .create_risk(fixture_create_risk())
        .await
        .expect("the owner's retry")
        .into_inner();
    assert_eq!(retried.name, names["risk"], "a pre-upgrade retry replays");
    // …while the same request id from another principal is a request of its own.
    let others = RiskServiceClient::new(as_role(&app, &tokens, "trust_team"))
        .create_risk(fixture_create_risk())
        .await
        .expect("another principal's request")
        .into_inner();
    assert_ne!(others.name, names["risk"], "never another principal's risk");

    let redeclared = IncidentServiceClient::new(as_role(&app, &tokens, "responder"))
        .declare_incident(ipb::DeclareIncidentRequest {
            request_id: "fx-inc-1".into(),
            incident: Some(ipb::Incident {
                title: "Finance admin account takeover".into(),
                classification: ipb::Classification::SecurityIncident as i32,
                functional_impact: ipb::FunctionalImpact::Medium as i32,
                information_impacts: vec![ipb::InformationImpact::PrivacyBreach as i32],
                recoverability: ipb::Recoverability::Supplemented as i32,
                affected_services: vec!["services/exchange-online".into()],
                incident_type: "credential-compromise".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("the responder's retry")
        .into_inner();
    assert_eq!(
        redeclared.name, names["incident"],
        "a pre-upgrade declare replays"
    );
}
