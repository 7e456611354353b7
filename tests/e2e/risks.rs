//! The risk register through a real risk-service: lifecycle, scoring, validation.

use assurance_proto::risk::v1 as pb;
use assurance_proto::r#type::v1 as tv;
use prost_types::FieldMask;
use risk_service::domain::scoring::Methodology;
use tonic::Code;

use crate::helpers::*;

/// An assessment says whether its control deficiency was derived (`derive_control_deficiency`,
/// from the linked controls: none → 5) or given; the risk's latest assessment and the history
/// agree, and a value sent in the output-only field is ignored.
async fn an_assessment_records_whether_its_control_deficiency_was_derived(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    org_fixture(&app).await;
    let risk = create_risk(&app, new_risk("Weak TLS", "exchange-online")).await;
    let derived = app
        .risks()
        .assess_risk(pb::AssessRiskRequest {
            name: risk.name.clone(),
            assessment: Some(pb::Assessment {
                control_deficiency_derived: false,
                ..assessment(3, 3, 0)
            }),
            request_id: String::new(),
            derive_control_deficiency: true,
        })
        .await
        .expect("derive")
        .into_inner()
        .latest_assessment
        .expect("assessed");
    assert_eq!(derived.control_deficiency, 5);
    assert!(derived.control_deficiency_derived);
    let given = app
        .risks()
        .assess_risk(pb::AssessRiskRequest {
            name: risk.name.clone(),
            assessment: Some(pb::Assessment {
                control_deficiency_derived: true,
                ..assessment(3, 3, 2)
            }),
            request_id: String::new(),
            derive_control_deficiency: false,
        })
        .await
        .expect("given")
        .into_inner()
        .latest_assessment
        .expect("assessed");
    assert_eq!(given.control_deficiency, 2);
    assert!(!given.control_deficiency_derived);
    let history: Vec<(i32, bool)> = assessment_history(&app, &risk.name)
        .await
        .iter()
        .map(|a| (a.control_deficiency, a.control_deficiency_derived))
        .collect();
    assert_eq!(history, [(2, false), (5, true)]);
    let got = app
        .risks()
        .get_assessment(pb::GetAssessmentRequest {
            name: derived.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got, derived);
}

/// Every `expected` field path is among the violations of `err` (INVALID_ARGUMENT).
#[track_caller]
fn violations_name(err: tonic::Status, expected: &[&str]) {
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let got = violations(&err);
    for field in expected {
        assert!(
            got.iter().any(|g| g == field),
            "{field} missing from {got:?}"
        );
    }
}

/// Empty requests to the risk register's and the org registry's RPCs name every REQUIRED field
/// (of the request, and of its REQUIRED messages on creates); output-only fields satisfy none.
async fn empty_requests_name_every_required_field(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    let mut r = app.risks_as("admin");
    let risk_fields = [
        "risk",
        "risk.title",
        "risk.service",
        "risk.threat",
        "risk.identification_source",
        "risk.owner",
    ];
    let err = r
        .create_risk(pb::CreateRiskRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &risk_fields);
    let err = r
        .create_risk(pb::CreateRiskRequest {
            risk: Some(pb::Risk {
                business_unit: "businessUnits/x".into(),
                status: 42,
                close_reason: "\u{7}".into(),
                latest_assessment: Some(pb::Assessment::default()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("output only");
    violations_name(err, &risk_fields[1..]);
    let err = r
        .get_risk(pb::GetRiskRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["name"]);
    let err = r
        .update_risk(pb::UpdateRiskRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["risk"]);
    let err = r
        .delete_risk(pb::DeleteRiskRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["name", "reason"]);
    let assessment_fields = [
        "assessment.impact",
        "assessment.likelihood",
        "assessment.assessor",
    ];
    let err = r
        .assess_risk(pb::AssessRiskRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["name", "assessment"]);
    let err = r
        .assess_risk(pb::AssessRiskRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &assessment_fields);
    let err = r
        .assess_risk(pb::AssessRiskRequest {
            assessment: Some(pb::Assessment {
                score: 9,
                severity: 3,
                policy: "\u{7}".into(),
                control_deficiency_derived: true,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("output only");
    violations_name(err, &assessment_fields);
    let err = r
        .list_assessments(pb::ListAssessmentsRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["parent"]);
    let err = r
        .get_assessment(pb::GetAssessmentRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["name"]);
    let response_fields = [
        "parent",
        "response",
        "response.decision",
        "response.rationale",
    ];
    let err = r
        .create_risk_response(pb::CreateRiskResponseRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &response_fields);
    let err = r
        .create_risk_response(pb::CreateRiskResponseRequest {
            response: Some(pb::RiskResponse {
                strategy: 2,
                state: 2,
                proposer: "\u{7}".into(),
                expired: true,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("output only");
    violations_name(err, &["parent", "response.decision", "response.rationale"]);
    // Decisions are validated for their deciders (admin approves nothing).
    let mut decider = app.risks_as("trust_team");
    let err = decider
        .approve_risk_response(pb::ApproveRiskResponseRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["name"]);
    let err = decider
        .reject_risk_response(pb::RejectRiskResponseRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["name", "reason"]);
    let err = r
        .list_risk_responses(pb::ListRiskResponsesRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["parent"]);
    let err = r
        .get_risk_response(pb::GetRiskResponseRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["name"]);
    let err = r
        .list_decisions(pb::ListDecisionsRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["parent"]);
    let err = r
        .get_decision(pb::GetDecisionRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["name"]);
    let err = r
        .create_action_plan(pb::CreateActionPlanRequest::default())
        .await
        .expect_err("empty");
    violations_name(
        err,
        &[
            "parent",
            "action_plan",
            "action_plan.title",
            "action_plan.owner",
        ],
    );
    let err = r
        .create_action_plan(pb::CreateActionPlanRequest {
            action_plan: Some(pb::ActionPlan {
                item_count: 3,
                open_item_count: -1,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("output only");
    violations_name(err, &["parent", "action_plan.title", "action_plan.owner"]);
    let err = r
        .update_action_plan(pb::UpdateActionPlanRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["action_plan"]);
    let err = r
        .get_action_plan(pb::GetActionPlanRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["name"]);
    let item_fields = [
        "parent",
        "action_item",
        "action_item.title",
        "action_item.owner",
        "action_item.due_time",
    ];
    let err = r
        .create_action_item(pb::CreateActionItemRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &item_fields);
    let err = r
        .create_action_item(pb::CreateActionItemRequest {
            action_item: Some(pb::ActionItem {
                overdue: true,
                service: "\u{7}".into(),
                business_unit: "x".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("output only");
    violations_name(err, &[&item_fields[..1], &item_fields[2..]].concat());
    let err = r
        .update_action_item(pb::UpdateActionItemRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["action_item"]);
    let err = r
        .list_action_items(pb::ListActionItemsRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["parent"]);
    let err = r
        .get_action_item(pb::GetActionItemRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["name"]);

    let mut o = app.org_as("admin");
    let err = o
        .create_business_unit(pb::CreateBusinessUnitRequest::default())
        .await
        .expect_err("empty");
    violations_name(
        err,
        &[
            "business_unit_id",
            "business_unit",
            "business_unit.display_name",
        ],
    );
    let err = o
        .get_business_unit(pb::GetBusinessUnitRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["name"]);
    let err = o
        .update_business_unit(pb::UpdateBusinessUnitRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["business_unit"]);
    let err = o
        .delete_business_unit(pb::DeleteBusinessUnitRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["name"]);
    let err = o
        .create_service(pb::CreateServiceRequest {
            service: Some(pb::Service {
                etag: String::new(),
                create_time: Some(days(0)),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("output only");
    violations_name(
        err,
        &[
            "service_id",
            "service.business_unit",
            "service.display_name",
        ],
    );
    let err = o
        .create_service(pb::CreateServiceRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["service_id", "service"]);
    let err = o
        .get_service(pb::GetServiceRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["name"]);
    let err = o
        .update_service(pb::UpdateServiceRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["service"]);
    let err = o
        .delete_service(pb::DeleteServiceRequest::default())
        .await
        .expect_err("empty");
    violations_name(err, &["name"]);
}

crate::on_both_backends!(
    risk_lifecycle_create_assess_update_close,
    invalid_creates_and_names_are_refused_field_by_field,
    invalid_assessments_updates_and_closes_leave_the_risk_unchanged,
    closed_risks_refuse_changes_naming_allowed_moves,
    nist_methodology_records_level_of_risk,
    data_survives_a_restart,
    an_assessment_records_whether_its_control_deficiency_was_derived,
    empty_requests_name_every_required_field,
);

async fn risk_lifecycle_create_assess_update_close(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    org_fixture(&app).await;
    let mut client = app.risks();

    let mut input = new_risk("Credential stuffing on OWA", "exchange-online");
    input.labels.insert("env".into(), "prod".into());
    let created = create_risk(&app, input).await;
    assert!(created.name.starts_with("risks/"));
    assert_eq!(created.status, pb::RiskStatus::Identified as i32);
    assert_eq!(created.business_unit, "businessUnits/productivity");
    assert_eq!(created.labels.get("env").map(String::as_str), Some("prod"));
    assert!(created.latest_assessment.is_none());
    assert_eq!(created.etag, "\"1\"");

    let got = client
        .get_risk(pb::GetRiskRequest {
            name: created.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got, created);

    // DESIGN.md's worked example (4,4,4) → 16, 64, HIGH, IMPROVE.
    let assessed = assess(&app, &created.name, 4, 4, 4).await;
    assert_eq!(assessed.status, pb::RiskStatus::Assessed as i32);
    let a = assessed
        .latest_assessment
        .clone()
        .expect("latest assessment");
    assert_eq!((a.exposure, a.score), (16, 64));
    assert_eq!(a.severity, tv::Severity::High as i32);
    assert_eq!(a.strategy, pb::ResponseStrategy::Improve as i32);
    assert_eq!(a.methodology, pb::Methodology::Standard as i32);
    assert_eq!(a.risk_level, pb::RiskLevel::Unspecified as i32);
    assert!(a.policy.starts_with("standard-"));
    assert!(a.assess_time.is_some());
    assert_ne!(assessed.etag, created.etag);

    // (5,5,2) → 25, 50, HIGH, MONITOR; the history lists newest first.
    let reassessed = assess(&app, &created.name, 5, 5, 2).await;
    let latest = reassessed.latest_assessment.clone().expect("latest");
    assert_eq!(
        (latest.score, latest.strategy),
        (50, pb::ResponseStrategy::Monitor as i32)
    );
    let history = client
        .list_assessments(pb::ListAssessmentsRequest {
            parent: created.name.clone(),
            page_size: 1,
            order_by: "assess_time desc".into(),
            ..Default::default()
        })
        .await
        .expect("list assessments")
        .into_inner();
    assert_eq!(history.assessments.len(), 1);
    assert_eq!(history.assessments[0], latest);
    let rest = client
        .list_assessments(pb::ListAssessmentsRequest {
            parent: created.name.clone(),
            page_size: 10,
            page_token: history.next_page_token.clone(),
            order_by: "assess_time desc".into(),
            ..Default::default()
        })
        .await
        .expect("second page")
        .into_inner();
    assert_eq!(rest.assessments.len(), 1);
    assert_eq!(rest.assessments[0].score, 64);
    assert!(rest.next_page_token.is_empty());

    // Update two fields with the current etag; other fields stay as they were.
    let updated = client
        .update_risk(pb::UpdateRiskRequest {
            risk: Some(pb::Risk {
                name: created.name.clone(),
                title: "Credential stuffing on OWA and EAS".into(),
                owner: "new-owner@example.com".into(),
                description: "ignored: not in the mask".into(),
                etag: reassessed.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["title".into(), "owner".into()],
            }),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.title, "Credential stuffing on OWA and EAS");
    assert_eq!(updated.owner, "new-owner@example.com");
    assert_eq!(updated.description, created.description);
    assert_eq!(updated.latest_assessment, reassessed.latest_assessment);

    // The etag we used is now stale.
    let stale = client
        .update_risk(pb::UpdateRiskRequest {
            risk: Some(pb::Risk {
                name: created.name.clone(),
                title: "lost update".into(),
                etag: reassessed.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["title".into()],
            }),
        })
        .await
        .expect_err("stale etag");
    assert_reason(&stale, Code::Aborted, "STALE_ETAG");

    // Close with a reason; the risk is kept and readable.
    let closed = client
        .delete_risk(pb::DeleteRiskRequest {
            name: created.name.clone(),
            reason: "service decommissioned".into(),
            etag: updated.etag.clone(),
        })
        .await
        .expect("close")
        .into_inner();
    assert_eq!(closed.status, pb::RiskStatus::Closed as i32);
    assert_eq!(closed.close_reason, "service decommissioned");
    assert!(closed.close_time.is_some());
    let still_there = client
        .get_risk(pb::GetRiskRequest {
            name: created.name.clone(),
        })
        .await
        .expect("closed risks are kept")
        .into_inner();
    assert_eq!(still_there.status, pb::RiskStatus::Closed as i32);
}

async fn invalid_creates_and_names_are_refused_field_by_field(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    org_fixture(&app).await;
    let mut client = app.risks();

    let mut bad = pb::Risk {
        title: " ".into(),
        service: "exchange-online".into(),
        threat: 0,
        identification_source: 99,
        owner: "two words".into(),
        category: "x".repeat(101),
        ..Default::default()
    };
    bad.labels.insert("Env".into(), "prod".into());
    let err = client
        .create_risk(pb::CreateRiskRequest {
            risk: Some(bad),
            request_id: "not valid!".into(),
        })
        .await
        .expect_err("invalid");
    assert_reason(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        [
            "request_id",
            "risk.category",
            "risk.identification_source",
            "risk.labels[Env]",
            "risk.owner",
            "risk.service",
            "risk.threat",
            "risk.title",
        ]
    );

    // Missing message, unknown service, malformed names.
    let err = client
        .create_risk(pb::CreateRiskRequest {
            risk: None,
            request_id: String::new(),
        })
        .await
        .expect_err("missing risk");
    // The missing message and, in the same answer, each of its required fields.
    assert_eq!(
        violations(&err),
        [
            "risk",
            "risk.title",
            "risk.service",
            "risk.threat",
            "risk.identification_source",
            "risk.owner"
        ]
    );
    let err = client
        .create_risk(pb::CreateRiskRequest {
            risk: Some(new_risk("t", "no-such-service")),
            request_id: String::new(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), ["risk.service"]);
    assert!(
        err.message()
            .contains("services/no-such-service does not exist"),
        "{}",
        err.message()
    );
    for name in ["", "risks/not-a-uuid", "incidents/0193", "risks/"] {
        let err = client
            .get_risk(pb::GetRiskRequest { name: name.into() })
            .await
            .expect_err("bad name");
        assert_eq!(err.code(), Code::InvalidArgument, "{name}");
        assert_eq!(violations(&err), ["name"]);
    }
    let err = client
        .get_risk(pb::GetRiskRequest {
            name: format!("risks/{}", uuid::Uuid::now_v7()),
        })
        .await
        .expect_err("absent");
    assert_reason(&err, Code::NotFound, "NOT_FOUND");
}

async fn invalid_assessments_updates_and_closes_leave_the_risk_unchanged(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    org_fixture(&app).await;
    let mut client = app.risks();

    // Assessment metrics out of range and a missing assessor.
    let risk = create_risk(&app, new_risk("Weak TLS", "exchange-online")).await;
    let err = client
        .assess_risk(pb::AssessRiskRequest {
            name: risk.name.clone(),
            assessment: Some(pb::Assessment {
                impact: 6,
                likelihood: 0,
                control_deficiency: -1,
                ..Default::default()
            }),
            request_id: String::new(),
            derive_control_deficiency: false,
        })
        .await
        .expect_err("out of range");
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        [
            "assessment.assessor",
            "assessment.control_deficiency",
            "assessment.impact",
            "assessment.likelihood"
        ]
    );
    // The control deficiency is given or derived: exactly one of the two.
    let assess_with = |deficiency: i32, derive: bool| pb::AssessRiskRequest {
        name: risk.name.clone(),
        assessment: Some(assessment(3, 3, deficiency)),
        request_id: String::new(),
        derive_control_deficiency: derive,
    };
    let err = client
        .assess_risk(assess_with(2, true))
        .await
        .expect_err("both");
    assert_eq!(violations(&err), ["derive_control_deficiency"]);
    let err = client
        .assess_risk(assess_with(0, false))
        .await
        .expect_err("neither");
    assert_eq!(violations(&err), ["assessment.control_deficiency"]);
    assert_eq!(get_risk(&app, &risk.name).await.latest_assessment, None);

    // Update: unknown and output-only mask paths, malformed etag, empty effective mask.
    for (paths, field) in [
        (vec!["status"], "update_mask"),
        (vec!["latest_assessment"], "update_mask"),
        (vec!["title", "title"], "update_mask"),
    ] {
        let err = client
            .update_risk(pb::UpdateRiskRequest {
                risk: Some(pb::Risk {
                    name: risk.name.clone(),
                    title: "x".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: paths.iter().map(|p| p.to_string()).collect(),
                }),
            })
            .await
            .expect_err("bad mask");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(violations(&err), [field]);
    }
    let err = client
        .update_risk(pb::UpdateRiskRequest {
            risk: Some(pb::Risk {
                name: risk.name.clone(),
                title: "x".into(),
                etag: "W/garbage".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .expect_err("bad etag");
    assert_eq!(violations(&err), ["risk.etag"]);
    let err = client
        .update_risk(pb::UpdateRiskRequest {
            risk: Some(pb::Risk {
                name: risk.name.clone(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["title".into()],
            }),
        })
        .await
        .expect_err("clearing a required field");
    assert_eq!(violations(&err), ["risk.title"]);

    // Close needs a reason.
    let err = client
        .delete_risk(pb::DeleteRiskRequest {
            name: risk.name.clone(),
            reason: String::new(),
            etag: String::new(),
        })
        .await
        .expect_err("no reason");
    assert_eq!(violations(&err), ["reason"]);

    // Nothing above changed the risk.
    let unchanged = client
        .get_risk(pb::GetRiskRequest {
            name: risk.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(unchanged, risk);
}

async fn closed_risks_refuse_changes_naming_allowed_moves(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    org_fixture(&app).await;
    let mut client = app.risks();
    let risk = create_risk(&app, new_risk("Stale admin accounts", "exchange-online")).await;
    client
        .delete_risk(pb::DeleteRiskRequest {
            name: risk.name.clone(),
            reason: "duplicate".into(),
            etag: String::new(),
        })
        .await
        .expect("close");

    let err = client
        .assess_risk(pb::AssessRiskRequest {
            name: risk.name.clone(),
            assessment: Some(pb::Assessment {
                impact: 2,
                likelihood: 2,
                control_deficiency: 2,
                assessor: "a@example.com".into(),
                ..Default::default()
            }),
            request_id: String::new(),
            derive_control_deficiency: false,
        })
        .await
        .expect_err("closed risks cannot be assessed");
    assert_reason(&err, Code::FailedPrecondition, "ILLEGAL_TRANSITION");
    assert_mentions(&err, "CLOSED");

    let err = client
        .delete_risk(pb::DeleteRiskRequest {
            name: risk.name.clone(),
            reason: "again".into(),
            etag: String::new(),
        })
        .await
        .expect_err("closing twice");
    assert_eq!(err.code(), Code::FailedPrecondition);

    let err = client
        .update_risk(pb::UpdateRiskRequest {
            risk: Some(pb::Risk {
                name: risk.name.clone(),
                title: "new".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .expect_err("closed risks cannot be edited");
    assert_reason(&err, Code::FailedPrecondition, "RISK_CLOSED");
}

async fn nist_methodology_records_level_of_risk(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Nist80030).await;
    org_fixture(&app).await;
    let risk = create_risk(&app, new_risk("Unpatched hypervisor", "exchange-online")).await;
    // Likelihood Moderate (3), impact High (4) → Moderate → MEDIUM.
    let assessed = assess(&app, &risk.name, 4, 3, 5).await;
    let a = assessed.latest_assessment.expect("assessment");
    assert_eq!(a.methodology, pb::Methodology::Nist80030 as i32);
    assert_eq!(a.risk_level, pb::RiskLevel::Moderate as i32);
    assert_eq!(a.severity, tv::Severity::Medium as i32);
    assert_eq!((a.exposure, a.score), (12, 60));
    assert_eq!(a.strategy, pb::ResponseStrategy::Improve as i32);
    assert!(a.policy.starts_with("nist-800-30-"));
}

async fn data_survives_a_restart(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, Methodology::Standard).await;
    org_fixture(&app).await;
    let risk = create_risk(&app, new_risk("Backups unencrypted", "exchange-online")).await;
    let assessed = assess(&app, &risk.name, 3, 3, 3).await;
    app.stop().await;

    let again = risk_service(&db, Methodology::Standard).await;
    let got = again
        .risks()
        .get_risk(pb::GetRiskRequest {
            name: risk.name.clone(),
        })
        .await
        .expect("risk survives restart")
        .into_inner();
    assert_eq!(got, assessed);
}
