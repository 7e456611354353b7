//! The incident life cycle: declaration and NIST prioritisation, the phase machine, the
//! severity override, lists and validation, and the same API through the embedded gateway.

use assurance_proto::incident::v1 as pb;
use assurance_proto::r#type::v1 as tpb;
use prost_types::FieldMask;
use tonic::Code;

use super::*;

crate::on_both_backends!(
    declaration_derives_the_severity_and_classification_raises_it,
    an_event_cannot_leave_analysis,
    phases_advance_in_order_and_going_back_needs_a_reason,
    an_explicit_severity_overrides_the_rule_until_unspecified,
    non_incidents_close_from_analysis_and_lists_filter,
    invalid_incident_requests_name_every_bad_field,
    the_embedded_gateway_serves_incidents,
);

async fn declaration_derives_the_severity_and_classification_raises_it(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, new_incident("Finance admin account takeover")).await;
    assert!(declared.name.starts_with("incidents/"));
    assert_eq!(declared.phase, pb::Phase::DetectionAnalysis as i32);
    // Privacy breach → HIGH by the default rule, derived (not overridden).
    assert_eq!(declared.severity, tpb::Severity::High as i32);
    assert!(!declared.severity_overridden);
    assert!(declared.declare_time.is_some() && declared.detect_time.is_some());

    // Classify it; customer data affected raises the derived severity to CRITICAL.
    let classified = classify_security_incident(&app, &declared).await;
    assert_eq!(classified.severity, tpb::Severity::Critical as i32);
    assert_eq!(
        classified.title, declared.title,
        "fields outside the mask are kept"
    );
}

async fn an_event_cannot_leave_analysis(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, new_incident("Finance admin account takeover")).await;
    let err = advance(&app, &declared.name, pb::Phase::Containment, "")
        .await
        .expect_err("unclassified");
    assert_reason(&err, Code::FailedPrecondition, "ILLEGAL_PHASE_MOVE");
    assert_mentions(&err, "classify it SECURITY_INCIDENT");
}

async fn phases_advance_in_order_and_going_back_needs_a_reason(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = security_incident(&app, "Finance admin account takeover").await;
    let contained = advance(&app, &declared.name, pb::Phase::Containment, "")
        .await
        .expect("contain");
    let first_contain = contained.contain_time.expect("contain time");
    let err = advance(&app, &declared.name, pb::Phase::Recovery, "")
        .await
        .expect_err("skipping a phase");
    assert_mentions(&err, "advance to ERADICATION");
    advance(&app, &declared.name, pb::Phase::Eradication, "")
        .await
        .expect("eradicate");
    // Going back needs a reason.
    let err = advance(&app, &declared.name, pb::Phase::Containment, " ")
        .await
        .expect_err("no reason");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), ["reason"]);
    let back = advance(&app, &declared.name, pb::Phase::Containment, REINFECTION)
        .await
        .expect("back to containment");
    assert_eq!(
        back.contain_time,
        Some(first_contain),
        "a phase's first entry time is kept"
    );
    advance_through(&app, &declared.name, &FORWARD_TO_POST_INCIDENT[1..]).await;
    // No closing before the post-incident review.
    let err = close(&app, &declared.name, "done")
        .await
        .expect_err("review missing");
    assert_refused(&err, Code::FailedPrecondition, "review");
}

