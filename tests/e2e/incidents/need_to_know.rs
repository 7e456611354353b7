//! Need-to-know reads (issue #16): a service-scoped caller sees only the incidents of its
//! services; TLP:RED and TLP:AMBER+STRICT indicators and evidence only the incident's role
//! holders, `security_lead`, `trust_team` and `admin`; external reports name no one and carry
//! no unreleased notification.

use assurance_proto::incident::v1 as pb;
use assurance_proto::risk::v1 as rpb;
use assurance_proto::r#type::v1 as tpb;
use tonic::Code;

use super::*;

crate::on_both_backends!(
    scoped_callers_see_only_incidents_of_their_services,
    restricted_material_only_for_role_holders_and_leads,
    external_reports_name_no_one_and_hold_back_unreleased_notices,
    the_risk_register_stays_open_to_every_reader,
);

/// An incident affecting `service` only, declared by the administrator.
async fn declare_for(app: &App, title: &str, service: &str) -> pb::Incident {
    let mut incident = new_incident(title);
    incident.affected_services = vec![format!("services/{service}")];
    declare(app, incident).await
}

async fn add_indicator(app: &App, parent: &str, value: &str, tlp: pb::Tlp) -> pb::Indicator {
    app.incidents()
        .create_indicator(pb::CreateIndicatorRequest {
            parent: parent.into(),
            indicator: Some(pb::Indicator {
                r#type: pb::IndicatorType::Ip as i32,
                value: value.into(),
                tlp: tlp as i32,
                description: format!("beacon seen at {value}"),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("indicator")
        .into_inner()
}

/// An incident name that exists nowhere.
fn missing_name() -> String {
    "incidents/0190a0f0-0000-7000-8000-000000000000".to_string()
}

/// The codes `who` gets for every read of the incident `name`, by RPC.
async fn reads(app: &App, who: &str, name: &str) -> Vec<(&'static str, Code)> {
    let mut c = app.incidents_as(who);
    let code = |r: Result<(), tonic::Status>| r.map_or_else(|e| e.code(), |_| Code::Ok);
    let parent = name.to_string();
    vec![
        (
            "GetIncident",
            code(
                c.get_incident(pb::GetIncidentRequest {
                    name: parent.clone(),
                })
                .await
                .map(drop),
            ),
        ),
        (
            "ListTasks",
            code(
                c.list_tasks(pb::ListTasksRequest {
                    parent: parent.clone(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
        ),
        (
            "ListRoles",
            code(
                c.list_roles(pb::ListRolesRequest {
                    parent: parent.clone(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
        ),
        (
            "ListIndicators",
            code(
                c.list_indicators(pb::ListIndicatorsRequest {
                    parent: parent.clone(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
        ),
        (
            "ListTimelineEvents",
            code(
                c.list_timeline_events(pb::ListTimelineEventsRequest {
                    parent: parent.clone(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
        ),
        (
            "GetTimelineEvent",
            code(
                c.get_timeline_event(pb::GetTimelineEventRequest {
                    name: format!("{parent}/timelineEvents/1"),
                })
                .await
                .map(drop),
            ),
        ),
        (
            "ListNotifications",
            code(
                c.list_notifications(pb::ListNotificationsRequest {
                    parent: parent.clone(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
        ),
        (
            "ListFollowUps",
            code(
                c.list_follow_ups(pb::ListFollowUpsRequest {
                    parent: parent.clone(),
                    ..Default::default()
                })
                .await
                .map(drop),
            ),
        ),
        (
            "ExportIncidentReport",
            code(
                c.export_incident_report(pb::ExportIncidentReportRequest {
                    name: parent.clone(),
                    format: tpb::ReportFormat::Markdown as i32,
                    external: false,
                })
                .await
                .map(drop),
            ),
        ),
        (
            "WatchIncident",
            code(
                c.watch_incident(pb::WatchIncidentRequest {
                    name: parent.clone(),
                    after_sequence: 0,
                })
                .await
                .map(drop),
            ),
        ),
    ]
}

async fn scoped_callers_see_only_incidents_of_their_services(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let mine = declare_for(&app, "Mailbox rule abuse", "exchange-online").await;
    let theirs = declare_for(&app, "Meeting bombing", "teams").await;
    for incident in [&mine, &theirs] {
        add_indicator(&app, &incident.name, "192.0.2.44", pb::Tlp::Clear).await;
    }
    let mut scoped = app.incidents_as("scoped");
    let listed = scoped
        .list_incidents(pb::ListIncidentsRequest::default())
        .await
        .expect("list")
        .into_inner();
    let names: Vec<_> = listed.incidents.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, [mine.name.as_str()]);
    let all = app
        .incidents()
        .list_incidents(pb::ListIncidentsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        all.incidents.len(),
        2,
        "unscoped callers see every incident"
    );

    // Every read of their incident is refused; of ours, answered.
    for (rpc, code) in reads(&app, "scoped", &mine.name).await {
        assert_eq!(code, Code::Ok, "{rpc} of an incident in scope");
    }
    for (rpc, code) in reads(&app, "scoped", &theirs.name).await {
        assert_eq!(code, Code::PermissionDenied, "{rpc} of a hidden incident");
    }
    // A missing incident answers alike, so a hidden one cannot be told from it; unscoped
    // callers are told it is missing.
    let missing = missing_name();
    for (rpc, code) in reads(&app, "scoped", &missing).await {
        assert_eq!(code, Code::PermissionDenied, "{rpc} of a missing incident");
    }
    let err = app
        .incidents()
        .get_incident(pb::GetIncidentRequest { name: missing })
        .await
        .expect_err("missing");
    assert_eq!(err.code(), Code::NotFound);
    let err = scoped
        .get_incident(pb::GetIncidentRequest {
            name: theirs.name.clone(),
        })
        .await
        .expect_err("hidden");
    assert!(
        err.message().contains("services/exchange-online"),
        "{}",
        err.message()
    );

    // Writes answer alike too: no refusal names the hidden incident's services.
    for name in [&theirs.name, &missing_name()] {
        let err = scoped
            .create_timeline_event(pb::CreateTimelineEventRequest {
                parent: name.clone(),
                summary: "Probing.".into(),
                request_id: String::new(),
            })
            .await
            .expect_err("note on a hidden incident");
        assert_eq!(err.code(), Code::PermissionDenied, "{name}");
        assert!(
            !err.message().contains("services/teams"),
            "{}",
            err.message()
        );
        assert!(
            err.message().contains("or does not exist"),
            "{}",
            err.message()
        );
    }

    // A sweep finds the indicator only in ours; so do the cross-incident lists.
    let sweep = scoped
        .search_indicators(pb::SearchIndicatorsRequest {
            r#type: pb::IndicatorType::Ip as i32,
            value: "192.0.2.44".into(),
            ..Default::default()
        })
        .await
        .expect("sweep")
        .into_inner();
    let found: Vec<_> = sweep.matches.iter().map(|m| m.incident.as_str()).collect();
    assert_eq!(found, [mine.name.as_str()]);
    let sweep = app
        .incidents()
        .search_indicators(pb::SearchIndicatorsRequest {
            r#type: pb::IndicatorType::Ip as i32,
            value: "192.0.2.44".into(),
            ..Default::default()
        })
        .await
        .expect("sweep")
        .into_inner();
    assert_eq!(sweep.matches.len(), 2);
    for incident in [&mine, &theirs] {
        app.incidents_as("security_lead")
            .create_notification(pb::CreateNotificationRequest {
                parent: incident.name.clone(),
                notification: Some(pb::Notification {
                    audience: pb::Audience::Internal as i32,
                    subject: format!("Status of {}", incident.title),
                    body: "Work continues.".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("notification");
    }
    let notices = scoped
        .list_notifications(pb::ListNotificationsRequest {
            parent: "incidents/-".into(),
            ..Default::default()
        })
        .await
        .expect("notifications")
        .into_inner();
    let parents: Vec<_> = notices
        .notifications
        .iter()
        .map(|n| n.name.starts_with(&mine.name))
        .collect();
    assert_eq!(parents, [true]);
}

async fn restricted_material_only_for_role_holders_and_leads(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let incident = declare_for(&app, "Beaconing from build agents", "exchange-online").await;
    let red = add_indicator(&app, &incident.name, "198.51.100.77", pb::Tlp::Red).await;
    let strict = add_indicator(&app, &incident.name, "198.51.100.78", pb::Tlp::AmberStrict).await;
    let clear = add_indicator(&app, &incident.name, "198.51.100.79", pb::Tlp::Clear).await;
    let evidence = app
        .incidents()
        .create_evidence(pb::CreateEvidenceRequest {
            parent: incident.name.clone(),
            evidence: Some(pb::Evidence {
                description: "Memory image of agent BA-17".into(),
                hash: "d41d8cd98f00b204e9800998ecf8427e".into(),
                location: "vault-3".into(),
                collector: "kim@example.com".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("evidence")
        .into_inner();
    let secrets = [
        "198.51.100.77",
        "198.51.100.78",
        "Memory image of agent BA-17",
        "d41d8cd98f00b204e9800998ecf8427e",
    ];

    // What a reader sees: indicator values by TLP, evidence, the timeline and the report.
    let view = async |who: &str| {
        let mut c = app.incidents_as(who);
        let listed = c
            .list_indicators(pb::ListIndicatorsRequest {
                parent: incident.name.clone(),
                ..Default::default()
            })
            .await
            .expect("indicators")
            .into_inner();
        let values: Vec<String> = listed.indicators.into_iter().map(|i| i.value).collect();
        let got = c
            .get_indicator(pb::GetIndicatorRequest {
                name: red.name.clone(),
            })
            .await
            .expect("get indicator")
            .into_inner();
        let sweep = c
            .search_indicators(pb::SearchIndicatorsRequest {
                r#type: pb::IndicatorType::Ip as i32,
                value: "198.51.100.77".into(),
                ..Default::default()
            })
            .await
            .expect("sweep")
            .into_inner();
        assert_eq!(sweep.matches.len(), 1, "the sweep reports the match");
        assert_eq!(sweep.matches[0].incident, incident.name);
        let swept = sweep.matches[0]
            .indicator
            .as_ref()
            .map(|i| i.value.clone())
            .unwrap_or_default();
        let evidence_code = c
            .list_evidence(pb::ListEvidenceRequest {
                parent: incident.name.clone(),
                ..Default::default()
            })
            .await
            .map_or_else(|e| e.code(), |_| Code::Ok);
        let get_evidence_code = c
            .get_evidence(pb::GetEvidenceRequest {
                name: evidence.name.clone(),
            })
            .await
            .map_or_else(|e| e.code(), |_| Code::Ok);
        assert_eq!(evidence_code, get_evidence_code);
        let timeline = c
            .list_timeline_events(pb::ListTimelineEventsRequest {
                parent: incident.name.clone(),
                ..Default::default()
            })
            .await
            .expect("timeline")
            .into_inner();
        let summaries: Vec<String> = timeline
            .timeline_events
            .into_iter()
            .map(|e| e.summary)
            .collect();
        let report = c
            .export_incident_report(pb::ExportIncidentReportRequest {
                name: incident.name.clone(),
                format: tpb::ReportFormat::Json as i32,
                external: false,
            })
            .await
            .expect("report")
            .into_inner();
        let report = String::from_utf8(report.content).expect("utf-8");
        (values, got.value, swept, evidence_code, summaries, report)
    };

    let (values, got, swept, evidence_code, summaries, report) = view("responder").await;
    assert_eq!(values, ["[withheld]", "[withheld]", "198.51.100.79"]);
    assert_eq!((got.as_str(), swept.as_str()), ("[withheld]", "[withheld]"));
    assert_eq!(evidence_code, Code::PermissionDenied);
    // The timeline never carries restricted values, whoever reads it.
    assert!(summaries.contains(&"indicator added: ip (TLP:RED, value withheld)".to_string()));
    assert!(
        summaries.contains(&"indicator added: ip (TLP:AMBER+STRICT, value withheld)".to_string())
    );
    assert!(summaries.contains(&"indicator added: ip 198.51.100.79".to_string()));
    for secret in secrets {
        assert!(
            !summaries.iter().any(|s| s.contains(secret)),
            "{secret:?} in {summaries:?}"
        );
        assert!(
            !report.contains(secret),
            "{secret:?} in the report\n{report}"
        );
    }
    assert!(report.contains("198.51.100.79"), "unrestricted values stay");

    for lead in ["security_lead", "trust_team", "admin"] {
        let (values, got, swept, evidence_code, _, report) = view(lead).await;
        assert_eq!(
            values,
            [red.value.clone(), strict.value.clone(), clear.value.clone()],
            "{lead}"
        );
        assert_eq!(
            (got, swept),
            (red.value.clone(), red.value.clone()),
            "{lead}"
        );
        assert_eq!(evidence_code, Code::Ok, "{lead}");
        assert!(report.contains("Memory image of agent BA-17"), "{lead}");
    }

    // A responder who holds a role on the incident sees its restricted material.
    app.incidents()
        .assign_role(pb::AssignRoleRequest {
            parent: incident.name.clone(),
            role: Some(pb::Role {
                kind: pb::RoleKind::IncidentResponseLead as i32,
                person: "Responder@example.com".into(),
                team: "security-response".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("role");
    let (values, got, _, evidence_code, _, _) = view("responder").await;
    assert_eq!(
        values,
        [red.value.clone(), strict.value.clone(), clear.value.clone()]
    );
    assert_eq!(got, red.value);
    assert_eq!(evidence_code, Code::Ok);
    // A caller who holds no role on it does not.
    let (values, _, _, evidence_code, _, _) = view("service_manager").await;
    assert_eq!(values[0], "[withheld]");
    assert_eq!(evidence_code, Code::PermissionDenied);
}

async fn external_reports_name_no_one_and_hold_back_unreleased_notices(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let incident = security_incident(&app, "Token theft").await;
    app.incidents_as("security_lead")
        .create_notification(pb::CreateNotificationRequest {
            parent: incident.name.clone(),
            notification: Some(pb::Notification {
                audience: pb::Audience::Customers as i32,
                subject: "Draft: scope still unconfirmed".into(),
                body: "We believe up to 40,000 mailboxes…".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("draft");
    advance_through(&app, &incident.name, &FORWARD_TO_POST_INCIDENT).await;
    app.incidents()
        .create_post_incident_review(pb::CreatePostIncidentReviewRequest {
            parent: incident.name.clone(),
            review: Some(post_incident_review()),
            request_id: String::new(),
        })
        .await
        .expect("review");
    let export = async |format: tpb::ReportFormat, external: bool| {
        let report = app
            .incidents()
            .export_incident_report(pb::ExportIncidentReportRequest {
                name: incident.name.clone(),
                format: format as i32,
                external,
            })
            .await
            .expect("report")
            .into_inner();
        String::from_utf8(report.content).expect("utf-8")
    };
    let names = [
        "identity-team@example.com",
        "soc@example.com",
        "lead@example.com",
        "owner@example.com",
    ];
    let unreleased = ["Draft: scope still unconfirmed", "40,000 mailboxes"];
    let internal = export(tpb::ReportFormat::Json, false).await;
    assert!(internal.contains("identity-team@example.com"), "{internal}");
    assert!(
        internal.contains("Draft: scope still unconfirmed"),
        "{internal}"
    );
    for format in [
        tpb::ReportFormat::Markdown,
        tpb::ReportFormat::Json,
        tpb::ReportFormat::Html,
    ] {
        let external = export(format, true).await;
        assert!(
            external.contains("Disable legacy authentication"),
            "{external}"
        );
        for withheld in names.iter().chain(&unreleased) {
            assert!(
                !external.contains(withheld),
                "{format:?}: {withheld:?} leaked into\n{external}"
            );
        }
    }
}

/// The register exists so that units can be compared: a scoped principal and a viewer read
/// every service's risks, while the same scoped principal sees only its incidents.
async fn the_risk_register_stays_open_to_every_reader(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    org_fixture(&app).await;
    create_service(&app, "teams", "productivity").await;
    let theirs = create_risk(&app, new_risk("Guest access misconfigured", "teams")).await;
    for who in ["scoped", "viewer"] {
        let listed = app
            .risks_as(who)
            .list_risks(rpb::ListRisksRequest::default())
            .await
            .unwrap_or_else(|e| panic!("{who} lists risks: {e}"))
            .into_inner();
        assert!(
            listed.risks.iter().any(|r| r.name == theirs.name),
            "{who} reads another service's risks"
        );
        app.risks_as(who)
            .get_risk(rpb::GetRiskRequest {
                name: theirs.name.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("{who} reads a risk: {e}"));
    }
    let hidden = declare_for(&app, "Meeting bombing", "teams").await;
    let listed = app
        .incidents_as("scoped")
        .list_incidents(pb::ListIncidentsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(listed.incidents.iter().all(|i| i.name != hidden.name));
}
