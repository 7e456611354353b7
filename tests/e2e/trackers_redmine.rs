//! The Redmine connector against a real Redmine (Debian's package, started by `.ci/redmine.sh`):
//! an issue's whole life as the sync drives it, with the changes a person makes in Redmine in
//! between (a reopen, a move, a deletion), and the start-up check. Each test works in a project
//! of its own, created through the REST API.
//!
//! Compiled as ignored unless `ASSURANCE_TEST_REDMINE_URL` was set at build time (the
//! `assurance_redmine` cfg of tests/build.rs); CI sets it. Set at build time but unset at run
//! time is a failure, not a skip.

use assurance_runtime::time::now_micros;
use gateway::trackers::{
    CloseReason, IssueContent, RemoteIssue, Tracker, TrackerError, marker,
    redmine::{Redmine, RedmineNames},
};
use serde_json::{Value, json};

/// The Redmine of `.ci/redmine.sh`, reached directly as a person (or its administrator) would.
pub(crate) struct Server {
    pub(crate) base: String,
    key: String,
    http: reqwest::Client,
}

impl Server {
    pub(crate) fn from_env() -> Server {
        let base = std::env::var("ASSURANCE_TEST_REDMINE_URL")
            .expect("ASSURANCE_TEST_REDMINE_URL (run .ci/redmine.sh and eval its output)");
        let key_file = std::env::var("ASSURANCE_TEST_REDMINE_KEY_FILE")
            .expect("ASSURANCE_TEST_REDMINE_KEY_FILE (run .ci/redmine.sh and eval its output)");
        let key = std::fs::read_to_string(&key_file)
            .expect("the Redmine API key file")
            .trim()
            .to_owned();
        Server {
            base,
            key,
            http: reqwest::Client::new(),
        }
    }

    fn connector(&self) -> Redmine {
        Redmine::new(&self.base, &self.key, RedmineNames::standard()).expect("a connector")
    }

