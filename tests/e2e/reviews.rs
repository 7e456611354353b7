//! Reviews, review cycles and observations through the embedded gateway, authenticated — the
//! whole loop: identify → assess → respond → approve (after a refused self-approval) → action
//! items done → monitoring → review → observation → reassessing review; the severity cadence
//! and the overdue-review filter on a clock the test moves; a cycle's progress per owner.

use std::time::Duration;

use assurance_proto::risk::v1::{self as pb, review_service_client::ReviewServiceClient};
use assurance_proto::r#type::v1 as tv;
use tonic::Code;

use crate::helpers::*;

fn reviews(app: &App, who: &str) -> ReviewServiceClient<Authed> {
    ReviewServiceClient::new(app.channel_as(who))
}

async fn overdue(app: &App) -> Vec<String> {
    app.risks_as("reporter")
        .list_risks(pb::ListRisksRequest {
            filter: "review_overdue = true".into(),
            ..Default::default()
        })
        .await
        .expect("list overdue")
        .into_inner()
        .risks
        .into_iter()
        .map(|r| r.name)
        .collect()
}

/// The risk owner records a review of `risk`.
async fn review(
    app: &App,
    risk: &str,
    outcome: pb::ReviewOutcome,
    reassessment: Option<pb::Assessment>,
) -> Result<pb::Review, tonic::Status> {
    reviews(app, "risk_owner")
        .create_review(pb::CreateReviewRequest {
            parent: risk.into(),
            review: Some(pb::Review {
                participants: vec!["owner@example.com".into(), "trust@example.com".into()],
                outcome: outcome as i32,
                notes: "Quarterly review with the service team.".into(),
                reassessment,
                ..Default::default()
            }),
            request_id: String::new(),
            derive_control_deficiency: false,
        })
        .await
        .map(|r| r.into_inner())
}

/// A risk in the register's story of reviews: the embedded gateway on a clock the test
/// moves, two risks of exchange-online with different owners, the first assessed HIGH.
struct Story {
    _db: TestDb,
    clock: assurance_runtime::time::Clock,
    app: App,
    risk: pb::Risk,
    assess_time: i64,
}

/// [`Story`] before the 90 days of a HIGH risk's review interval have passed.
async fn assessed_story(backend: Backend) -> (Story, pb::Risk) {
    let (db, clock, app) = gateway_on_a_test_clock(backend).await;
    let risk = create_risk(&app, new_risk("Stale admin accounts", "exchange-online")).await;
    let mut other = new_risk("Unpatched edge proxy", "exchange-online");
    other.owner = "edge-owner@example.com".into();
    create_risk(&app, other).await;
    let assessed = assess(&app, &risk.name, 4, 4, 4).await;
    let assess_time = assessed
        .latest_assessment
        .as_ref()
        .and_then(|a| a.assess_time)
        .expect("assessed")
        .seconds;
    let story = Story {
        _db: db,
        clock,
        app,
        risk,
        assess_time,
    };
    (story, assessed)
}

/// Treats the story's risk to MONITORING: respond, approve (not by the proposer), finish the
/// plan.
async fn treat_to_monitoring(story: &Story) {
    let Story {
        app,
        risk,
        assess_time,
        ..
    } = story;
    let assess_time = *assess_time;
    let response = propose_response(
        app,
        "risk_owner",
        &risk.name,
        mitigation("Quarterly access recertification."),
    )
    .await
    .expect("respond");
    let err = approve_response(app, "risk_owner", &response.name)
        .await
        .expect_err("the proposer cannot approve");
    assert_eq!(reason(&err), "SELF_APPROVAL");
    approve_response(app, "trust_team", &response.name)
        .await
        .expect("approve");
    let plan = create_action_plan(app, "admin", &risk.name, "Recertify").await;
    let due = prost_types::Timestamp {
        seconds: assess_time + 200 * 86_400,
        nanos: 0,
    };
    let item = add_action_item(
        app,
        "admin",
        &plan,
        action_item("Remove stale accounts", due),
    )
    .await
    .expect("item");
    set_item_status(app, "admin", item, tv::WorkItemStatus::Done)
        .await
        .expect("finish");
}