async fn an_explicit_severity_overrides_the_rule_until_unspecified(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = security_incident(&app, "Finance admin account takeover").await;
    walk_every_phase_with_one_return(&app, &declared.name).await;

    // An explicit severity overrides the rule; UNSPECIFIED returns to it.
    let current = app
        .incidents()
        .get_incident(pb::GetIncidentRequest {
            name: declared.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    let overridden = app
        .incidents()
        .update_incident(pb::UpdateIncidentRequest {
            incident: Some(pb::Incident {
                name: declared.name.clone(),
                severity: tpb::Severity::Medium as i32,
                etag: current.etag,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["severity".into()],
            }),
        })
        .await
        .expect("override")
        .into_inner();
    assert_eq!(
        (overridden.severity, overridden.severity_overridden),
        (tpb::Severity::Medium as i32, true)
    );
    let derived = app
        .incidents()
        .update_incident(pb::UpdateIncidentRequest {
            incident: Some(pb::Incident {
                name: declared.name.clone(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["severity".into()],
            }),
        })
        .await
        .expect("back to derived")
        .into_inner();
    assert_eq!(
        (derived.severity, derived.severity_overridden),
        (tpb::Severity::Critical as i32, false)
    );
}

async fn non_incidents_close_from_analysis_and_lists_filter(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let mut names = Vec::new();
    for i in 0..7 {
        let mut inc = new_incident(&format!("Alert {i}"));
        if i % 2 == 1 {
            inc.information_impacts = vec![pb::InformationImpact::None as i32];
            inc.affected_services = vec!["services/sharepoint".into()];
        }
        names.push(declare(&app, inc).await.name);
    }
    // Alert 0 was a false positive.
    let closed = app
        .incidents()
        .update_incident(pb::UpdateIncidentRequest {
            incident: Some(pb::Incident {
                name: names[0].clone(),
                classification: pb::Classification::NotAnIncident as i32,
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .expect("classify");
    assert_eq!(
        closed.get_ref().classification,
        pb::Classification::NotAnIncident as i32
    );
    let closed = close(&app, &names[0], "Benign: VPN egress change.")
        .await
        .expect("close from analysis");
    assert_eq!(closed.phase, pb::Phase::Closed as i32);
    assert!(closed.close_time.is_some());
    let err = advance(&app, &names[0], pb::Phase::Containment, "")
        .await
        .expect_err("closed");
    assert_eq!(err.code(), Code::FailedPrecondition);

    let list = |filter: &'static str| {
        let mut client = app.incidents();
        async move {
            let mut out = Vec::new();
            let mut token = String::new();
            loop {
                let page = client
                    .list_incidents(pb::ListIncidentsRequest {
                        page_size: 2,
                        page_token: token,
                        filter: filter.into(),
                        order_by: String::new(),
                    })
                    .await
                    .expect("list")
                    .into_inner();
                out.extend(page.incidents.into_iter().map(|i| i.name));
                if page.next_page_token.is_empty() {
                    return out;
                }
                token = page.next_page_token;
            }
        }
    };
    // Creation order (ascending id, the default order rule), paged in twos.
    assert_eq!(list("").await, names);
    assert_eq!(list("open = true").await.len(), 6);
    assert_eq!(list("phase = CLOSED").await, [names[0].clone()]);
    assert_eq!(list("service = services/sharepoint").await.len(), 3);
    assert_eq!(list("severity = HIGH AND open = true").await.len(), 3);
    assert_eq!(
        list("classification = NOT_AN_INCIDENT").await,
        [names[0].clone()]
    );
    let err = app
        .incidents()
        .list_incidents(pb::ListIncidentsRequest {
            filter: "colour = red".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown field");
    assert_eq!(violations(&err), ["filter"]);
}

async fn invalid_incident_requests_name_every_bad_field(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let bad = pb::Incident {
        title: String::new(),
        classification: 0,
        functional_impact: 9,
        information_impacts: vec![
            pb::InformationImpact::None as i32,
            pb::InformationImpact::IntegrityLoss as i32,
        ],
        recoverability: 0,
        affected_services: vec!["exchange-online".into()],
        incident_type: "Credential Compromise".into(),
        detect_time: Some(prost_types::Timestamp {
            seconds: 4_000_000_000,
            nanos: 0,
        }),
        ..Default::default()
    };
    let err = app
        .incidents()
        .declare_incident(pb::DeclareIncidentRequest {
            incident: Some(bad),
            request_id: String::new(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        [
            "incident.affected_services[0]",
            "incident.classification",
            "incident.detect_time",
            "incident.functional_impact",
            "incident.incident_type",
            "incident.information_impacts",
            "incident.recoverability",
            "incident.title",
        ]
    );
    let err = app
        .incidents()
        .get_incident(pb::GetIncidentRequest {
            name: "incidents/nope".into(),
        })
        .await
        .expect_err("bad name");
    assert_eq!(violations(&err), ["name"]);
    let err = app
        .incidents()
        .get_incident(pb::GetIncidentRequest {
            name: format!("incidents/{}", uuid::Uuid::now_v7()),
        })
        .await
        .expect_err("absent");
    assert_eq!(err.code(), Code::NotFound);
    let listed = app
        .incidents()
        .list_incidents(pb::ListIncidentsRequest::default())
        .await
        .expect("list");
    assert!(
        listed.into_inner().incidents.is_empty(),
        "nothing was written"
    );
}

async fn the_embedded_gateway_serves_incidents(backend: Backend) {
    let db = TestDb::new(backend).await;
    let gw = embedded_gateway(&db, backend).await;
    // Its services are checked against the org registry of the risk-service beside it.
    org_fixture(&gw).await;
    let declared = declare(&gw, new_incident("Ransomware note on file server")).await;
    let got = gw
        .incidents()
        .get_incident(pb::GetIncidentRequest {
            name: declared.name.clone(),
        })
        .await
        .expect("get through the gateway")
        .into_inner();
    assert_eq!(got, declared);
    if backend == Backend::Sqlite {
        assert!(db.data_dir().join("incident.db").exists());
    }
}
