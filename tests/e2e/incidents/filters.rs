//! AIP-160 filters on the growing lists of an incident: evidence, custody records, indicators,
//! timeline events.

use assurance_proto::incident::v1 as pb;

use super::*;

crate::on_both_backends!(child_lists_take_filters,);

async fn child_lists_take_filters(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, new_incident("Stolen laptop")).await;
    let mut c = app.incidents();
    for (value, tlp) in [
        ("198.51.100.1", pb::Tlp::Red),
        ("198.51.100.2", pb::Tlp::Green),
    ] {
        c.create_indicator(pb::CreateIndicatorRequest {
            parent: declared.name.clone(),
            indicator: Some(pb::Indicator {
                r#type: pb::IndicatorType::Ip as i32,
                value: value.into(),
                tlp: tlp as i32,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("indicator");
    }
    let shareable = c
        .list_indicators(pb::ListIndicatorsRequest {
            parent: declared.name.clone(),
            filter: "tlp <= GREEN".into(),
            ..Default::default()
        })
        .await
        .expect("filtered")
        .into_inner();
    assert_eq!(
        shareable
            .indicators
            .iter()
            .map(|i| i.value.as_str())
            .collect::<Vec<_>>(),
        ["198.51.100.2"]
    );
    let evidence = c
        .create_evidence(pb::CreateEvidenceRequest {
            parent: declared.name.clone(),
            evidence: Some(pb::Evidence {
                description: "Laptop image".into(),
                hash: "d41d8cd98f00b204e9800998ecf8427e".into(),
                location: "vault-1".into(),
                collector: "kim@example.com".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("evidence")
        .into_inner();
    let by = |custodian: &str| {
        let mut c = app.incidents();
        let request = pb::ListEvidenceRequest {
            parent: declared.name.clone(),
            filter: format!("custodian = \"{custodian}\""),
            ..Default::default()
        };
        async move {
            c.list_evidence(request)
                .await
                .expect("list")
                .into_inner()
                .evidence
                .len()
        }
    };
    assert_eq!(by("kim@example.com").await, 1);
    assert_eq!(by("lab@example.com").await, 0);
    c.create_custody_record(pb::CreateCustodyRecordRequest {
        evidence: evidence.name.clone(),
        custody_record: Some(pb::CustodyRecord {
            to_custodian: "lab@example.com".into(),
            purpose: "imaging".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .expect("custody");
    let transfers = c
        .list_custody_records(pb::ListCustodyRecordsRequest {
            parent: evidence.name.clone(),
            filter: "to_custodian = \"lab@example.com\"".into(),
            ..Default::default()
        })
        .await
        .expect("custody list")
        .into_inner();
    assert_eq!(transfers.custody_records.len(), 1);
    c.create_timeline_event(pb::CreateTimelineEventRequest {
        parent: declared.name.clone(),
        summary: "Laptop recovered.".into(),
        request_id: String::new(),
    })
    .await
    .expect("note");
    let notes = c
        .list_timeline_events(pb::ListTimelineEventsRequest {
            parent: declared.name.clone(),
            filter: "kind = NOTE".into(),
            ..Default::default()
        })
        .await
        .expect("notes")
        .into_inner();
    assert_eq!(
        notes
            .timeline_events
            .iter()
            .map(|e| e.summary.as_str())
            .collect::<Vec<_>>(),
        ["Laptop recovered."]
    );
    // order_by: newest first, paged one at a time.
    let newest_first = names_in_pages_of_one(|page_token| {
        let mut c = app.incidents();
        let request = pb::ListTimelineEventsRequest {
            parent: declared.name.clone(),
            order_by: "sequence desc".into(),
            page_size: 1,
            page_token,
            ..Default::default()
        };
        async move {
            let page = c
                .list_timeline_events(request)
                .await
                .expect("page")
                .into_inner();
            (
                page.timeline_events.into_iter().map(|e| e.name).collect(),
                page.next_page_token,
            )
        }
    })
    .await;
    let mut oldest_first = newest_first.clone();
    oldest_first.reverse();
    let listed: Vec<String> = c
        .list_timeline_events(pb::ListTimelineEventsRequest {
            parent: declared.name.clone(),
            ..Default::default()
        })
        .await
        .expect("default order")
        .into_inner()
        .timeline_events
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(listed, oldest_first);
    assert!(listed.len() >= 5, "{listed:?}");
    let newest_indicators: Vec<String> = c
        .list_indicators(pb::ListIndicatorsRequest {
            parent: declared.name.clone(),
            order_by: "create_time desc".into(),
            ..Default::default()
        })
        .await
        .expect("indicators desc")
        .into_inner()
        .indicators
        .into_iter()
        .map(|i| i.value)
        .collect();
    assert_eq!(newest_indicators, ["198.51.100.2", "198.51.100.1"]);
    let err = c
        .list_timeline_events(pb::ListTimelineEventsRequest {
            parent: declared.name.clone(),
            filter: "colour = RED".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown field");
    assert_eq!(violations(&err), ["filter"]);
}
