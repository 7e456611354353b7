//! Crash safety of the events between the services, with real processes: risk-service and
//! incident-service (`--risk-url`) as separate binaries. Each is killed with SIGKILL while
//! events committed with their changes are being delivered; after restarts every event is
//! delivered, none is lost and none is applied twice: each reviewed incident has exactly one
//! risk in the register and one IDENTIFIED link, and each realisation is recorded once.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use assurance_proto::{
    incident::v1::{
        self as ipb, incident_service_client::IncidentServiceClient,
        outbox_service_client::OutboxServiceClient,
    },
    outbox::v1 as opb,
    risk::v1::{self as pb, risk_service_client::RiskServiceClient},
};
use assurance_tests::{
    auth::SHARED,
    server::{AuthChannel, connect, free_addr, register_org, wait_serving},
};

use crate::helpers::*;

crate::on_both_backends!(killed_services_lose_and_duplicate_no_event);

const READY: Duration = Duration::from_secs(60);

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    /// SIGKILL, and wait for it to be gone.
    fn kill9(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `assurance-bench <command>` (the service exactly as its binary runs) on `addr`.
fn spawn(command: &str, addr: SocketAddr, args: &[String]) -> Process {
    let http = free_addr().expect("free port");
    let child = Command::new(PathBuf::from(env!("CARGO_BIN_EXE_assurance-bench")))
        .arg(command)
        .args(["--listen", &addr.to_string()])
        .args(["--http-listen", &http.to_string()])
        .args(["--log-format", "json"])
        .arg("--tokens-file")
        .arg(&SHARED.path)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    Process(child)
}

async fn start_risk(db: &TestDb, addr: SocketAddr) -> Process {
    let p = spawn("serve", addr, &["--database-url".into(), db.url.clone()]);
    wait_serving(addr, READY).await.expect("risk-service ready");
    p
}

async fn start_incident(db: &TestDb, addr: SocketAddr, risk: SocketAddr) -> Process {
    let token = db.data_dir().join("system.token");
    std::fs::write(&token, SHARED.token("system")).expect("token file");
    let args = [
        ("--database-url", db.incident_url()),
        ("--risk-url", format!("http://{risk}")),
        ("--service-token-file", token.display().to_string()),
        ("--relay-poll-ms", "50".into()),
        ("--relay-backoff-ms", "100".into()),
        ("--relay-max-backoff-ms", "400".into()),
        ("--relay-max-attempts", "1000".into()),
    ];
    let args: Vec<String> = args
        .into_iter()
        .flat_map(|(k, v)| [k.to_string(), v])
        .collect();
    let p = spawn("serve-incident", addr, &args);
    wait_serving(addr, READY)
        .await
        .expect("incident-service ready");
    p
}

/// Declares a security incident on exchange-online, takes it to POST_INCIDENT and records a
/// review with one identified risk; with `realizes`, links it as REALIZED to that risk.
async fn reviewed(channel: &AuthChannel, n: usize, realizes: Option<&str>) -> String {
    let mut incidents = IncidentServiceClient::new(channel.clone());
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
    if let Some(risk) = realizes {
        incidents
            .link_incident_risk(ipb::LinkIncidentRiskRequest {
                name: declared.name.clone(),
                risk: risk.into(),
                relation: ipb::RiskLinkRelation::Realized as i32,
                ..Default::default()
            })
            .await
            .expect("link");
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

/// The events of incident-service not yet delivered (the follow-ups' wait for the trackers).
async fn undelivered(channel: &AuthChannel) -> Vec<opb::OutboxEvent> {
    let mut outbox = OutboxServiceClient::new(channel.clone());
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = outbox
            .list_outbox_events(opb::ListOutboxEventsRequest {
                page_size: 1000,
                page_token: token,
                filter: "type != \"incident.follow_up\"".into(),
            })
            .await
            .expect("list outbox")
            .into_inner();
        out.extend(
            page.outbox_events
                .into_iter()
                .filter(|e| e.state != opb::OutboxEventState::Delivered as i32),
        );
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

async fn killed_services_lose_and_duplicate_no_event(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (risk_addr, incident_addr) = (
        free_addr().expect("free port"),
        free_addr().expect("free port"),
    );
    let risk = start_risk(&db, risk_addr).await;
    let incident = start_incident(&db, incident_addr, risk_addr).await;
    let risk_channel = connect(risk_addr).await.expect("connect");
    register_org(risk_channel.clone(), "productivity", "exchange-online")
        .await
        .expect("org");
    let target = RiskServiceClient::new(risk_channel.clone())
        .create_risk(pb::CreateRiskRequest {
            risk: Some(new_risk("Session hijacking", "exchange-online")),
            request_id: "target".into(),
        })
        .await
        .expect("target risk")
        .into_inner();

    // incident-service dies right after its last commits, while their events are queued or
    // on their way.
    let channel = connect(incident_addr).await.expect("connect");
    let mut names = Vec::new();
    for n in 0..12 {
        names.push(reviewed(&channel, n, None).await);
    }
    incident.kill9();
    let incident = start_incident(&db, incident_addr, risk_addr).await;

    // Then risk-service dies while realisations and identified risks reach it.
    let channel = connect(incident_addr).await.expect("connect");
    let mut realizing = Vec::new();
    for n in 12..24 {
        let name = reviewed(&channel, n, Some(&target.name)).await;
        realizing.push(name.clone());
        names.push(name);
    }
    risk.kill9();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _risk = start_risk(&db, risk_addr).await;

    // Every event is delivered in the end, none parked (the events the killed relay had
    // claimed wait for its lease, 10 s, to end).
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let left = undelivered(&channel).await;
        if left.is_empty() {
            break;
        }
        let dead = left
            .iter()
            .find(|e| e.state == opb::OutboxEventState::Dead as i32);
        assert!(dead.is_none(), "parked: {dead:?}");
        assert!(
            std::time::Instant::now() < deadline,
            "undelivered: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Exactly once: one risk per incident, one IDENTIFIED link, one realisation each.
    let risk_channel = connect(risk_addr).await.expect("connect");
    let mut risks = RiskServiceClient::new(risk_channel);
    let mut incidents = IncidentServiceClient::new(channel.clone());
    for name in &names {
        let found = risks
            .list_risks(pb::ListRisksRequest {
                filter: format!("source_reference = {name:?}"),
                ..Default::default()
            })
            .await
            .expect("list risks")
            .into_inner()
            .risks;
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        let got = incidents
            .get_incident(ipb::GetIncidentRequest { name: name.clone() })
            .await
            .expect("get incident")
            .into_inner();
        let identified: Vec<_> = got
            .risk_links
            .iter()
            .filter(|l| l.relation == ipb::RiskLinkRelation::Identified as i32)
            .collect();
        assert_eq!(identified.len(), 1, "{name}: {:?}", got.risk_links);
        assert_eq!(identified[0].risk, found[0].name);
    }
    let effectiveness = risks
        .get_response_effectiveness(pb::GetResponseEffectivenessRequest {
            risk: target.name.clone(),
        })
        .await
        .expect("effectiveness")
        .into_inner();
    let mut realised: Vec<String> = effectiveness
        .responses
        .iter()
        .flat_map(|r| &r.realizations)
        .map(|r| r.incident.clone())
        .collect();
    realised.sort();
    realizing.sort();
    assert_eq!(realised, realizing);
    drop(incident);
}
