//! The tracker sync (#15) against the GitHub double, outbound: routing (by service, by business
//! unit, unrouted), one issue per item whatever the tracker does (timeouts after the issue was
//! made, 5xx, 429, secondary limits), changes of Assurance's fields pushed and a person's close
//! closing the issue with its reason, a tracker down then back, a tracker that fails its
//! start-up check, and who may see and force the sync.

use std::time::Duration;

use assurance_proto::{
    gateway::v1::{self as gpb, TrackerLinkState as S},
    incident::v1 as ipb,
    risk::v1 as pb,
    r#type::v1 as tv,
};
use assurance_tests::github_mock::Fault;
use http::Method;
use prost_types::FieldMask;
use tonic::Code;

use crate::{helpers::*, sync_fixture::*};

crate::on_both_backends!(
    routed_items_get_one_issue_each_with_a_link_back,
    changes_reach_the_issue_and_a_close_closes_it_once,
    no_duplicate_under_timeouts_errors_and_rate_limits,
    a_tracker_down_queues_items_until_both_sides_converge,
    a_tracker_failing_its_check_is_reported_and_waited_for,
    the_tracker_role_changes_only_status_and_link,
    a_forwarding_gateway_syncs_with_its_own_credential,
);

async fn routed_items_get_one_issue_each_with_a_link_back(backend: Backend) {
    let s = SyncApp::start(backend).await;
    create_bu(&s.app, "research").await;
    create_service(&s.app, "lab", "research").await;
    let unrouted = s.item("lab", "Label the samples").await;
    let item = s.item("exchange-online", "Rotate the signing keys").await;
    let link = s.link_in(&item.name, S::Synced).await;
    assert_eq!(
        (link.tracker.as_str(), link.project.as_str()),
        ("github", EXCHANGE)
    );
    let issues = s.github.issues(EXCHANGE);
    assert_eq!(issues.len(), 1, "{issues:?}");
    let issue = &issues[0];
    assert_eq!(issue.title, "Rotate the signing keys");
    let body = issue.body.clone().unwrap_or_default();
    for shown in [
        "**Due:**",
        "**Owner:** ops@example.com",
        &format!("https://assurance.example.com/items/{}", item.name),
        &format!("<!-- assurance:{} -->", item.name),
    ] {
        assert!(body.contains(shown), "{shown} missing from {body}");
    }
    // The item carries its link.
    let item = eventually("the item's tracker link", || async {
        let i = s.action_item(&item.name).await;
        match &i.tracker {
            Some(t) if t.sync_state == tv::SyncState::Synced as i32 => Ok(i),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let tracker = item.tracker.expect("a link");
    assert_eq!(tracker.system, "github");
    assert_eq!(tracker.external_key, format!("{EXCHANGE}#{}", issue.number));
    assert!(tracker.url.ends_with(&format!("/issues/{}", issue.number)));

    // A follow-up of an incident on exchange-online goes by its business unit.
    let incident =
        crate::work_items::reviewed_incident(&s.app, "exchange-online", &["Disable legacy auth"])
            .await;
    let follow_ups = s
        .app
        .incidents()
        .list_follow_ups(ipb::ListFollowUpsRequest {
            parent: incident.name.clone(),
            ..Default::default()
        })
        .await
        .expect("follow-ups")
        .into_inner()
        .follow_ups;
    let follow_up = s.link_in(&follow_ups[0].name, S::Synced).await;
    assert_eq!(follow_up.project, PRODUCTIVITY);
    assert_eq!(follow_up.kind, gpb::WorkItemKind::FollowUp as i32);
    assert_eq!(s.github.issues(PRODUCTIVITY).len(), 1);

    // No route takes the lab's items: no link, no issue, however long we wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(s.link(&unrouted.name).await.is_none());
    assert_eq!(s.github.issues(EXCHANGE).len(), 1);
    let all = s
        .sync_as("tracker")
        .list_tracker_links(gpb::ListTrackerLinksRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("links")
        .into_inner();
    assert_eq!(all.links.len(), 1);
    assert!(!all.next_page_token.is_empty(), "two links, pages of one");
}

async fn set_status(s: &SyncApp, name: &str, status: tv::WorkItemStatus) {
    s.app
        .risks()
        .update_action_item(pb::UpdateActionItemRequest {
            action_item: Some(pb::ActionItem {
                name: name.into(),
                status: status as i32,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["status".into()],
            }),
        })
        .await
        .expect("set status");
}

fn writes(s: &SyncApp) -> usize {
    s.github
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" || r.method == "POST")
        .count()
}

async fn changes_reach_the_issue_and_a_close_closes_it_once(backend: Backend) {
    let s = SyncApp::start(backend).await;
    let done = s.item("exchange-online", "Enable MFA").await;
    let dropped = s.item("exchange-online", "Buy a firewall").await;
    let link = s.link_in(&done.name, S::Synced).await;
    let number = SyncApp::number(&link);
    s.link_in(&dropped.name, S::Synced).await;

    // Assurance owns the title: a change is pushed.
    s.app
        .risks()
        .update_action_item(pb::UpdateActionItemRequest {
            action_item: Some(pb::ActionItem {
                name: done.name.clone(),
                title: "Enable MFA for every admin".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["title".into()],
            }),
        })
        .await
        .expect("retitle");
    eventually("the new title in GitHub", || async {
        let issue = s
            .github
            .issues(EXCHANGE)
            .into_iter()
            .find(|i| i.number == number);
        match issue {
            Some(i) if i.title == "Enable MFA for every admin" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Finished by a person: closed with the matching reason.
    set_status(&s, &done.name, tv::WorkItemStatus::Done).await;
    set_status(&s, &dropped.name, tv::WorkItemStatus::WontDo).await;
    let reasons = eventually("both issues closed", || async {
        let issues = s.github.issues(EXCHANGE);
        let closed: Vec<_> = issues
            .iter()
            .filter(|i| i.state == "closed")
            .map(|i| (i.title.clone(), i.state_reason.clone()))
            .collect();
        if closed.len() == 2 {
            Ok(closed)
        } else {
            Err(format!("{issues:?}"))
        }
    })
    .await;
    assert!(reasons.contains(&(
        "Enable MFA for every admin".into(),
        Some("completed".into())
    )));
    assert!(reasons.contains(&("Buy a firewall".into(), Some("not_planned".into()))));
    s.link_in(&done.name, S::Synced).await;

    // GitHub echoes our close and our edit: nothing changes on either side.
    let before = s.action_item(&done.name).await;
    let written = writes(&s);
    assert_eq!(s.deliver("closed", EXCHANGE, number, "echo-1").await, 202);
    assert_eq!(s.deliver("edited", EXCHANGE, number, "echo-2").await, 202);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = s.action_item(&done.name).await;
    assert_eq!(
        after.update_time, before.update_time,
        "the echo changed the item"
    );
    assert_eq!(after.status, tv::WorkItemStatus::Done as i32);
    assert_eq!(writes(&s), written, "the echo was pushed back");
    assert_eq!(s.github.issues(EXCHANGE).len(), 2);
}

async fn no_duplicate_under_timeouts_errors_and_rate_limits(backend: Backend) {
    let s = SyncApp::start(backend).await;
    // The first create is made by GitHub, then the answer never comes in time; the next ones
    // fail, are limited, or hit a secondary limit.
    s.github
        .fail_next_on(Method::POST, 1, Fault::Hang(Duration::from_secs(3)));
    s.github.fail_next_on(Method::POST, 2, Fault::ServerError);
    s.github
        .fail_next_on(Method::POST, 1, Fault::TooManyRequests { retry_after: 1 });
    s.github.fail_next_on(
        Method::POST,
        1,
        Fault::SecondaryLimit {
            retry_after: Some(1),
        },
    );
    let mut names = Vec::new();
    for title in ["One", "Two", "Three", "Four"] {
        names.push(s.item("exchange-online", title).await.name);
    }
    for name in &names {
        s.link_in(name, S::Synced).await;
    }
    let issues = s.github.issues(EXCHANGE);
    let mut titles: Vec<&str> = issues.iter().map(|i| i.title.as_str()).collect();
    titles.sort_unstable();
    assert_eq!(titles, ["Four", "One", "Three", "Two"], "{issues:?}");
    for name in &names {
        let marker = format!("<!-- assurance:{name} -->");
        let carrying = issues
            .iter()
            .filter(|i| i.body.as_deref().unwrap_or_default().contains(&marker))
            .count();
        assert_eq!(carrying, 1, "{name}");
    }
    // The hung create was found by its marker (a listing since the CREATING time), not made
    // again.
    assert!(
        s.github
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.target.contains("/issues?")),
        "the marker was looked for"
    );
}

async fn a_tracker_down_queues_items_until_both_sides_converge(backend: Backend) {
    let s = SyncApp::start(backend).await;
    let first = s.item("exchange-online", "Before the outage").await;
    s.link_in(&first.name, S::Synced).await;
    s.github.fail_next(100_000, Fault::ServerError);
    let mut names = Vec::new();
    for title in ["During one", "During two", "During three"] {
        names.push(s.item("exchange-online", title).await.name);
    }
    // Queued: CREATING once a create was tried (the next attempt looks for its marker first).
    let queued = eventually("the outage seen", || async {
        let l = s
            .link(&names[0])
            .await
            .ok_or_else(|| "no link yet".to_string())?;
        let waiting = l.state == S::Pending as i32 || l.state == S::Creating as i32;
        if waiting && l.attempts >= 2 && l.last_error.contains("unavailable") {
            Ok(l)
        } else {
            Err(format!("{l:?}"))
        }
    })
    .await;
    assert!(queued.external_key.is_empty());
    let health = s
        .sync_as("trust_team")
        .get_tracker_sync(gpb::GetTrackerSyncRequest {
            name: "trackerSync".into(),
        })
        .await
        .expect("sync state")
        .into_inner();
    let github = &health.trackers[0];
    assert!(
        github.pending_links + github.creating_links >= 3,
        "{github:?}"
    );
    assert_eq!(s.github.issues(EXCHANGE).len(), 1);
    // A person closes the first item meanwhile.
    set_status(&s, &first.name, tv::WorkItemStatus::Done).await;

    s.github.clear_faults();
    for name in &names {
        s.link_in(name, S::Synced).await;
    }
    eventually("the first issue closed", || async {
        let issues = s.github.issues(EXCHANGE);
        if issues
            .iter()
            .any(|i| i.title == "Before the outage" && i.state == "closed")
        {
            Ok(())
        } else {
            Err(format!("{issues:?}"))
        }
    })
    .await;
    assert_eq!(
        s.github.issues(EXCHANGE).len(),
        4,
        "no duplicate after the outage"
    );
}

async fn a_tracker_failing_its_check_is_reported_and_waited_for(backend: Backend) {
    let db = TestDb::new(backend).await;
    let github = assurance_tests::github_mock::GitHubMock::start(TOKEN, &[EXCHANGE]).await;
    // PRODUCTIVITY does not exist yet: the check fails.
    let file = trackers_file(&db, &github, "");
    let app = start_gateway(&db, sync_config(&db, backend, file)).await;
    org_fixture(&app).await;
    let (code, body) = eventually("readyz names the tracker's problem", || async {
        let (code, body) = http_get(app.http_addr, "/readyz").await;
        if body.contains("tracker github") && body.contains(PRODUCTIVITY) {
            Ok((code, body))
        } else {
            Err(body)
        }
    })
    .await;
    assert_eq!(code, 200, "the gateway serves regardless: {body}");
    assert!(body.contains(PRODUCTIVITY), "{body}");
    let item = item_on(&app, "exchange-online", "Queued while unchecked").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        github.issues(EXCHANGE).is_empty(),
        "nothing is sent before the check passes"
    );
    let sync =
        gpb::tracker_sync_service_client::TrackerSyncServiceClient::new(app.channel_as("admin"))
            .get_tracker_sync(gpb::GetTrackerSyncRequest {
                name: "trackerSync".into(),
            })
            .await
            .expect("sync state")
            .into_inner();
    assert!(!sync.trackers[0].healthy);
    assert!(sync.trackers[0].problem.contains(PRODUCTIVITY), "{sync:?}");
    github.add_repository(PRODUCTIVITY);
    eventually("the item synced once the check passes", || async {
        let issues = github.issues(EXCHANGE);
        if issues.len() == 1 {
            Ok(())
        } else {
            Err(format!("{issues:?}"))
        }
    })
    .await;
    let (code, body) = http_get(app.http_addr, "/readyz").await;
    assert_eq!((code, body.as_str()), (200, "ready\n"));
    drop(item);
}

async fn the_tracker_role_changes_only_status_and_link(backend: Backend) {
    let s = SyncApp::start(backend).await;
    let item = s.item("exchange-online", "Patch the gateway").await;
    let tracker = s.app.risks_as("tracker");
    let update = |paths: &[&str], item: pb::ActionItem| pb::UpdateActionItemRequest {
        action_item: Some(item),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }),
    };
    for field in ["title", "owner", "due_time", "description"] {
        let err = tracker
            .clone()
            .update_action_item(update(
                &[field, "status"],
                pb::ActionItem {
                    name: item.name.clone(),
                    title: "Hijacked".into(),
                    owner: "mallory@example.com".into(),
                    description: "x".into(),
                    due_time: Some(days(1)),
                    status: tv::WorkItemStatus::Done as i32,
                    ..Default::default()
                },
            ))
            .await
            .expect_err(field);
        assert_refused(&err, Code::PermissionDenied, field);
    }
    let moved = tracker
        .clone()
        .update_action_item(update(
            &["status"],
            pb::ActionItem {
                name: item.name.clone(),
                status: tv::WorkItemStatus::InProgress as i32,
                ..Default::default()
            },
        ))
        .await
        .expect("a tracker sets the status")
        .into_inner();
    assert_eq!(moved.title, "Patch the gateway");
    let err = tracker
        .clone()
        .create_action_item(pb::CreateActionItemRequest {
            parent: item.name.split("/items/").next().unwrap_or_default().into(),
            action_item: Some(action_item("Planted", days(3))),
            request_id: String::new(),
        })
        .await
        .expect_err("trackers create nothing");
    assert_eq!(err.code(), Code::PermissionDenied);

    // The sync's state: the trust team and trackers read it; only the trust team forces it.
    let get = gpb::GetTrackerSyncRequest {
        name: "trackerSync".into(),
    };
    for who in ["tracker", "trust_team", "admin"] {
        s.sync_as(who)
            .get_tracker_sync(get.clone())
            .await
            .expect(who);
    }
    for who in ["viewer", "risk_owner", "responder"] {
        let err = s
            .sync_as(who)
            .get_tracker_sync(get.clone())
            .await
            .expect_err(who);
        assert_eq!(err.code(), Code::PermissionDenied, "{who}");
    }
    let resync = gpb::ResyncWorkItemRequest {
        item: item.name.clone(),
    };
    let err = s
        .sync_as("tracker")
        .resync_work_item(resync.clone())
        .await
        .expect_err("tracker");
    assert_eq!(err.code(), Code::PermissionDenied);
    s.link_in(&item.name, S::Synced).await;
    let forced = s
        .sync_as("trust_team")
        .resync_work_item(resync)
        .await
        .expect("trust team forces an item")
        .into_inner();
    assert_eq!(forced.state, S::Pending as i32);
    let err = s
        .sync_as("trust_team")
        .resync_work_item(gpb::ResyncWorkItemRequest {
            item: "risks/x".into(),
        })
        .await
        .expect_err("not an item");
    assert_refused(&err, Code::InvalidArgument, "item");
    let err = s
        .sync_as("admin")
        .get_tracker_sync(gpb::GetTrackerSyncRequest {
            name: "other".into(),
        })
        .await
        .expect_err("a singleton");
    assert_eq!(err.code(), Code::NotFound);
    let err = s
        .sync_as("admin")
        .list_tracker_links(gpb::ListTrackerLinksRequest {
            filter: "state = LOST".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown state");
    assert_refused(&err, Code::InvalidArgument, "filter");
}

async fn a_forwarding_gateway_syncs_with_its_own_credential(backend: Backend) {
    let db = TestDb::new(backend).await;
    let risk = risk_service(&db, risk_service::domain::scoring::Methodology::Standard).await;
    let incident = incident_service(&db).await;
    let github =
        assurance_tests::github_mock::GitHubMock::start(TOKEN, &[EXCHANGE, PRODUCTIVITY]).await;
    let file = trackers_file(&db, &github, "");
    let mut config = sync_config(&db, backend, file);
    config.embedded = false;
    config.risk_url = vec![format!("http://{}", risk.grpc_addr)];
    config.incident_url = vec![format!("http://{}", incident.grpc_addr)];
    // Without a credential of its own the sync cannot act: refused at start.
    let refused = gateway::start(&config, assurance_runtime::serve::Shutdown::new())
        .await
        .err()
        .expect("a sync needs the gateway's own credential");
    assert!(refused.contains("--service-token-file"), "{refused}");
    let token = db.data_dir().join("system-token");
    std::fs::write(&token, db.tokens.token("system")).expect("token file");
    config.service_token_file = Some(token);
    let app = start_gateway(&db, config).await;
    org_fixture(&app).await;
    let item = item_on(&app, "exchange-online", "Renew the TLS certificates").await;
    let synced = eventually("the item's link, written through risk-service", || async {
        let i = app
            .risks()
            .get_action_item(pb::GetActionItemRequest {
                name: item.name.clone(),
            })
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        match &i.tracker {
            Some(t) if t.sync_state == tv::SyncState::Synced as i32 => Ok(i),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(github.issues(EXCHANGE).len(), 1);
    assert!(
        synced
            .tracker
            .expect("link")
            .external_key
            .starts_with(EXCHANGE)
    );
}