/// [`Story`] 91 days later, its risk treated to MONITORING.
async fn monitored_story(backend: Backend) -> Story {
    let (story, _) = assessed_story(backend).await;
    story.clock.advance(Duration::from_secs(91 * 86_400));
    treat_to_monitoring(&story).await;
    story
}

async fn a_high_risk_falls_due_for_review_after_ninety_days(backend: Backend) {
    let (story, assessed) = assessed_story(backend).await;
    let Story {
        clock,
        app,
        risk,
        assess_time,
        ..
    } = &story;
    // (4,4,4) → HIGH: reviews every 90 days.
    assert_eq!(
        assessed.next_review_time.map(|t| t.seconds),
        Some(assess_time + 90 * 86_400)
    );
    assert!(overdue(app).await.is_empty());
    clock.advance(Duration::from_secs(91 * 86_400));
    assert_eq!(overdue(app).await, vec![risk.name.clone()]);

    // Treat it to MONITORING: respond, approve, finish the plan.
    treat_to_monitoring(&story).await;
    assert_eq!(
        get_risk(app, &risk.name).await.status,
        pb::RiskStatus::Monitoring as i32
    );
}

async fn a_review_cycle_counts_each_owners_reviews_and_closes_once(backend: Backend) {
    let story = monitored_story(backend).await;
    let Story {
        app,
        risk,
        assess_time,
        ..
    } = &story;
    let (app, assess_time) = (app, *assess_time);
    // A review cycle over the business unit lists both risks by owner.
    let open_h1 = |who: &str, request_id: &str| {
        let mut client = reviews(app, who);
        let request = pb::OpenReviewCycleRequest {
            review_cycle: Some(pb::ReviewCycle {
                title: "H1 review".into(),
                scope: "businessUnits/productivity".into(),
                due_time: Some(prost_types::Timestamp {
                    seconds: assess_time + 200 * 86_400,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            request_id: request_id.into(),
        };
        async move { client.open_review_cycle(request).await }
    };
    let err = open_h1("scoped", "")
        .await
        .expect_err("scoped callers open cycles of their services only");
    assert_eq!(err.code(), Code::PermissionDenied);
    let cycle = open_h1("trust_team", "cycle-h1")
        .await
        .expect("open cycle")
        .into_inner();
    assert_eq!((cycle.risks, cycle.reviewed), (2, 0));
    assert_eq!(
        cycle
            .progress
            .iter()
            .map(|p| (p.owner.as_str(), p.risks, p.reviewed))
            .collect::<Vec<_>>(),
        vec![
            ("edge-owner@example.com", 1, 0),
            ("owner@example.com", 1, 0)
        ]
    );

    // Validation of a review.
    let err = review(app, &risk.name, pb::ReviewOutcome::Reassessed, None)
        .await
        .expect_err("reassessment missing");
    assert_eq!(violations(&err), vec!["review.reassessment"]);
    // A review that keeps the assessment: still MONITORING, no longer overdue.
    let kept = review(app, &risk.name, pb::ReviewOutcome::NoChange, None)
        .await
        .expect("review");
    assert_eq!(kept.reviewer, "risk_owner@example.com");
    let after = get_risk(app, &risk.name).await;
    assert_eq!(after.status, pb::RiskStatus::Monitoring as i32);
    assert_eq!(after.next_review_time, kept.next_review_time);
    assert!(overdue(app).await.is_empty());
    let cycle = reviews(app, "viewer")
        .get_review_cycle(pb::GetReviewCycleRequest {
            name: cycle.name.clone(),
        })
        .await
        .expect("cycle")
        .into_inner();
    assert_eq!((cycle.risks, cycle.reviewed), (2, 1));
    assert_eq!(cycle.progress[1].reviewed, 1, "owner@example.com reviewed");
    // The trust team renames the cycle and moves its due date (mask + etag); a stale etag is
    // ABORTED, a viewer may not, the scope is not updatable.
    let update = |who: &str, c: pb::ReviewCycle, paths: &[&str]| {
        let mut client = reviews(app, who);
        let request = pb::UpdateReviewCycleRequest {
            review_cycle: Some(c),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
        };
        async move { client.update_review_cycle(request).await }
    };
    let renamed = pb::ReviewCycle {
        name: cycle.name.clone(),
        title: "H1 review (extended)".into(),
        due_time: Some(prost_types::Timestamp {
            seconds: assess_time + 220 * 86_400,
            nanos: 0,
        }),
        etag: cycle.etag.clone(),
        ..Default::default()
    };
    let err = update("viewer", renamed.clone(), &["title"])
        .await
        .expect_err("viewers do not edit cycles");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = update("trust_team", renamed.clone(), &["scope"])
        .await
        .expect_err("scope is immutable");
    assert_eq!(violations(&err), vec!["update_mask"]);
    let updated = update("trust_team", renamed.clone(), &["title", "due_time"])
        .await
        .expect("update cycle")
        .into_inner();
    assert_eq!(updated.title, "H1 review (extended)");
    assert_eq!(updated.due_time, renamed.due_time);
    assert_ne!(updated.etag, cycle.etag);
    assert_eq!((updated.risks, updated.reviewed), (2, 1));
    let err = update("trust_team", renamed.clone(), &["title"])
        .await
        .expect_err("stale etag");
    assert_eq!(err.code(), Code::Aborted);

    // Close the cycle with a summary: a stale etag is ABORTED; a retry with the same request
    // id answers the same, closed once; another close is refused.
    let close = |etag: &str, request_id: &str, summary: &str| {
        let mut client = reviews(app, "trust_team");
        let request = pb::CloseReviewCycleRequest {
            name: cycle.name.clone(),
            summary: summary.into(),
            etag: etag.into(),
            request_id: request_id.into(),
        };
        async move { client.close_review_cycle(request).await }
    };
    let summary = "One of two risks reviewed; edge proxy carried over.";
    let err = close(&cycle.etag, "close-h1", summary)
        .await
        .expect_err("stale etag");
    assert_eq!(err.code(), Code::Aborted);
    let closed = close(&updated.etag, "close-h1", summary)
        .await
        .expect("close")
        .into_inner();
    assert_eq!(closed.state, pb::ReviewCycleState::Closed as i32);
    assert_eq!(closed.closed_by, "trust_team@example.com");
    let retried = close(&updated.etag, "close-h1", summary)
        .await
        .expect("retried close")
        .into_inner();
    assert_eq!(retried, closed);
    let trail = audit_trail(app, &format!("resource = \"{}\"", cycle.name)).await;
    let rpcs: Vec<&str> = trail.iter().map(|e| e.rpc.as_str()).collect();
    assert_eq!(
        rpcs,
        [
            "assurance.risk.v1.ReviewService/CloseReviewCycle",
            "assurance.risk.v1.ReviewService/UpdateReviewCycle",
            "assurance.risk.v1.ReviewService/OpenReviewCycle",
        ]
    );
    let err = close("", "", "again").await.expect_err("closed");
    assert_eq!(reason(&err), "CYCLE_CLOSED");
    let err = update("trust_team", renamed, &["title"])
        .await
        .expect_err("closed cycles do not change");
    assert_eq!(reason(&err), "CYCLE_CLOSED");

    // Cycles list oldest first, filter by state.
    let listed = reviews(app, "viewer")
        .list_review_cycles(pb::ListReviewCyclesRequest {
            filter: "state = CLOSED AND scope = \"businessUnits/productivity\"".into(),
            order_by: "due_time desc".into(),
            ..Default::default()
        })
        .await
        .expect("cycles")
        .into_inner();
    assert_eq!(listed.review_cycles.len(), 1);
    assert_eq!(listed.review_cycles[0].name, cycle.name);
}

async fn an_observation_reopens_the_assessment_and_a_reassessing_review_plans_a_year(
    backend: Backend,
) {
    let story = monitored_story(backend).await;
    let Story { app, risk, .. } = &story;
    review(app, &risk.name, pb::ReviewOutcome::NoChange, None)
        .await
        .expect("a review that keeps the assessment");
    // A penetration test finds more: back to ASSESSED, logged as a decision.
    let observation = reviews(app, "responder")
        .create_observation(pb::CreateObservationRequest {
            parent: risk.name.clone(),
            observation: Some(pb::Observation {
                source: pb::ObservationSource::PenetrationTest as i32,
                summary: "Two dormant admin accounts still sign in.".into(),
                effect: pb::ObservationEffect::LikelihoodUp as i32,
                reference: "pentest-2026-11".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("observe")
        .into_inner();
    assert!(observation.reassessment_triggered);
    assert_eq!(
        get_risk(app, &risk.name).await.status,
        pb::RiskStatus::Assessed as i32
    );
    let log = decisions(app, &risk.name).await;
    assert_eq!(log[0].kind, pb::DecisionKind::ReassessmentRequired as i32);
    assert!(log[0].summary.contains("dormant admin"));

    // A review that reassesses: (2,2,2) → LOW, next review in 365 days.
    let reassessed = review(
        app,
        &risk.name,
        pb::ReviewOutcome::Reassessed,
        Some(pb::Assessment {
            impact: 2,
            likelihood: 2,
            control_deficiency: 2,
            rationale: "Accounts removed; MFA enforced.".into(),
            ..Default::default()
        }),
    )
    .await
    .expect("reassessing review");
    let now = get_risk(app, &risk.name).await;
    let latest = now.latest_assessment.expect("latest");
    assert_eq!(latest.severity, tv::Severity::Low as i32);
    assert_eq!(latest.assessor, "risk_owner@example.com");
    assert_eq!(
        reassessed
            .next_review_time
            .map(|t| t.seconds - reassessed.review_time.map(|r| r.seconds).unwrap_or(0)),
        Some(365 * 86_400)
    );
    // The risk keeps both reviews and the observation.
    let parent = risk.name.clone();
    let (reviews_of, observations_of) = (
        pb::ListReviewsRequest {
            parent: parent.clone(),
            ..Default::default()
        },
        pb::ListObservationsRequest {
            parent,
            ..Default::default()
        },
    );
    let mut viewer = reviews(app, "viewer");
    let history = viewer
        .list_reviews(reviews_of.clone())
        .await
        .expect("reviews")
        .into_inner()
        .reviews;
    assert_eq!(history.len(), 2);
    // Oldest first by default, newest first on request; filters by outcome.
    assert_eq!(history[1].name, reassessed.name);
    let newest_first = viewer
        .list_reviews(pb::ListReviewsRequest {
            order_by: "review_time desc".into(),
            ..reviews_of.clone()
        })
        .await
        .expect("reviews newest first")
        .into_inner()
        .reviews;
    assert_eq!(newest_first[0].name, reassessed.name);
    let only = viewer
        .list_reviews(pb::ListReviewsRequest {
            filter: "outcome = REASSESSED".into(),
            ..reviews_of
        })
        .await
        .expect("filtered reviews")
        .into_inner()
        .reviews;
    assert_eq!(only, vec![reassessed.clone()]);
    // Each review and observation has a standard Get; a name of another risk is NOT_FOUND.
    let got = viewer
        .get_review(pb::GetReviewRequest {
            name: reassessed.name.clone(),
        })
        .await
        .expect("get review")
        .into_inner();
    assert_eq!(got, reassessed);
    let observed = viewer
        .list_observations(pb::ListObservationsRequest {
            filter: "reassessment_triggered = true AND source = PENETRATION_TEST".into(),
            ..observations_of
        })
        .await
        .expect("observations")
        .into_inner()
        .observations;
    assert_eq!(observed, vec![observation.clone()]);
    let got = viewer
        .get_observation(pb::GetObservationRequest {
            name: observation.name.clone(),
        })
        .await
        .expect("get observation")
        .into_inner();
    assert_eq!(got, observation);
    let elsewhere = observation.name.replacen(
        risk.name.trim_start_matches("risks/"),
        "01890000-0000-7000-8000-000000000000",
        1,
    );
    let err = viewer
        .get_observation(pb::GetObservationRequest { name: elsewhere })
        .await
        .expect_err("not that risk's");
    assert_eq!(err.code(), Code::NotFound);
    let err = viewer
        .get_review(pb::GetReviewRequest::default())
        .await
        .expect_err("name required");
    assert_eq!(violations(&err), vec!["name"]);
}

async fn empty_requests_name_every_required_field(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = embedded_gateway(&db, backend).await;
    let mut c = reviews(&app, "admin");
    let err = c
        .create_review(pb::CreateReviewRequest::default())
        .await
        .expect_err("empty");
    names_required(
        err,
        &["parent", "review", "review.participants", "review.outcome"],
    );
    let err = c
        .create_observation(pb::CreateObservationRequest {
            observation: Some(pb::Observation {
                observer: "x".into(),
                reassessment_triggered: true,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("empty");
    names_required(
        err,
        &[
            "parent",
            "observation.source",
            "observation.summary",
            "observation.effect",
        ],
    );
    let err = c
        .open_review_cycle(pb::OpenReviewCycleRequest::default())
        .await
        .expect_err("empty");
    names_required(
        err,
        &[
            "review_cycle",
            "review_cycle.title",
            "review_cycle.due_time",
        ],
    );
    let err = c
        .update_review_cycle(pb::UpdateReviewCycleRequest::default())
        .await
        .expect_err("empty");
    names_required(err, &["review_cycle"]);
    let err = c
        .close_review_cycle(pb::CloseReviewCycleRequest::default())
        .await
        .expect_err("empty");
    names_required(err, &["name", "summary"]);
    let err = c
        .get_review_cycle(pb::GetReviewCycleRequest::default())
        .await
        .expect_err("empty");
    names_required(err, &["name"]);
    let err = c
        .get_observation(pb::GetObservationRequest::default())
        .await
        .expect_err("empty");
    names_required(err, &["name"]);
    let err = c
        .list_reviews(pb::ListReviewsRequest::default())
        .await
        .expect_err("empty");
    names_required(err, &["parent"]);
    let err = c
        .list_observations(pb::ListObservationsRequest::default())
        .await
        .expect_err("empty");
    names_required(err, &["parent"]);
}

/// A reassessing review gives its control deficiency or derives it from the linked controls,
/// exactly as AssessRisk: one of the two, never neither nor both.
async fn a_reassessing_review_gives_or_derives_the_control_deficiency(backend: Backend) {
    let story = monitored_story(backend).await;
    let Story { app, risk, .. } = &story;
    let send = |deficiency: i32, derive: bool| {
        let mut client = reviews(app, "risk_owner");
        let parent = risk.name.clone();
        async move {
            client
                .create_review(pb::CreateReviewRequest {
                    parent,
                    review: Some(pb::Review {
                        participants: vec!["owner@example.com".into()],
                        outcome: pb::ReviewOutcome::Reassessed as i32,
                        reassessment: Some(pb::Assessment {
                            impact: 2,
                            likelihood: 2,
                            control_deficiency: deficiency,
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                    derive_control_deficiency: derive,
                })
                .await
        }
    };
    let err = send(0, false).await.expect_err("neither");
    assert_eq!(violations(&err), ["review.reassessment.control_deficiency"]);
    let err = send(3, true).await.expect_err("both");
    assert_eq!(violations(&err), ["derive_control_deficiency"]);
    let derived = send(0, true).await.expect("derived").into_inner();
    let name = derived.reassessment.expect("the reassessment").name;
    let reassessment = app
        .risks()
        .get_assessment(pb::GetAssessmentRequest { name })
        .await
        .expect("the stored reassessment")
        .into_inner();
    assert!(reassessment.control_deficiency_derived, "{reassessment:?}");
    assert!((1..=5).contains(&reassessment.control_deficiency));
}

crate::on_both_backends!(
    empty_requests_name_every_required_field,
    a_high_risk_falls_due_for_review_after_ninety_days,
    a_review_cycle_counts_each_owners_reviews_and_closes_once,
    an_observation_reopens_the_assessment_and_a_reassessing_review_plans_a_year,
    a_reassessing_review_gives_or_derives_the_control_deficiency,
);
