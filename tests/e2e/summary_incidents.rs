//! `IncidentSummaryService.SummarizeIncidents` through a real incident-service: a fixture of
//! incidents with known services, phases, classifications and times, and every figure of
//! every group asserted — against hand-computed values where the test controls them (counts,
//! times to detect, the nearest-rank p90 of a known set) and against a plain model of the
//! definitions (docs/posture-incidents.md) over the incidents as the API returns them (times
//! to contain and recover come from the server's clock). Then the period's boundaries, scoped
//! principals and bad input.

use assurance_proto::incident::v1::{
    self as pb, incident_summary_service_client::IncidentSummaryServiceClient,
};
use assurance_proto::r#type::v1 as tpb;
use prost_types::{FieldMask, Timestamp};
use tonic::Code;

use crate::helpers::*;

crate::on_both_backends!(
    summaries_count_each_group_s_own_incidents,
    summaries_refuse_scoped_callers_beyond_their_services_and_bad_input,
);

const MINUTE: i64 = 60_000_000;
const DAY: i64 = 86_400_000_000;

fn client(app: &App, who: &str) -> IncidentSummaryServiceClient<Authed> {
    IncidentSummaryServiceClient::new(app.channel_as(who))
}

fn micros(ts: &Option<Timestamp>) -> Option<i64> {
    ts.as_ref()
        .map(|t| t.seconds * 1_000_000 + i64::from(t.nanos / 1000))
}

