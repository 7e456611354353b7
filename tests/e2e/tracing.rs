//! Traces: risk-service, incident-service and a forwarding gateway, each its own process
//! exporting to an OTLP collector of the test. A call made through the gateway with a known
//! `traceparent` is one trace: the gateway's RPC span (a child of the caller's), the
//! service's RPC span (a child of the gateway's) and the service's `db.transaction` span; an
//! incident write's outbox delivery to risk-service joins the write's trace.

use std::{net::SocketAddr, path::PathBuf, process::Child, time::Duration};

use assurance_proto::{incident::v1 as ipb, risk::v1 as pb};
use assurance_runtime::auth::client::Bearer;
use assurance_tests::{
    otlp::{CollectedSpan, Collector},
    server::{free_addr, wait_serving},
};
use tonic::transport::Channel;

use crate::helpers::{channel as channel_to, *};

crate::on_both_backends!(one_trace_spans_the_gateway_the_service_and_the_relay);

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `assurance-bench serve…` hosts each component exactly as its binary does, exporting to
/// `otlp`.
async fn started(command: &str, addr: SocketAddr, otlp: &str, args: &[String]) -> Process {
    started_with_delay(command, addr, otlp, args, "100").await
}

/// [`started`], exporting a batch every `delay_ms` (unless it fills up).
async fn started_with_delay(
    command: &str,
    addr: SocketAddr,
    otlp: &str,
    args: &[String],
    delay_ms: &str,
) -> Process {
    let http = free_addr().expect("free port");
    let child = std::process::Command::new(PathBuf::from(env!("CARGO_BIN_EXE_assurance-bench")))
        .arg(command)
        .args([
            "--listen",
            &addr.to_string(),
            "--http-listen",
            &http.to_string(),
        ])
        .args(["--log-format", "json", "--otlp-endpoint", otlp])
        .args(args)
        // Traces are exported whatever RUST_LOG keeps of the logs.
        .env(
            "RUST_LOG",
            std::env::var("SERVER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        // Export each batch soon, not after the default 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", delay_ms)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let process = Process(child);
    wait_serving(addr, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{command} on {addr}: {e}"));
    process
}

/// `message` with the W3C `traceparent` of a caller's span `parent` in trace `trace`.
fn traced<T>(message: T, trace: &str, parent: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let traceparent = format!("00-{trace}-{parent}-01");
    request.metadata_mut().insert(
        "traceparent",
        traceparent.parse().expect("traceparent metadata"),
    );
    request
}

fn find<'a>(
    spans: &'a [CollectedSpan],
    trace: &str,
    service: &str,
    name: &str,
) -> Option<&'a CollectedSpan> {
    spans
        .iter()
        .find(|s| s.trace_id == trace && s.service == service && s.name == name)
}

