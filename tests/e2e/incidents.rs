//! Incidents through a real incident-service: declaration, NIST prioritisation, the phase
//! machine, the timeline, lists and validation.

use assurance_proto::incident::v1 as pb;
use prost_types::FieldMask;
use tonic::Code;

use crate::helpers::*;

crate::on_both_backends!(
    incident_goes_through_the_phases_with_a_timeline,
    non_incidents_close_from_analysis_and_lists_filter,
    invalid_incident_requests_name_every_bad_field,
    the_embedded_gateway_serves_incidents,
    the_review_queues_follow_ups_and_risks_and_allows_closing,
    watchers_see_every_change_and_resume_from_their_cursor,
    indicators_are_normalised_and_swept_across_incidents,
    roles_are_assigned_reassigned_and_recorded,
    evidence_keeps_an_append_only_chain_of_custody,
    notifications_need_another_approver_and_keep_their_deadline,
    metrics_count_and_time_incidents_in_a_scope,
    reports_export_markdown_and_json_and_withhold_restricted_material,
    declaration_seeds_federated_tasks_from_the_template,
);

fn new_incident(title: &str) -> pb::Incident {
    pb::Incident {
        title: title.into(),
        summary: "Impossible-travel sign-ins for a finance admin.".into(),
        classification: pb::Classification::Event as i32,
        functional_impact: pb::FunctionalImpact::Low as i32,
        information_impacts: vec![pb::InformationImpact::PrivacyBreach as i32],
        recoverability: pb::Recoverability::Regular as i32,
        affected_services: vec!["services/exchange-online".into()],
        detection_source: "siem-alert-4711".into(),
        incident_type: "credential-compromise".into(),
        ..Default::default()
    }
}

async fn declare(app: &App, incident: pb::Incident) -> pb::Incident {
    app.incidents()
        .declare_incident(pb::DeclareIncidentRequest {
            incident: Some(incident),
            request_id: String::new(),
        })
        .await
        .expect("declare")
        .into_inner()
}

async fn advance(
    app: &App,
    name: &str,
    target: pb::Phase,
    reason: &str,
) -> Result<pb::Incident, tonic::Status> {
    app.incidents()
        .advance_phase(pb::AdvancePhaseRequest {
            name: name.into(),
            target_phase: target as i32,
            reason: reason.into(),
            etag: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn incident_goes_through_the_phases_with_a_timeline(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, new_incident("Finance admin account takeover")).await;
    assert!(declared.name.starts_with("incidents/"));
    assert_eq!(declared.phase, pb::Phase::DetectionAnalysis as i32);
    // Privacy breach → HIGH by the default rule, derived (not overridden).
    assert_eq!(declared.severity, pb::Severity::High as i32);
    assert!(!declared.severity_overridden);
    assert!(declared.declare_time.is_some() && declared.detect_time.is_some());

    // An EVENT cannot leave analysis.
    let err = advance(&app, &declared.name, pb::Phase::Containment, "")
        .await
        .expect_err("unclassified");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "ILLEGAL_PHASE_MOVE");
    assert!(
        err.message().contains("classify it SECURITY_INCIDENT"),
        "{}",
        err.message()
    );

    // Classify it; customer data affected raises the derived severity to CRITICAL.
    let classified = app
        .incidents()
        .update_incident(pb::UpdateIncidentRequest {
            incident: Some(pb::Incident {
                name: declared.name.clone(),
                classification: pb::Classification::SecurityIncident as i32,
                customer_data_affected: true,
                etag: declared.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["classification".into(), "customer_data_affected".into()],
            }),
        })
        .await
        .expect("classify")
        .into_inner();
    assert_eq!(classified.severity, pb::Severity::Critical as i32);
    assert_eq!(
        classified.title, declared.title,
        "fields outside the mask are kept"
    );

    let contained = advance(&app, &declared.name, pb::Phase::Containment, "")
        .await
        .expect("contain");
    let first_contain = contained.contain_time.expect("contain time");
    let err = advance(&app, &declared.name, pb::Phase::Recovery, "")
        .await
        .expect_err("skipping a phase");
    assert!(
        err.message().contains("advance to ERADICATION"),
        "{}",
        err.message()
    );
    advance(&app, &declared.name, pb::Phase::Eradication, "")
        .await
        .expect("eradicate");
    // Going back needs a reason.
    let err = advance(&app, &declared.name, pb::Phase::Containment, " ")
        .await
        .expect_err("no reason");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), ["reason"]);
    let back = advance(
        &app,
        &declared.name,
        pb::Phase::Containment,
        "reinfection on host fin-07",
    )
    .await
    .expect("back to containment");
    assert_eq!(
        back.contain_time,
        Some(first_contain),
        "a phase's first entry time is kept"
    );
    for phase in [
        pb::Phase::Eradication,
        pb::Phase::Recovery,
        pb::Phase::PostIncident,
    ] {
        advance(&app, &declared.name, phase, "")
            .await
            .expect("advance");
    }
    // No closing before the post-incident review.
    let err = app
        .incidents()
        .close_incident(pb::CloseIncidentRequest {
            name: declared.name.clone(),
            resolution: "done".into(),
            etag: String::new(),
        })
        .await
        .expect_err("review missing");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("review"), "{}", err.message());

    // A note, retried with its request id, lands once.
    let note = pb::AddTimelineEventRequest {
        parent: declared.name.clone(),
        summary: "Legal informed.".into(),
        request_id: "note-1".into(),
    };
    let first = app
        .incidents()
        .add_timeline_event(note.clone())
        .await
        .expect("note")
        .into_inner();
    let again = app
        .incidents()
        .add_timeline_event(note)
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(first, again);

    // Every change is in the timeline, numbered without gaps, across pages.
    let mut events = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .incidents()
            .list_timeline(pb::ListTimelineRequest {
                parent: declared.name.clone(),
                page_size: 3,
                page_token: token,
            })
            .await
            .expect("timeline")
            .into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let kinds: Vec<i32> = events.iter().map(|e| e.kind).collect();
    use pb::TimelineEventKind as K;
    assert_eq!(
        kinds,
        [
            K::Declared as i32,
            K::Updated as i32,
            K::PhaseChanged as i32,
            K::PhaseChanged as i32,
            K::PhaseChanged as i32,
            K::PhaseChanged as i32,
            K::PhaseChanged as i32,
            K::PhaseChanged as i32,
            K::Note as i32,
        ]
    );
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=9).collect::<Vec<_>>());
    assert!(
        events[1].summary.contains("severity HIGH → CRITICAL"),
        "{}",
        events[1].summary
    );
    assert!(
        events[4].summary.contains("reinfection on host fin-07"),
        "{}",
        events[4].summary
    );
    assert_eq!(events[8].summary, "Legal informed.");

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
                severity: pb::Severity::Medium as i32,
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
        (pb::Severity::Medium as i32, true)
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
        (pb::Severity::Critical as i32, false)
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
    let closed = app
        .incidents()
        .close_incident(pb::CloseIncidentRequest {
            name: names[0].clone(),
            resolution: "Benign: VPN egress change.".into(),
            etag: String::new(),
        })
        .await
        .expect("close from analysis")
        .into_inner();
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
    // Newest first by default, paged in twos.
    let mut newest_first = names.clone();
    newest_first.reverse();
    assert_eq!(list("").await, newest_first);
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

