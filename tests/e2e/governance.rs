//! Risk response and governance through the embedded gateway, authenticated: identify →
//! assess → respond → approve (after a refused self-approval and a refused level) → action
//! items done → monitoring → reassess; the decision log; the expiry of an acceptance on a
//! clock the test moves.

use std::time::Duration;

use assurance_proto::risk::v1 as pb;
use assurance_proto::r#type::v1 as tv;
use tonic::Code;

use crate::helpers::*;

async fn propose(
    app: &App,
    who: &str,
    risk: &str,
    response: pb::RiskResponse,
) -> Result<pb::RiskResponse, tonic::Status> {
    propose_response(app, who, risk, response).await
}

async fn approve(app: &App, who: &str, name: &str) -> Result<pb::RiskResponse, tonic::Status> {
    approve_response(app, who, name).await
}

async fn status(app: &App, risk: &str) -> i32 {
    get_risk(app, risk).await.status
}

fn mitigate() -> pb::RiskResponse {
    mitigation("Enforce MFA on OWA and block legacy auth.")
}

/// An embedded gateway with the org fixture and a risk the risk owner identified.
async fn identified_risk(backend: Backend) -> (TestDb, App, pb::Risk) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    let risk = identify_risk_as(
        &app,
        "risk_owner",
        new_risk("Credential stuffing on OWA", "exchange-online"),
    )
    .await
    .expect("identify");
    (db, app, risk)
}

/// [`identified_risk`] assessed (4,4,4) → score 64, HIGH: the trust team approves.
async fn assessed_high_risk(backend: Backend) -> (TestDb, App, pb::Risk) {
    let (db, app, risk) = identified_risk(backend).await;
    assess(&app, &risk.name, 4, 4, 4).await;
    (db, app, risk)
}

/// The risk owner's mitigation, approved by the trust team: the risk is IN_TREATMENT.
async fn approved_response(app: &App, risk: &pb::Risk) -> pb::RiskResponse {
    let proposed = propose(app, "risk_owner", &risk.name, mitigate())
        .await
        .expect("propose");
    approve(app, "trust_team", &proposed.name)
        .await
        .expect("approve")
}

/// An executive rejects the response `name`.
async fn reject(app: &App, name: &str) -> pb::RiskResponse {
    app.risks_as("erm_executive")
        .reject_risk_response(pb::RejectRiskResponseRequest {
            name: name.into(),
            reason: "Mitigation is not funded this quarter; revisit scope.".into(),
            ..Default::default()
        })
        .await
        .expect("reject")
        .into_inner()
}

/// The risk owner's action plan "Harden OWA sign-in".
async fn create_plan(app: &App, risk: &pb::Risk) -> pb::ActionPlan {
    create_action_plan(app, "risk_owner", &risk.name, "Harden OWA sign-in").await
}

/// `who` adds an item to the plan, optionally linked to a tracker.
async fn add_item(
    app: &App,
    who: &str,
    plan: &pb::ActionPlan,
    title: &str,
    due: prost_types::Timestamp,
    tracker: Option<pb::TrackerLink>,
) -> Result<pb::ActionItem, tonic::Status> {
    let item = pb::ActionItem {
        tracker,
        ..action_item(title, due)
    };
    add_action_item(app, who, plan, item).await
}

/// The tracker sets an item's status.
async fn finish(
    app: &App,
    item: pb::ActionItem,
    status: tv::WorkItemStatus,
) -> Result<pb::ActionItem, tonic::Status> {
    set_item_status(app, "tracker", item, status).await
}

fn jira_link() -> pb::TrackerLink {
    pb::TrackerLink {
        system: "jira".into(),
        external_key: "SEC-142".into(),
        url: "https://jira.example.com/browse/SEC-142".into(),
        ..Default::default()
    }
}

