//! Indicators of compromise: normalised on entry and swept across incidents.

use assurance_proto::incident::v1 as pb;
use tonic::Code;

use super::*;

crate::on_both_backends!(indicators_are_normalised_and_swept_across_incidents,);

async fn indicators_are_normalised_and_swept_across_incidents(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let first = declare(&app, new_incident("Beaconing from build agents")).await;
    let second = declare(&app, new_incident("Phishing landing page")).await;
    let add = |parent: &str, kind: pb::IndicatorType, value: &str, request_id: &str| {
        let mut client = app.incidents();
        let request = pb::CreateIndicatorRequest {
            parent: parent.into(),
            indicator: Some(pb::Indicator {
                r#type: kind as i32,
                value: value.into(),
                tlp: pb::Tlp::Amber as i32,
                description: "C2 address".into(),
                ..Default::default()
            }),
            request_id: request_id.into(),
        };
        async move {
            client
                .create_indicator(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let ip = add(
        &first.name,
        pb::IndicatorType::Ip,
        "198.51.100[.]7",
        "ioc-1",
    )
    .await
    .expect("add defanged ip");
    assert_eq!(ip.value, "198.51.100.7");
    assert!(ip.name.starts_with(&format!("{}/indicators/", first.name)));
    assert_eq!(
        add(
            &first.name,
            pb::IndicatorType::Ip,
            "198.51.100[.]7",
            "ioc-1"
        )
        .await
        .expect("retry"),
        ip
    );
    let err = add(&first.name, pb::IndicatorType::Ip, " 198.51.100.7 ", "")
        .await
        .expect_err("same indicator twice");
    assert_eq!(err.code(), Code::AlreadyExists);
    add(&first.name, pb::IndicatorType::Domain, "Evil.Example.", "")
        .await
        .expect("domain");
    add(&second.name, pb::IndicatorType::Ip, "198.51.100.7", "")
        .await
        .expect("same ip elsewhere");
    let err = add(&second.name, pb::IndicatorType::FileHash, "not-a-hash", "")
        .await
        .expect_err("bad hash");
    assert_eq!(violations(&err), ["indicator.value"]);

    let swept = app
        .incidents()
        .search_indicators(pb::SearchIndicatorsRequest {
            r#type: pb::IndicatorType::Ip as i32,
            value: "198.51.100.7".into(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .expect("sweep")
        .into_inner();
    assert_eq!(swept.matches.len(), 1);
    let rest = app
        .incidents()
        .search_indicators(pb::SearchIndicatorsRequest {
            r#type: pb::IndicatorType::Ip as i32,
            value: "198.51.100.7".into(),
            page_size: 1,
            page_token: swept.next_page_token.clone(),
        })
        .await
        .expect("second page")
        .into_inner();
    let matches: Vec<&pb::IndicatorMatch> = swept.matches.iter().chain(&rest.matches).collect();
    let incidents: Vec<String> = matches
        .iter()
        .map(|m| {
            let name = m
                .indicator
                .as_ref()
                .map(|i| i.name.clone())
                .unwrap_or_default();
            assert!(name.starts_with(&format!("{}/indicators/", m.incident)));
            m.incident.clone()
        })
        .collect();
    assert_eq!(incidents, [first.name.clone(), second.name.clone()]);
    // Each match carries its incident's title and phase: a sweep needs no GetIncident per match.
    assert_eq!(
        matches
            .iter()
            .map(|m| (m.incident_title.as_str(), m.incident_phase))
            .collect::<Vec<_>>(),
        [
            (first.title.as_str(), pb::Phase::DetectionAnalysis as i32),
            (second.title.as_str(), pb::Phase::DetectionAnalysis as i32)
        ]
    );
    let domain = app
        .incidents()
        .search_indicators(pb::SearchIndicatorsRequest {
            r#type: pb::IndicatorType::Domain as i32,
            value: "evil[.]example".into(),
            ..Default::default()
        })
        .await
        .expect("domain sweep")
        .into_inner();
    assert_eq!(domain.matches.len(), 1);
    let listed = app
        .incidents()
        .list_indicators(pb::ListIndicatorsRequest {
            parent: first.name.clone(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.indicators.len(), 2);
    let timeline = app
        .incidents()
        .list_timeline_events(pb::ListTimelineEventsRequest {
            parent: first.name.clone(),
            ..Default::default()
        })
        .await
        .expect("timeline")
        .into_inner();
    assert!(
        timeline
            .timeline_events
            .iter()
            .any(|e| e.summary == "indicator added: ip 198.51.100.7")
    );
}
