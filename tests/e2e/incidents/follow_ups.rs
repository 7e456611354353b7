//! Post-incident follow-ups as tracked items: created by the review (and one by one after it),
//! read, updated with an etag and a tracker link, listed across incidents with the filters a
//! tracker sync and a person need, and still tracked after the incident closes.

use assurance_proto::{
    incident::v1::{self as pb, incident_service_client::IncidentServiceClient},
    r#type::v1 as tv,
};
use prost_types::Timestamp;
use tonic::Code;

use super::*;

crate::on_both_backends!(follow_ups_are_tracked_items,);

fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

/// An incident on `service` in POST_INCIDENT with its review recorded.
async fn reviewed(app: &App, title: &str, service: &str) -> pb::Incident {
    let mut inc = new_incident(title);
    inc.classification = pb::Classification::SecurityIncident as i32;
    inc.affected_services = vec![format!("services/{service}")];
    let declared = declare(app, inc).await;
    advance_through(app, &declared.name, &FORWARD_TO_POST_INCIDENT).await;
    app.incidents()
        .create_post_incident_review(pb::CreatePostIncidentReviewRequest {
            parent: declared.name.clone(),
            review: Some(post_incident_review()),
            request_id: String::new(),
        })
        .await
        .expect("review");
    declared
}

async fn list(app: &App, parent: &str, filter: &str, order_by: &str) -> Vec<pb::FollowUp> {
    app.incidents()
        .list_follow_ups(pb::ListFollowUpsRequest {
            parent: parent.into(),
            filter: filter.into(),
            order_by: order_by.into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("list {parent} {filter:?}: {e}"))
        .into_inner()
        .follow_ups
}

fn titles(items: &[pb::FollowUp]) -> Vec<&str> {
    items.iter().map(|f| f.title.as_str()).collect()
}

async fn update(
    client: &mut IncidentServiceClient<Authed>,
    follow_up: pb::FollowUp,
    paths: &[&str],
) -> Result<pb::FollowUp, tonic::Status> {
    client
        .update_follow_up(pb::UpdateFollowUpRequest {
            follow_up: Some(follow_up),
            update_mask: Some(FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
        })
        .await
        .map(|r| r.into_inner())
}

async fn follow_ups_are_tracked_items(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = incident_service(&db).await;

    // During the response, work is a task: a follow-up is refused.
    let mut early = new_incident("Phishing wave");
    early.classification = pb::Classification::SecurityIncident as i32;
    let early = declare(&app, early).await;
    let create = |parent: &str, f: pb::FollowUp, request_id: &str| {
        let mut client = app.incidents();
        let request = pb::CreateFollowUpRequest {
            parent: parent.into(),
            follow_up: Some(f),
            request_id: request_id.into(),
        };
        async move {
            client
                .create_follow_up(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let rotate = pb::FollowUp {
        title: "Rotate the service principal's secret".into(),
        owner: "identity-team@example.com".into(),
        due_time: at(1_700_000_000),
        ..Default::default()
    };
    let err = create(&early.name, rotate.clone(), "")
        .await
        .expect_err("during the response");
    assert_reason(&err, Code::FailedPrecondition, "FOLLOW_UP_NOT_ALLOWED");

    // The review's follow-ups are tracked items of the incident.
    let token_theft = reviewed(&app, "Token theft", "exchange-online").await;
    let own = list(&app, &token_theft.name, "", "").await;
    assert_eq!(
        titles(&own),
        ["Disable legacy authentication", "Fix alert routing"]
    );
    for f in &own {
        assert!(
            f.name
                .starts_with(&format!("{}/followUps/", token_theft.name))
        );
        assert!(f.from_review);
        assert_eq!(f.status, tv::WorkItemStatus::Open as i32);
        assert_eq!(f.services, ["services/exchange-online"]);
        assert!(!f.overdue, "due in 2027");
        let tracker = f.tracker.as_ref().expect("tracker link");
        assert_eq!(tracker.sync_state, tv::SyncState::NotLinked as i32);
    }
    let got = app
        .incidents()
        .get_follow_up(pb::GetFollowUpRequest {
            name: own[0].name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got, own[0]);
    // The outbox event of each follow-up names it, for the tracker sync.
    let store = incident_service::store::Store::open(&db.incident_url(), 2)
        .await
        .expect("open store");
    let pending = store
        .outbox_events(&token_theft.name)
        .await
        .expect("outbox");
    for f in &own {
        assert!(
            pending.iter().any(|e| e.payload.contains(&f.name)),
            "no outbox event names {}",
            f.name
        );
    }

    // One more, by hand, past due: bad input first, then a retried create.
    let err = create(&token_theft.name, pb::FollowUp::default(), "")
        .await
        .expect_err("empty");
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        ["follow_up.due_time", "follow_up.owner", "follow_up.title"]
    );
    let created = create(&token_theft.name, rotate.clone(), "rotate-1")
        .await
        .expect("create");
    assert!(!created.from_review);
    assert!(created.overdue, "due in 2023 and open");
    assert_eq!(
        create(&token_theft.name, rotate.clone(), "rotate-1")
            .await
            .expect("retry"),
        created,
        "a retry answers the follow-up already created"
    );

    // Another incident, on another service.
    let outage = reviewed(&app, "Storage key leak", "sharepoint").await;

    // Updates: etag-checked; the tracker sync links an issue.
    let mut client = app.incidents();
    let mut moving = created.clone();
    moving.status = tv::WorkItemStatus::InProgress as i32;
    let moved = update(&mut client, moving.clone(), &["status"])
        .await
        .expect("start");
    assert_eq!(moved.status, tv::WorkItemStatus::InProgress as i32);
    assert_ne!(moved.etag, created.etag);
    let err = update(&mut client, moving, &["status"])
        .await
        .expect_err("stale etag");
    assert_eq!(err.code(), Code::Aborted, "{err:?}");
    let mut linked = moved.clone();
    linked.tracker = Some(tv::TrackerLink {
        system: "github".into(),
        external_key: "acme/identity#17".into(),
        url: "https://github.com/acme/identity/issues/17".into(),
        ..Default::default()
    });
    let linked = app
        .incidents_as("tracker")
        .update_follow_up(pb::UpdateFollowUpRequest {
            follow_up: Some(linked),
            update_mask: Some(FieldMask {
                paths: vec!["tracker".into()],
            }),
        })
        .await
        .expect("the tracker links its issue")
        .into_inner();
    let tracker = linked.tracker.clone().expect("tracker");
    assert_eq!(tracker.sync_state, tv::SyncState::Pending as i32);
    let mut bad = linked.clone();
    bad.tracker = Some(tv::TrackerLink {
        system: "github".into(),
        url: "javascript:alert(1)".into(),
        sync_state: 42,
        ..Default::default()
    });
    bad.owner = String::new();
    let err = update(&mut client, bad, &["tracker", "owner"])
        .await
        .expect_err("bad update");
    let mut fields = violations(&err);
    fields.sort();
    assert_eq!(
        fields,
        [
            "follow_up.owner",
            "follow_up.tracker.sync_state",
            "follow_up.tracker.url"
        ]
    );

    // A service manager scoped to exchange-online changes only its own incidents' items.
    let theirs = list(&app, &outage.name, "", "").await;
    let mut done = theirs[0].clone();
    done.status = tv::WorkItemStatus::Done as i32;
    let err = update(&mut app.incidents_as("scoped"), done, &["status"])
        .await
        .expect_err("another service's follow-up");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // The cross-incident lookups.
    let all = list(&app, "incidents/-", "", "").await;
    assert_eq!(all.len(), 5);
    assert_eq!(
        titles(&list(&app, "incidents/-", "overdue = true", "").await),
        [rotate.title.as_str()]
    );
    assert_eq!(
        list(&app, "incidents/-", "service = sharepoint", "")
            .await
            .iter()
            .map(|f| f.name.clone())
            .collect::<Vec<_>>(),
        theirs.iter().map(|f| f.name.clone()).collect::<Vec<_>>()
    );
    assert_eq!(
        list(
            &app,
            "incidents/-",
            r#"service = "services/exchange-online""#,
            ""
        )
        .await
        .len(),
        3
    );
    assert_eq!(
        list(&app, "incidents/-", "status = IN_PROGRESS", "")
            .await
            .len(),
        1
    );
    assert_eq!(
        list(&app, "incidents/-", "owner = soc@example.com", "")
            .await
            .len(),
        2
    );
    let by_key = list(
        &app,
        "incidents/-",
        r#"tracker_system = github AND external_key = "acme/identity#17""#,
        "",
    )
    .await;
    assert_eq!(titles(&by_key), [rotate.title.as_str()]);
    let since = linked.update_time.expect("update time");
    let changed = list(
        &app,
        "incidents/-",
        &format!("update_time >= \"{since}\""),
        "update_time",
    )
    .await;
    assert_eq!(titles(&changed), [rotate.title.as_str()]);
    let soonest = list(&app, "incidents/-", "", "due_time, title").await;
    assert_eq!(soonest[0].name, linked.name, "the 2023 item is due first");
    let err = app
        .incidents()
        .list_follow_ups(pb::ListFollowUpsRequest {
            parent: "incidents/-".into(),
            filter: "colour = red".into(),
            order_by: "owner".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad list");
    assert_eq!(violations(&err), ["filter", "order_by"]);

    // Closing the incident leaves its follow-ups tracked.
    close(&app, &token_theft.name, "Legacy auth disabled.")
        .await
        .expect("close");
    let mut finished = linked.clone();
    finished.status = tv::WorkItemStatus::Done as i32;
    let finished = update(&mut client, finished, &["status"])
        .await
        .expect("done after closure");
    assert!(!finished.overdue, "a finished item is not overdue");
    assert!(
        list(&app, "incidents/-", "overdue = true", "")
            .await
            .is_empty()
    );
}