async fn no_response_before_assessment_and_invalid_responses_name_their_fields(backend: Backend) {
    let (_db, app, risk) = identified_risk(backend).await;
    // No response before an assessment.
    let err = propose(&app, "risk_owner", &risk.name, mitigate())
        .await
        .expect_err("not assessed");
    assert_refused(&err, Code::FailedPrecondition, "allowed: assess");
    // (4,4,4) → score 64, HIGH: the trust team approves.
    let assessed = assess(&app, &risk.name, 4, 4, 4).await;
    assert_eq!(assessed.status, pb::RiskStatus::Assessed as i32);

    // Validation: ACCEPT needs an expiry; an override needs a justification.
    let unjustified_open_acceptance = pb::RiskResponse {
        decision: pb::ResponseDecision::Accept as i32,
        strategy_override: pb::ResponseStrategy::Tolerate as i32,
        rationale: "r".into(),
        ..Default::default()
    };
    let err = propose(&app, "risk_owner", &risk.name, unjustified_open_acceptance)
        .await
        .expect_err("invalid");
    assert_eq!(
        violations(&err),
        vec![
            "response.override_justification",
            "response.acceptance_expire_time"
        ]
    );
}

async fn a_proposer_cannot_approve_and_a_rejection_returns_to_assessed(backend: Backend) {
    let (_db, app, risk) = assessed_high_risk(backend).await;
    // The trust team proposes, so it cannot approve its own proposal.
    let first = propose(&app, "trust_team", &risk.name, mitigate())
        .await
        .expect("propose");
    assert_eq!(first.state, pb::ApprovalState::Pending as i32);
    assert_eq!(first.required_role, "trust_team");
    assert_eq!(first.severity, tv::Severity::High as i32);
    assert_eq!(first.strategy, pb::ResponseStrategy::Improve as i32);
    assert_eq!(first.proposer, "trust_team@example.com");
    assert_eq!(
        status(&app, &risk.name).await,
        pb::RiskStatus::ResponsePlanned as i32
    );
    let err = approve(&app, "trust_team", &first.name)
        .await
        .expect_err("self-approval");
    assert_eq!(reason(&err), "SELF_APPROVAL");
    // A second proposal while one is pending is refused by the status machine.
    let err = propose(&app, "risk_owner", &risk.name, mitigate())
        .await
        .expect_err("pending");
    assert_eq!(err.code(), Code::FailedPrecondition);
    // Rejected by an executive: back to ASSESSED.
    let rejected = reject(&app, &first.name).await;
    assert_eq!(rejected.state, pb::ApprovalState::Rejected as i32);
    assert_eq!(rejected.decided_by, "erm_executive@example.com");
    assert_eq!(
        status(&app, &risk.name).await,
        pb::RiskStatus::Assessed as i32
    );
}

async fn a_high_response_needs_the_trust_team_and_is_approved_once(backend: Backend) {
    let (_db, app, risk) = assessed_high_risk(backend).await;
    // The risk owner proposes again; the level is HIGH, so a service manager may not approve.
    let second = propose(&app, "risk_owner", &risk.name, mitigate())
        .await
        .expect("propose again");
    let err = approve(&app, "service_manager", &second.name)
        .await
        .expect_err("level");
    assert_refused(&err, Code::PermissionDenied, "trust_team");
    let err = approve(&app, "admin", &second.name)
        .await
        .expect_err("admin is not an approver");
    assert_eq!(err.code(), Code::PermissionDenied);
    let approved = approve(&app, "trust_team", &second.name)
        .await
        .expect("approve");
    assert_eq!(approved.state, pb::ApprovalState::Approved as i32);
    assert_eq!(
        status(&app, &risk.name).await,
        pb::RiskStatus::InTreatment as i32
    );
    let err = approve(&app, "erm_executive", &second.name)
        .await
        .expect_err("twice");
    assert_eq!(reason(&err), "NOT_PENDING");
}

