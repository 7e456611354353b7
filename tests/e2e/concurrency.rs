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

/// AIP-155: a request id belongs to the principal that sent it. Another principal reusing it
/// neither gets the first one's resource back nor is refused: it is a request of its own.
async fn request_ids_are_per_principal(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    org_fixture(&app).await;
    let request = |title: &str| pb::CreateRiskRequest {
        risk: Some(new_risk(title, "exchange-online")),
        request_id: "req-shared".into(),
    };
    let alices = app
        .risks_as("admin")
        .create_risk(request("Token replay"))
        .await
        .expect("admin creates")
        .into_inner();
    let bobs = app
        .risks_as("admin2")
        .create_risk(request("Token replay"))
        .await
        .expect("admin2 reusing admin's request id creates its own risk")
        .into_inner();
    assert_ne!(bobs.name, alices.name, "never the other principal's risk");
    // Each principal's retry answers with its own risk; a reuse with another payload is refused
    // for that principal alone.
    for (who, mine) in [("admin", &alices), ("admin2", &bobs)] {
        let again = app
            .risks_as(who)
            .create_risk(request("Token replay"))
            .await
            .expect("retry")
            .into_inner();
        assert_eq!(again.name, mine.name, "{who}'s retry");
        let err = app
            .risks_as(who)
            .create_risk(request("Something else"))
            .await
            .expect_err("reused id, other payload");
        assert_reason(&err, Code::InvalidArgument, "REQUEST_ID_REUSED");
    }
    // The same id from two principals at once (one group commit): two risks.
    let (mut owner, mut manager) = (app.risks_as("risk_owner"), app.risks_as("service_manager"));
    let (a, b) = tokio::join!(
        owner.create_risk(request("Concurrent")),
        manager.create_risk(request("Concurrent")),
    );
    let (a, b) = (
        a.expect("risk_owner").into_inner(),
        b.expect("service_manager").into_inner(),
    );
    assert_ne!(a.name, b.name);
    // admin2's create is in the audit trail as admin2's.
    let events = read_audit_trail(&app, "trust_team", &format!("resource = \"{}\"", bobs.name))
        .await
        .expect("trail");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].principal, "admin2@example.com");
    assert_eq!(events[0].request_id, "req-shared");
}

/// Principals are compared as normalised at the edge: a response proposed on behalf of
/// " Risk_Owner@Example.COM " cannot be approved by risk_owner@example.com, the same person.
async fn principals_are_normalised_before_any_comparison(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    org_fixture(&app).await;
    let risk = create_risk(&app, new_risk("Shared mailbox", "exchange-online")).await;
    assess(&app, &risk.name, 1, 2, 1).await;
    let relay = assurance_runtime::auth::client::Bearer::new(
        app.channel.clone(),
        app.tokens.token("system"),
    )
    .expect("header")
    .on_behalf_of("  Risk_Owner@Example.COM ")
    .expect("header");
    let proposed = pb::risk_service_client::RiskServiceClient::new(relay)
        .create_risk_response(pb::CreateRiskResponseRequest {
            parent: risk.name.clone(),
            response: Some(mitigation("Move the mailbox behind MFA")),
            request_id: String::new(),
        })
        .await
        .expect("the system proposes for the risk owner")
        .into_inner();
    assert_eq!(
        proposed.proposer, "risk_owner@example.com",
        "stored normalised"
    );
    // Principal-valued fields of requests are normalised the same way before storage.
    let mut owned = new_risk("Mixed-case owner", "exchange-online");
    owned.owner = "  Risk_Owner@Example.COM ".into();
    let owned = create_risk(&app, owned).await;
    assert_eq!(owned.owner, "risk_owner@example.com");
    let found = app
        .risks()
        .list_risks(pb::ListRisksRequest {
            filter: "owner = \"risk_owner@example.com\"".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert!(
        found.risks.iter().any(|r| r.name == owned.name),
        "found by its normalised owner"
    );
    let err = app
        .risks()
        .create_risk(pb::CreateRiskRequest {
            risk: Some(pb::Risk {
                owner: "risk owner@example.com".into(),
                ..new_risk("Space inside", "exchange-online")
            }),
            request_id: String::new(),
        })
        .await
        .expect_err("inner whitespace is still refused");
    assert_eq!(violations(&err), ["risk.owner"]);
    let err = approve_response(&app, "risk_owner", &proposed.name)
        .await
        .expect_err("the proposer approving their own response");
    assert_reason(&err, Code::FailedPrecondition, "SELF_APPROVAL");
    approve_response(&app, "trust_team", &proposed.name)
        .await
        .expect("someone else approves");
}

/// A retried DeclareIncident answers with the incident the first attempt declared (it used to
/// answer NOT_FOUND, looking for the incident the retry would have made).
async fn a_retried_declaration_returns_the_declared_incident(backend: Backend) {
    use assurance_proto::incident::v1 as ipb;
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let request = ipb::DeclareIncidentRequest {
        request_id: "siem-4711".into(),
        incident: Some(ipb::Incident {
            title: "Finance admin account takeover".into(),
            classification: ipb::Classification::SecurityIncident as i32,
            functional_impact: ipb::FunctionalImpact::Low as i32,
            information_impacts: vec![ipb::InformationImpact::None as i32],
            recoverability: ipb::Recoverability::Regular as i32,
            affected_services: vec!["services/exchange-online".into()],
            ..Default::default()
        }),
    };
    let first = app
        .incidents()
        .declare_incident(request.clone())
        .await
        .expect("declare")
        .into_inner();
    let again = app
        .incidents()
        .declare_incident(request)
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(again.name, first.name);
    let all = app
        .incidents()
        .list_incidents(ipb::ListIncidentsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(all.incidents.len(), 1, "one incident, never a duplicate");
}

crate::on_both_backends!(
    concurrent_updates_with_one_etag_let_exactly_one_win,
    concurrent_retries_of_one_create_make_one_risk,
    request_id_reused_for_another_request_is_refused,
    retried_assessment_is_recorded_once,
    concurrent_creates_and_assessments_commit_consistently,
    request_ids_are_per_principal,
    principals_are_normalised_before_any_comparison,
    a_retried_declaration_returns_the_declared_incident,
);
