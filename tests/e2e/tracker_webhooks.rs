//! The tracker sync (#15) against the GitHub double, inbound: webhook deliveries verified
//! (missing, wrong and replayed signatures), every payload a hint (the issue is fetched again,
//! so deliveries out of order end in the tracker's state), a close and a reopen followed, a
//! change no webhook announced picked up by the reconciliation poll, and a deleted or moved
//! issue breaking its link for good until a person forces a new one.

use std::time::Duration;

use assurance_proto::{
    gateway::v1::{self as gpb, TrackerLinkState as S},
    risk::v1 as pb,
    r#type::v1 as tv,
};
use assurance_tests::github_mock::deliver;
use prost_types::FieldMask;

use crate::{helpers::*, sync_fixture::*};

crate::on_both_backends!(
    deliveries_need_a_good_signature_and_count_once,
    closes_reopens_and_late_deliveries_follow_the_tracker,
    the_poll_catches_what_no_webhook_said,
    a_deleted_or_moved_issue_breaks_its_link_for_good,
    a_webhook_body_that_trickles_in_is_ended,
);

async fn sync_state(s: &SyncApp) -> gpb::TrackerHealth {
    s.sync_as("tracker")
        .get_tracker_sync(gpb::GetTrackerSyncRequest {
            name: "trackerSync".into(),
        })
        .await
        .expect("sync state")
        .into_inner()
        .trackers
        .remove(0)
}

/// A synced item and its issue number.
async fn synced(s: &SyncApp, title: &str) -> (pb::ActionItem, u64) {
    let item = s.item("exchange-online", title).await;
    let link = s.link_in(&item.name, S::Synced).await;
    (item, SyncApp::number(&link))
}

async fn deliveries_need_a_good_signature_and_count_once(backend: Backend) {
    let s = SyncApp::start(backend).await;
    let (item, number) = synced(&s, "Review the mail flow rules").await;
    let body = s.github.issues_event("closed", EXCHANGE, number);
    let url = s.hook_url("github");
    for (secret, why) in [
        (None, "missing"),
        (Some(b"not the secret".as_slice()), "wrong"),
    ] {
        let code = deliver(&url, "issues", "sig-1", secret, body.clone())
            .await
            .expect("answer");
        assert_eq!(code, 401, "{why} signature");
    }
    let code = deliver(
        &s.hook_url("nope"),
        "issues",
        "sig-1",
        Some(SECRET.as_bytes()),
        body.clone(),
    )
    .await
    .expect("answer");
    assert_eq!(code, 404, "an unknown tracker");
    assert_eq!(
        deliver(
            &url,
            "ping",
            "ping-1",
            Some(SECRET.as_bytes()),
            b"{\"zen\":\"Keep it logically awesome.\"}".to_vec()
        )
        .await
        .expect("answer"),
        202
    );
    assert_eq!(sync_state(&s).await.deliveries_refused, 2);

    // Closed in GitHub and announced: the item is DONE.
    s.github
        .set_state(EXCHANGE, number, "closed", Some("completed"));
    assert_eq!(s.deliver("closed", EXCHANGE, number, "close-1").await, 202);
    s.item_status(&item.name, tv::WorkItemStatus::Done).await;
    // A person reopens the item in Assurance; the same delivery again is acknowledged, not
    // applied.
    s.app
        .risks()
        .update_action_item(pb::UpdateActionItemRequest {
            action_item: Some(pb::ActionItem {
                name: item.name.clone(),
                status: tv::WorkItemStatus::InProgress as i32,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["status".into()],
            }),
        })
        .await
        .expect("reopen in Assurance");
    assert_eq!(s.deliver("closed", EXCHANGE, number, "close-1").await, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let state = sync_state(&s).await;
    assert_eq!(
        (state.deliveries_accepted, state.deliveries_replayed),
        (2, 1)
    );
    assert_eq!(
        s.action_item(&item.name).await.status,
        tv::WorkItemStatus::InProgress as i32,
        "the replay was applied"
    );
}

async fn closes_reopens_and_late_deliveries_follow_the_tracker(backend: Backend) {
    let s = SyncApp::start(backend).await;
    let (item, number) = synced(&s, "Retire the legacy relay").await;
    s.github
        .set_state(EXCHANGE, number, "closed", Some("completed"));
    let closed_payload = s.github.issues_event("closed", EXCHANGE, number);
    assert_eq!(s.deliver("closed", EXCHANGE, number, "d-1").await, 202);
    s.item_status(&item.name, tv::WorkItemStatus::Done).await;

    s.github.set_state(EXCHANGE, number, "open", None);
    assert_eq!(s.deliver("reopened", EXCHANGE, number, "d-2").await, 202);
    s.item_status(&item.name, tv::WorkItemStatus::InProgress)
        .await;

    // The close arrives late, after the reopen: the issue as fetched is open.
    let code = deliver(
        &s.hook_url("github"),
        "issues",
        "d-3",
        Some(SECRET.as_bytes()),
        closed_payload,
    )
    .await
    .expect("answer");
    assert_eq!(code, 202);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        s.action_item(&item.name).await.status,
        tv::WorkItemStatus::InProgress as i32
    );
    let link = s.link(&item.name).await.expect("link");
    assert_eq!(
        (link.remote_status.as_str(), link.state),
        ("open", S::Synced as i32)
    );
    // Reopened in the tracker is not pushed back: GitHub saw no write of ours after the reopen.
    let patched_after_reopen = s
        .github
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patched_after_reopen, 0, "no ping-pong");
}