async fn finishing_every_action_item_moves_the_risk_to_monitoring(backend: Backend) {
    let (_db, app, risk) = assessed_high_risk(backend).await;
    approved_response(&app, &risk).await;
    // The action plan: two items, one linked to a tracker; both finished → MONITORING.
    let plan = create_plan(&app, &risk).await;
    assert_eq!(plan.name, format!("{}/actionPlan", risk.name));
    let mfa = add_item(&app, "risk_owner", &plan, "Enforce MFA", days(30), None)
        .await
        .expect("item");
    assert_eq!(mfa.status, tv::WorkItemStatus::Open as i32);
    assert_eq!(mfa.service, "services/exchange-online");
    assert!(!mfa.overdue);
    let legacy = add_item(
        &app,
        "service_manager",
        &plan,
        "Block legacy authentication",
        days(-1),
        Some(jira_link()),
    )
    .await
    .expect("a service manager adds an item with its tracker link");
    assert!(legacy.overdue, "due yesterday");
    assert_eq!(
        legacy.tracker.as_ref().map(|t| t.sync_state),
        Some(pb::SyncState::Pending as i32)
    );
    let overdue = app
        .risks_as("reporter")
        .list_action_items(pb::ListActionItemsRequest {
            parent: "risks/-/actionPlan".into(),
            filter: "overdue = true AND business_unit = \"businessUnits/productivity\"".into(),
            ..Default::default()
        })
        .await
        .expect("overdue items")
        .into_inner()
        .action_items;
    assert_eq!(
        overdue.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        vec![legacy.name.as_str()]
    );
    let done = finish(&app, mfa.clone(), tv::WorkItemStatus::Done)
        .await
        .expect("done");
    assert_eq!(done.etag, "\"2\"");
    // A stale etag is refused.
    let err = finish(&app, mfa, tv::WorkItemStatus::WontDo)
        .await
        .expect_err("stale");
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(
        status(&app, &risk.name).await,
        pb::RiskStatus::InTreatment as i32,
        "one item still open"
    );
    finish(&app, legacy, tv::WorkItemStatus::WontDo)
        .await
        .expect("won't do");
    assert_eq!(
        status(&app, &risk.name).await,
        pb::RiskStatus::Monitoring as i32
    );
    // Monitoring → reassessment.
    let reassessed = assess(&app, &risk.name, 2, 4, 2).await;
    assert_eq!(reassessed.status, pb::RiskStatus::Assessed as i32);
}

async fn every_decision_is_logged_and_audited_through_closing(backend: Backend) {
    let (_db, app, risk) = assessed_high_risk(backend).await;
    // Proposed, rejected, proposed again and approved; both action items finished.
    let first = propose(&app, "trust_team", &risk.name, mitigate())
        .await
        .expect("propose");
    reject(&app, &first.name).await;
    let second = approved_response(&app, &risk).await;
    let plan = create_plan(&app, &risk).await;
    for (title, due, tracker) in [
        ("Enforce MFA", days(30), None),
        ("Block legacy authentication", days(-1), Some(jira_link())),
    ] {
        let item = add_item(&app, "risk_owner", &plan, title, due, tracker)
            .await
            .expect("item");
        finish(&app, item, tv::WorkItemStatus::Done)
            .await
            .expect("finish");
    }

    let log = decisions(&app, &risk.name).await;
    let kinds: Vec<i32> = log.iter().rev().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        vec![
            pb::DecisionKind::ResponseProposed as i32,
            pb::DecisionKind::ResponseRejected as i32,
            pb::DecisionKind::ResponseProposed as i32,
            pb::DecisionKind::ResponseApproved as i32,
            pb::DecisionKind::ActionsCompleted as i32,
        ]
    );
    assert_eq!(log[1].actor, "trust_team@example.com");
    assert_eq!(log[1].response, second.name);
    // Every decision is audited too.
    let trail = audit_trail_as(
        &app,
        "trust_team",
        &format!("resource = \"{}\"", second.name),
    )
    .await;
    assert_eq!(trail.len(), 2, "proposed and approved: {trail:?}");

    // Closing is a decision as well.
    app.risks_as("trust_team")
        .delete_risk(pb::DeleteRiskRequest {
            name: risk.name.clone(),
            reason: "service retired".into(),
            etag: String::new(),
        })
        .await
        .expect("close");
    let log = decisions(&app, "risks/-").await;
    assert_eq!(log[0].kind, pb::DecisionKind::RiskClosed as i32);
    assert!(log[0].summary.contains("service retired"));
}

