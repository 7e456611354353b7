//! The limits of `WatchIncident` (#16): a watch resumed at or past an incident's `CLOSED` event
//! ends at once; streams are capped per principal; a revoked credential ends its stream before
//! anything added after the revocation reaches it; a stream ends at its lifetime, and resumes.

use std::time::Duration;

use assurance_proto::incident::v1 as pb;
use tokio_stream::StreamExt;
use tonic::Code;

use super::*;

crate::on_both_backends!(
    a_resumed_watch_of_a_closed_incident_ends_at_once,
    streams_are_capped_per_principal,
    a_revoked_credential_ends_its_stream,
    a_stream_ends_at_its_lifetime_and_resumes,
);

const PATIENCE: Duration = Duration::from_secs(10);

async fn limited(db: &TestDb, f: impl FnOnce(&mut incident_service::config::Config)) -> App {
    let mut config = incident_config(db);
    f(&mut config);
    let running = incident_service::start(&config, assurance_runtime::serve::Shutdown::new())
        .await
        .expect("incident-service starts");
    App::connect(running, db.tokens.clone()).await
}

async fn watch_as(
    app: &App,
    who: &str,
    name: &str,
    after: i64,
) -> Result<tonic::Streaming<pb::TimelineEvent>, tonic::Status> {
    app.incidents_as(who)
        .watch_incident(pb::WatchIncidentRequest {
            name: name.into(),
            after_sequence: after,
        })
        .await
        .map(|r| r.into_inner())
}

async fn note(app: &App, name: &str, text: &str) {
    app.incidents()
        .create_timeline_event(pb::CreateTimelineEventRequest {
            parent: name.into(),
            summary: text.into(),
            request_id: String::new(),
        })
        .await
        .expect("note");
}

async fn a_resumed_watch_of_a_closed_incident_ends_at_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = security_incident(&app, "Phishing wave").await;
    advance_through(&app, &declared.name, &FORWARD_TO_POST_INCIDENT).await;
    app.incidents()
        .create_post_incident_review(pb::CreatePostIncidentReviewRequest {
            parent: declared.name.clone(),
            review: Some(post_incident_review()),
            request_id: String::new(),
        })
        .await
        .expect("review");
    close(&app, &declared.name, "Mail rules removed.")
        .await
        .expect("close");
    let all: Vec<_> = tokio::time::timeout(
        PATIENCE,
        watch_as(&app, "admin", &declared.name, 0)
            .await
            .expect("watch")
            .collect::<Vec<_>>(),
    )
    .await
    .expect("a closed incident's watch ends after CLOSED");
    let last = all.last().expect("events").as_ref().expect("ok");
    assert_eq!(last.kind, pb::TimelineEventKind::Closed as i32);
    // At or past the CLOSED event: nothing can follow, the stream ends at once.
    for after in [last.sequence, last.sequence + 10] {
        let rest: Vec<_> = tokio::time::timeout(
            PATIENCE,
            watch_as(&app, "admin", &declared.name, after)
                .await
                .expect("watch")
                .collect::<Vec<_>>(),
        )
        .await
        .expect("ends at once");
        assert!(rest.is_empty(), "{rest:?}");
    }
}

async fn streams_are_capped_per_principal(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = limited(&db, |c| c.limits.streams_per_principal = 2).await;
    let declared = declare(&app, new_incident("Credential stuffing")).await;
    let first = watch_as(&app, "responder", &declared.name, 0)
        .await
        .expect("first");
    let _second = watch_as(&app, "responder", &declared.name, 0)
        .await
        .expect("second");
    let err = watch_as(&app, "responder", &declared.name, 0)
        .await
        .expect_err("a third stream of one principal");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("open streams"), "{err:?}");
    // Another principal is not held back, and a closed stream frees its place.
    watch_as(&app, "security_lead", &declared.name, 0)
        .await
        .expect("another principal");
    drop(first);
    let reopened = tokio::time::timeout(PATIENCE, async {
        loop {
            match watch_as(&app, "responder", &declared.name, 0).await {
                Ok(stream) => return stream,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await;
    assert!(reopened.is_ok(), "the dropped stream's place is free again");
}

async fn a_revoked_credential_ends_its_stream(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, new_incident("Suspicious sign-ins")).await;
    let mut stream = watch_as(&app, "responder", &declared.name, 0)
        .await
        .expect("watch");
    let first = stream.next().await.expect("an event").expect("ok");
    assert_eq!(first.sequence, 1);

    // Revoke the responder's token, and wait until the server refuses it.
    let text = std::fs::read_to_string(&db.tokens.path).expect("tokens file");
    let marker = "principal = \"responder@example.com\"\n";
    std::fs::write(
        &db.tokens.path,
        text.replace(marker, &format!("{marker}revoked = true\n")),
    )
    .expect("rewrite tokens file");
    eventually("the revocation applied", || async {
        match app
            .incidents_as("responder")
            .get_incident(pb::GetIncidentRequest {
                name: declared.name.clone(),
            })
            .await
        {
            Err(e) if e.code() == Code::Unauthenticated => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    note(
        &app,
        &declared.name,
        "Added after the revocation: restricted.",
    )
    .await;
    let end = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("the stream ends");
    match end {
        Some(Err(status)) => assert_eq!(status.code(), Code::Unauthenticated, "{status:?}"),
        other => panic!("the revoked stream went on: {other:?}"),
    }
}

async fn a_stream_ends_at_its_lifetime_and_resumes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = limited(&db, |c| c.limits.stream_lifetime_secs = 1).await;
    let declared = declare(&app, new_incident("Laptop theft")).await;
    let mut stream = watch_as(&app, "responder", &declared.name, 0)
        .await
        .expect("watch");
    let first = stream.next().await.expect("an event").expect("ok");
    let end = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("the lifetime ends it");
    match end {
        Some(Err(status)) => {
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            assert!(status.message().contains("resume"), "{status:?}");
        }
        other => panic!("the stream outlived its lifetime: {other:?}"),
    }
    // Resumed after what it saw: it gets the rest.
    note(&app, &declared.name, "Device wiped remotely.").await;
    let mut resumed = watch_as(&app, "responder", &declared.name, first.sequence)
        .await
        .expect("resume");
    let next = resumed.next().await.expect("an event").expect("ok");
    assert_eq!(next.sequence, first.sequence + 1);
}
