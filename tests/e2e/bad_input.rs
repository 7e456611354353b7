//! Bad input (issue #16): timestamps outside 0001-01-01..9999-12-31 and beyond the incident
//! time horizon are refused naming their field; an impossible row stored before those bounds
//! does not break the metrics; an admin repairs a closed incident's times (audited, on the
//! timeline) and nothing else of it; errors echo at most a few hundred characters of input;
//! refusals name the way forward; malformed protobuf is INVALID_ARGUMENT; the action items of
//! a closed risk are read-only.

use assurance_proto::incident::v1 as ipb;
use assurance_proto::risk::v1 as pb;
use assurance_runtime::Reason;
use assurance_tests::raw::RawCodec;
use prost_types::{FieldMask, Timestamp};
use sea_orm::{ConnectionTrait, Database};
use tonic::Code;

use crate::helpers::*;

crate::on_both_backends!(
    timestamps_outside_years_1_to_9999_are_refused_naming_the_field,
    incident_times_stay_within_the_configured_horizon,
    an_impossible_stored_time_does_not_break_the_metrics,
    an_admin_repairs_a_closed_incidents_times_and_nothing_else,
    errors_echo_at_most_a_few_hundred_characters_of_input,
    an_unclassified_event_is_told_how_to_leave_analysis,
    the_action_items_of_a_closed_risk_are_read_only,
);

/// Year −289,000 in Unix seconds.
const ANCIENT: i64 = -9_120_000_000_000;