/// An approved acceptance lapses on the service's clock: the system job sends the risk back to
/// ASSESSED, logs the decision and audits it under its own principal.
async fn acceptance_expires_on_the_clock(backend: Backend) {
    let (_db, clock, app) = gateway_on_a_test_clock(backend).await;
    let risk = create_risk(
        &app,
        new_risk("Old TLS on a legacy endpoint", "exchange-online"),
    )
    .await;
    // (2,3,1) → LOW: a risk owner approves.
    assess(&app, &risk.name, 2, 3, 1).await;
    let accept = propose(
        &app,
        "trust_team",
        &risk.name,
        pb::RiskResponse {
            decision: pb::ResponseDecision::Accept as i32,
            rationale: "Endpoint is retired in Q2.".into(),
            acceptance_expire_time: Some(days(30)),
            ..Default::default()
        },
    )
    .await
    .expect("propose acceptance");
    assert_eq!(accept.required_role, "risk_owner");
    approve(&app, "risk_owner", &accept.name)
        .await
        .expect("approve acceptance");
    assert_eq!(
        status(&app, &risk.name).await,
        pb::RiskStatus::Monitoring as i32
    );
    // Nothing happens before the expiry.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        status(&app, &risk.name).await,
        pb::RiskStatus::Monitoring as i32
    );

    clock.advance(Duration::from_secs(31 * 86_400));
    eventually("acceptance did not expire", || async {
        match status(&app, &risk.name).await {
            s if s == pb::RiskStatus::Assessed as i32 => Ok(()),
            s => Err(format!("status {s}")),
        }
    })
    .await;
    let responses = app
        .risks()
        .list_risk_responses(pb::ListRiskResponsesRequest {
            parent: risk.name.clone(),
            order_by: "create_time desc".into(),
            ..Default::default()
        })
        .await
        .expect("responses")
        .into_inner()
        .responses;
    assert!(responses[0].expired);
    let log = decisions(&app, &risk.name).await;
    assert_eq!(log[0].kind, pb::DecisionKind::AcceptanceExpired as i32);
    assert_eq!(log[0].actor, "system:risk-service");
    let trail = audit_trail(&app, "principal = \"system:risk-service\"").await;
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].rpc, "internal.risk-service/ExpireAcceptances");
    assert_eq!(trail[0].resource, accept.name);
}