fn show(spans: &[CollectedSpan], trace: &str) -> String {
    spans
        .iter()
        .filter(|s| s.trace_id == trace)
        .map(|s| {
            format!(
                "{} {} {} <- {} {:?}",
                s.service, s.name, s.span_id, s.parent_span_id, s.attributes
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn one_trace_spans_the_gateway_the_service_and_the_relay(backend: Backend) {
    let collector = Collector::start().await.expect("collector");
    let otlp = collector.endpoint();
    let db = TestDb::new(backend).await;
    let tokens = db.tokens.path.display().to_string();
    let token_file = db.data_dir().join("system-token");
    std::fs::write(&token_file, db.tokens.token("system")).expect("token file");
    let (risk_addr, incident_addr, gateway_addr) = (
        free_addr().expect("port"),
        free_addr().expect("port"),
        free_addr().expect("port"),
    );
    let service_args = |url: String| {
        vec![
            "--database-url".into(),
            url,
            "--tokens-file".into(),
            tokens.clone(),
        ]
    };
    let _risk = started("serve", risk_addr, &otlp, &service_args(db.url.clone())).await;
    let mut incident_args = service_args(db.incident_url());
    incident_args.extend([
        "--risk-url".into(),
        format!("http://{risk_addr}"),
        "--service-token-file".into(),
        token_file.display().to_string(),
        "--relay-poll-ms".into(),
        "50".into(),
    ]);
    let _incident = started("serve-incident", incident_addr, &otlp, &incident_args).await;
    let gateway_store = match backend {
        Backend::Postgres => db.url.clone(),
        Backend::Sqlite => assurance_runtime::db::sqlite_url(&db.data_dir().join("gateway.db")),
    };
    let _gateway = started(
        "serve-gateway",
        gateway_addr,
        &otlp,
        &[
            "--risk-url".into(),
            format!("http://{risk_addr}"),
            "--incident-url".into(),
            format!("http://{incident_addr}"),
            "--tokens-file".into(),
            tokens.clone(),
            "--service-token-file".into(),
            token_file.display().to_string(),
            "--database-url".into(),
            gateway_store,
        ],
    )
    .await;
    let channel = channel(gateway_addr).await;
    let as_who = |who: &str| -> Bearer<Channel> {
        Bearer::new(channel.clone(), db.tokens.token(who)).expect("token metadata")
    };

    // A write through the gateway: gateway span <- risk-service span <- its transaction.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    pb::organization_service_client::OrganizationServiceClient::new(as_who("admin"))
        .create_business_unit(traced(
            pb::CreateBusinessUnitRequest {
                business_unit_id: "retail".into(),
                business_unit: Some(pb::BusinessUnit {
                    display_name: "Retail".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            trace,
            caller_span,
        ))
        .await
        .expect("business unit through the gateway");
    let method = "assurance.risk.v1.OrganizationService/CreateBusinessUnit";
    let spans = collector
        .wait_for(Duration::from_secs(30), |spans| {
            find(spans, trace, "gateway", method).is_some()
                && find(spans, trace, "risk-service", method).is_some()
                && find(spans, trace, "risk-service", "db.transaction").is_some()
        })
        .await;
    let gateway = find(&spans, trace, "gateway", method)
        .unwrap_or_else(|| panic!("no gateway span:\n{}", show(&spans, trace)));
    assert_eq!(gateway.parent_span_id, caller_span, "the caller's span");
    assert_eq!(gateway.attribute("rpc.system"), Some("grpc"));
    assert_eq!(
        gateway.attribute("rpc.service"),
        Some("assurance.risk.v1.OrganizationService")
    );
    assert_eq!(gateway.attribute("rpc.method"), Some("CreateBusinessUnit"));
    assert_eq!(gateway.attribute("rpc.grpc.status_code"), Some("0"));
    let service = find(&spans, trace, "risk-service", method)
        .unwrap_or_else(|| panic!("no risk-service span:\n{}", show(&spans, trace)));
    assert_eq!(
        service.parent_span_id,
        gateway.span_id,
        "the service's span is the gateway's child:\n{}",
        show(&spans, trace)
    );
    assert_eq!(service.attribute("rpc.grpc.status_code"), Some("0"));
    let transaction = find(&spans, trace, "risk-service", "db.transaction")
        .unwrap_or_else(|| panic!("no transaction span:\n{}", show(&spans, trace)));
    assert_eq!(transaction.parent_span_id, service.span_id);
    let system = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgresql",
    };
    assert_eq!(transaction.attribute("db.system"), Some(system));
    assert_eq!(
        transaction.attribute("db.transaction.outcome"),
        Some("commit")
    );
    // The code that began it (here the idempotent-write helper the stores share).
    assert!(
        transaction
            .attribute("code.file.path")
            .is_some_and(|f| f.ends_with(".rs"))
            && transaction.attribute("code.line.number").is_some(),
        "the code that began it: {:?}",
        transaction.attributes
    );
    assert_eq!(
        transaction.attribute("busy_ns"),
        None,
        "no inactivity tracking"
    );

    // The start-up health checks (wait_serving) are not exported.
    assert!(
        !spans.iter().any(|s| s.name.starts_with("grpc.health")),
        "health checks are not traced"
    );

    // A refusal records its status code (NOT_FOUND = 5) on both hops.
    let refused_trace = "5bf92f3577b34da6a3ce929d0e0e4737";
    let err = pb::risk_service_client::RiskServiceClient::new(as_who("admin"))
        .get_risk(traced(
            pb::GetRiskRequest {
                name: "risks/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into(),
            },
            refused_trace,
            caller_span,
        ))
        .await
        .expect_err("no such risk");
    assert_eq!(err.code(), tonic::Code::NotFound);
    let get = "assurance.risk.v1.RiskService/GetRisk";
    let spans = collector
        .wait_for(Duration::from_secs(30), |spans| {
            find(spans, refused_trace, "gateway", get).is_some()
                && find(spans, refused_trace, "risk-service", get).is_some()
        })
        .await;
    for who in ["gateway", "risk-service"] {
        let span = find(&spans, refused_trace, who, get)
            .unwrap_or_else(|| panic!("no {who} span:\n{}", show(&spans, refused_trace)));
        assert_eq!(span.attribute("rpc.grpc.status_code"), Some("5"), "{who}");
    }

    // incident-service checks a new incident's services against risk-service's registry in
    // the declaration's trace.
    pb::organization_service_client::OrganizationServiceClient::new(as_who("admin"))
        .create_service(pb::CreateServiceRequest {
            service_id: "exchange-online".into(),
            service: Some(pb::Service {
                business_unit: "businessUnits/retail".into(),
                display_name: "Exchange Online".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("service");
    let incidents =
        || ipb::incident_service_client::IncidentServiceClient::new(as_who("responder"));
    let declare_trace = "7bf92f3577b34da6a3ce929d0e0e4739";
    let declared = incidents()
        .declare_incident(traced(
            ipb::DeclareIncidentRequest {
                incident: Some(ipb::Incident {
                    title: "Impossible travel".into(),
                    summary: "Impossible-travel sign-ins for a finance admin.".into(),
                    classification: ipb::Classification::Event as i32,
                    functional_impact: ipb::FunctionalImpact::Low as i32,
                    information_impacts: vec![ipb::InformationImpact::PrivacyBreach as i32],
                    recoverability: ipb::Recoverability::Regular as i32,
                    affected_services: vec!["services/exchange-online".into()],
                    detection_source: "siem-alert-4711".into(),
                    incident_type: "credential-compromise".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            declare_trace,
            caller_span,
        ))
        .await
        .expect("declare")
        .into_inner();
    let declare = "assurance.incident.v1.IncidentService/DeclareIncident";
    let get_service = "assurance.risk.v1.OrganizationService/GetService";
    let spans = collector
        .wait_for(Duration::from_secs(30), |spans| {
            find(spans, declare_trace, "incident-service", declare).is_some()
                && find(spans, declare_trace, "risk-service", get_service).is_some()
        })
        .await;
    let declaring = find(&spans, declare_trace, "incident-service", declare)
        .unwrap_or_else(|| panic!("no declaration span:\n{}", show(&spans, declare_trace)));
    let checked = find(&spans, declare_trace, "risk-service", get_service)
        .unwrap_or_else(|| panic!("no registry check span:\n{}", show(&spans, declare_trace)));
    assert_eq!(
        checked.parent_span_id, declaring.span_id,
        "the registry check is the declaration's child"
    );

    // An incident write's outbox event is delivered to risk-service in the write's trace.
    let relay_trace = "6bf92f3577b34da6a3ce929d0e0e4738";
    incidents()
        .link_incident_risk(traced(
            ipb::LinkIncidentRiskRequest {
                name: declared.name.clone(),
                risk: "risks/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into(),
                relation: ipb::RiskLinkRelation::Realized as i32,
                etag: String::new(),
                request_id: String::new(),
            },
            relay_trace,
            caller_span,
        ))
        .await
        .expect("link a realised risk");
    let link = "assurance.incident.v1.IncidentService/LinkIncidentRisk";
    let record = "assurance.risk.v1.RiskService/RecordRiskRealization";
    let spans = collector
        .wait_for(Duration::from_secs(30), |spans| {
            find(spans, relay_trace, "incident-service", link).is_some()
                && find(spans, relay_trace, "incident-service", "outbox.deliver").is_some()
                && find(spans, relay_trace, "risk-service", record).is_some()
        })
        .await;
    let write = find(&spans, relay_trace, "incident-service", link)
        .unwrap_or_else(|| panic!("no incident write span:\n{}", show(&spans, relay_trace)));
    let delivery = find(&spans, relay_trace, "incident-service", "outbox.deliver")
        .unwrap_or_else(|| panic!("no delivery span:\n{}", show(&spans, relay_trace)));
    assert_eq!(
        delivery.parent_span_id, write.span_id,
        "the delivery is the write's child"
    );
    assert_eq!(
        delivery.attribute("outbox.event_type"),
        Some("incident.risk_realized")
    );
    let received = find(&spans, relay_trace, "risk-service", record)
        .unwrap_or_else(|| panic!("no risk-service span:\n{}", show(&spans, relay_trace)));
    assert_eq!(
        received.parent_span_id, delivery.span_id,
        "risk-service's call is the delivery's child"
    );

    // Shutdown (SIGTERM) exports the spans still queued: a batch every minute would
    // otherwise hold this call's span past the process's end.
    let late_addr = free_addr().expect("port");
    let mut late = started_with_delay(
        "serve",
        late_addr,
        &otlp,
        &service_args(db.url.clone()),
        "60000",
    )
    .await;
    let late_trace = "8bf92f3577b34da6a3ce929d0e0e473a";
    let direct = Bearer::new(channel_to(late_addr).await, db.tokens.token("admin")).expect("token");
    pb::organization_service_client::OrganizationServiceClient::new(direct)
        .get_business_unit(traced(
            pb::GetBusinessUnitRequest {
                name: "businessUnits/retail".into(),
            },
            late_trace,
            caller_span,
        ))
        .await
        .expect("business unit");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &late.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exited = tokio::task::spawn_blocking(move || {
        let code = late.0.wait().map(|s| s.success());
        (late, code)
    })
    .await
    .expect("wait");
    assert_eq!(exited.1.ok(), Some(true), "a clean stop");
    let get_unit = "assurance.risk.v1.OrganizationService/GetBusinessUnit";
    let spans = collector
        .wait_for(Duration::from_secs(5), |spans| {
            find(spans, late_trace, "risk-service", get_unit).is_some()
        })
        .await;
    let flushed = find(&spans, late_trace, "risk-service", get_unit)
        .unwrap_or_else(|| panic!("not flushed at shutdown:\n{}", show(&spans, late_trace)));
    assert_eq!(flushed.parent_span_id, caller_span);
}
