//! Decision methods (AdvancePhase, CloseIncident, ApproveNotification, MarkNotificationSent):
//! `request_id` makes a retry answer with the resource as it is now, the decision applied once
//! (one timeline event); `etag` makes them conditional. And UpdateNotification edits drafts only.

use assurance_proto::incident::v1 as pb;
use prost_types::FieldMask;
use tonic::Code;

use super::*;

crate::on_both_backends!(
    decisions_are_idempotent_and_conditional,
    notifications_are_idempotent_conditional_and_editable_as_drafts,
);

async fn timeline_len(app: &App, name: &str) -> usize {
    app.incidents()
        .list_timeline_events(pb::ListTimelineEventsRequest {
            parent: name.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("timeline")
        .into_inner()
        .timeline_events
        .len()
}

async fn decisions_are_idempotent_and_conditional(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let inc = security_incident(&app, "Crypto miner on build host").await;
    let advance = |etag: &str, request_id: &str, reason: &str| {
        let mut client = app.incidents();
        let request = pb::AdvancePhaseRequest {
            name: inc.name.clone(),
            target_phase: pb::Phase::Containment as i32,
            reason: reason.into(),
            etag: etag.into(),
            request_id: request_id.into(),
        };
        async move { client.advance_phase(request).await.map(|r| r.into_inner()) }
    };
    // A stale etag is refused like a stale UpdateIncident.
    let err = advance("\"999\"", "", "").await.expect_err("stale etag");
    assert_eq!(err.code(), Code::Aborted);
    let before = timeline_len(&app, &inc.name).await;
    let moved = advance(&inc.etag, "move-1", "").await.expect("advance");
    assert_eq!(moved.phase, pb::Phase::Containment as i32);
    // The retry (same id, same payload, even its now-stale etag) answers with the incident
    // as it is now; the move is applied once.
    let again = advance(&inc.etag, "move-1", "").await.expect("retry");
    assert_eq!(again, moved);
    assert_eq!(timeline_len(&app, &inc.name).await, before + 1);
    // Same id, another payload: refused.
    let err = advance(&inc.etag, "move-1", "other")
        .await
        .expect_err("reused id");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_mentions(&err, "move-1");

    // CloseIncident, from analysis when NOT_AN_INCIDENT.
    let event = declare(&app, new_incident("Scanner noise")).await;
    let event = app
        .incidents()
        .update_incident(pb::UpdateIncidentRequest {
            incident: Some(pb::Incident {
                name: event.name.clone(),
                classification: pb::Classification::NotAnIncident as i32,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["classification".into()],
            }),
        })
        .await
        .expect("classify")
        .into_inner();
    let close = |etag: &str, request_id: &str| {
        let mut client = app.incidents();
        let request = pb::CloseIncidentRequest {
            name: event.name.clone(),
            resolution: "Authorised scan.".into(),
            etag: etag.into(),
            request_id: request_id.into(),
        };
        async move { client.close_incident(request).await.map(|r| r.into_inner()) }
    };
    let err = close("\"1\"", "close-1").await.expect_err("stale etag");
    assert_eq!(err.code(), Code::Aborted);
    let before = timeline_len(&app, &event.name).await;
    let closed = close(&event.etag, "close-1").await.expect("close");
    assert_eq!(closed.phase, pb::Phase::Closed as i32);
    assert_eq!(close(&event.etag, "close-1").await.expect("retry"), closed);
    assert_eq!(timeline_len(&app, &event.name).await, before + 1);
    // Without a request id a second close is refused as before.
    let err = close("", "").await.expect_err("closed already");
    assert_eq!(err.code(), Code::FailedPrecondition);
}

async fn notifications_are_idempotent_conditional_and_editable_as_drafts(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;
    let declared = declare(&app, new_incident("Partner portal defacement")).await;
    let draft = app
        .incidents_as("responder")
        .create_notification(pb::CreateNotificationRequest {
            parent: declared.name.clone(),
            notification: Some(pb::Notification {
                audience: pb::Audience::Internal as i32,
                subject: "Portal defaced".into(),
                body: "Draft".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("draft")
        .into_inner();
    assert!(!draft.etag.is_empty());

    // UpdateNotification: a draft's subject and body, mask + etag.
    let update = |who: &str, n: pb::Notification, paths: &[&str]| {
        let mut client = app.incidents_as(who);
        let request = pb::UpdateNotificationRequest {
            notification: Some(n),
            update_mask: Some(FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
        };
        async move {
            client
                .update_notification(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let edit = pb::Notification {
        name: draft.name.clone(),
        subject: "Partner portal defaced".into(),
        body: "The partner portal showed a defacement for 20 minutes.".into(),
        etag: draft.etag.clone(),
        ..Default::default()
    };
    let err = update("viewer", edit.clone(), &["body"])
        .await
        .expect_err("viewer");
    assert_eq!(err.code(), Code::PermissionDenied);
    let edited = update("responder", edit.clone(), &["body"])
        .await
        .expect("edit body");
    assert_eq!(
        edited.subject, "Portal defaced",
        "only the masked path changes"
    );
    assert_eq!(edited.body, edit.body);
    assert_ne!(edited.etag, draft.etag);
    let err = update("responder", edit.clone(), &["subject"])
        .await
        .expect_err("stale etag");
    assert_eq!(err.code(), Code::Aborted);
    let err = update(
        "responder",
        pb::Notification {
            etag: String::new(),
            subject: String::new(),
            ..edit.clone()
        },
        &["subject"],
    )
    .await
    .expect_err("empty subject");
    assert_eq!(violations(&err), ["notification.subject"]);
    let err = update("responder", edit.clone(), &["audience"])
        .await
        .expect_err("immutable path");
    assert_eq!(violations(&err), ["update_mask"]);

    // ApproveNotification: conditional and idempotent.
    let approve = |etag: &str, request_id: &str| {
        let mut client = app.incidents_as("security_lead");
        let request = pb::ApproveNotificationRequest {
            name: draft.name.clone(),
            etag: etag.into(),
            request_id: request_id.into(),
            ..Default::default()
        };
        async move {
            client
                .approve_notification(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let err = approve(&draft.etag, "approve-1").await.expect_err("stale");
    assert_eq!(err.code(), Code::Aborted);
    let before = timeline_len(&app, &declared.name).await;
    let approved = approve(&edited.etag, "approve-1").await.expect("approve");
    assert_eq!(approved.status, pb::NotificationStatus::Approved as i32);
    assert_eq!(
        approve(&edited.etag, "approve-1").await.expect("retry"),
        approved
    );
    assert_eq!(timeline_len(&app, &declared.name).await, before + 1);
    let err = approve("", "").await.expect_err("approved already");
    assert_eq!(err.code(), Code::FailedPrecondition);

    // An approved notification is no longer editable.
    let err = update(
        "responder",
        pb::Notification {
            etag: String::new(),
            ..edit.clone()
        },
        &["subject"],
    )
    .await
    .expect_err("approved");
    assert_eq!(err.code(), Code::FailedPrecondition);

    // MarkNotificationSent: conditional and idempotent.
    let send = |etag: &str, request_id: &str| {
        let mut client = app.incidents();
        let request = pb::MarkNotificationSentRequest {
            name: draft.name.clone(),
            etag: etag.into(),
            request_id: request_id.into(),
        };
        async move {
            client
                .mark_notification_sent(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let err = send(&edited.etag, "send-1").await.expect_err("stale");
    assert_eq!(err.code(), Code::Aborted);
    let before = timeline_len(&app, &declared.name).await;
    let sent = send(&approved.etag, "send-1").await.expect("send");
    assert_eq!(sent.status, pb::NotificationStatus::Sent as i32);
    assert_eq!(send(&approved.etag, "send-1").await.expect("retry"), sent);
    assert_eq!(timeline_len(&app, &declared.name).await, before + 1);
    let got = app
        .incidents()
        .get_notification(pb::GetNotificationRequest {
            name: draft.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.etag, sent.etag);
}