/// The approval level follows the risk's severity at decision time; a plan finished before
/// the approval ends the treatment at once; items follow their risk to another service, and
/// with it the scope that may change them.
async fn approvals_and_items_follow_the_risk(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    create_service(&app, "teams", "productivity").await;
    let risk = create_risk(&app, new_risk("Guest access sprawl", "exchange-online")).await;
    // (2,3,1) → LOW: a risk owner's level when proposed.
    assess(&app, &risk.name, 2, 3, 1).await;
    let response = propose(&app, "trust_team", &risk.name, mitigate())
        .await
        .expect("propose");
    assert_eq!(response.required_role, "risk_owner");
    // Reassessed to CRITICAL (5,5,5) while pending: the level rises with it.
    let critical = assess(&app, &risk.name, 5, 5, 5).await;
    assert_eq!(critical.status, pb::RiskStatus::ResponsePlanned as i32);
    let err = approve(&app, "risk_owner", &response.name)
        .await
        .expect_err("level rose");
    assert_refused(&err, Code::PermissionDenied, "erm_executive");

    // The plan is finished before the approval: approving ends the treatment at once.
    let plan = create_action_plan(&app, "admin", &risk.name, "Review guest access").await;
    let done = pb::ActionItem {
        status: tv::WorkItemStatus::Done as i32,
        ..action_item("Remove inactive guests", days(10))
    };
    let item = add_action_item(&app, "admin", &plan, done)
        .await
        .expect("item");
    approve(&app, "erm_executive", &response.name)
        .await
        .expect("an executive approves a CRITICAL response");
    assert_eq!(
        status(&app, &risk.name).await,
        pb::RiskStatus::Monitoring as i32
    );

    // The risk moves to teams: its item follows, and the exchange team loses it.
    let mut moved = get_risk(&app, &risk.name).await;
    moved.service = "services/teams".into();
    app.risks()
        .update_risk(pb::UpdateRiskRequest {
            risk: Some(moved),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["service".into()],
            }),
        })
        .await
        .expect("move the risk");
    let items = app
        .risks()
        .list_action_items(pb::ListActionItemsRequest {
            parent: "risks/-/actionPlan".into(),
            filter: "service = \"services/teams\"".into(),
            ..Default::default()
        })
        .await
        .expect("items")
        .into_inner()
        .action_items;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].service, "services/teams");
    let err = app
        .risks_as("scoped")
        .update_action_item(pb::UpdateActionItemRequest {
            action_item: Some(pb::ActionItem {
                owner: "someone@example.com".into(),
                ..item
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["owner".into()],
            }),
        })
        .await
        .expect_err("no longer the exchange team's");
    assert_eq!(err.code(), Code::PermissionDenied);
}

/// Every resource of a risk's governance has a standard Get, readable by any role (a viewer,
/// and the tracker holding an action item's name): assessment, response, decision, plan, item.
/// An unknown one is NOT_FOUND naming it; a malformed name is INVALID_ARGUMENT on `name`.
async fn every_governance_resource_has_a_standard_get(backend: Backend) {
    let (_db, app, risk) = assessed_high_risk(backend).await;
    let response = approved_response(&app, &risk).await;
    let plan = create_plan(&app, &risk).await;
    let item = add_item(
        &app,
        "risk_owner",
        &plan,
        "Enforce MFA",
        days(30),
        Some(jira_link()),
    )
    .await
    .expect("item");
    let mut risks = app.risks_as("viewer");

    let assessed = get_risk(&app, &risk.name)
        .await
        .latest_assessment
        .expect("assessed");
    let got = risks
        .get_assessment(pb::GetAssessmentRequest {
            name: assessed.name.clone(),
        })
        .await
        .expect("get assessment")
        .into_inner();
    assert_eq!(got, assessment_history(&app, &risk.name).await[0]);
    assert_eq!(
        (got.impact, got.likelihood, got.control_deficiency),
        (4, 4, 4)
    );

    let got = risks
        .get_risk_response(pb::GetRiskResponseRequest {
            name: response.name.clone(),
        })
        .await
        .expect("get response")
        .into_inner();
    assert_eq!(got, response);

    let log = decisions(&app, &risk.name).await;
    for entry in &log {
        let got = risks
            .get_decision(pb::GetDecisionRequest {
                name: entry.name.clone(),
            })
            .await
            .expect("get decision")
            .into_inner();
        assert_eq!(&got, entry);
    }

    let got = risks
        .get_action_plan(pb::GetActionPlanRequest {
            name: plan.name.clone(),
        })
        .await
        .expect("get plan")
        .into_inner();
    assert_eq!(
        (got.title.as_str(), got.item_count, got.open_item_count),
        ("Harden OWA sign-in", 1, 1)
    );

    for who in ["viewer", "tracker"] {
        let got = app
            .risks_as(who)
            .get_action_item(pb::GetActionItemRequest {
                name: item.name.clone(),
            })
            .await
            .expect("get item")
            .into_inner();
        assert_eq!(got, item, "{who}");
    }

    // Unknown names are NOT_FOUND naming the resource; malformed ones name the field.
    let missing = format!("{}/responses/{}", risk.name, uuid::Uuid::now_v7());
    let err = risks
        .get_risk_response(pb::GetRiskResponseRequest {
            name: missing.clone(),
        })
        .await
        .expect_err("unknown");
    assert_refused(&err, Code::NotFound, &missing);
    let missing = format!("{}/actionPlan/items/{}", risk.name, uuid::Uuid::now_v7());
    let err = risks
        .get_action_item(pb::GetActionItemRequest {
            name: missing.clone(),
        })
        .await
        .expect_err("unknown");
    assert_refused(&err, Code::NotFound, &missing);
    let missing = format!("{}/assessments/{}", risk.name, uuid::Uuid::now_v7());
    let err = risks
        .get_assessment(pb::GetAssessmentRequest {
            name: missing.clone(),
        })
        .await
        .expect_err("unknown");
    assert_refused(&err, Code::NotFound, &missing);
    let missing = format!("{}/decisions/{}", risk.name, uuid::Uuid::now_v7());
    let err = risks
        .get_decision(pb::GetDecisionRequest {
            name: missing.clone(),
        })
        .await
        .expect_err("unknown");
    assert_refused(&err, Code::NotFound, &missing);
    let other = identify_risk_as(&app, "risk_owner", new_risk("No plan", "exchange-online"))
        .await
        .expect("identify");
    let missing = format!("{}/actionPlan", other.name);
    let err = risks
        .get_action_plan(pb::GetActionPlanRequest {
            name: missing.clone(),
        })
        .await
        .expect_err("no plan");
    assert_refused(&err, Code::NotFound, &missing);
    // A decision of one risk is not found under another.
    let err = risks
        .get_decision(pb::GetDecisionRequest {
            name: log[0].name.replace(&risk.name, &other.name),
        })
        .await
        .expect_err("other risk");
    assert_eq!(err.code(), Code::NotFound);
    for name in ["", "risks/x/decisions/y", &plan.name] {
        let err = risks
            .get_decision(pb::GetDecisionRequest { name: name.into() })
            .await
            .expect_err("malformed");
        assert_eq!(violations(&err), vec!["name"], "{name:?}");
    }
}

