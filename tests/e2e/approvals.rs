//! Approval rules (#16): the level a risk response needs follows the highest severity the risk
//! has had since its last approved response, so a downgrade just before proposing does not
//! lower it; and `admin` approves nothing — responses, exceptions, notifications, reports.

use assurance_proto::gateway::v1::{
    ConfirmReportRequest, RejectReportRequest, SignOffReportRequest,
    report_service_client::ReportServiceClient,
};
use assurance_proto::incident::v1 as ipb;
use assurance_proto::risk::v1::{self as pb, exception_service_client::ExceptionServiceClient};
use assurance_proto::r#type::v1 as tv;
use tonic::Code;

use crate::helpers::*;

crate::on_both_backends!(
    a_risk_downgraded_just_before_its_first_proposal_keeps_its_level,
    the_severity_at_the_last_approval_counts_until_a_response_is_approved_at_it,
    admin_approves_nothing,
);

/// The severity of the risk's latest assessment.
fn severity(risk: &pb::Risk) -> i32 {
    risk.latest_assessment.as_ref().map_or(0, |a| a.severity)
}

/// An embedded gateway with the org fixture and a risk the risk owner identified, assessed
/// (4,4,4) → HIGH.
async fn high_risk(backend: Backend) -> (TestDb, App, pb::Risk) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    let risk = identify_risk_as(
        &app,
        "risk_owner",
        new_risk("Shared break-glass account", "exchange-online"),
    )
    .await
    .expect("identify");
    let risk = assess(&app, &risk.name, 4, 4, 4).await;
    assert_eq!(severity(&risk), tv::Severity::High as i32);
    (db, app, risk)
}

/// The risk owner reassesses the risk (2,3,1) → LOW.
async fn downgrade(app: &App, risk: &str) {
    let lowered = assess_as(
        app,
        "risk_owner",
        risk,
        pb::Assessment {
            rationale: "the account is hardly used".into(),
            ..assessment(2, 3, 1)
        },
    )
    .await
    .expect("reassess");
    assert_eq!(severity(&lowered), tv::Severity::Low as i32);
    assert_eq!(lowered.status, pb::RiskStatus::Assessed as i32);
}

/// The risk owner proposes to accept the risk for 30 days.
async fn propose_acceptance(app: &App, risk: &str) -> pb::RiskResponse {
    propose_response(
        app,
        "risk_owner",
        risk,
        pb::RiskResponse {
            decision: pb::ResponseDecision::Accept as i32,
            rationale: "Retired with the old directory next month.".into(),
            acceptance_expire_time: Some(days(30)),
            ..Default::default()
        },
    )
    .await
    .expect("propose acceptance")
}

async fn a_risk_downgraded_just_before_its_first_proposal_keeps_its_level(backend: Backend) {
    let (_db, app, risk) = high_risk(backend).await;
    downgrade(&app, &risk.name).await;
    let proposed = propose_acceptance(&app, &risk.name).await;
    // The risk is LOW now, but it was HIGH since (it never had an approved response).
    assert_eq!(proposed.severity, tv::Severity::Low as i32);
    assert_eq!(proposed.required_role, "trust_team");
    let err = approve_response(&app, "service_manager", &proposed.name)
        .await
        .expect_err("level");
    assert_refused(&err, Code::PermissionDenied, "trust_team");
    let approved = approve_response(&app, "trust_team", &proposed.name)
        .await
        .expect("the trust team approves");
    assert_eq!(approved.state, pb::ApprovalState::Approved as i32);
}

