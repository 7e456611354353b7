//! Optimistic concurrency and idempotent retries under concurrent load.

use assurance_proto::risk::v1 as pb;
use futures::future::join_all;
use prost_types::FieldMask;
use risk_service::domain::scoring::Methodology;
use tonic::Code;

use crate::helpers::*;

async fn concurrent_updates_with_one_etag_let_exactly_one_win(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    org_fixture(&app).await;
    let risk = create_risk(&app, new_risk("Shared admin password", "exchange-online")).await;

    let attempts = (0..8).map(|i| {
        let mut client = app.risks();
        let risk = risk.clone();
        async move {
            client
                .update_risk(pb::UpdateRiskRequest {
                    risk: Some(pb::Risk {
                        name: risk.name.clone(),
                        title: format!("writer {i}"),
                        etag: risk.etag.clone(),
                        ..Default::default()
                    }),
                    update_mask: Some(FieldMask {
                        paths: vec!["title".into()],
                    }),
                })
                .await
        }
    });
    let results = join_all(attempts).await;
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one writer wins: {results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(r.code(), Code::Aborted, "{r:?}");
    }
    let stored = get_risk(&app, &risk.name).await;
    assert_eq!(stored.title, winners[0].get_ref().title);
    assert_eq!(stored.etag, "\"2\"");
}

async fn concurrent_retries_of_one_create_make_one_risk(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    org_fixture(&app).await;
    let request = pb::CreateRiskRequest {
        risk: Some(new_risk("Token replay", "exchange-online")),
        request_id: "scanner-42:finding-7".into(),
    };
    let retries = (0..10).map(|_| {
        let mut client = app.risks();
        let request = request.clone();
        async move { client.create_risk(request).await.map(|r| r.into_inner()) }
    });
    let results = join_all(retries).await;
    let first = results[0].as_ref().expect("create").clone();
    for r in &results {
        assert_eq!(r.as_ref().expect("every retry succeeds"), &first);
    }
    // A later retry still answers with the same risk.
    let later = app
        .risks()
        .create_risk(request)
        .await
        .expect("late retry")
        .into_inner();
    assert_eq!(later.name, first.name);
    let listed = app
        .risks()
        .list_risks(pb::ListRisksRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.risks.len(), 1, "one risk, never a duplicate");
}

async fn request_id_reused_for_another_request_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    org_fixture(&app).await;
    let mut client = app.risks();
    client
        .create_risk(pb::CreateRiskRequest {
            risk: Some(new_risk("First", "exchange-online")),
            request_id: "req-1".into(),
        })
        .await
        .expect("create");
    let err = client
        .create_risk(pb::CreateRiskRequest {
            risk: Some(new_risk("Second", "exchange-online")),
            request_id: "req-1".into(),
        })
        .await
        .expect_err("reused id");
    assert_reason(&err, Code::InvalidArgument, "REQUEST_ID_REUSED");
    assert_eq!(violations(&err), ["request_id"]);
}

async fn retried_assessment_is_recorded_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    org_fixture(&app).await;
    let risk = create_risk(&app, new_risk("Open S3 bucket", "exchange-online")).await;
    let request = pb::AssessRiskRequest {
        name: risk.name.clone(),
        assessment: Some(pb::Assessment {
            impact: 3,
            likelihood: 4,
            control_deficiency: 2,
            assessor: "a@example.com".into(),
            ..Default::default()
        }),
        request_id: "assess-1".into(),
        derive_control_deficiency: false,
    };
    let results = join_all((0..6).map(|_| {
        let mut client = app.risks();
        let request = request.clone();
        async move { client.assess_risk(request).await.map(|r| r.into_inner()) }
    }))
    .await;
    for r in &results {
        assert_eq!(
            r.as_ref().expect("retry ok").status,
            pb::RiskStatus::Assessed as i32
        );
    }
    assert_eq!(assessment_history(&app, &risk.name).await.len(), 1);
}

async fn concurrent_creates_and_assessments_commit_consistently(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    org_fixture(&app).await;

    // 40 creates at once (they share commits), one of them naming an unknown service.
    let creates = join_all((0..40).map(|i| {
        let mut client = app.risks();
        async move {
            let service = if i == 7 { "nope" } else { "exchange-online" };
            client
                .create_risk(pb::CreateRiskRequest {
                    risk: Some(new_risk(&format!("Batch risk {i}"), service)),
                    request_id: format!("batch-{i}"),
                })
                .await
                .map(|r| r.into_inner())
        }
    }))
    .await;
    let mut risks = Vec::new();
    for (i, r) in creates.into_iter().enumerate() {
        match r {
            Ok(risk) => risks.push(risk),
            Err(e) => {
                assert_eq!(i, 7, "only the bad one fails: {e}");
                assert_eq!(violations(&e), ["risk.service"]);
            }
        }
    }
    assert_eq!(risks.len(), 39);
    let distinct: std::collections::HashSet<_> = risks.iter().map(|r| r.name.clone()).collect();
    assert_eq!(distinct.len(), 39);

    // 5 assessments of each of 8 risks, all at once: each lands, in some order.
    let targets: Vec<String> = risks.iter().take(8).map(|r| r.name.clone()).collect();
    let app_ref = &app;
    let assessments = join_all(targets.iter().flat_map(|name| {
        (1..=5).map(move |k| {
            let mut client = app_ref.risks();
            let name = name.clone();
            async move {
                client
                    .assess_risk(pb::AssessRiskRequest {
                        name,
                        assessment: Some(pb::Assessment {
                            impact: k,
                            likelihood: 2,
                            control_deficiency: 3,
                            assessor: "a@example.com".into(),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                        derive_control_deficiency: false,
                    })
                    .await
                    .map(|r| r.into_inner())
            }
        })
    }))
    .await;
    assert!(assessments.iter().all(Result::is_ok), "{assessments:?}");
    for name in &targets {
        let risk = get_risk(&app, name).await;
        assert_eq!(risk.etag, "\"6\"", "created at 1, then five assessments");
        assert_eq!(risk.status, pb::RiskStatus::Assessed as i32);
        let history = app
            .risks()
            .list_assessments(pb::ListAssessmentsRequest {
                parent: name.clone(),
                order_by: "assess_time desc".into(),
                ..Default::default()
            })
            .await
            .expect("history")
            .into_inner();
        let mut impacts: Vec<i32> = history.assessments.iter().map(|a| a.impact).collect();
        assert_eq!(
            Some(history.assessments[0].clone()),
            risk.latest_assessment,
            "latest is newest"
        );
        impacts.sort();
        assert_eq!(impacts, [1, 2, 3, 4, 5]);
    }
    // Retrying every create answers with the same risks and makes none.
    for (i, risk) in risks.iter().enumerate() {
        let i = if i >= 7 { i + 1 } else { i };
        let again = app
            .risks()
            .create_risk(pb::CreateRiskRequest {
                risk: Some(new_risk(&format!("Batch risk {i}"), "exchange-online")),
                request_id: format!("batch-{i}"),
            })
            .await
            .expect("retry")
            .into_inner();
        assert_eq!(again.name, risk.name);
    }
    let all = app
        .risks()
        .list_risks(pb::ListRisksRequest {
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(all.risks.len(), 39);
}

crate::on_both_backends!(
    concurrent_updates_with_one_etag_let_exactly_one_win,
    concurrent_retries_of_one_create_make_one_risk,
    request_id_reused_for_another_request_is_refused,
    retried_assessment_is_recorded_once,
    concurrent_creates_and_assessments_commit_consistently,
);