/// ApproveRiskResponse and RejectRiskResponse take an etag (a stale one is ABORTED like a stale
/// UpdateRisk) and a request id: a retried successful decision answers with the response as it
/// is now instead of FAILED_PRECONDITION, and is decided, logged and audited once.
async fn decisions_check_the_etag_and_are_retried_safely(backend: Backend) {
    let (_db, app, risk) = assessed_high_risk(backend).await;
    let proposed = propose(&app, "risk_owner", &risk.name, mitigate())
        .await
        .expect("propose");
    assert_eq!(proposed.etag, "\"1\"");
    let approve = |etag: &str, request_id: &str, comment: &str| pb::ApproveRiskResponseRequest {
        name: proposed.name.clone(),
        comment: comment.into(),
        etag: etag.into(),
        request_id: request_id.into(),
    };
    let mut trust = app.risks_as("trust_team");
    let err = trust
        .approve_risk_response(approve("\"2\"", "", "ok"))
        .await
        .expect_err("stale");
    assert_reason(&err, Code::Aborted, "STALE_ETAG");
    let err = trust
        .approve_risk_response(approve("soon", "", "ok"))
        .await
        .expect_err("not an etag");
    assert_eq!(violations(&err), vec!["etag"]);

    let approved = trust
        .approve_risk_response(approve(&proposed.etag, "approve-owa-1", "ok"))
        .await
        .expect("approve")
        .into_inner();
    assert_eq!(approved.state, pb::ApprovalState::Approved as i32);
    assert_eq!(approved.etag, "\"2\"");
    // The retry (even after the etag moved on) answers with the approved response.
    let retried = trust
        .approve_risk_response(approve(&proposed.etag, "approve-owa-1", "ok"))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retried, approved);
    // The same id for another request is refused; without an id a second approval is not pending.
    let err = trust
        .approve_risk_response(approve(&proposed.etag, "approve-owa-1", "changed my mind"))
        .await
        .expect_err("reused id");
    assert_reason(&err, Code::InvalidArgument, "REQUEST_ID_REUSED");
    let err = trust
        .approve_risk_response(approve("", "", "ok"))
        .await
        .expect_err("decided");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let err = trust
        .approve_risk_response(approve(&proposed.etag, "", "ok"))
        .await
        .expect_err("stale after the decision");
    assert_reason(&err, Code::Aborted, "STALE_ETAG");
    let log = decisions(&app, &risk.name).await;
    let approvals = log
        .iter()
        .filter(|d| d.kind == pb::DecisionKind::ResponseApproved as i32)
        .count();
    assert_eq!(approvals, 1, "{log:?}");
    let trail = audit_trail(&app, &format!("resource = \"{}\"", proposed.name)).await;
    assert_eq!(trail.len(), 2, "proposed and approved once: {trail:?}");
    assert_eq!(
        status(&app, &risk.name).await,
        pb::RiskStatus::InTreatment as i32
    );

    // Rejections likewise.
    let other = identify_risk_as(
        &app,
        "risk_owner",
        new_risk("Legacy auth", "exchange-online"),
    )
    .await
    .expect("identify");
    assess(&app, &other.name, 4, 4, 4).await;
    let proposed = propose(&app, "risk_owner", &other.name, mitigate())
        .await
        .expect("propose");
    let reject = |etag: &str| pb::RejectRiskResponseRequest {
        name: proposed.name.clone(),
        reason: "not funded".into(),
        etag: etag.into(),
        request_id: "reject-legacy-1".into(),
    };
    let mut exec = app.risks_as("erm_executive");
    let err = exec
        .reject_risk_response(reject("\"3\""))
        .await
        .expect_err("stale");
    assert_reason(&err, Code::Aborted, "STALE_ETAG");
    let rejected = exec
        .reject_risk_response(reject("\"1\""))
        .await
        .expect("reject")
        .into_inner();
    assert_eq!(rejected.state, pb::ApprovalState::Rejected as i32);
    let retried = exec
        .reject_risk_response(reject("\"1\""))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retried, rejected);
    let rejections = decisions(&app, &other.name)
        .await
        .iter()
        .filter(|d| d.kind == pb::DecisionKind::ResponseRejected as i32)
        .count();
    assert_eq!(rejections, 1);
    assert_eq!(
        status(&app, &other.name).await,
        pb::RiskStatus::Assessed as i32
    );
}

