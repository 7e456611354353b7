//! The gateway: embedded (every component in one process) and forwarding to risk-service.

use assurance_proto::risk::v1 as pb;
use assurance_proto::r#type::v1 as tv;
use risk_service::domain::scoring::Methodology;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::helpers::*;

crate::on_both_backends!(
    embedded_gateway_serves_the_risk_api,
    forwarding_gateway_passes_calls_and_errors_through
);

async fn serving(app: &App, service: &str) -> i32 {
    app.health()
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status
}

async fn embedded_gateway_serves_the_risk_api(backend: Backend) {
    let db = TestDb::new(backend).await;
    let gw = embedded_gateway(&db, backend).await;
    for service in [
        "",
        "assurance.risk.v1.RiskService",
        "assurance.risk.v1.OrganizationService",
    ] {
        assert_eq!(
            serving(&gw, service).await,
            ServingStatus::Serving as i32,
            "{service}"
        );
    }
    org_fixture(&gw).await;
    let risk = create_risk(
        &gw,
        new_risk("Phishing of finance staff", "exchange-online"),
    )
    .await;
    let assessed = assess(&gw, &risk.name, 2, 3, 1).await;
    let a = assessed.latest_assessment.expect("assessment");
    // DESIGN.md: (2,3,1) → 6, 6, LOW, OPERATE.
    assert_eq!((a.exposure, a.score), (6, 6));
    assert_eq!(a.severity, tv::Severity::Low as i32);
    assert_eq!(a.strategy, pb::ResponseStrategy::Operate as i32);
    if backend == Backend::Sqlite {
        assert!(
            db.data_dir().join("risk.db").exists(),
            "SQLite file in --data-dir"
        );
    }
    let (code, _) = http_get(gw.http_addr, "/readyz").await;
    assert_eq!(code, 200);
    gw.stop().await;

    // Everything was committed: a new embedded gateway on the same data sees it.
    let again = embedded_gateway(&db, backend).await;
    let got = again
        .risks()
        .get_risk(pb::GetRiskRequest {
            name: risk.name.clone(),
        })
        .await
        .expect("persisted")
        .into_inner();
    assert_eq!(got.status, pb::RiskStatus::Assessed as i32);
}

async fn forwarding_gateway_passes_calls_and_errors_through(backend: Backend) {
    let db = TestDb::new(backend).await;
    let upstream = risk_service(&db, Methodology::Standard).await;
    let incidents = incident_service(&db).await;
    let gw = forwarding_gateway(&db, upstream.grpc_addr, incidents.grpc_addr).await;
    for service in [
        "assurance.risk.v1.RiskService",
        "assurance.incident.v1.IncidentService",
    ] {
        assert_eq!(serving(&gw, service).await, ServingStatus::Serving as i32);
    }

    // Incidents reach incident-service.
    use assurance_proto::incident::v1 as ipb;
    let declared = declare_incident_as(&gw, "admin", phishing_wave(), "")
        .await
        .expect("declare through the gateway");
    incidents
        .incidents()
        .get_incident(ipb::GetIncidentRequest {
            name: declared.name,
        })
        .await
        .expect("incident-service has it");

    org_fixture(&gw).await;
    let risk = create_risk(&gw, new_risk("Lateral movement via RDP", "exchange-online")).await;
    // The write landed in risk-service itself.
    let direct = upstream
        .risks()
        .get_risk(pb::GetRiskRequest {
            name: risk.name.clone(),
        })
        .await
        .expect("upstream has it")
        .into_inner();
    assert_eq!(direct, risk);

    // Typed errors survive the hop with their details.
    let err = gw
        .risks()
        .create_risk(pb::CreateRiskRequest {
            risk: Some(pb::Risk {
                title: "no service".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(violations(&err).contains(&"risk.service".to_string()));
    assert_eq!(reason(&err), "INVALID_ARGUMENT");

    let (code, _) = http_get(gw.http_addr, "/readyz").await;
    assert_eq!(code, 200, "ready while risk-service answers");

    // With risk-service gone the gateway answers UNAVAILABLE and is not ready.
    upstream.stop().await;
    let err = gw
        .risks()
        .get_risk(pb::GetRiskRequest {
            name: risk.name.clone(),
        })
        .await
        .expect_err("upstream down");
    assert_eq!(err.code(), Code::Unavailable);
    let (code, body) = http_get(gw.http_addr, "/readyz").await;
    assert_eq!(code, 503, "{body}");
}