fn review() -> pb::PostIncidentReview {
    pb::PostIncidentReview {
        root_cause: "MFA fatigue on a legacy protocol left enabled.".into(),
        went_well: "Containment within an hour.".into(),
        went_poorly: "Alert routed to the wrong queue.".into(),
        lessons_learned: "Disable legacy auth tenant-wide.".into(),
        participants: vec!["lead@example.com".into(), "owner@example.com".into()],
        follow_ups: vec![
            pb::FollowUpItem {
                title: "Disable legacy authentication".into(),
                owner: "identity-team@example.com".into(),
                due_time: Some(prost_types::Timestamp {
                    seconds: 1_800_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            },
            pb::FollowUpItem {
                title: "Fix alert routing".into(),
                owner: "soc@example.com".into(),
                due_time: Some(prost_types::Timestamp {
                    seconds: 1_800_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            },
        ],
        identified_risks: vec![pb::IdentifiedRisk {
            title: "Legacy authentication bypasses MFA".into(),
            service: "services/exchange-online".into(),
            owner: "owner@example.com".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn the_review_queues_follow_ups_and_risks_and_allows_closing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let mut inc = new_incident("Token theft");
    inc.classification = pb::Classification::SecurityIncident as i32;
    let declared = declare(&app, inc).await;
    let record = |r: pb::PostIncidentReview, request_id: &str| {
        let mut client = app.incidents();
        let request = pb::RecordPostIncidentReviewRequest {
            parent: declared.name.clone(),
            review: Some(r),
            request_id: request_id.into(),
        };
        async move {
            client
                .record_post_incident_review(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let err = record(review(), "").await.expect_err("too early");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "REVIEW_NOT_ALLOWED");
    for phase in [
        pb::Phase::Containment,
        pb::Phase::Eradication,
        pb::Phase::Recovery,
        pb::Phase::PostIncident,
    ] {
        advance(&app, &declared.name, phase, "")
            .await
            .expect("advance");
    }
    let mut bad = review();
    bad.root_cause.clear();
    bad.follow_ups[1].owner.clear();
    bad.identified_risks[0].service = "exchange-online".into();
    let err = record(bad, "").await.expect_err("invalid");
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        [
            "review.follow_ups[1].owner",
            "review.identified_risks[0].service",
            "review.root_cause"
        ]
    );

    let recorded = record(review(), "review-1").await.expect("record");
    assert_eq!(recorded.name, format!("{}/review", declared.name));
    assert_eq!(recorded.follow_ups.len(), 2);
    assert!(recorded.review_time.is_some());
    // A retry answers the same; a second review is refused.
    assert_eq!(record(review(), "review-1").await.expect("retry"), recorded);
    let err = record(review(), "").await.expect_err("second review");
    assert_eq!(reason(&err), "REVIEW_EXISTS");
    let fetched = app
        .incidents()
        .get_post_incident_review(pb::GetPostIncidentReviewRequest {
            name: recorded.name.clone(),
        })
        .await
        .expect("get review")
        .into_inner();
    assert_eq!(fetched, recorded);

    // Follow-ups and identified risks wait in the outbox, written with the review.
    let store = incident_service::store::Store::open(&db.incident_url(), 2)
        .await
        .expect("open store");
    let pending = store.pending_outbox(100).await.expect("outbox");
    let kinds: Vec<&str> = pending.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "incident.follow_up",
            "incident.follow_up",
            "incident.identified_risk"
        ]
    );
    assert!(pending.iter().all(|e| e.aggregate == declared.name));
    assert!(
        pending[2]
            .payload
            .contains("IDENTIFICATION_SOURCE_INCIDENT"),
        "{}",
        pending[2].payload
    );
    assert!(pending[2].payload.contains(&declared.name));

    let closed = app
        .incidents()
        .close_incident(pb::CloseIncidentRequest {
            name: declared.name.clone(),
            resolution: "Legacy auth disabled; tokens revoked.".into(),
            etag: String::new(),
        })
        .await
        .expect("close after the review")
        .into_inner();
    assert_eq!(closed.phase, pb::Phase::Closed as i32);
}

async fn watchers_see_every_change_and_resume_from_their_cursor(backend: Backend) {
    use tokio_stream::StreamExt;
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let mut inc = new_incident("Data exfiltration via sync client");
    inc.classification = pb::Classification::SecurityIncident as i32;
    let declared = declare(&app, inc).await;
    let watch = |after: i64| {
        let mut client = app.incidents();
        let name = declared.name.clone();
        async move {
            client
                .watch_incident(pb::WatchIncidentRequest {
                    name,
                    after_sequence: after,
                })
                .await
                .expect("watch")
                .into_inner()
        }
    };
    let a = watch(0).await;
    let mut b = watch(0).await;

    // B reads the declaration, then disconnects.
    let first = b.next().await.expect("an event").expect("ok");
    assert_eq!(first.sequence, 1);
    drop(b);

    // A third client drives the incident through every phase to closure.
    for phase in [
        pb::Phase::Containment,
        pb::Phase::Eradication,
        pb::Phase::Recovery,
        pb::Phase::PostIncident,
    ] {
        advance(&app, &declared.name, phase, "")
            .await
            .expect("advance");
    }
    app.incidents()
        .record_post_incident_review(pb::RecordPostIncidentReviewRequest {
            parent: declared.name.clone(),
            review: Some(review()),
            request_id: String::new(),
        })
        .await
        .expect("review");
    app.incidents()
        .close_incident(pb::CloseIncidentRequest {
            name: declared.name.clone(),
            resolution: "Sync client removed; keys rotated.".into(),
            etag: String::new(),
        })
        .await
        .expect("close");

    // A saw everything, in order, and its stream ended after CLOSED.
    let timeout = std::time::Duration::from_secs(10);
    let seen_a: Vec<pb::TimelineEvent> =
        tokio::time::timeout(timeout, a.map(|e| e.expect("ok")).collect())
            .await
            .expect("A's stream ends after CLOSED");
    let sequences: Vec<i64> = seen_a.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=7).collect::<Vec<_>>());
    assert_eq!(
        seen_a.last().map(|e| e.kind),
        Some(pb::TimelineEventKind::Closed as i32)
    );
    let phases: Vec<i32> = seen_a.iter().map(|e| e.phase).collect();
    assert_eq!(
        phases,
        [
            pb::Phase::DetectionAnalysis as i32,
            pb::Phase::Containment as i32,
            pb::Phase::Eradication as i32,
            pb::Phase::Recovery as i32,
            pb::Phase::PostIncident as i32,
            pb::Phase::PostIncident as i32,
            pb::Phase::Closed as i32,
        ]
    );

    // B resumes from its cursor and gets exactly what it missed.
    let resumed = watch(first.sequence).await;
    let seen_b: Vec<pb::TimelineEvent> =
        tokio::time::timeout(timeout, resumed.map(|e| e.expect("ok")).collect())
            .await
            .expect("B's stream ends after CLOSED");
    assert_eq!(seen_b, seen_a[1..].to_vec());

    let err = app
        .incidents()
        .watch_incident(pb::WatchIncidentRequest {
            name: format!("incidents/{}", uuid::Uuid::now_v7()),
            after_sequence: 0,
        })
        .await
        .expect_err("unknown incident");
    assert_eq!(err.code(), Code::NotFound);
}

async fn indicators_are_normalised_and_swept_across_incidents(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let first = declare(&app, new_incident("Beaconing from build agents")).await;
    let second = declare(&app, new_incident("Phishing landing page")).await;
    let add = |parent: &str, kind: pb::IndicatorType, value: &str, request_id: &str| {
        let mut client = app.incidents();
        let request = pb::AddIndicatorRequest {
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
        async move { client.add_indicator(request).await.map(|r| r.into_inner()) }
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
        .find_indicator(pb::FindIndicatorRequest {
            r#type: pb::IndicatorType::Ip as i32,
            value: "198.51.100.7".into(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .expect("sweep")
        .into_inner();
    assert_eq!(swept.indicators.len(), 1);
    let rest = app
        .incidents()
        .find_indicator(pb::FindIndicatorRequest {
            r#type: pb::IndicatorType::Ip as i32,
            value: "198.51.100.7".into(),
            page_size: 1,
            page_token: swept.next_page_token.clone(),
        })
        .await
        .expect("second page")
        .into_inner();
    let incidents: Vec<String> = swept
        .indicators
        .iter()
        .chain(&rest.indicators)
        .map(|i| {
            i.name
                .split("/indicators/")
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(incidents, [first.name.clone(), second.name.clone()]);
    let domain = app
        .incidents()
        .find_indicator(pb::FindIndicatorRequest {
            r#type: pb::IndicatorType::Domain as i32,
            value: "evil[.]example".into(),
            ..Default::default()
        })
        .await
        .expect("domain sweep")
        .into_inner();
    assert_eq!(domain.indicators.len(), 1);
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
        .list_timeline(pb::ListTimelineRequest {
            parent: first.name.clone(),
            ..Default::default()
        })
        .await
        .expect("timeline")
        .into_inner();
    assert!(
        timeline
            .events
            .iter()
            .any(|e| e.summary == "indicator added: ip 198.51.100.7")
    );
}

async fn roles_are_assigned_reassigned_and_recorded(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, new_incident("Suspicious OAuth consent")).await;
    let assign = |kind: pb::RoleKind, person: &str, team: &str| {
        let mut client = app.incidents();
        let request = pb::AssignRoleRequest {
            parent: declared.name.clone(),
            role: Some(pb::Role {
                kind: kind as i32,
                person: person.into(),
                team: team.into(),
                ..Default::default()
            }),
        };
        async move { client.assign_role(request).await.map(|r| r.into_inner()) }
    };
    let lead = assign(
        pb::RoleKind::IncidentResponseLead,
        "ana@example.com",
        "security-response",
    )
    .await
    .expect("lead");
    assert_eq!(
        lead.name,
        format!("{}/roles/incident-response-lead", declared.name)
    );
    assign(
        pb::RoleKind::SecurityIncidentOwner,
        "sam@example.com",
        "exchange-online",
    )
    .await
    .expect("owner");
    assign(
        pb::RoleKind::IncidentResponseLead,
        "kim@example.com",
        "security-response",
    )
    .await
    .expect("handover");
    let err = assign(pb::RoleKind::Unspecified, "x y", "Bad Team")
        .await
        .expect_err("invalid");
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(fields, ["role.kind", "role.person", "role.team"]);

    let roles = app
        .incidents()
        .list_roles(pb::ListRolesRequest {
            parent: declared.name.clone(),
        })
        .await
        .expect("roles")
        .into_inner()
        .roles;
    let holders: Vec<(i32, &str)> = roles.iter().map(|r| (r.kind, r.person.as_str())).collect();
    assert_eq!(
        holders,
        [
            (pb::RoleKind::IncidentResponseLead as i32, "kim@example.com"),
            (
                pb::RoleKind::SecurityIncidentOwner as i32,
                "sam@example.com"
            ),
        ]
    );
    let timeline = app
        .incidents()
        .list_timeline(pb::ListTimelineRequest {
            parent: declared.name.clone(),
            ..Default::default()
        })
        .await
        .expect("timeline")
        .into_inner();
    assert!(
        timeline.events.iter().any(|e| e.summary
            == "incident-response-lead: ana@example.com → kim@example.com (security-response)"),
        "{:?}",
        timeline
            .events
            .iter()
            .map(|e| &e.summary)
            .collect::<Vec<_>>()
    );
}

async fn evidence_keeps_an_append_only_chain_of_custody(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, new_incident("Insider copying design files")).await;
    let other = declare(&app, new_incident("Unrelated")).await;
    let digest = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
    let item = app
        .incidents()
        .add_evidence(pb::AddEvidenceRequest {
            parent: declared.name.clone(),
            evidence: Some(pb::Evidence {
                description: "Disk image of laptop LT-4411".into(),
                hash: digest.into(),
                location: "evidence-locker-2/shelf-b".into(),
                collector: "ana@example.com".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("add evidence")
        .into_inner();
    assert_eq!(item.hash, digest.to_ascii_lowercase());
    assert_eq!(item.custodian, "ana@example.com");

    let transfer = |to: &str, purpose: &str, location: &str, request_id: &str| {
        let mut client = app.incidents();
        let request = pb::RecordCustodyRequest {
            evidence: item.name.clone(),
            entry: Some(pb::CustodyEntry {
                to_custodian: to.into(),
                purpose: purpose.into(),
                location: location.into(),
                ..Default::default()
            }),
            request_id: request_id.into(),
        };
        async move { client.record_custody(request).await.map(|r| r.into_inner()) }
    };
    let to_forensics = transfer("kim@example.com", "forensic imaging", "lab-1", "custody-1")
        .await
        .expect("transfer");
    assert_eq!(
        (to_forensics.sequence, to_forensics.from_custodian.as_str()),
        (2, "ana@example.com")
    );
    assert_eq!(
        transfer("kim@example.com", "forensic imaging", "lab-1", "custody-1")
            .await
            .expect("retry"),
        to_forensics
    );
    transfer("legal@example.com", "legal hold", "", "")
        .await
        .expect("second transfer");
    let err = transfer("", "", "", "").await.expect_err("invalid");
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(fields, ["entry.purpose", "entry.to_custodian"]);

    let log = app
        .incidents()
        .list_custody(pb::ListCustodyRequest {
            parent: item.name.clone(),
        })
        .await
        .expect("custody")
        .into_inner()
        .entries;
    let chain: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.from_custodian.as_str(), e.to_custodian.as_str()))
        .collect();
    assert_eq!(
        chain,
        [
            ("", "ana@example.com"),
            ("ana@example.com", "kim@example.com"),
            ("kim@example.com", "legal@example.com"),
        ]
    );
    let now_held = app
        .incidents()
        .list_evidence(pb::ListEvidenceRequest {
            parent: declared.name.clone(),
            ..Default::default()
        })
        .await
        .expect("list evidence")
        .into_inner()
        .evidence;
    assert_eq!(now_held.len(), 1);
    assert_eq!(now_held[0].custodian, "legal@example.com");
    assert_eq!(now_held[0].location, "lab-1", "the last move's location");

    // Evidence belongs to its incident.
    let foreign = item.name.replace(&declared.name, &other.name);
    let err = app
        .incidents()
        .list_custody(pb::ListCustodyRequest { parent: foreign })
        .await
        .expect_err("wrong incident");
    assert_eq!(err.code(), Code::NotFound);
    let err = app
        .incidents()
        .add_evidence(pb::AddEvidenceRequest {
            parent: declared.name.clone(),
            evidence: Some(pb::Evidence {
                hash: "abc".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect_err("invalid evidence");
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        [
            "evidence.collector",
            "evidence.description",
            "evidence.hash",
            "evidence.location"
        ]
    );
}

async fn notifications_need_another_approver_and_keep_their_deadline(backend: Backend) {
    use sea_orm::ConnectionTrait;
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let mut inc = new_incident("Customer records exposed");
    inc.customer_data_affected = true;
    let declared = declare(&app, inc).await;
    // Drafted by the security lead; the author is the caller, whatever the request says.
    let create = |audience: pb::Audience, subject: &str| {
        let mut client = app.incidents_as("security_lead");
        let request = pb::CreateNotificationRequest {
            parent: declared.name.clone(),
            notification: Some(pb::Notification {
                audience: audience as i32,
                subject: subject.into(),
                body: "We are writing to let you know…".into(),
                author: "comms@example.com".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        async move {
            client
                .create_notification(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let customers = create(pb::Audience::Customers, "Notice of a security incident")
        .await
        .expect("draft");
    assert_eq!(customers.status, pb::NotificationStatus::Draft as i32);
    assert_eq!(customers.author, "security_lead@example.com");
    let declared_at = declared.declare_time.expect("declared").seconds;
    assert_eq!(
        customers.deadline_time.map(|d| d.seconds),
        Some(declared_at + 72 * 3600)
    );
    assert!(!customers.overdue);
    let internal = create(pb::Audience::Internal, "All-hands note")
        .await
        .expect("internal");
    assert!(
        internal.deadline_time.is_none(),
        "internal notices have no deadline"
    );

    let sent = |name: String| {
        let mut client = app.incidents();
        async move {
            client
                .mark_notification_sent(pb::MarkNotificationSentRequest { name })
                .await
                .map(|r| r.into_inner())
        }
    };
    let approve = |name: String, who: &str| {
        let mut client = app.incidents_as(who);
        let request = pb::ApproveNotificationRequest {
            name,
            // Ignored: the approver is the caller.
            approver: "someone-else@example.com".into(),
        };
        async move {
            client
                .approve_notification(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let err = sent(customers.name.clone())
        .await
        .expect_err("not approved");
    assert_eq!(reason(&err), "NOT_APPROVED");
    let err = approve(customers.name.clone(), "security_lead")
        .await
        .expect_err("own draft");
    assert_eq!(reason(&err), "SELF_APPROVAL");
    let approved = approve(customers.name.clone(), "admin")
        .await
        .expect("approve");
    assert_eq!(
        (approved.status, approved.approver.as_str()),
        (pb::NotificationStatus::Approved as i32, "admin@example.com")
    );
    let err = approve(customers.name.clone(), "admin2")
        .await
        .expect_err("twice");
    assert_eq!(reason(&err), "NOT_A_DRAFT");
    let done = sent(customers.name.clone()).await.expect("send");
    assert_eq!(done.status, pb::NotificationStatus::Sent as i32);
    assert!(done.send_time.is_some());

    // A regulator notice whose deadline has passed shows in the overdue list of all incidents.
    let regulator = create(pb::Audience::Regulator, "Breach notification")
        .await
        .expect("regulator");
    let id = regulator
        .name
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let store = incident_service::store::Store::open(&db.incident_url(), 2)
        .await
        .expect("store");
    let past = sea_orm::Statement::from_sql_and_values(
        store.connection().get_database_backend(),
        match store.connection().get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                "UPDATE notifications SET deadline_time = 1 WHERE id = $1"
            }
            _ => "UPDATE notifications SET deadline_time = 1 WHERE id = ?",
        },
        [uuid::Uuid::parse_str(&id).expect("uuid").into()],
    );
    store
        .connection()
        .execute_raw(past)
        .await
        .expect("move the deadline into the past");
    let overdue = app
        .incidents()
        .list_notifications(pb::ListNotificationsRequest {
            parent: "incidents/-".into(),
            only_overdue: true,
            ..Default::default()
        })
        .await
        .expect("overdue")
        .into_inner()
        .notifications;
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0].name, regulator.name);
    assert!(overdue[0].overdue);
    let all = app
        .incidents()
        .list_notifications(pb::ListNotificationsRequest {
            parent: declared.name.clone(),
            ..Default::default()
        })
        .await
        .expect("all of the incident")
        .into_inner()
        .notifications;
    assert_eq!(all.len(), 3);
}

async fn metrics_count_and_time_incidents_in_a_scope(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let detected = now - 3600;
    let mut names = Vec::new();
    // Ten incidents detected i minutes after they occurred; odd ones without a privacy breach.
    for i in 1..=10i64 {
        let mut inc = new_incident(&format!("Metric incident {i}"));
        inc.occur_time = Some(prost_types::Timestamp {
            seconds: detected - 60 * i,
            nanos: 0,
        });
        inc.detect_time = Some(prost_types::Timestamp {
            seconds: detected,
            nanos: 0,
        });
        if i % 2 == 1 {
            inc.information_impacts = vec![pb::InformationImpact::None as i32];
            inc.affected_services = vec!["services/sharepoint".into()];
        }
        names.push(declare(&app, inc).await.name);
    }
    for name in &names[..2] {
        app.incidents()
            .update_incident(pb::UpdateIncidentRequest {
                incident: Some(pb::Incident {
                    name: name.clone(),
                    classification: pb::Classification::NotAnIncident as i32,
                    ..Default::default()
                }),
                update_mask: None,
            })
            .await
            .expect("classify");
        app.incidents()
            .close_incident(pb::CloseIncidentRequest {
                name: name.clone(),
                resolution: "false positive".into(),
                etag: String::new(),
            })
            .await
            .expect("close");
    }
    let metrics = |request: pb::GetIncidentMetricsRequest| {
        let mut client = app.incidents();
        async move {
            client
                .get_incident_metrics(request)
                .await
                .expect("metrics")
                .into_inner()
        }
    };
    let all = metrics(pb::GetIncidentMetricsRequest::default()).await;
    assert_eq!((all.total, all.open), (10, 8));
    let detect = all.time_to_detect.expect("time to detect");
    assert_eq!(detect.count, 10);
    // Mean of 1..10 minutes is 5.5 minutes; the nearest-rank p90 of ten values is the 9th.
    assert_eq!(detect.mean.map(|d| (d.seconds, d.nanos)), Some((330, 0)));
    assert_eq!(detect.p90.map(|d| (d.seconds, d.nanos)), Some((540, 0)));
    assert_eq!(all.total_time.expect("total").count, 2);
    assert_eq!(all.time_to_contain.expect("contain").count, 0);
    let phases: Vec<(i32, i64)> = all.by_phase.iter().map(|p| (p.phase, p.count)).collect();
    assert_eq!(
        phases,
        [
            (pb::Phase::DetectionAnalysis as i32, 8),
            (pb::Phase::Closed as i32, 2)
        ]
    );
    let severities: Vec<(i32, i64)> = all
        .by_severity
        .iter()
        .map(|s| (s.severity, s.count))
        .collect();
    assert_eq!(
        severities,
        [
            (pb::Severity::Low as i32, 5),
            (pb::Severity::High as i32, 5)
        ]
    );

    let sharepoint = metrics(pb::GetIncidentMetricsRequest {
        service: "services/sharepoint".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(sharepoint.total, 5);
    let sp_detect = sharepoint.time_to_detect.expect("detect");
    // Odd minutes 1, 3, 5, 7, 9: mean 5, p90 (5th of five) 9.
    assert_eq!(sp_detect.mean.map(|d| d.seconds), Some(300));
    assert_eq!(sp_detect.p90.map(|d| d.seconds), Some(540));
    let high = metrics(pb::GetIncidentMetricsRequest {
        severity: pb::Severity::High as i32,
        ..Default::default()
    })
    .await;
    assert_eq!(high.total, 5);
    let future = metrics(pb::GetIncidentMetricsRequest {
        start_time: Some(prost_types::Timestamp {
            seconds: now + 86_400,
            nanos: 0,
        }),
        ..Default::default()
    })
    .await;
    assert_eq!(future.total, 0);
    assert!(future.time_to_detect.expect("empty").mean.is_none());
}

async fn reports_export_markdown_and_json_and_withhold_restricted_material(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, new_incident("Credential phishing of the sales team")).await;
    let mut client = app.incidents();
    client
        .assign_role(pb::AssignRoleRequest {
            parent: declared.name.clone(),
            role: Some(pb::Role {
                kind: pb::RoleKind::IncidentResponseLead as i32,
                person: "ana@example.com".into(),
                team: "security-response".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("role");
    for (value, tlp) in [
        ("203.0.113.9", pb::Tlp::Red),
        ("198.51.100.4", pb::Tlp::Green),
    ] {
        client
            .add_indicator(pb::AddIndicatorRequest {
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
    client
        .add_evidence(pb::AddEvidenceRequest {
            parent: declared.name.clone(),
            evidence: Some(pb::Evidence {
                description: "Mailbox export".into(),
                hash: "d41d8cd98f00b204e9800998ecf8427e".into(),
                location: "vault-3".into(),
                collector: "kim@example.com".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("evidence");
    let export = |format: pb::ReportFormat, external: bool| {
        let mut client = app.incidents();
        let request = pb::ExportIncidentReportRequest {
            name: declared.name.clone(),
            format: format as i32,
            external,
        };
        async move {
            client
                .export_incident_report(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let internal = export(pb::ReportFormat::Markdown, false)
        .await
        .expect("markdown");
    assert_eq!(internal.content_type, "text/markdown; charset=utf-8");
    let text = String::from_utf8(internal.content).expect("utf-8");
    for expected in [
        "# Incident report: Credential phishing of the sales team",
        "## Timeline",
        "203.0.113.9",
        "Mailbox export",
        "ana@example.com",
        "| Severity | HIGH |",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    let external = String::from_utf8(
        export(pb::ReportFormat::Markdown, true)
            .await
            .expect("external")
            .content,
    )
    .expect("utf-8");
    assert!(external.contains("198.51.100.4"), "TLP:GREEN is shareable");
    for withheld in [
        "203.0.113.9",
        "Mailbox export",
        "ana@example.com",
        "kim@example.com",
    ] {
        assert!(
            !external.contains(withheld),
            "{withheld:?} leaked into\n{external}"
        );
    }
    let json = export(pb::ReportFormat::Json, false).await.expect("json");
    assert_eq!(json.content_type, "application/json");
    let value: serde_json::Value = serde_json::from_slice(&json.content).expect("valid JSON");
    assert_eq!(value["phase"], "DETECTION_ANALYSIS");
    assert_eq!(value["indicators"].as_array().map(Vec::len), Some(2));
    assert_eq!(value["timeline"].as_array().map(Vec::len), Some(5));
    let err = export(pb::ReportFormat::Unspecified, false)
        .await
        .expect_err("no format");
    assert_eq!(violations(&err), ["format"]);
}

async fn declaration_seeds_federated_tasks_from_the_template(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let mut client = app.incidents();
    let templates = client
        .list_response_templates(pb::ListResponseTemplatesRequest {})
        .await
        .expect("templates")
        .into_inner()
        .templates;
    assert_eq!(templates.len(), 1);
    assert_eq!(templates[0].incident_type, "default");
    assert_eq!(
        templates[0].roles,
        [
            pb::RoleKind::IncidentResponseLead as i32,
            pb::RoleKind::SecurityIncidentOwner as i32
        ]
    );
    let seeded = templates[0].tasks.len();
    let contacts = client
        .list_contacts(pb::ListContactsRequest {})
        .await
        .expect("contacts")
        .into_inner()
        .contacts;
    assert!(contacts.iter().any(|c| c.team == "security-response"));
    let rules = client
        .list_notification_rules(pb::ListNotificationRulesRequest {})
        .await
        .expect("rules")
        .into_inner()
        .rules;
    assert!(
        rules
            .iter()
            .any(|r| r.customer_data_affected && r.notify == ["customer-communications"])
    );

    let declared = declare(&app, new_incident("Malware on a build agent")).await;
    let list = |filter: &str, page_size: i32, page_token: String| {
        let mut client = app.incidents();
        let request = pb::ListTasksRequest {
            parent: declared.name.clone(),
            filter: filter.into(),
            page_size,
            page_token,
        };
        async move {
            client
                .list_tasks(request)
                .await
                .expect("tasks")
                .into_inner()
        }
    };
    let all = list("", 1000, String::new()).await.tasks;
    assert_eq!(all.len(), seeded);
    assert!(
        all.iter()
            .all(|t| t.from_template && t.status == pb::TaskStatus::Open as i32)
    );
    let phases: Vec<i32> = all.iter().map(|t| t.phase).collect();
    let mut sorted = phases.clone();
    sorted.sort();
    assert_eq!(phases, sorted, "in phase order");
    let service_containment = list(
        "owner_team = SERVICE_TEAM AND phase = CONTAINMENT",
        50,
        String::new(),
    )
    .await
    .tasks;
    let titles: Vec<&str> = service_containment
        .iter()
        .map(|t| t.title.as_str())
        .collect();
    assert_eq!(
        titles,
        ["Name the security incident owner", "Execute containment"]
    );

    // Work a task; a stale etag is refused.
    let task = service_containment[1].clone();
    let done = client
        .update_task(pb::UpdateTaskRequest {
            task: Some(pb::Task {
                name: task.name.clone(),
                status: pb::TaskStatus::Done as i32,
                assignee: "sam@example.com".into(),
                etag: task.etag.clone(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .expect("done")
        .into_inner();
    assert_eq!(
        (done.status, done.assignee.as_str()),
        (pb::TaskStatus::Done as i32, "sam@example.com")
    );
    let err = client
        .update_task(pb::UpdateTaskRequest {
            task: Some(pb::Task {
                name: task.name.clone(),
                status: 2,
                etag: task.etag.clone(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .expect_err("stale");
    assert_eq!(err.code(), Code::Aborted);

    // A task of one's own, then paging through them all.
    let extra = client
        .create_task(pb::CreateTaskRequest {
            parent: declared.name.clone(),
            task: Some(pb::Task {
                phase: pb::Phase::Recovery as i32,
                owner_team: pb::OwnerTeam::ServiceTeam as i32,
                title: "Rebuild the agent image".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create")
        .into_inner();
    assert!(!extra.from_template);
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = list("", 10, token).await;
        paged.extend(page.tasks.into_iter().map(|t| t.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged.len(), seeded + 1);
    assert!(paged.contains(&extra.name));
    let open_service = list(
        "owner_team = SERVICE_TEAM AND status = DONE",
        50,
        String::new(),
    )
    .await
    .tasks;
    assert_eq!(open_service.len(), 1);
    let err = app
        .incidents()
        .list_tasks(pb::ListTasksRequest {
            parent: declared.name.clone(),
            filter: "owner_team = JANITORS".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad filter");
    assert_eq!(violations(&err), ["filter"]);
    let timeline = app
        .incidents()
        .list_timeline(pb::ListTimelineRequest {
            parent: declared.name.clone(),
            ..Default::default()
        })
        .await
        .expect("timeline")
        .into_inner()
        .events;
    assert!(
        timeline[0]
            .summary
            .contains(&format!("{seeded} tasks from the response template"))
    );
    assert!(
        timeline
            .iter()
            .any(|e| e.summary == "task Execute containment: OPEN → DONE")
    );
}
