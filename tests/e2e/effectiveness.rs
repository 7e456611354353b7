//! Response effectiveness: a failed control test and an incident that realised the risk each
//! count against the response in force — the control operates a step worse, a risk in
//! treatment or monitoring returns to ASSESSED, the decision log says why — and
//! GetResponseEffectiveness shows them per response with a proposal for the next assessment.
//! The posture counts them per node: realisations and failed control tests of the last 365
//! days, and the risks whose current response failed.

use assurance_proto::{
    risk::v1::{
        self as pb, control_service_client::ControlServiceClient,
        review_service_client::ReviewServiceClient,
    },
    r#type::v1 as tv,
};
use tonic::Code;

use crate::{
    helpers::*,
    posture::{get_posture, nodes},
};

crate::on_both_backends!(
    failures_count_against_the_response_in_force,
    posture_counts_failures_per_node,
);

fn observation(effect: pb::ObservationEffect, control: &str) -> pb::Observation {
    pb::Observation {
        source: pb::ObservationSource::ControlTest as i32,
        summary: "MFA enforcement test: legacy IMAP sign-in succeeded without MFA".into(),
        effect: effect as i32,
        control: control.into(),
        ..Default::default()
    }
}

async fn observe(
    app: &App,
    risk: &str,
    o: pb::Observation,
) -> Result<pb::Observation, tonic::Status> {
    ReviewServiceClient::new(app.channel_as("risk_owner"))
        .create_observation(pb::CreateObservationRequest {
            parent: risk.into(),
            observation: Some(o),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

fn realization(risk: &str, incident: &str, request_id: &str) -> pb::RecordRiskRealizationRequest {
    pb::RecordRiskRealizationRequest {
        risk: risk.into(),
        incident: incident.into(),
        incident_severity: tv::Severity::High as i32,
        realize_time: None,
        request_id: request_id.into(),
    }
}

async fn status(app: &App, risk: &str) -> i32 {
    get_risk(app, risk).await.status
}

async fn failed_decisions(app: &App, risk: &str) -> Vec<pb::Decision> {
    decisions(app, risk)
        .await
        .into_iter()
        .filter(|d| d.kind == pb::DecisionKind::ResponseFailed as i32)
        .collect()
}

async fn failures_count_against_the_response_in_force(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = risk_service(&db, risk_service::domain::scoring::Methodology::Standard).await;
    org_fixture(&app).await;
    let risk = create_risk(
        &app,
        new_risk("MFA bypass on legacy protocols", "exchange-online"),
    )
    .await;
    assess(&app, &risk.name, 2, 2, 2).await;
    // Two controls; only one is linked to the risk.
    control(&app, "dlp").await;
    linked_control(&app, &risk.name, "mfa-enforced").await;
    let mitigate = propose_response(&app, "risk_owner", &risk.name, mitigation("enforce MFA"))
        .await
        .expect("propose");
    approve_response(&app, "service_manager", &mitigate.name)
        .await
        .expect("approve");
    assert_eq!(
        status(&app, &risk.name).await,
        pb::RiskStatus::InTreatment as i32
    );

    // A failed control test names a control linked to the risk; other effects name none.
    for (o, field) in [
        (
            observation(pb::ObservationEffect::ControlFailed, ""),
            "observation.control",
        ),
        (
            observation(pb::ObservationEffect::ControlFailed, "controls/dlp"),
            "observation.control",
        ),
        (
            observation(
                pb::ObservationEffect::Informational,
                "controls/mfa-enforced",
            ),
            "observation.control",
        ),
        (
            observation(pb::ObservationEffect::ControlFailed, "mfa enforced!"),
            "observation.control",
        ),
    ] {
        let err = observe(&app, &risk.name, o).await.expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(violations(&err), [field]);
    }
    let failed = observe(
        &app,
        &risk.name,
        observation(
            pb::ObservationEffect::ControlFailed,
            "controls/mfa-enforced",
        ),
    )
    .await
    .expect("a failed control test");
    assert_eq!(failed.control, "controls/mfa-enforced");
    assert!(failed.reassessment_triggered);
    assert_eq!(
        status(&app, &risk.name).await,
        pb::RiskStatus::Assessed as i32,
        "a failed control sends a risk in treatment back to assessment"
    );
    let control = ControlServiceClient::new(app.channel_as("trust_team"))
        .get_control(pb::GetControlRequest {
            name: "controls/mfa-enforced".into(),
        })
        .await
        .expect("control")
        .into_inner();
    assert_eq!(
        control.operating_effectiveness,
        pb::ControlEffectiveness::PartiallyEffective as i32,
        "one step down"
    );
    assert_eq!(control.last_test_time, failed.observe_time);
    let logged = failed_decisions(&app, &risk.name).await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].response, mitigate.name);
    assert!(
        logged[0].summary.contains("controls/mfa-enforced"),
        "{}",
        logged[0].summary
    );

    // Accepted, then realised by an incident: back to assessment, once per incident.
    let accept = propose_response(
        &app,
        "risk_owner",
        &risk.name,
        pb::RiskResponse {
            decision: pb::ResponseDecision::Accept as i32,
            rationale: "compensating monitoring in place".into(),
            acceptance_expire_time: Some(days(90)),
            ..Default::default()
        },
    )
    .await
    .expect("propose acceptance");
    approve_response(&app, "service_manager", &accept.name)
        .await
        .expect("approve acceptance");
    assert_eq!(
        status(&app, &risk.name).await,
        pb::RiskStatus::Monitoring as i32
    );
    let incident = "incidents/01a2c7a0-0000-7000-8000-000000000001";
    let mut relay = app.risks_as("system");
    let after = relay
        .record_risk_realization(realization(&risk.name, incident, "event-1"))
        .await
        .expect("realised")
        .into_inner();
    assert_eq!(
        status(&app, &risk.name).await,
        pb::RiskStatus::Assessed as i32
    );
    for request_id in ["event-1", "event-2"] {
        relay
            .record_risk_realization(realization(&risk.name, incident, request_id))
            .await
            .expect("redelivered");
    }
    let logged = failed_decisions(&app, &risk.name).await;
    assert_eq!(logged.len(), 2, "the same incident counts once: {logged:?}");
    // Newest first: the realisation counted against the acceptance.
    assert_eq!(logged[0].response, accept.name);
    assert!(
        logged[0].summary.contains(incident),
        "{}",
        logged[0].summary
    );

    // What they suggest: two responses, each with its failure; likelihood 2 + 1 (the
    // realisation) + 1 (a failed control test); impact up to the HIGH incident's 4.
    assert_eq!(after.responses.len(), 2);
    assert_eq!(after.responses[0].response, mitigate.name);
    assert_eq!(after.responses[0].control_failures.len(), 1);
    assert!(after.responses[0].realizations.is_empty());
    assert_eq!(after.responses[1].response, accept.name);
    assert_eq!(after.responses[1].realizations[0].incident, incident);
    assert_eq!((after.likelihood, after.impact), (2, 2));
    assert_eq!((after.proposed_likelihood, after.proposed_impact), (4, 4));
    assert!(after.rationale.contains("realised"), "{}", after.rationale);
    let read = app
        .risks_as("viewer")
        .get_response_effectiveness(pb::GetResponseEffectivenessRequest {
            risk: risk.name.clone(),
        })
        .await
        .expect("anyone reads it")
        .into_inner();
    assert_eq!(read, after);
    assert_eq!(
        get_risk(&app, &risk.name)
            .await
            .latest_assessment
            .map(|a| a.likelihood),
        Some(2),
        "the proposal is never applied on its own"
    );

    // Bad input names each field; only the relay and the leads record realisations.
    let err = relay
        .record_risk_realization(pb::RecordRiskRealizationRequest {
            risk: "risks/nope".into(),
            incident: "INC-42".into(),
            incident_severity: 0,
            realize_time: Some(prost_types::Timestamp {
                seconds: 4_000_000_000,
                nanos: 0,
            }),
            request_id: String::new(),
        })
        .await
        .expect_err("bad");
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        ["incident", "incident_severity", "realize_time", "risk"]
    );
    let err = app
        .risks_as("risk_owner")
        .record_risk_realization(realization(&risk.name, incident, ""))
        .await
        .expect_err("not the relay");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
}