async fn the_poll_catches_what_no_webhook_said(backend: Backend) {
    let s = SyncApp::start(backend).await;
    let (item, number) = synced(&s, "Tighten conditional access").await;
    // Closed in GitHub, and the delivery lost: the poll finds it.
    s.github
        .set_state(EXCHANGE, number, "closed", Some("completed"));
    s.item_status(&item.name, tv::WorkItemStatus::Done).await;
    assert!(sync_state(&s).await.poll_time.is_some());
}

async fn a_deleted_or_moved_issue_breaks_its_link_for_good(backend: Backend) {
    let s = SyncApp::start(backend).await;
    let (deleted, deleted_number) = synced(&s, "Archive old mailboxes").await;
    let (moved, moved_number) = synced(&s, "Move the shared calendar").await;
    s.github.add_repository("contoso/elsewhere");

    s.github.delete(EXCHANGE, deleted_number);
    s.deliver("deleted", EXCHANGE, deleted_number, "gone-1")
        .await;
    let broken = s.link_in(&deleted.name, S::Broken).await;
    assert!(broken.last_error.contains("deleted"), "{broken:?}");
    let moved_payload = s.github.issues_event("transferred", EXCHANGE, moved_number);
    s.github
        .transfer(EXCHANGE, moved_number, "contoso/elsewhere");
    deliver(
        &s.hook_url("github"),
        "issues",
        "moved-1",
        Some(SECRET.as_bytes()),
        moved_payload,
    )
    .await
    .expect("answer");
    s.link_in(&moved.name, S::Broken).await;
    let item = eventually("the item shows BROKEN", || async {
        let i = s.action_item(&deleted.name).await;
        match &i.tracker {
            Some(t) if t.sync_state == tv::SyncState::Broken as i32 => Ok(i),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(
        item.tracker.expect("link").external_key,
        format!("{EXCHANGE}#{deleted_number}"),
        "the broken link is kept, for people to see"
    );
    assert_eq!(sync_state(&s).await.broken_links, 2);

    // Never recreated on its own, even when the item changes.
    s.app
        .risks()
        .update_action_item(pb::UpdateActionItemRequest {
            action_item: Some(pb::ActionItem {
                name: deleted.name.clone(),
                title: "Archive old mailboxes (again)".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["title".into()],
            }),
        })
        .await
        .expect("retitle");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        s.github.issues(EXCHANGE).len(),
        2,
        "no issue made on its own"
    );
    s.link_in(&deleted.name, S::Broken).await;

    // A person forces it: a new issue, with the new title.
    s.sync_as("trust_team")
        .resync_work_item(gpb::ResyncWorkItemRequest {
            item: deleted.name.clone(),
        })
        .await
        .expect("resync");
    let relinked = s.link_in(&deleted.name, S::Synced).await;
    assert_ne!(SyncApp::number(&relinked), deleted_number);
    let issues = s.github.issues(EXCHANGE);
    assert!(
        issues
            .iter()
            .any(|i| !i.deleted && i.title == "Archive old mailboxes (again)"),
        "{issues:?}"
    );
    // The forced resync is in the gateway's audit trail, by whom.
    let trail = gpb::audit_service_client::AuditServiceClient::new(s.app.channel_as("admin"))
        .list_audit_events(assurance_proto::audit::v1::ListAuditEventsRequest {
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("gateway audit trail")
        .into_inner()
        .audit_events;
    assert!(
        trail
            .iter()
            .any(|e| e.resource == deleted.name && e.principal.starts_with("trust_team")),
        "{trail:?}"
    );
}

/// A delivery whose body trickles in (a byte every 300 ms) holds its connection no longer than
/// the request timeout: the gateway answers 408.
async fn a_webhook_body_that_trickles_in_is_ended(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDb::new(backend).await;
    let github =
        assurance_tests::github_mock::GitHubMock::start(TOKEN, &[EXCHANGE, PRODUCTIVITY]).await;
    let file = trackers_file(&db, &github, "");
    let mut config = sync_config(&db, backend, file);
    config.limits.request_timeout_secs = 2;
    let app = start_gateway(&db, config).await;
    let mut stream = tokio::net::TcpStream::connect(app.http_addr)
        .await
        .expect("connect");
    stream
        .write_all(
            b"POST /webhooks/github/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
        )
        .await
        .expect("head");
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    while started.elapsed() < Duration::from_secs(10) {
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {
                if stream.write_all(b" ").await.is_err() {
                    break;
                }
            }
        }
    }
    let elapsed = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}