fn at(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

/// An incident under analysis on exchange-online, of no impact.
fn event(title: &str) -> ipb::Incident {
    ipb::Incident {
        title: title.into(),
        affected_services: vec!["services/exchange-online".into()],
        ..phishing_wave()
    }
}

async fn declare(app: &App, incident: ipb::Incident) -> Result<ipb::Incident, tonic::Status> {
    declare_incident_as(app, "admin", incident, "").await
}

async fn update(
    app: &App,
    who: &str,
    incident: ipb::Incident,
    paths: &[&str],
) -> Result<ipb::Incident, tonic::Status> {
    app.incidents_as(who)
        .update_incident(ipb::UpdateIncidentRequest {
            incident: Some(incident),
            update_mask: Some(FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
        })
        .await
        .map(|r| r.into_inner())
}

async fn close(app: &App, name: &str) -> ipb::Incident {
    update(
        app,
        "admin",
        ipb::Incident {
            name: name.into(),
            classification: ipb::Classification::NotAnIncident as i32,
            ..Default::default()
        },
        &["classification"],
    )
    .await
    .expect("classify");
    app.incidents()
        .close_incident(ipb::CloseIncidentRequest {
            name: name.into(),
            resolution: "false positive".into(),
            ..Default::default()
        })
        .await
        .expect("close")
        .into_inner()
}

/// An incident-service whose incident times may lie at most 30 days in the past.
async fn incidents_with_a_30_day_horizon(db: &TestDb) -> App {
    let mut config = incident_config(db);
    config.incident_time_horizon_days = Some(30);
    let running = incident_service::start(&config, assurance_runtime::serve::Shutdown::new())
        .await
        .expect("incident-service starts");
    App::connect(running, db.tokens.clone()).await
}

async fn timestamps_outside_years_1_to_9999_are_refused_naming_the_field(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    // Year −289,000 once went in and broke the metrics for everyone.
    let err = declare(
        &app,
        ipb::Incident {
            occur_time: Some(at(ANCIENT)),
            ..event("Ancient")
        },
    )
    .await
    .expect_err("year -289000");
    names_required(err.clone(), &["incident.occur_time"]);
    assert_mentions(&err, "0001-01-01");
    // The common conversion holds the bound for every RPC: a metrics window, an action item.
    let err = app
        .incidents()
        .get_incident_metrics(ipb::GetIncidentMetricsRequest {
            end_time: Some(at(300_000_000_000)),
            ..Default::default()
        })
        .await
        .expect_err("year 11476");
    names_required(err, &["end_time"]);
    let risk = create_risk(&app, new_risk("Stale MFA exemptions", "exchange-online")).await;
    let plan = create_action_plan(&app, "risk_owner", &risk.name, "Clean up").await;
    let err = add_action_item(
        &app,
        "risk_owner",
        &plan,
        action_item("Review", at(ANCIENT)),
    )
    .await
    .expect_err("due in year -289000");
    names_required(err, &["action_item.due_time"]);
    // The last second of 9999 is still a time.
    add_action_item(
        &app,
        "risk_owner",
        &plan,
        action_item("Review", at(253_402_300_799)),
    )
    .await
    .expect("due at the end of 9999");
}

async fn incident_times_stay_within_the_configured_horizon(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incidents_with_a_30_day_horizon(&db).await;
    let err = declare(
        &app,
        ipb::Incident {
            occur_time: Some(days(-40)),
            ..event("Old")
        },
    )
    .await
    .expect_err("beyond the horizon");
    names_required(err.clone(), &["incident.occur_time"]);
    assert_mentions(&err, "30 days in the past");
    let err = declare(
        &app,
        ipb::Incident {
            detect_time: Some(days(2)),
            ..event("Future")
        },
    )
    .await
    .expect_err("in the future");
    names_required(err, &["incident.detect_time"]);
    let ok = declare(
        &app,
        ipb::Incident {
            occur_time: Some(days(-20)),
            detect_time: Some(days(-1)),
            ..event("Recent")
        },
    )
    .await
    .expect("within the horizon");
    // The horizon holds for updates too.
    let err = update(
        &app,
        "admin",
        ipb::Incident {
            name: ok.name.clone(),
            occur_time: Some(days(-31)),
            ..Default::default()
        },
        &["occur_time"],
    )
    .await
    .expect_err("beyond the horizon");
    names_required(err, &["incident.occur_time"]);
}

async fn an_impossible_stored_time_does_not_break_the_metrics(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    for title in ["Fine", "Broken one", "Broken two"] {
        declare(
            &app,
            ipb::Incident {
                occur_time: Some(days(-1)),
                detect_time: Some(days(0)),
                ..event(title)
            },
        )
        .await
        .expect("declare");
    }
    // What the API let in before the bounds: occurred in year -289,000.
    let conn = Database::connect(&db.incident_url())
        .await
        .expect("database");
    conn.execute_unprepared(&format!(
        "UPDATE incidents SET occur_time = {} WHERE title LIKE 'Broken%'",
        ANCIENT * 1_000_000
    ))
    .await
    .expect("store the impossible time");
    conn.close().await.ok();
    let metrics = app
        .incidents_as("reporter")
        .get_incident_metrics(ipb::GetIncidentMetricsRequest::default())
        .await
        .expect("metrics answer despite the broken rows")
        .into_inner();
    assert_eq!(metrics.total, 3);
    let detect = metrics.time_to_detect.expect("time to detect");
    assert_eq!(detect.count, 1, "the impossible durations are left out");
    let mean = detect.mean.expect("mean");
    assert!((86_000..=86_800).contains(&mean.seconds), "{mean:?}");
    assert_eq!(detect.p90.map(|d| d.seconds), Some(mean.seconds));
    // The posture's incident half sums the same durations.
    use assurance_proto::incident::v1::incident_summary_service_client::IncidentSummaryServiceClient;
    let summary = IncidentSummaryServiceClient::new(app.channel_as("admin"))
        .summarize_incidents(ipb::SummarizeIncidentsRequest {
            groups: vec![ipb::IncidentGroup {
                key: "enterprise".into(),
                services: Vec::new(),
                complement: true,
            }],
            ..Default::default()
        })
        .await
        .expect("the summary answers despite the broken rows")
        .into_inner();
    let kpis = summary.summaries[0].kpis.expect("kpis");
    assert_eq!(kpis.count, 3);
    assert_eq!(kpis.time_to_detect.map(|d| d.count), Some(1));
}

async fn an_admin_repairs_a_closed_incidents_times_and_nothing_else(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(
        &app,
        ipb::Incident {
            occur_time: Some(days(-3)),
            detect_time: Some(days(-2)),
            ..event("Closed too soon")
        },
    )
    .await
    .expect("declare");
    let name = declared.name.clone();
    close(&app, &name).await;
    let repair = ipb::Incident {
        name: name.clone(),
        occur_time: Some(days(-5)),
        detect_time: Some(days(-4)),
        ..Default::default()
    };
    // Not by a responder; nothing else, not even by an admin.
    let err = update(&app, "responder", repair.clone(), &["occur_time"])
        .await
        .expect_err("a responder cannot change a closed incident");
    assert_reason(&err, Code::FailedPrecondition, "INCIDENT_CLOSED");
    assert_mentions(&err, "only an admin");
    let err = update(
        &app,
        "admin",
        ipb::Incident {
            title: "Renamed".into(),
            ..repair.clone()
        },
        &["occur_time", "title"],
    )
    .await
    .expect_err("the title of a closed incident stays");
    assert_reason(&err, Code::FailedPrecondition, "INCIDENT_CLOSED");
    // The admin's repair of both times.
    let repaired = update(
        &app,
        "admin",
        repair.clone(),
        &["occur_time", "detect_time"],
    )
    .await
    .expect("repair");
    assert_eq!(repaired.phase, ipb::Phase::Closed as i32);
    assert_eq!(
        repaired.occur_time.map(|t| t.seconds),
        Some(days(-5).seconds)
    );
    assert_eq!(
        repaired.detect_time.map(|t| t.seconds),
        Some(days(-4).seconds)
    );
    assert_eq!(repaired.title, declared.title);
    // The repair is still bound by the rules of those fields.
    let err = update(
        &app,
        "admin",
        ipb::Incident {
            occur_time: Some(at(ANCIENT)),
            ..repair.clone()
        },
        &["occur_time"],
    )
    .await
    .expect_err("year -289000");
    names_required(err, &["incident.occur_time"]);
    // On the timeline, and audited.
    let events = app
        .incidents()
        .list_timeline_events(ipb::ListTimelineEventsRequest {
            parent: name.clone(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("timeline")
        .into_inner()
        .timeline_events;
    let last = events.iter().max_by_key(|e| e.sequence).expect("events");
    assert!(
        last.summary.contains("repaired") && last.summary.contains("occur_time"),
        "{}",
        last.summary
    );
    let trail = ipb::audit_service_client::AuditServiceClient::new(app.channel_as("admin"))
        .list_audit_events(assurance_proto::audit::v1::ListAuditEventsRequest {
            filter: format!("resource = \"{name}\""),
            ..Default::default()
        })
        .await
        .expect("audit trail")
        .into_inner()
        .audit_events;
    assert!(
        trail
            .iter()
            .any(|e| e.rpc.ends_with("/UpdateIncident") && e.principal == "admin@example.com"),
        "{trail:?}"
    );
}

async fn errors_echo_at_most_a_few_hundred_characters_of_input(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    let key = "K".repeat(1 << 20);
    let mut risk = new_risk("Huge label", "exchange-online");
    risk.labels.insert(key.clone(), "v".into());
    let err = app
        .risks()
        .create_risk(pb::CreateRiskRequest {
            risk: Some(risk),
            ..Default::default()
        })
        .await
        .expect_err("a 1 MiB label key");
    assert_eq!(err.code(), Code::InvalidArgument, "{:?}", err.code());
    assert!(err.message().len() <= 2048, "{}", err.message().len());
    assert!(err.details().len() <= 4096, "{}", err.details().len());
    assert!(!violations(&err).is_empty());
    // A 1 MiB incident title.
    let err = declare(&app, event(&"T".repeat(1 << 20)))
        .await
        .expect_err("a 1 MiB title");
    names_required(err.clone(), &["incident.title"]);
    assert!(err.message().len() <= 2048, "{}", err.message().len());
    assert!(err.details().len() <= 4096, "{}", err.details().len());
}

async fn an_unclassified_event_is_told_how_to_leave_analysis(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, event("Suspicious sign-ins"))
        .await
        .expect("declare");
    let err = app
        .incidents()
        .advance_phase(ipb::AdvancePhaseRequest {
            name: declared.name.clone(),
            target_phase: ipb::Phase::Containment as i32,
            ..Default::default()
        })
        .await
        .expect_err("an EVENT does not leave analysis");
    assert_reason(
        &err,
        Code::FailedPrecondition,
        Reason::IllegalPhaseMove.as_str(),
    );
    assert!(!err.message().contains("terminal"), "{}", err.message());
    assert_mentions(&err, "reclassify SECURITY_INCIDENT");
    assert_mentions(
        &err,
        "reclassify NOT_AN_INCIDENT (UpdateIncident) then close",
    );
    let err = app
        .incidents()
        .close_incident(ipb::CloseIncidentRequest {
            name: declared.name.clone(),
            resolution: "noise".into(),
            ..Default::default()
        })
        .await
        .expect_err("an EVENT does not close");
    assert!(!err.message().contains("terminal"), "{}", err.message());
    assert_mentions(&err, "reclassify NOT_AN_INCIDENT");
}

/// Calls `path` with the raw bytes `body` as its request message.
async fn raw_call(app: &App, path: &str, body: &'static [u8]) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(app.channel_as("admin"));
    grpc.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::try_from(path).expect("path");
    grpc.unary::<_, bytes::Bytes, _>(
        tonic::Request::new(bytes::Bytes::from_static(body)),
        path,
        RawCodec,
    )
    .await
    .expect_err("a malformed request is refused")
}

/// Needs `DecodeErrorLayer` on the gRPC server builder (runtime/src/serve.rs), added at
/// merge; the backend plays no part in decoding, so it runs on SQLite only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_protobuf_and_invalid_utf8_are_invalid_argument() {
    let backend = Backend::Sqlite;
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    // Field 1 (`name`, a string) holding the bytes FF FE: not UTF-8.
    let err = raw_call(
        &app,
        "/assurance.risk.v1.RiskService/GetRisk",
        &[0x0a, 0x02, 0xff, 0xfe],
    )
    .await;
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(reason(&err), "INVALID_ARGUMENT");
    // A tag that is not a varint.
    let err = raw_call(
        &app,
        "/assurance.incident.v1.IncidentService/GetIncident",
        &[
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
    )
    .await;
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
}

async fn the_action_items_of_a_closed_risk_are_read_only(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    let risk = create_risk(&app, new_risk("Legacy VPN", "exchange-online")).await;
    let plan = create_action_plan(&app, "risk_owner", &risk.name, "Retire the VPN").await;
    let item = add_action_item(&app, "risk_owner", &plan, action_item("Migrate", days(30)))
        .await
        .expect("item");
    app.risks_as("trust_team")
        .delete_risk(pb::DeleteRiskRequest {
            name: risk.name.clone(),
            reason: "service retired".into(),
            etag: String::new(),
        })
        .await
        .expect("close");
    let err = app
        .risks()
        .update_action_item(pb::UpdateActionItemRequest {
            action_item: Some(pb::ActionItem {
                name: item.name.clone(),
                title: "Migrate later".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["title".into()],
            }),
        })
        .await
        .expect_err("the item of a closed risk");
    assert_reason(&err, Code::FailedPrecondition, "RISK_CLOSED");
    let err = set_item_status(&app, "tracker", item, tv_done())
        .await
        .expect_err("not even its status");
    assert_reason(&err, Code::FailedPrecondition, "RISK_CLOSED");
    let err = add_action_item(&app, "risk_owner", &plan, action_item("More", days(30)))
        .await
        .expect_err("no new item");
    assert_reason(&err, Code::FailedPrecondition, "RISK_CLOSED");
}

fn tv_done() -> assurance_proto::r#type::v1::WorkItemStatus {
    assurance_proto::r#type::v1::WorkItemStatus::Done
}