/// The control `id`, operating effectively.
async fn control(app: &App, id: &str) {
    ControlServiceClient::new(app.channel_as("trust_team"))
        .create_control(pb::CreateControlRequest {
            control_id: id.into(),
            control: Some(pb::Control {
                title: format!("{id} control"),
                owner: "iam-team@example.com".into(),
                operating_effectiveness: pb::ControlEffectiveness::Effective as i32,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("control");
}

/// A control `id` linked to `risk`.
async fn linked_control(app: &App, risk: &str, id: &str) {
    control(app, id).await;
    ControlServiceClient::new(app.channel_as("trust_team"))
        .create_risk_control_link(pb::CreateRiskControlLinkRequest {
            parent: risk.into(),
            risk_control_link: Some(pb::RiskControlLink {
                control: format!("controls/{id}"),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("link");
}

/// The relay records that the incident numbered `n` realised `risk` at `at` (now when None).
async fn realised(app: &App, risk: &str, n: u32, at: Option<prost_types::Timestamp>) {
    let incident = format!("incidents/01a2c7a0-0000-7000-8000-{n:012}");
    app.risks_as("system")
        .record_risk_realization(pb::RecordRiskRealizationRequest {
            realize_time: at,
            ..realization(risk, &incident, "")
        })
        .await
        .expect("realised");
}

/// A response `who` proposes for `risk` and the ERM executive approves.
async fn approved_mitigation(app: &App, risk: &str) {
    let response = propose_response(app, "risk_owner", risk, mitigation("fix it"))
        .await
        .expect("propose");
    approve_response(app, "erm_executive", &response.name)
        .await
        .expect("approve");
}

/// The (realisations, failed control tests, risks with a failed response) of every node.
async fn failure_figures(app: &App) -> Vec<(String, (i64, i64, i64))> {
    let answer = get_posture(app, "trust_team", "enterprise")
        .await
        .expect("posture");
    assert!(answer.missing.is_empty(), "{:?}", answer.missing);
    nodes(&answer.root.expect("root"))
        .into_iter()
        .filter_map(|(scope, node)| {
            let r = node.risks?;
            Some((
                scope,
                (
                    r.realizations,
                    r.failed_control_tests,
                    r.risks_with_failed_response,
                ),
            ))
        })
        .collect()
}

async fn posture_counts_failures_per_node(backend: Backend) {
    let db = TestDb::new(backend).await;
    let config = embedded_config(&db, backend);
    let clock = config.clock.clone();
    let app = start_gateway(&db, config).await;
    for bu in ["retail", "corp"] {
        create_bu(&app, bu).await;
    }
    for (service, bu) in [("shop", "retail"), ("pos", "retail"), ("hr", "corp")] {
        create_service(&app, service, bu).await;
    }
    let mut names = Vec::new();
    for (title, service) in [
        ("card skimming", "shop"),
        ("till fraud", "pos"),
        ("payroll leak", "hr"),
        ("badge cloning", "hr"),
        ("old terminal", "shop"),
    ] {
        let risk = create_risk(&app, new_risk(title, service)).await;
        assess(&app, &risk.name, 2, 2, 2).await;
        names.push(risk.name);
    }
    // shop: a mitigation in force, then a failed control test and a realisation against it.
    linked_control(&app, &names[0], "card-readers").await;
    approved_mitigation(&app, &names[0]).await;
    observe(
        &app,
        &names[0],
        observation(
            pb::ObservationEffect::ControlFailed,
            "controls/card-readers",
        ),
    )
    .await
    .expect("a failed control test");
    realised(&app, &names[0], 1, None).await;
    // pos: realised, with no response to fail.
    realised(&app, &names[1], 2, None).await;
    // hr: realised ten days ago, before the response approved since (not a failure of it),
    // and a realisation 400 days ago, outside the window.
    realised(&app, &names[2], 3, Some(days(-10))).await;
    approved_mitigation(&app, &names[2]).await;
    realised(&app, &names[3], 4, Some(days(-400))).await;
    // A closed shop risk counts nothing, realised or not.
    realised(&app, &names[4], 5, None).await;
    app.risks()
        .delete_risk(pb::DeleteRiskRequest {
            name: names[4].clone(),
            reason: "terminal replaced".into(),
            ..Default::default()
        })
        .await
        .expect("close a risk");

    let want = |shop: (i64, i64, i64), pos: (i64, i64, i64), hr: (i64, i64, i64)| {
        let sum = |a: (i64, i64, i64), b: (i64, i64, i64)| (a.0 + b.0, a.1 + b.1, a.2 + b.2);
        let retail = sum(shop, pos);
        vec![
            ("businessUnits/corp".to_string(), hr),
            ("businessUnits/retail".to_string(), retail),
            ("enterprise".to_string(), sum(retail, hr)),
            ("services/hr".to_string(), hr),
            ("services/pos".to_string(), pos),
            ("services/shop".to_string(), shop),
        ]
    };
    assert_eq!(
        failure_figures(&app).await,
        want((1, 1, 1), (1, 0, 0), (1, 0, 0)),
        "each service's figures, summed into its business unit and the enterprise"
    );
    // A year and a day later every realisation and failed test left the window; the
    // mitigation of shop's risk still stands failed.
    clock.advance(std::time::Duration::from_secs(366 * 86_400));
    assert_eq!(
        failure_figures(&app).await,
        want((0, 0, 1), (0, 0, 0), (0, 0, 0)),
        "after the window"
    );
}