fn ts(micros: i64) -> Timestamp {
    Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn group(key: &str, services: &[&str], complement: bool) -> pb::IncidentGroup {
    pb::IncidentGroup {
        key: key.into(),
        services: services.iter().map(|s| format!("services/{s}")).collect(),
        complement,
    }
}

/// An incident on `services`, detected `detect_after` microseconds after it occurred (no
/// occurrence time when None); `breach` raises its derived severity from LOW to HIGH.
fn incident(
    title: &str,
    services: &[&str],
    detect_after: Option<i64>,
    breach: bool,
) -> pb::Incident {
    let detected = now_micros() - DAY;
    pb::Incident {
        title: title.into(),
        summary: "Seen by the SOC.".into(),
        classification: pb::Classification::Event as i32,
        functional_impact: pb::FunctionalImpact::Low as i32,
        information_impacts: vec![if breach {
            pb::InformationImpact::PrivacyBreach
        } else {
            pb::InformationImpact::None
        } as i32],
        recoverability: pb::Recoverability::Regular as i32,
        affected_services: services.iter().map(|s| format!("services/{s}")).collect(),
        detection_source: "siem".into(),
        incident_type: "credential-compromise".into(),
        occur_time: detect_after.map(|d| ts(detected - d)),
        detect_time: Some(ts(detected)),
        ..Default::default()
    }
}

async fn declare(app: &App, inc: pb::Incident) -> String {
    app.incidents()
        .declare_incident(pb::DeclareIncidentRequest {
            incident: Some(inc),
            request_id: String::new(),
        })
        .await
        .expect("declare")
        .into_inner()
        .name
}

async fn classify(app: &App, name: &str, classification: pb::Classification, customer_data: bool) {
    app.incidents()
        .update_incident(pb::UpdateIncidentRequest {
            incident: Some(pb::Incident {
                name: name.into(),
                classification: classification as i32,
                customer_data_affected: customer_data,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["classification".into(), "customer_data_affected".into()],
            }),
        })
        .await
        .expect("classify");
}

async fn advance(app: &App, name: &str, phases: &[pb::Phase]) {
    for phase in phases {
        app.incidents()
            .advance_phase(pb::AdvancePhaseRequest {
                name: name.into(),
                target_phase: *phase as i32,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("advance to {phase:?}: {e}"));
    }
}

async fn close(app: &App, name: &str) {
    app.incidents()
        .close_incident(pb::CloseIncidentRequest {
            name: name.into(),
            resolution: "resolved".into(),
            ..Default::default()
        })
        .await
        .expect("close");
}

async fn review(app: &App, name: &str) {
    app.incidents()
        .create_post_incident_review(pb::CreatePostIncidentReviewRequest {
            parent: name.into(),
            review: Some(pb::PostIncidentReview {
                root_cause: "A legacy protocol left enabled.".into(),
                went_well: "Fast containment.".into(),
                went_poorly: "Slow triage.".into(),
                lessons_learned: "Disable legacy authentication.".into(),
                participants: vec!["lead@example.com".into()],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("review");
}

async fn get(app: &App, name: &str) -> pb::Incident {
    app.incidents()
        .get_incident(pb::GetIncidentRequest { name: name.into() })
        .await
        .expect("get")
        .into_inner()
}

async fn summarize(
    app: &App,
    request: pb::SummarizeIncidentsRequest,
) -> pb::SummarizeIncidentsResponse {
    client(app, "admin")
        .summarize_incidents(request)
        .await
        .expect("summarize")
        .into_inner()
}

/// The nearest-rank rule: the value of rank ⌈p·n/100⌉ (at least 1) of the sorted values.
fn stats(mut values: Vec<i64>) -> pb::DurationStats {
    values.sort_unstable();
    let n = values.len() as i64;
    if n == 0 {
        return pb::DurationStats::default();
    }
    let rank = ((90 * n + 99) / 100).max(1);
    let dur = |m: i64| prost_types::Duration {
        seconds: m.div_euclid(1_000_000),
        nanos: (m.rem_euclid(1_000_000) * 1000) as i32,
    };
    pb::DurationStats {
        count: n,
        mean: Some(dur(values.iter().sum::<i64>() / n)),
        p90: Some(dur(values[(rank - 1) as usize])),
    }
}

/// The definitions of docs/posture-incidents.md, over incidents as the API returns them.
fn model(
    incidents: &[pb::Incident],
    g: &pb::IncidentGroup,
    (start, end): (i64, i64),
    top_n: usize,
) -> pb::IncidentSummary {
    let member = |i: &&pb::Incident| {
        let listed = |s: &String| g.services.contains(s);
        if g.complement {
            i.affected_services.is_empty() || i.affected_services.iter().any(|s| !listed(s))
        } else {
            i.affected_services.iter().any(listed)
        }
    };
    let not_an_incident = pb::Classification::NotAnIncident as i32;
    let counted: Vec<&pb::Incident> = incidents
        .iter()
        .filter(member)
        .filter(|i| i.classification != not_an_incident)
        .collect();
    let mut open: Vec<&pb::Incident> = counted
        .iter()
        .copied()
        .filter(|i| i.phase != pb::Phase::Closed as i32)
        .collect();
    let period: Vec<&pb::Incident> = counted
        .iter()
        .copied()
        .filter(|i| (start..end).contains(&micros(&i.declare_time).unwrap_or(0)))
        .collect();
    let durations = |to: fn(&pb::Incident) -> &Option<Timestamp>,
                     from: fn(&pb::Incident) -> &Option<Timestamp>| {
        stats(
            period
                .iter()
                .filter_map(|i| Some(micros(to(i))? - micros(from(i))?))
                .collect(),
        )
    };
    open.sort_by_key(|i| {
        (
            -i.severity,
            micros(&i.declare_time),
            i.name
                .rsplit('/')
                .next()
                .map(|id| uuid::Uuid::parse_str(id).expect("uuid").as_bytes().to_vec()),
        )
    });
    pb::IncidentSummary {
        key: g.key.clone(),
        open_incidents: open.len() as i64,
        open_by_phase: (1..=5)
            .map(|phase| pb::PhaseCount {
                phase,
                count: open.iter().filter(|i| i.phase == phase).count() as i64,
            })
            .collect(),
        open_by_severity: (1..=4)
            .map(|severity| pb::SeverityCount {
                severity,
                count: open.iter().filter(|i| i.severity == severity).count() as i64,
            })
            .collect(),
        kpis: Some(pb::IncidentKpis {
            count: period.len() as i64,
            time_to_detect: Some(durations(|i| &i.detect_time, |i| &i.occur_time)),
            time_to_contain: Some(durations(|i| &i.contain_time, |i| &i.declare_time)),
            time_to_recover: Some(durations(|i| &i.recover_time, |i| &i.declare_time)),
        }),
        top_incidents: open
            .iter()
            .take(top_n)
            .map(|i| pb::OpenIncident {
                incident: i.name.clone(),
                title: i.title.clone(),
                severity: i.severity,
                phase: i.phase,
                declare_time: i.declare_time,
            })
            .collect(),
    }
}

/// The figures of one summary, for asserting a few by hand.
fn detect(s: &pb::IncidentSummary) -> (i64, Option<i64>, Option<i64>) {
    let d = s
        .kpis
        .as_ref()
        .and_then(|k| k.time_to_detect)
        .unwrap_or_default();
    (
        d.count,
        d.mean.map(|m| m.seconds / 60),
        d.p90.map(|m| m.seconds / 60),
    )
}

async fn summaries_count_each_group_s_own_incidents(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    use pb::Phase::{Containment, Eradication, PostIncident, Recovery};

    // exchange-online only: contained, still open.
    let a = declare(
        &app,
        incident("A", &["exchange-online"], Some(10 * MINUTE), true),
    )
    .await;
    classify(&app, &a, pb::Classification::SecurityIncident, false).await;
    advance(&app, &a, &[Containment]).await;
    // exchange-online and sharepoint (counted once by a group holding both): recovering,
    // CRITICAL (customer data).
    let ab = declare(
        &app,
        incident(
            "AB",
            &["exchange-online", "sharepoint"],
            Some(20 * MINUTE),
            true,
        ),
    )
    .await;
    classify(&app, &ab, pb::Classification::SecurityIncident, true).await;
    advance(&app, &ab, &[Containment, Eradication, Recovery]).await;
    // sharepoint: LOW, in analysis.
    let b = declare(
        &app,
        incident("B", &["sharepoint"], Some(30 * MINUTE), false),
    )
    .await;
    // teams: not an incident, closed — counted nowhere.
    let nai = declare(&app, incident("NAI", &["teams"], Some(40 * MINUTE), true)).await;
    classify(&app, &nai, pb::Classification::NotAnIncident, false).await;
    close(&app, &nai).await;
    // No service at all: only complement groups hold it.
    let none = declare(&app, incident("None", &[], Some(50 * MINUTE), true)).await;
    // exchange-online, occurrence unknown: no time to detect.
    let a2 = declare(&app, incident("A2", &["exchange-online"], None, false)).await;
    // sharepoint and teams: closed after a full cycle and its review.
    let bc = declare(
        &app,
        incident("BC", &["sharepoint", "teams"], Some(70 * MINUTE), true),
    )
    .await;
    classify(&app, &bc, pb::Classification::SecurityIncident, false).await;
    advance(
        &app,
        &bc,
        &[Containment, Eradication, Recovery, PostIncident],
    )
    .await;
    review(&app, &bc).await;
    close(&app, &bc).await;
    // onedrive: eleven incidents detected 1..=11 minutes after they occurred.
    let mut eleven = Vec::new();
    for m in 1..=11 {
        eleven.push(
            declare(
                &app,
                incident(&format!("D{m}"), &["onedrive"], Some(m * MINUTE), true),
            )
            .await,
        );
    }
    let mut incidents = Vec::new();
    for name in [&a, &ab, &b, &nai, &none, &a2, &bc]
        .into_iter()
        .chain(eleven.iter())
    {
        incidents.push(get(&app, name).await);
    }
    let declared: Vec<i64> = incidents
        .iter()
        .map(|i| micros(&i.declare_time).expect("declared"))
        .collect();
    assert!(
        declared.windows(2).all(|w| w[0] < w[1]),
        "declared one after another"
    );

    let groups = vec![
        group("one", &["exchange-online"], false),
        group("multi", &["exchange-online", "sharepoint"], false),
        group("not-exchange", &["exchange-online"], true),
        group("enterprise", &[], true),
        group("empty", &[], false),
        group("unknown", &["no-such-service"], false),
        group("p90", &["onedrive"], false),
    ];
    let request = pb::SummarizeIncidentsRequest {
        groups: groups.clone(),
        top_n: 3,
        ..Default::default()
    };
    let before = now_micros();
    let all = summarize(&app, request.clone()).await;
    let after = now_micros();
    // Default period: the 90 days before now.
    let (start, end) = (
        micros(&all.start_time).expect("start"),
        micros(&all.end_time).expect("end"),
    );
    assert!((before..=after).contains(&end), "end_time defaults to now");
    assert_eq!(end - start, 90 * DAY);
    let keys: Vec<&str> = all.summaries.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "one",
            "multi",
            "not-exchange",
            "enterprise",
            "empty",
            "unknown",
            "p90"
        ]
    );
    for (g, summary) in groups.iter().zip(&all.summaries) {
        assert_eq!(
            summary,
            &model(&incidents, g, (start, end), 3),
            "group {}",
            g.key
        );
    }
    // By hand: the group's own incidents, each once.
    let by_key = |key: &str| {
        all.summaries
            .iter()
            .find(|s| s.key == key)
            .cloned()
            .expect("summary")
    };
    let one = by_key("one");
    assert_eq!(one.open_incidents, 3, "A, AB, A2");
    assert_eq!(detect(&one), (2, Some(15), Some(20)));
    let multi = by_key("multi");
    assert_eq!(multi.open_incidents, 4, "A, AB once, B, A2");
    assert_eq!(multi.kpis.as_ref().map(|k| k.count), Some(5), "and BC");
    assert_eq!(detect(&multi), (4, Some(32), Some(70)));
    let phases: Vec<i64> = multi.open_by_phase.iter().map(|p| p.count).collect();
    assert_eq!(
        phases,
        [2, 1, 0, 1, 0],
        "A2 and B analysing, A contained, AB recovering"
    );
    let severities: Vec<(i32, i64)> = multi
        .open_by_severity
        .iter()
        .map(|s| (s.severity, s.count))
        .collect();
    assert_eq!(
        severities,
        [
            (tpb::Severity::Low as i32, 2),
            (tpb::Severity::Medium as i32, 0),
            (tpb::Severity::High as i32, 1),
            (tpb::Severity::Critical as i32, 1)
        ]
    );
    let top: Vec<&str> = multi
        .top_incidents
        .iter()
        .map(|t| t.title.as_str())
        .collect();
    assert_eq!(
        top,
        ["AB", "A", "B"],
        "most severe, then the earlier declared"
    );
    let contain = multi
        .kpis
        .as_ref()
        .and_then(|k| k.time_to_contain)
        .unwrap_or_default();
    assert_eq!(contain.count, 3, "A, AB and BC were contained");
    let recover = multi
        .kpis
        .as_ref()
        .and_then(|k| k.time_to_recover)
        .unwrap_or_default();
    assert_eq!(recover.count, 2, "AB and BC recovered");
    let complement = by_key("not-exchange");
    assert_eq!(
        complement.open_incidents, 14,
        "AB (also sharepoint), B, None, D1..D11; not A or A2 (exchange-online alone)"
    );
    assert_eq!(
        complement.kpis.as_ref().map(|k| k.count),
        Some(15),
        "and BC"
    );
    let enterprise = by_key("enterprise");
    assert_eq!(enterprise.open_incidents, 16, "every open incident");
    assert_eq!(enterprise.kpis.as_ref().map(|k| k.count), Some(17));
    for key in ["empty", "unknown"] {
        let s = by_key(key);
        assert_eq!(s.open_incidents, 0);
        assert_eq!(
            s.open_by_phase.len(),
            5,
            "every phase but CLOSED, zeros included"
        );
        assert_eq!(
            s.open_by_severity.len(),
            4,
            "every severity, zeros included"
        );
        assert_eq!(s.kpis.as_ref().map(|k| k.count), Some(0));
        assert!(s.top_incidents.is_empty());
    }
    // Nearest rank of eleven values: the 10th (⌈9.9⌉); mean 6 minutes.
    assert_eq!(detect(&by_key("p90")), (11, Some(6), Some(10)));

    // The period [start, end): AB's declaration is in, A2's is out.
    let (from, to) = (declared[1], declared[5]);
    let bounded = summarize(
        &app,
        pb::SummarizeIncidentsRequest {
            groups: groups.clone(),
            start_time: Some(ts(from)),
            end_time: Some(ts(to)),
            top_n: 0,
        },
    )
    .await;
    assert_eq!(
        (micros(&bounded.start_time), micros(&bounded.end_time)),
        (Some(from), Some(to))
    );
    for (g, summary) in groups.iter().zip(&bounded.summaries) {
        assert_eq!(
            summary,
            &model(&incidents, g, (from, to), 0),
            "group {}",
            g.key
        );
    }
    let multi = bounded
        .summaries
        .iter()
        .find(|s| s.key == "multi")
        .expect("multi");
    assert_eq!(multi.kpis.as_ref().map(|k| k.count), Some(2), "AB and B");
    assert!(multi.top_incidents.is_empty(), "top_n 0 lists none");
    // Only end_time: the 90 days before it.
    let earlier = summarize(
        &app,
        pb::SummarizeIncidentsRequest {
            groups: vec![group("enterprise", &[], true)],
            end_time: Some(ts(declared[0])),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(micros(&earlier.start_time), Some(declared[0] - 90 * DAY));
    assert_eq!(earlier.summaries[0].kpis.as_ref().map(|k| k.count), Some(0));
    assert_eq!(
        earlier.summaries[0].open_incidents, 16,
        "open counts ignore the period"
    );

    // The gateway's system credential, for a user.
    let as_system = client(&app, "system")
        .summarize_incidents(request)
        .await
        .expect("system summarises")
        .into_inner();
    assert_eq!(as_system.summaries, all.summaries);

    // A change shows at once (answers are reused only while nothing they cover changed).
    let warm = summarize(&app, request_one()).await;
    assert_eq!(warm.summaries[0].open_incidents, 3);
    let late = declare(
        &app,
        incident("Late", &["exchange-online"], Some(MINUTE), true),
    )
    .await;
    let again = summarize(&app, request_one()).await;
    assert_eq!(again.summaries[0].open_incidents, 4, "A, AB, A2 and Late");
    classify(&app, &late, pb::Classification::NotAnIncident, false).await;
    let again = summarize(&app, request_one()).await;
    assert_eq!(
        again.summaries[0].open_incidents, 3,
        "Late is not an incident"
    );
}

fn request_one() -> pb::SummarizeIncidentsRequest {
    pb::SummarizeIncidentsRequest {
        groups: vec![group("one", &["exchange-online"], false)],
        top_n: 3,
        ..Default::default()
    }
}

async fn summaries_refuse_scoped_callers_beyond_their_services_and_bad_input(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    declare(
        &app,
        incident("A", &["exchange-online"], Some(MINUTE), true),
    )
    .await;
    declare(&app, incident("B", &["sharepoint"], Some(MINUTE), true)).await;
    let ask = |who: &str, groups: Vec<pb::IncidentGroup>| {
        let mut c = client(&app, who);
        async move {
            c.summarize_incidents(pb::SummarizeIncidentsRequest {
                groups,
                top_n: 10,
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner())
        }
    };
    // A principal scoped to exchange-online sees its own service…
    let own = ask("scoped", vec![group("mine", &["exchange-online"], false)])
        .await
        .expect("own service");
    assert_eq!(own.summaries[0].open_incidents, 1);
    assert_eq!(own.summaries[0].top_incidents.len(), 1);
    // …but names no other, and no complement (it would reach every other service).
    for groups in [
        vec![group("theirs", &["sharepoint"], false)],
        vec![
            group("mine", &["exchange-online"], false),
            group("both", &["exchange-online", "sharepoint"], false),
        ],
        vec![group("rest", &["exchange-online"], true)],
        vec![group("enterprise", &[], true)],
    ] {
        let err = ask("scoped", groups).await.expect_err("out of scope");
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    }
    // Roles outside the posture readers and `system`.
    for who in ["responder", "tracker"] {
        let err = ask(who, vec![group("mine", &["exchange-online"], false)])
            .await
            .expect_err("not a posture reader");
        assert_eq!(err.code(), Code::PermissionDenied, "{who}: {err:?}");
    }
    // Posture readers, unscoped.
    for who in ["viewer", "reporter", "erm_executive"] {
        ask(who, vec![group("enterprise", &[], true)])
            .await
            .unwrap_or_else(|e| panic!("{who}: {e:?}"));
    }

    // Bad input: every violation at once, by field path.
    let err = client(&app, "admin")
        .summarize_incidents(pb::SummarizeIncidentsRequest::default())
        .await
        .expect_err("no groups");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), ["groups"]);
    let err = client(&app, "admin")
        .summarize_incidents(pb::SummarizeIncidentsRequest {
            groups: vec![
                group("a", &["exchange-online"], false),
                group("a", &[], true),
                pb::IncidentGroup {
                    key: String::new(),
                    services: vec!["exchange-online".into(), "services/Bad_Id".into()],
                    complement: false,
                },
                group(&"k".repeat(201), &[], false),
            ],
            top_n: 101,
            start_time: Some(ts(now_micros())),
            end_time: Some(ts(now_micros() - DAY)),
        })
        .await
        .expect_err("bad input");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&err),
        [
            "groups[1].key",
            "groups[2].key",
            "groups[2].services[0]",
            "groups[2].services[1]",
            "groups[3].key",
            "top_n",
            "start_time"
        ]
    );
    let err = client(&app, "admin")
        .summarize_incidents(pb::SummarizeIncidentsRequest {
            groups: vec![pb::IncidentGroup {
                key: "big".into(),
                services: (0..5001).map(|n| format!("services/s{n}")).collect(),
                complement: false,
            }],
            top_n: -1,
            end_time: Some(Timestamp {
                seconds: 0,
                nanos: -1,
            }),
            ..Default::default()
        })
        .await
        .expect_err("too many services");
    assert_eq!(
        violations(&err),
        ["groups[0].services", "top_n", "end_time"]
    );
    let err = client(&app, "admin")
        .summarize_incidents(pb::SummarizeIncidentsRequest {
            groups: (0..1001)
                .map(|n| group(&format!("g{n}"), &[], false))
                .collect(),
            ..Default::default()
        })
        .await
        .expect_err("too many groups");
    assert_eq!(violations(&err), ["groups"]);
}
