//! The tracker sync (#15) with a real Redmine (`.ci/redmine.sh`), on both backends: an action
//! item becomes a Redmine issue; closed in Redmine, the item is DONE after the poll (Redmine has
//! no webhooks); reopened, it is IN_PROGRESS; a status the mapping does not map changes
//! nothing and is reported; WONT_DO in Assurance rejects the issue.
//!
//! Ignored unless `ASSURANCE_TEST_REDMINE_URL` was set at build time (CI sets it).

use assurance_proto::{
    gateway::v1::{self as gpb, TrackerLinkState as S},
    risk::v1 as pb,
    r#type::v1 as tv,
};
use prost_types::FieldMask;
use serde_json::json;

use crate::{helpers::*, sync_fixture::*, trackers_redmine::Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(assurance_redmine), ignore = "needs a Redmine: run .ci/redmine.sh")]
async fn an_item_round_trips_through_redmine_on_sqlite() {
    round_trip(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    any(not(assurance_redmine), not(assurance_postgres)),
    ignore = "needs a Redmine (.ci/redmine.sh) and ASSURANCE_TEST_POSTGRES_URL"
)]
async fn an_item_round_trips_through_redmine_on_postgres() {
    round_trip(Backend::Postgres).await;
}

async fn round_trip(backend: Backend) {
    let redmine = Server::from_env();
    let project = redmine.project().await;
    let key_file = std::env::var("ASSURANCE_TEST_REDMINE_KEY_FILE").expect("the key file");
    let extra = format!(
        r#"
[[tracker]]
name = "redmine"
kind = "redmine"
base_url = "{base}"
credential_file = "{key_file}"
statuses = {{ "New" = "OPEN", "In Progress" = "IN_PROGRESS", "Resolved" = "DONE", "Closed" = "DONE", "Rejected" = "WONT_DO" }}
close = {{ done = "Closed", wont_do = "Rejected" }}

[[route]]
service = "teams"
tracker = "redmine"
project = "{project}"
"#,
        base = redmine.base,
    );
    let s = SyncApp::start_with(backend, &extra).await;
    create_service(&s.app, "teams", "productivity").await;
    let item = s.item("teams", "Review guest access").await;
    let link = s.link_in(&item.name, S::Synced).await;
    assert_eq!(
        (link.tracker.as_str(), link.project.as_str()),
        ("redmine", project.as_str())
    );
    let issue = redmine.issue(&link.external_key).await;
    assert_eq!(issue["subject"], "Review guest access");
    let description = issue["description"].as_str().unwrap_or_default();
    assert!(
        description.contains(&format!("<!-- assurance:{} -->", item.name)),
        "{description}"
    );
    assert!(
        description.contains("Owner: ops@example.com"),
        "{description}"
    );
    assert!(issue["due_date"].is_string(), "{issue}");
    assert_eq!(issue["status"]["name"], "New");

    let status = |name: &'static str| {
        let redmine = &redmine;
        async move {
            redmine
                .id_of("/issue_statuses.json", "issue_statuses", name)
                .await
        }
    };
    // Closed in Redmine: DONE after the poll.
    redmine
        .put_issue(
            &link.external_key,
            json!({ "status_id": status("Closed").await }),
        )
        .await;
    s.item_status(&item.name, tv::WorkItemStatus::Done).await;
    // Reopened in Redmine: IN_PROGRESS.
    redmine
        .put_issue(
            &link.external_key,
            json!({ "status_id": status("New").await }),
        )
        .await;
    s.item_status(&item.name, tv::WorkItemStatus::InProgress)
        .await;
    // A status the mapping leaves out: nothing changes, and the sync says so.
    redmine
        .put_issue(
            &link.external_key,
            json!({ "status_id": status("Feedback").await }),
        )
        .await;
    let unmapped = eventually("Feedback reported", || async {
        let sync = s
            .sync_as("trust_team")
            .get_tracker_sync(gpb::GetTrackerSyncRequest {
                name: "trackerSync".into(),
            })
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        let redmine = sync
            .trackers
            .into_iter()
            .find(|t| t.tracker == "redmine")
            .ok_or("no redmine tracker")?;
        if redmine.unmapped_statuses == ["Feedback"] {
            Ok(redmine)
        } else {
            Err(format!("{redmine:?}"))
        }
    })
    .await;
    assert!(unmapped.healthy, "{unmapped:?}");
    assert_eq!(
        s.action_item(&item.name).await.status,
        tv::WorkItemStatus::InProgress as i32
    );
    assert!(s.link(&item.name).await.expect("link").unmapped_status);

    // WONT_DO in Assurance: the issue is rejected.
    s.app
        .risks()
        .update_action_item(pb::UpdateActionItemRequest {
            action_item: Some(pb::ActionItem {
                name: item.name.clone(),
                status: tv::WorkItemStatus::WontDo as i32,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["status".into()],
            }),
        })
        .await
        .expect("won't do");
    eventually("the issue rejected", || async {
        let issue = redmine.issue(&link.external_key).await;
        if issue["status"]["name"] == "Rejected" {
            Ok(())
        } else {
            Err(issue["status"].to_string())
        }
    })
    .await;
}
