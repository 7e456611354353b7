//! The incident timeline: every change numbered without gaps, notes, and watchers that see
//! every change and resume from their cursor.

use assurance_proto::incident::v1 as pb;
use tonic::Code;

use super::*;

crate::on_both_backends!(
    the_timeline_numbers_every_change_across_pages_and_a_retried_note_lands_once,
    watchers_see_every_change_and_resume_from_their_cursor,
);

async fn the_timeline_numbers_every_change_across_pages_and_a_retried_note_lands_once(
    backend: Backend,
) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = security_incident(&app, "Finance admin account takeover").await;
    walk_every_phase_with_one_return(&app, &declared.name).await;

    // A note, retried with its request id, lands once.
    let note = pb::CreateTimelineEventRequest {
        parent: declared.name.clone(),
        summary: "Legal informed.".into(),
        request_id: "note-1".into(),
    };
    let first = app
        .incidents()
        .create_timeline_event(note.clone())
        .await
        .expect("note")
        .into_inner();
    let again = app
        .incidents()
        .create_timeline_event(note)
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
            .list_timeline_events(pb::ListTimelineEventsRequest {
                parent: declared.name.clone(),
                page_size: 3,
                page_token: token,
                ..Default::default()
            })
            .await
            .expect("timeline")
            .into_inner();
        events.extend(page.timeline_events);
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
        events[4].summary.contains(REINFECTION),
        "{}",
        events[4].summary
    );
    assert_eq!(events[8].summary, "Legal informed.");
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
    advance_through(&app, &declared.name, &FORWARD_TO_POST_INCIDENT).await;
    app.incidents()
        .create_post_incident_review(pb::CreatePostIncidentReviewRequest {
            parent: declared.name.clone(),
            review: Some(post_incident_review()),
            request_id: String::new(),
        })
        .await
        .expect("review");
    close(&app, &declared.name, "Sync client removed; keys rotated.")
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
