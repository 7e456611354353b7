//! Incident metrics: counts and times over a scope.

use assurance_proto::incident::v1 as pb;
use assurance_proto::r#type::v1 as tpb;

use super::*;

crate::on_both_backends!(metrics_count_and_time_incidents_in_a_scope,);

async fn metrics_count_and_time_incidents_in_a_scope(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let detected = now - 3600;
    let mut names = Vec::new();
    // Ten incidents detected i minutes after they occurred; odd ones without a privacy breach.
    for i in 1..=10i64 {
        let mut inc = new_incident(&format!("Metric incident {i}"));
        inc.occur_time = Some(prost_types::Timestamp {
            seconds: detected - 60 * i,
            nanos: 0,
        });
        inc.detect_time = Some(prost_types::Timestamp {
            seconds: detected,
            nanos: 0,
        });
        if i % 2 == 1 {
            inc.information_impacts = vec![pb::InformationImpact::None as i32];
            inc.affected_services = vec!["services/sharepoint".into()];
        }
        names.push(declare(&app, inc).await.name);
    }
    for name in &names[..2] {
        app.incidents()
            .update_incident(pb::UpdateIncidentRequest {
                incident: Some(pb::Incident {
                    name: name.clone(),
                    classification: pb::Classification::NotAnIncident as i32,
                    ..Default::default()
                }),
                update_mask: None,
            })
            .await
            .expect("classify");
        close(&app, name, "false positive").await.expect("close");
    }
    let metrics = |request: pb::GetIncidentMetricsRequest| {
        let mut client = app.incidents();
        async move {
            client
                .get_incident_metrics(request)
                .await
                .expect("metrics")
                .into_inner()
        }
    };
    let all = metrics(pb::GetIncidentMetricsRequest::default()).await;
    assert_eq!((all.total, all.open), (10, 8));
    let detect = all.time_to_detect.expect("time to detect");
    assert_eq!(detect.count, 10);
    // Mean of 1..10 minutes is 5.5 minutes; the nearest-rank p90 of ten values is the 9th.
    assert_eq!(detect.mean.map(|d| (d.seconds, d.nanos)), Some((330, 0)));
    assert_eq!(detect.p90.map(|d| (d.seconds, d.nanos)), Some((540, 0)));
    assert_eq!(all.total_time.expect("total").count, 2);
    assert_eq!(all.time_to_contain.expect("contain").count, 0);
    let phases: Vec<(i32, i64)> = all.by_phase.iter().map(|p| (p.phase, p.count)).collect();
    assert_eq!(
        phases,
        [
            (pb::Phase::DetectionAnalysis as i32, 8),
            (pb::Phase::Closed as i32, 2)
        ]
    );
    let severities: Vec<(i32, i64)> = all
        .by_severity
        .iter()
        .map(|s| (s.severity, s.count))
        .collect();
    assert_eq!(
        severities,
        [
            (tpb::Severity::Low as i32, 5),
            (tpb::Severity::High as i32, 5)
        ]
    );

    let sharepoint = metrics(pb::GetIncidentMetricsRequest {
        service: "services/sharepoint".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(sharepoint.total, 5);
    let sp_detect = sharepoint.time_to_detect.expect("detect");
    // Odd minutes 1, 3, 5, 7, 9: mean 5, p90 (5th of five) 9.
    assert_eq!(sp_detect.mean.map(|d| d.seconds), Some(300));
    assert_eq!(sp_detect.p90.map(|d| d.seconds), Some(540));
    let high = metrics(pb::GetIncidentMetricsRequest {
        severity: tpb::Severity::High as i32,
        ..Default::default()
    })
    .await;
    assert_eq!(high.total, 5);
    let future = metrics(pb::GetIncidentMetricsRequest {
        start_time: Some(prost_types::Timestamp {
            seconds: now + 86_400,
            nanos: 0,
        }),
        ..Default::default()
    })
    .await;
    assert_eq!(future.total, 0);
    assert!(future.time_to_detect.expect("empty").mean.is_none());
}