async fn the_severity_at_the_last_approval_counts_until_a_response_is_approved_at_it(
    backend: Backend,
) {
    let (_db, app, risk) = high_risk(backend).await;
    // Accepted while HIGH: MONITORING.
    let first = propose_acceptance(&app, &risk.name).await;
    assert_eq!(first.required_role, "trust_team");
    approve_response(&app, "trust_team", &first.name)
        .await
        .expect("approve while HIGH");
    assert_eq!(
        get_risk(&app, &risk.name).await.status,
        pb::RiskStatus::Monitoring as i32
    );
    // Downgraded after the approval, then proposed: the risk was HIGH when it was approved.
    downgrade(&app, &risk.name).await;
    let second = propose_acceptance(&app, &risk.name).await;
    assert_eq!(second.required_role, "trust_team");
    let err = approve_response(&app, "service_manager", &second.name)
        .await
        .expect_err("level");
    assert_refused(&err, Code::PermissionDenied, "trust_team");
    approve_response(&app, "trust_team", &second.name)
        .await
        .expect("approve while LOW");
    // Approved at the trust team's level while LOW: from then on, LOW's level.
    downgrade(&app, &risk.name).await;
    let third = propose_acceptance(&app, &risk.name).await;
    assert_eq!(third.required_role, "risk_owner");
    approve_response(&app, "service_manager", &third.name)
        .await
        .expect("a higher role than the level qualifies");
}

async fn admin_approves_nothing(backend: Backend) {
    let (_db, app, risk) = high_risk(backend).await;
    let denied = |what: &str, result: Result<(), tonic::Status>| {
        let err = result.expect_err(what);
        assert_eq!(err.code(), Code::PermissionDenied, "{what}: {err:?}");
    };

    // Risk responses: neither approved nor rejected by admin.
    let proposed = propose_acceptance(&app, &risk.name).await;
    denied(
        "ApproveRiskResponse",
        approve_response(&app, "admin", &proposed.name)
            .await
            .map(drop),
    );
    denied(
        "RejectRiskResponse",
        app.risks_as("admin")
            .reject_risk_response(pb::RejectRiskResponseRequest {
                name: proposed.name.clone(),
                reason: "not funded".into(),
                ..Default::default()
            })
            .await
            .map(drop),
    );

    // Policy exceptions: refused before the handler looks the exception up.
    let mut exceptions = ExceptionServiceClient::new(app.channel_as("admin"));
    let unknown = "exceptions/0193a3c2-7f4e-7c1a-9b1e-2f0c5d6e7a8b";
    denied(
        "ApprovePolicyException",
        exceptions
            .approve_policy_exception(pb::ApprovePolicyExceptionRequest {
                name: unknown.into(),
                ..Default::default()
            })
            .await
            .map(drop),
    );
    denied(
        "RejectPolicyException",
        exceptions
            .reject_policy_exception(pb::RejectPolicyExceptionRequest {
                name: unknown.into(),
                reason: "no".into(),
                ..Default::default()
            })
            .await
            .map(drop),
    );

    // Incident notifications: a responder's draft, approved by a security lead, never admin.
    let incident = declare_incident_as(&app, "responder", phishing_wave(), "")
        .await
        .expect("declare");
    let draft = app
        .incidents_as("responder")
        .create_notification(ipb::CreateNotificationRequest {
            parent: incident.name.clone(),
            notification: Some(ipb::Notification {
                audience: ipb::Audience::Internal as i32,
                subject: "Phishing wave".into(),
                body: "Do not open the invoice attachments.".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("draft")
        .into_inner();
    let approve_notification = |who: &str| {
        let mut client = app.incidents_as(who);
        let request = ipb::ApproveNotificationRequest {
            name: draft.name.clone(),
            ..Default::default()
        };
        async move { client.approve_notification(request).await.map(drop) }
    };
    denied("ApproveNotification", approve_notification("admin").await);
    denied("ApproveNotification", approve_notification("admin2").await);
    approve_notification("security_lead")
        .await
        .expect("a security lead approves");

    // Reports: confirming a service's part, rejecting, signing off.
    let mut reports = ReportServiceClient::new(app.channel_as("admin"));
    let report = "reports/0193a3c2-7f4e-7c1a-9b1e-2f0c5d6e7a8b";
    denied(
        "ConfirmReport",
        reports
            .confirm_report(ConfirmReportRequest {
                name: report.into(),
                service: "services/exchange-online".into(),
                ..Default::default()
            })
            .await
            .map(drop),
    );
    denied(
        "RejectReport",
        reports
            .reject_report(RejectReportRequest {
                name: report.into(),
                reason: "figures disputed".into(),
                ..Default::default()
            })
            .await
            .map(drop),
    );
    denied(
        "SignOffReport",
        reports
            .sign_off_report(SignOffReportRequest {
                name: report.into(),
                ..Default::default()
            })
            .await
            .map(drop),
    );
}
