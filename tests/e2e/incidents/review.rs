//! The post-incident review: follow-ups and risks it queues, and closing after it.

use assurance_proto::incident::v1 as pb;
use tonic::Code;

use super::*;

crate::on_both_backends!(the_review_queues_follow_ups_and_risks_and_allows_closing,);

async fn the_review_queues_follow_ups_and_risks_and_allows_closing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let mut inc = new_incident("Token theft");
    inc.classification = pb::Classification::SecurityIncident as i32;
    let declared = declare(&app, inc).await;
    let record = |r: pb::PostIncidentReview, request_id: &str| {
        let mut client = app.incidents();
        let request = pb::CreatePostIncidentReviewRequest {
            parent: declared.name.clone(),
            review: Some(r),
            request_id: request_id.into(),
        };
        async move {
            client
                .create_post_incident_review(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let err = record(post_incident_review(), "")
        .await
        .expect_err("too early");
    assert_reason(&err, Code::FailedPrecondition, "REVIEW_NOT_ALLOWED");
    advance_through(&app, &declared.name, &FORWARD_TO_POST_INCIDENT).await;
    let mut bad = post_incident_review();
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

    let recorded = record(post_incident_review(), "review-1")
        .await
        .expect("record");
    assert_eq!(recorded.name, format!("{}/review", declared.name));
    assert_eq!(recorded.follow_ups.len(), 2);
    assert!(recorded.review_time.is_some());
    // A retry answers the same; a second review is refused.
    assert_eq!(
        record(post_incident_review(), "review-1")
            .await
            .expect("retry"),
        recorded
    );
    let err = record(post_incident_review(), "")
        .await
        .expect_err("second review");
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

    // Follow-ups and identified risks wait in the outbox (no risk-service here), written with
    // the review.
    let store = incident_service::store::Store::open(&db.incident_url(), 2)
        .await
        .expect("open store");
    let pending = store.outbox_events(&declared.name).await.expect("outbox");
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

    let closed = close(
        &app,
        &declared.name,
        "Legacy auth disabled; tokens revoked.",
    )
    .await
    .expect("close after the review");
    assert_eq!(closed.phase, pb::Phase::Closed as i32);
}
