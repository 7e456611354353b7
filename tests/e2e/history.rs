//! Posture history through a real client: snapshots on demand and on a schedule that follows
//! the gateway's (test-controlled) clock, GetPosture `as_of` judged against the appetite of
//! its time, trends, the scheduled slot taken once by two gateways sharing one store (and
//! taken over from a claimer that never finished), and WatchPosture.

use std::time::Duration;

use assurance_proto::{
    audit::v1 as audit_pb,
    gateway::v1::{
        CreateSnapshotRequest, GetPostureRequest, GetPostureTrendRequest, GetSnapshotRequest,
        ListSnapshotsRequest, Posture, PostureSnapshot, RiskAppetite, SetRiskAppetiteRequest,
        SnapshotTrigger, TrendMetric, TrendSeries, WatchPostureRequest,
        audit_service_client::AuditServiceClient,
    },
    incident::v1 as ipb,
    risk::v1::{self as pb, AppetiteStatus},
    r#type::v1::Severity,
};
use assurance_runtime::time::{Clock, from_timestamp, to_timestamp};
use tonic::Code;

use crate::{
    helpers::*,
    posture::{get_posture, nodes},
};

crate::on_both_backends!(
    snapshots_keep_the_past_as_it_was_judged,
    scheduled_snapshots_are_taken_once_per_slot_across_replicas,
    watch_posture_sends_changes_only_and_rechecks_the_credential,
);

const SERVICE: &str = "services/exchange-online";
const HOUR: Duration = Duration::from_secs(3600);

async fn create_snapshot(app: &App, who: &str, request_id: &str) -> PostureSnapshot {
    app.posture_as(who)
        .create_snapshot(CreateSnapshotRequest {
            request_id: request_id.into(),
        })
        .await
        .expect("create snapshot")
        .into_inner()
}