    /// One REST call: the status and the JSON body (null when empty).
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-Redmine-API-Key", &self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("Redmine answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let json = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("JSON")
        };
        (status, json)
    }

    /// The id of the entry named `name` in the list `GET {path}` returns under `field`.
    pub(crate) async fn id_of(&self, path: &str, field: &str, name: &str) -> u64 {
        let (status, list) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "{list}");
        list[field]
            .as_array()
            .and_then(|entries| entries.iter().find(|entry| entry["name"] == name))
            .and_then(|entry| entry["id"].as_u64())
            .unwrap_or_else(|| panic!("no {name:?} in {path}: {list}"))
    }

    /// A new project of its own, with the `Bug` tracker.
    pub(crate) async fn project(&self) -> String {
        let identifier = format!("e2e-{}", uuid::Uuid::now_v7().simple());
        let bug = self.id_of("/trackers.json", "trackers", "Bug").await;
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/projects.json",
                Some(json!({ "project": {
                    "name": identifier,
                    "identifier": identifier,
                    "tracker_ids": [bug],
                    "enabled_module_names": ["issue_tracking"],
                }})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        identifier
    }

    pub(crate) async fn issue(&self, key: &str) -> Value {
        let (status, body) = self
            .call(reqwest::Method::GET, &format!("/issues/{key}.json"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body["issue"].clone()
    }

    pub(crate) async fn put_issue(&self, key: &str, fields: Value) {
        let (status, body) = self
            .call(
                reqwest::Method::PUT,
                &format!("/issues/{key}.json"),
                Some(json!({ "issue": fields })),
            )
            .await;
        assert_eq!(status, 204, "{body}");
    }
}

fn content(
    item: &str,
    title: &str,
    due_time: Option<i64>,
    assignee: Option<String>,
) -> IssueContent {
    IssueContent {
        title: title.into(),
        body: format!(
            "Follow-up of an incident.\n\n[In Assurance](https://assurance.example/{item})\n{}",
            marker(item)
        ),
        due_time,
        assignee,
    }
}

fn item_name() -> String {
    format!(
        "incidents/{}/followUps/{}",
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(assurance_redmine), ignore = "needs a Redmine: run .ci/redmine.sh")]
async fn an_issue_lives_its_whole_life_in_a_real_redmine() {
    let server = Server::from_env();
    let project = server.project().await;
    let redmine = server.connector();
    assert_eq!(redmine.kind(), "redmine");
    let item = item_name();
    let (_, me) = server
        .call(reqwest::Method::GET, "/users/current.json", None)
        .await;
    let me = me["user"]["id"].as_u64().expect("the admin's id");

    // Created with the marker, the due date (the UTC date of the due time) and the assignee.
    let since = now_micros();
    let due = 1_795_996_799_999_999; // 2026-11-29T23:59:59.999999Z
    let created = redmine
        .create(
            &project,
            &content(&item, "Rotate the keys", Some(due), Some(me.to_string())),
        )
        .await
        .expect("created");
    assert_eq!(created.item.as_deref(), Some(item.as_str()));
    assert_eq!(created.status, "New");
    assert!(!created.closed);
    assert_eq!(
        created.url,
        format!("{}/issues/{}", server.base, created.key)
    );
    let stored = server.issue(&created.key).await;
    assert_eq!(stored["subject"], "Rotate the keys");
    assert_eq!(stored["due_date"], "2026-11-29");
    assert_eq!(stored["assigned_to"]["id"], me);
    assert!(
        stored["description"]
            .as_str()
            .is_some_and(|description| description.contains(&marker(&item))),
        "{stored}"
    );

    // A create cut off before its answer is found again by its marker, not repeated.
    let found = redmine
        .find_created(&project, &item, since)
        .await
        .expect("listed");
    assert_eq!(
        found.as_ref().map(|issue| issue.key.as_str()),
        Some(created.key.as_str())
    );
    assert_eq!(
        redmine.find_created(&project, &item_name(), since).await,
        Ok(None),
        "another item's marker is not there"
    );
    assert_eq!(
        redmine.get(&project, &created.key).await,
        Ok(created.clone())
    );

    // Our change overwrites what Assurance owns; no due time clears the date.
    let updated = redmine
        .update(
            &project,
            &created.key,
            &content(&item, "Rotate every key", None, None),
        )
        .await
        .expect("updated");
    assert_eq!(updated.key, created.key);
    let stored = server.issue(&created.key).await;
    assert_eq!(stored["subject"], "Rotate every key");
    assert_eq!(stored["due_date"], Value::Null);

    // Closed for a DONE item, seen by the poll; closing again changes nothing.
    let before_close = now_micros();
    let closed = redmine
        .close(&project, &created.key, CloseReason::Completed)
        .await
        .expect("closed");
    assert_eq!((closed.status.as_str(), closed.closed), ("Closed", true));
    let changed = redmine
        .changed_since(&project, before_close)
        .await
        .expect("polled");
    let polled: Vec<&RemoteIssue> = changed.iter().filter(|i| i.key == created.key).collect();
    assert_eq!(polled.len(), 1, "{changed:?}");
    assert!(polled[0].closed);
    assert_eq!(
        redmine
            .close(&project, &created.key, CloseReason::Completed)
            .await,
        Ok(closed.clone())
    );

    // Reopened in Redmine by a person: the connector reads it open.
    let new = server
        .id_of("/issue_statuses.json", "issue_statuses", "New")
        .await;
    server
        .put_issue(&created.key, json!({ "status_id": new }))
        .await;
    let reopened = redmine.get(&project, &created.key).await.expect("read");
    assert_eq!((reopened.status.as_str(), reopened.closed), ("New", false));

    // A WONT_DO item closes it as Rejected.
    let rejected = redmine
        .close(&project, &created.key, CloseReason::NotPlanned)
        .await
        .expect("rejected");
    assert_eq!(
        (rejected.status.as_str(), rejected.closed),
        ("Rejected", true)
    );

    // Deleted in Redmine: gone for every call, never written again.
    let (status, _) = server
        .call(
            reqwest::Method::DELETE,
            &format!("/issues/{}.json", created.key),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        redmine.get(&project, &created.key).await,
        Err(TrackerError::Gone)
    );
    assert_eq!(
        redmine
            .update(&project, &created.key, &content(&item, "again", None, None))
            .await,
        Err(TrackerError::Gone)
    );
    assert_eq!(
        redmine
            .close(&project, &created.key, CloseReason::Completed)
            .await,
        Err(TrackerError::Gone)
    );
    assert_eq!(redmine.find_created(&project, &item, since).await, Ok(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(assurance_redmine), ignore = "needs a Redmine: run .ci/redmine.sh")]
async fn an_issue_moved_to_another_project_is_gone_and_left_alone() {
    let server = Server::from_env();
    let (project, elsewhere) = (server.project().await, server.project().await);
    let redmine = server.connector();
    let item = item_name();
    let created = redmine
        .create(&project, &content(&item, "Patch the VPN", None, None))
        .await
        .expect("created");
    server
        .put_issue(&created.key, json!({ "project_id": elsewhere }))
        .await;
    assert_eq!(
        redmine.get(&project, &created.key).await,
        Err(TrackerError::Gone)
    );
    assert_eq!(
        redmine
            .update(
                &project,
                &created.key,
                &content(&item, "ours again", None, None)
            )
            .await,
        Err(TrackerError::Gone)
    );
    assert_eq!(server.issue(&created.key).await["subject"], "Patch the VPN");
    // The issue is not ours in the other project either.
    assert_eq!(
        redmine.get(&elsewhere, &created.key).await.map(|i| i.key),
        Ok(created.key)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(assurance_redmine), ignore = "needs a Redmine: run .ci/redmine.sh")]
async fn check_passes_for_real_statuses_and_refuses_what_is_not_there() {
    let server = Server::from_env();
    let project = server.project().await;
    let redmine = server.connector();
    let statuses = ["New", "In Progress", "Closed", "Rejected"].map(String::from);
    assert_eq!(redmine.check(&project, &statuses).await, Ok(()));

    let refused = |result: Result<(), TrackerError>, expected: &str| match result {
        Err(TrackerError::Refused(why)) => {
            assert!(why.contains(expected), "{why:?} should say {expected:?}");
            assert!(!why.contains(&server.key), "the key leaked: {why}");
        }
        other => panic!("expected Refused({expected:?}), got {other:?}"),
    };
    refused(
        redmine.check(&project, &["Nope".to_owned()]).await,
        "no issue status \"Nope\"",
    );
    refused(
        redmine.check("no-such-project", &statuses).await,
        "not found",
    );
    let wrong_key = Redmine::new(&server.base, "0123456789abcdef", RedmineNames::standard())
        .expect("a connector");
    refused(
        wrong_key.check(&project, &statuses).await,
        "the API key was refused",
    );
    let names = RedmineNames {
        tracker: "Incident".into(),
        completed_status: "Resolved".into(),
        not_planned_status: "Won't fix".into(),
    };
    let misnamed = Redmine::new(&server.base, &server.key, names).expect("a connector");
    let result = misnamed.check(&project, &statuses).await;
    refused(result.clone(), "no tracker \"Incident\"");
    refused(result.clone(), "\"Resolved\" is not a closed status");
    refused(result, "no issue status \"Won't fix\"");

    // Redmine's own validation messages come back, and nothing is created.
    match redmine
        .create(&project, &content(&item_name(), "", None, None))
        .await
    {
        Err(TrackerError::Refused(why)) => {
            assert!(why.contains("Subject cannot be blank"), "{why}")
        }
        other => panic!("expected Refused, got {other:?}"),
    }
}