/// UpdateActionPlan changes the title and owner named in the mask (etag checked, scope of the
/// risk's service); the tracker updates what it syncs of an item: title, owner, due time, status.
async fn an_action_plan_and_its_items_can_be_updated(backend: Backend) {
    let (_db, app, risk) = assessed_high_risk(backend).await;
    approved_response(&app, &risk).await;
    let plan = create_plan(&app, &risk).await;
    assert_eq!(plan.etag, "\"1\"");
    let update = |plan: pb::ActionPlan, paths: &[&str]| pb::UpdateActionPlanRequest {
        action_plan: Some(plan),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }),
    };
    let renamed = pb::ActionPlan {
        title: "Harden OWA and EWS sign-in".into(),
        owner: "ciso@example.com".into(),
        ..plan.clone()
    };
    let updated = app
        .risks_as("risk_owner")
        .update_action_plan(update(renamed.clone(), &["title", "owner"]))
        .await
        .expect("update plan")
        .into_inner();
    assert_eq!(updated.title, "Harden OWA and EWS sign-in");
    assert_eq!(updated.owner, "ciso@example.com");
    assert_eq!(updated.etag, "\"2\"");
    assert_eq!(updated.create_time, plan.create_time);
    let got = app
        .risks_as("viewer")
        .get_action_plan(pb::GetActionPlanRequest {
            name: plan.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got, updated);
    // The stale etag is ABORTED; only the masked field changes.
    let err = app
        .risks_as("risk_owner")
        .update_action_plan(update(renamed.clone(), &["title"]))
        .await
        .expect_err("stale");
    assert_reason(&err, Code::Aborted, "STALE_ETAG");
    let owner_only = pb::ActionPlan {
        title: "ignored".into(),
        owner: "owner@example.com".into(),
        etag: String::new(),
        ..updated.clone()
    };
    let updated = app
        .risks_as("risk_owner")
        .update_action_plan(update(owner_only, &["owner"]))
        .await
        .expect("owner only")
        .into_inner();
    assert_eq!(
        (updated.title.as_str(), updated.owner.as_str()),
        ("Harden OWA and EWS sign-in", "owner@example.com")
    );
    // Invalid values name their fields; a viewer may not update; an unknown plan is NOT_FOUND.
    let err = app
        .risks_as("risk_owner")
        .update_action_plan(update(
            pb::ActionPlan {
                title: String::new(),
                ..updated.clone()
            },
            &["title"],
        ))
        .await
        .expect_err("empty title");
    assert_eq!(violations(&err), vec!["action_plan.title"]);
    let err = app
        .risks_as("risk_owner")
        .update_action_plan(pb::UpdateActionPlanRequest::default())
        .await
        .expect_err("empty");
    assert!(
        violations(&err).contains(&"action_plan".to_string()),
        "{err:?}"
    );
    let err = app
        .risks_as("viewer")
        .update_action_plan(update(updated.clone(), &["title"]))
        .await
        .expect_err("viewer");
    assert_eq!(err.code(), Code::PermissionDenied);
    let other = identify_risk_as(&app, "risk_owner", new_risk("No plan", "exchange-online"))
        .await
        .expect("identify");
    let missing = format!("{}/actionPlan", other.name);
    let err = app
        .risks_as("risk_owner")
        .update_action_plan(update(
            pb::ActionPlan {
                name: missing.clone(),
                ..updated.clone()
            },
            &["title"],
        ))
        .await
        .expect_err("no plan");
    assert_refused(&err, Code::NotFound, &missing);

    // What a tracker syncs of an item.
    let item = add_item(
        &app,
        "risk_owner",
        &plan,
        "Enforce MFA",
        days(30),
        Some(jira_link()),
    )
    .await
    .expect("item");
    // Computed once: `days` reads the clock, and a second may tick between two calls.
    let due = days(45);
    let synced = app
        .risks_as("service_manager")
        .update_action_item(pb::UpdateActionItemRequest {
            action_item: Some(pb::ActionItem {
                title: "Enforce MFA for all mailboxes".into(),
                owner: "identity@example.com".into(),
                due_time: Some(due),
                status: tv::WorkItemStatus::InProgress as i32,
                ..item.clone()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: ["title", "owner", "due_time", "status"]
                    .map(String::from)
                    .to_vec(),
            }),
        })
        .await
        .expect("a service manager's update")
        .into_inner();
    assert_eq!(synced.title, "Enforce MFA for all mailboxes");
    assert_eq!(synced.owner, "identity@example.com");
    assert_eq!(synced.due_time, Some(due));
    assert_eq!(synced.status, tv::WorkItemStatus::InProgress as i32);
}

crate::on_both_backends!(
    no_response_before_assessment_and_invalid_responses_name_their_fields,
    a_proposer_cannot_approve_and_a_rejection_returns_to_assessed,
    a_high_response_needs_the_trust_team_and_is_approved_once,
    finishing_every_action_item_moves_the_risk_to_monitoring,
    every_decision_is_logged_and_audited_through_closing,
    acceptance_expires_on_the_clock,
    approvals_and_items_follow_the_risk,
    every_governance_resource_has_a_standard_get,
    decisions_check_the_etag_and_are_retried_safely,
    an_action_plan_and_its_items_can_be_updated,
);