async fn as_of(
    app: &App,
    who: &str,
    scope: &str,
    at: prost_types::Timestamp,
) -> Result<Posture, tonic::Status> {
    app.posture_as(who)
        .get_posture(GetPostureRequest {
            scope: scope.into(),
            as_of: Some(at),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

async fn set_enterprise_appetite(app: &App, appetite: Severity, tolerance: Severity) {
    app.posture_as("erm_executive")
        .set_risk_appetite(SetRiskAppetiteRequest {
            risk_appetite: Some(RiskAppetite {
                name: "enterprise/riskAppetite".into(),
                appetite: appetite as i32,
                tolerance: tolerance as i32,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("enterprise appetite");
}

/// The appetite status of the service node of `posture`.
fn service_status(posture: &Posture) -> i32 {
    let all = nodes(posture.root.as_ref().expect("root"));
    all[SERVICE]
        .risks
        .as_ref()
        .and_then(|r| r.appetite.as_ref())
        .map(|a| a.status)
        .expect("appetite figures")
}

/// The series of `metric` with `labels`, as (snapshot, value) points.
fn points(
    series: &[TrendSeries],
    metric: TrendMetric,
    labels: &[(&str, &str)],
) -> Vec<(String, f64)> {
    series
        .iter()
        .find(|s| {
            s.metric == metric as i32
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .unwrap_or_else(|| panic!("no series {metric:?} {labels:?}"))
        .points
        .iter()
        .map(|p| (p.snapshot.clone(), p.value))
        .collect()
}

fn severity_label(severity: i32) -> &'static str {
    Severity::try_from(severity)
        .map(|s| s.as_str_name().trim_start_matches("SEVERITY_"))
        .expect("a severity")
}

/// Snapshots on demand: audited, idempotent, listed newest first; `as_of` answers from the
/// latest one at or before the time, judged against the appetite of its day, with the access
/// rules of a live answer; the trend of a service over two snapshots.
async fn snapshots_keep_the_past_as_it_was_judged(backend: Backend) {
    let (_db, clock, app) = gateway_on_a_test_clock(backend).await;
    set_enterprise_appetite(&app, Severity::Low, Severity::Critical).await;
    let risk = create_risk(&app, new_risk("Credential stuffing", "exchange-online")).await;
    let first = assess(&app, &risk.name, 4, 4, 3).await;
    let first_severity = first.latest_assessment.expect("assessed").severity;
    assert!(first_severity > Severity::Low as i32, "above appetite");
    let incident = ipb::Incident {
        affected_services: vec![SERVICE.into()],
        classification: ipb::Classification::SecurityIncident as i32,
        ..phishing_wave()
    };
    declare_incident_as(&app, "responder", incident, "")
        .await
        .expect("declare");

    // Nothing before the first snapshot.
    let before = to_timestamp(clock.now_micros());
    let err = as_of(&app, "viewer", "enterprise", before)
        .await
        .expect_err("no snapshot yet");
    assert_refused(&err, Code::NotFound, "posture snapshot");

    let s1 = create_snapshot(&app, "trust_team", "snap-1").await;
    assert_eq!(s1.trigger, SnapshotTrigger::OnDemand as i32);
    assert_eq!(s1.created_by, "trust_team@example.com");
    assert!(
        s1.node_count >= 3,
        "enterprise, unit, service: {}",
        s1.node_count
    );
    assert_eq!(
        create_snapshot(&app, "trust_team", "snap-1").await.name,
        s1.name,
        "a retry returns the snapshot already taken"
    );
    let got = app
        .posture_as("viewer")
        .get_snapshot(GetSnapshotRequest {
            name: s1.name.clone(),
        })
        .await
        .expect("get snapshot")
        .into_inner();
    assert_eq!(got, s1);
    let trail = AuditServiceClient::new(app.channel_as("trust_team"))
        .list_audit_events(audit_pb::ListAuditEventsRequest {
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("gateway audit trail")
        .into_inner()
        .audit_events;
    let taken: Vec<_> = trail.iter().filter(|e| e.resource == s1.name).collect();
    assert_eq!(taken.len(), 1, "{trail:?}");
    assert_eq!(taken[0].principal, "trust_team@example.com");
    assert_eq!(taken[0].request_id, "snap-1");

    // The appetite rises: the live posture is within it, the snapshot stays as judged then.
    set_enterprise_appetite(&app, Severity::Critical, Severity::Critical).await;
    let live = get_posture(&app, "viewer", "enterprise")
        .await
        .expect("live");
    assert_eq!(service_status(&live), AppetiteStatus::WithinAppetite as i32);
    assert!(live.snapshot.is_empty());
    let then = as_of(
        &app,
        "viewer",
        "enterprise",
        to_timestamp(clock.now_micros()),
    )
    .await
    .expect("as of now");
    assert_eq!(then.snapshot, s1.name);
    assert_eq!(then.compute_time, s1.take_time);
    assert_eq!(service_status(&then), AppetiteStatus::AboveAppetite as i32);
    assert_eq!(
        then.appetite_versions
            .iter()
            .find(|v| v.risk_appetite == "enterprise/riskAppetite")
            .map(|v| v.version),
        Some(1),
        "judged against the version in force when it was taken"
    );

    // Same access as live: a scoped principal reads its own service only; a viewer gets the
    // incident counts without the incidents.
    let err = as_of(
        &app,
        "scoped",
        "enterprise",
        to_timestamp(clock.now_micros()),
    )
    .await
    .expect_err("scoped");
    assert_refused(&err, Code::PermissionDenied, SERVICE);
    let own = as_of(&app, "scoped", SERVICE, to_timestamp(clock.now_micros()))
        .await
        .expect("own service");
    assert_eq!(own.root.as_ref().map(|r| r.scope.as_str()), Some(SERVICE));
    let admin_view = as_of(&app, "admin", SERVICE, to_timestamp(clock.now_micros()))
        .await
        .expect("admin");
    let viewer_view = as_of(&app, "viewer", SERVICE, to_timestamp(clock.now_micros()))
        .await
        .expect("viewer");
    let incidents = |p: &Posture| {
        p.root
            .as_ref()
            .and_then(|r| r.incidents.clone())
            .expect("incidents")
    };
    assert_eq!(incidents(&admin_view).open_incidents, 1);
    assert_eq!(incidents(&admin_view).top_incidents.len(), 1);
    assert_eq!(incidents(&viewer_view).open_incidents, 1);
    assert!(incidents(&viewer_view).top_incidents.is_empty());

    // A period with as_of is refused: the snapshot's period is the answer's.
    let err = app
        .posture_as("viewer")
        .get_posture(GetPostureRequest {
            scope: "enterprise".into(),
            as_of: Some(to_timestamp(clock.now_micros())),
            period_end: Some(to_timestamp(clock.now_micros())),
            ..Default::default()
        })
        .await
        .expect_err("period with as_of");
    assert_eq!(violations(&err), vec!["as_of".to_string()]);

    // A day later the risk is reassessed and a second snapshot taken.
    clock.advance(24 * HOUR);
    let second = assess(&app, &risk.name, 1, 1, 1).await;
    let second_severity = second.latest_assessment.expect("assessed").severity;
    assert_ne!(second_severity, first_severity);
    // And an incident realised it.
    app.risks_as("system")
        .record_risk_realization(pb::RecordRiskRealizationRequest {
            risk: risk.name.clone(),
            incident: "incidents/0190a1b2-c3d4-7e5f-8a9b-000000000042".into(),
            incident_severity: Severity::High as i32,
            ..Default::default()
        })
        .await
        .expect("realisation");
    let s2 = create_snapshot(&app, "erm_executive", "").await;
    let at_s1 = as_of(&app, "viewer", "enterprise", s1.take_time.expect("time"))
        .await
        .expect("as of the first");
    assert_eq!(at_s1.snapshot, s1.name, "the latest at or before as_of");

    // Listed newest first, in pages, and within a time range.
    let mut viewer = app.posture_as("viewer");
    let page = viewer
        .list_snapshots(ListSnapshotsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("page 1")
        .into_inner();
    assert_eq!(page.snapshots[0].name, s2.name);
    let next = viewer
        .list_snapshots(ListSnapshotsRequest {
            page_size: 1,
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(next.snapshots[0].name, s1.name);
    assert!(next.next_page_token.is_empty());
    let only_first = viewer
        .list_snapshots(ListSnapshotsRequest {
            end_time: s1.take_time,
            ..Default::default()
        })
        .await
        .expect("range")
        .into_inner();
    let names: Vec<_> = only_first
        .snapshots
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(names, vec![s1.name.clone()]);

    // The trend of the service over both snapshots.
    let start = before;
    let end = to_timestamp(clock.now_micros() + 1);
    let trend = viewer
        .get_posture_trend(GetPostureTrendRequest {
            scope: SERVICE.into(),
            metrics: vec![
                TrendMetric::OpenRisks as i32,
                TrendMetric::IncidentKpis as i32,
            ],
            start_time: Some(start),
            end_time: Some(end),
        })
        .await
        .expect("trend")
        .into_inner();
    let both = |a: f64, b: f64| vec![(s1.name.clone(), a), (s2.name.clone(), b)];
    assert_eq!(
        points(&trend.series, TrendMetric::OpenRisks, &[("figure", "open")]),
        both(1.0, 1.0)
    );
    assert_eq!(
        points(
            &trend.series,
            TrendMetric::OpenRisks,
            &[("severity", severity_label(first_severity))]
        ),
        both(1.0, 0.0)
    );
    assert_eq!(
        points(
            &trend.series,
            TrendMetric::OpenRisks,
            &[("severity", severity_label(second_severity))]
        ),
        both(0.0, 1.0)
    );
    assert_eq!(
        points(
            &trend.series,
            TrendMetric::IncidentKpis,
            &[("kpi", "count")]
        ),
        both(1.0, 1.0)
    );
    assert!(
        trend
            .series
            .iter()
            .all(|s| s.metric != TrendMetric::Appetite as i32),
        "only the metrics asked for"
    );
    let all = viewer
        .get_posture_trend(GetPostureTrendRequest {
            scope: "enterprise".into(),
            metrics: vec![],
            start_time: Some(start),
            end_time: Some(end),
        })
        .await
        .expect("every metric")
        .into_inner();
    assert_eq!(
        points(
            &all.series,
            TrendMetric::Appetite,
            &[("node_status", "ABOVE_APPETITE")]
        ),
        both(1.0, 0.0),
        "each snapshot judged against its own day's appetite"
    );
    assert_eq!(
        points(&all.series, TrendMetric::OverdueActionItems, &[]),
        both(0.0, 0.0)
    );
    assert_eq!(
        points(
            &all.series,
            TrendMetric::ResponseFailures,
            &[("figure", "realizations")]
        ),
        both(0.0, 1.0)
    );
    assert_eq!(
        points(
            &all.series,
            TrendMetric::ResponseFailures,
            &[("figure", "failed_control_tests")]
        ),
        both(0.0, 0.0)
    );
    let err = viewer
        .get_posture_trend(GetPostureTrendRequest {
            scope: SERVICE.into(),
            metrics: vec![],
            start_time: Some(end),
            end_time: Some(start),
        })
        .await
        .expect_err("reversed range");
    assert_eq!(violations(&err), vec!["start_time".to_string()]);
    let err = app
        .posture_as("scoped")
        .get_posture_trend(GetPostureTrendRequest {
            scope: "enterprise".into(),
            metrics: vec![],
            start_time: Some(start),
            end_time: Some(end),
        })
        .await
        .expect_err("scoped");
    assert_eq!(err.code(), Code::PermissionDenied);
}

/// The snapshots every gateway has taken, oldest first.
async fn snapshots(app: &App) -> Vec<PostureSnapshot> {
    let mut all = app
        .posture_as("viewer")
        .list_snapshots(ListSnapshotsRequest {
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("list snapshots")
        .into_inner()
        .snapshots;
    all.reverse();
    all
}

/// Waits until `app` lists `n` snapshots, then a few more ticks to see no other comes.
async fn exactly(app: &App, n: usize) -> Vec<PostureSnapshot> {
    eventually(&format!("{n} snapshots"), || async {
        let all = snapshots(app).await;
        if all.len() >= n {
            Ok(())
        } else {
            Err(format!("{} so far", all.len()))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let all = snapshots(app).await;
    assert_eq!(all.len(), n, "{all:?}");
    all
}

/// The slot (hourly) of the clock's now.
fn slot(clock: &Clock) -> i64 {
    clock.now_micros().div_euclid(3_600_000_000)
}

/// Two gateways on one store, one clock, an hourly schedule: each slot's snapshot is taken
/// once, as the system principal; a claim left by a replica that never finished blocks the
/// slot only until its lease expires.
async fn scheduled_snapshots_are_taken_once_per_slot_across_replicas(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut config = embedded_config(&db, backend);
    config.snapshot_interval = HOUR;
    let clock = config.clock.clone();
    let first = start_gateway(&db, config.clone()).await;
    org_fixture(&first).await;
    let second = start_gateway(&db, config).await;

    // The current slot at start-up, once.
    let taken = exactly(&second, 1).await;
    assert_eq!(taken[0].trigger, SnapshotTrigger::Scheduled as i32);
    assert_eq!(taken[0].created_by, "system:gateway");
    let trail = AuditServiceClient::new(first.channel_as("admin"))
        .list_audit_events(audit_pb::ListAuditEventsRequest {
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("gateway audit trail")
        .into_inner()
        .audit_events;
    let audited: Vec<_> = trail
        .iter()
        .filter(|e| e.resource == taken[0].name)
        .collect();
    assert_eq!(audited.len(), 1, "{trail:?}");
    assert_eq!(audited[0].principal, "system:gateway");

    // The clock moves into the next slot: one more, whichever replica takes it.
    clock.advance(HOUR);
    let taken = exactly(&first, 2).await;
    let (t0, t1) = (
        from_timestamp(taken[0].take_time.as_ref().expect("time")).expect("t0"),
        from_timestamp(taken[1].take_time.as_ref().expect("time")).expect("t1"),
    );
    assert_eq!(
        t1.div_euclid(3_600_000_000),
        t0.div_euclid(3_600_000_000) + 1
    );

    // A replica claimed the next slot and died: the slot waits for its lease, then is taken.
    let url = match backend {
        Backend::Sqlite => assurance_runtime::db::sqlite_url(&db.data_dir().join("gateway.db")),
        Backend::Postgres => db.url.clone(),
    };
    let store = gateway::store::Store::open(&url, 2).await.expect("store");
    let next = slot(&clock) + 1;
    let claim = store
        .claim_slot(next, "crashed-replica", 3_000_000)
        .await
        .expect("claim");
    assert_eq!(claim, gateway::store::snapshot::Claim::Claimed);
    clock.advance(HOUR);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        snapshots(&first).await.len(),
        2,
        "held by the crashed replica's lease"
    );
    exactly(&second, 3).await;

    // One replica alone carries on.
    first.stop().await;
    clock.advance(HOUR);
    exactly(&second, 4).await;
}

/// The next message of `stream`, unless `wait` passes first.
async fn next(
    stream: &mut tonic::Streaming<Posture>,
    wait: Duration,
) -> Result<Result<Option<Posture>, tonic::Status>, tokio::time::error::Elapsed> {
    tokio::time::timeout(wait, stream.message()).await
}

/// `who` watches the service's posture; the stream and its first message, which comes at once.
async fn watch_service(app: &App, who: &str) -> (tonic::Streaming<Posture>, Posture) {
    let mut stream = app
        .posture_as(who)
        .watch_posture(WatchPostureRequest {
            scope: SERVICE.into(),
            top_n: 0,
        })
        .await
        .expect("watch")
        .into_inner();
    let first = next(&mut stream, Duration::from_secs(5))
        .await
        .expect("first message at once")
        .expect("ok")
        .expect("a posture");
    (stream, first)
}

/// WatchPosture sends the service's posture at once, nothing while it does not change, an
/// update after a reassessment through the gateway (to every watcher of one shared feed), and
/// ends UNAUTHENTICATED once the watcher's token is revoked.
async fn watch_posture_sends_changes_only_and_rechecks_the_credential(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut config = embedded_config(&db, backend);
    config.watch_interval = Duration::from_millis(200);
    let app = start_gateway(&db, config).await;
    org_fixture(&app).await;
    let risk = create_risk(&app, new_risk("Token theft", "exchange-online")).await;
    assess(&app, &risk.name, 2, 2, 2).await;

    let err = app
        .posture_as("scoped")
        .watch_posture(WatchPostureRequest {
            scope: "enterprise".into(),
            top_n: 0,
        })
        .await
        .expect_err("scoped to its services");
    assert_refused(&err, Code::PermissionDenied, SERVICE);

    let (mut stream, first) = watch_service(&app, "viewer").await;
    let severity_of = |p: &Posture| {
        p.root
            .as_ref()
            .and_then(|r| r.risks.as_ref())
            .map(|r| {
                r.by_severity
                    .iter()
                    .filter(|c| c.count > 0)
                    .map(|c| c.severity)
                    .collect::<Vec<_>>()
            })
            .expect("risk figures")
    };
    let before = severity_of(&first);

    // Five intervals without a change: nothing.
    assert!(
        next(&mut stream, Duration::from_secs(1)).await.is_err(),
        "no message while nothing changes"
    );

    // A second watcher with the same view shares the computation: it gets the same answer,
    // computed at the same time, at once.
    let (mut shared, joined) = watch_service(&app, "reporter").await;
    assert_eq!(joined, first, "one computation for both watchers");

    let reassessed = assess(&app, &risk.name, 5, 5, 3).await;
    let update = next(&mut stream, Duration::from_secs(5))
        .await
        .expect("an update after the reassessment")
        .expect("ok")
        .expect("a posture");
    let after = severity_of(&update);
    assert_ne!(after, before);
    assert_eq!(
        after,
        vec![reassessed.latest_assessment.expect("assessed").severity]
    );
    let shared_update = next(&mut shared, Duration::from_secs(5))
        .await
        .expect("the other watcher's update")
        .expect("ok")
        .expect("a posture");
    assert_eq!(shared_update, update);

    // Revoke the viewer's token: the stream ends UNAUTHENTICATED.
    let text = std::fs::read_to_string(&db.tokens.path).expect("tokens file");
    let revoked = text.replacen(
        "principal = \"viewer@example.com\"\n",
        "principal = \"viewer@example.com\"\nrevoked = true\n",
        1,
    );
    assert_ne!(revoked, text);
    std::fs::write(&db.tokens.path, revoked).expect("revoke");
    let end = loop {
        match next(&mut stream, Duration::from_secs(10))
            .await
            .expect("the stream ends within the reload interval")
        {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(end.code(), Code::Unauthenticated, "{}", end.message());
}
