//! The gateway with a tracker sync, for the sync's end-to-end tests: an embedded gateway on
//! either backend whose `--trackers-file` names a GitHub double (and, when given, a real
//! Redmine), with short scan, poll and backoff intervals; helpers to make routed items and to
//! read the sync's state.

use std::time::Duration;

use assurance_proto::{
    gateway::v1::{self as gpb, tracker_sync_service_client::TrackerSyncServiceClient},
    risk::v1 as pb,
    r#type::v1 as tv,
};
use assurance_tests::github_mock::GitHubMock;

use crate::helpers::*;

pub const TOKEN: &str = "ghp_sync_test_token";
pub const SECRET: &str = "It's a Secret to Everybody";
/// Routed by its service: action items of `exchange-online`.
pub const EXCHANGE: &str = "contoso/exchange";
/// Routed by business unit: follow-ups of `productivity`'s services.
pub const PRODUCTIVITY: &str = "contoso/productivity";

pub struct SyncApp {
    pub app: App,
    pub github: GitHubMock,
    /// Kept for the test's life: the data directory and the PostgreSQL database.
    _db: TestDb,
}

/// The trackers file of the tests: GitHub routes, plus `extra` (more trackers and routes).
pub fn trackers_file(db: &TestDb, github: &GitHubMock, extra: &str) -> std::path::PathBuf {
    let dir = db.data_dir();
    std::fs::write(dir.join("github-token"), TOKEN).expect("token file");
    std::fs::write(dir.join("github-secret"), SECRET).expect("secret file");
    let file = dir.join("trackers.toml");
    let text = format!(
        r#"item_url = "https://assurance.example.com/items"

[[tracker]]
name = "github"
kind = "github"
base_url = "{base}"
credential_file = "{dir}/github-token"
webhook_secret_file = "{dir}/github-secret"
create_gap_ms = 0

[[route]]
service = "exchange-online"
kinds = ["action_item"]
tracker = "github"
project = "{EXCHANGE}"

[[route]]
business_unit = "productivity"
kinds = ["follow_up"]
tracker = "github"
project = "{PRODUCTIVITY}"
{extra}"#,
        base = github.base_url(),
        dir = dir.display(),
    );
    std::fs::write(&file, text).expect("trackers file");
    file
}

/// The gateway's flags for a sync that acts within a test's patience.
pub fn sync_config(
    db: &TestDb,
    backend: Backend,
    trackers: std::path::PathBuf,
) -> gateway::config::Config {
    let mut config = embedded_config(db, backend);
    config.trackers_file = Some(trackers);
    config.tracker_scan_interval = Duration::from_millis(100);
    config.tracker_poll_interval = Duration::from_millis(500);
    config.tracker_max_backoff = Duration::from_millis(500);
    config.tracker_timeout = Duration::from_secs(1);
    config
}

impl SyncApp {
    /// The gateway, the GitHub double with both repositories, and the org: `exchange-online`
    /// in `productivity`, and `intranet` in `facilities` (which no route takes).
    pub async fn start(backend: Backend) -> SyncApp {
        Self::start_with(backend, "").await
    }

    pub async fn start_with(backend: Backend, extra: &str) -> SyncApp {
        let db = TestDb::new(backend).await;
        let github = GitHubMock::start(TOKEN, &[EXCHANGE, PRODUCTIVITY]).await;
        let file = trackers_file(&db, &github, extra);
        let app = start_gateway(&db, sync_config(&db, backend, file)).await;
        org_fixture(&app).await;
        create_bu(&app, "facilities").await;
        create_service(&app, "intranet", "facilities").await;
        SyncApp {
            app,
            github,
            _db: db,
        }
    }

    pub fn sync_as(&self, who: &str) -> TrackerSyncServiceClient<Authed> {
        TrackerSyncServiceClient::new(self.app.channel_as(who))
    }

    /// A new action item on a risk of `service`.
    pub async fn item(&self, service: &str, title: &str) -> pb::ActionItem {
        item_on(&self.app, service, title).await
    }

    /// The link of `item` as the sync reports it.
    pub async fn link(&self, item: &str) -> Option<gpb::TrackerLinkStatus> {
        self.sync_as("trust_team")
            .list_tracker_links(gpb::ListTrackerLinksRequest {
                page_size: 10,
                page_token: String::new(),
                filter: format!("item = \"{item}\""),
            })
            .await
            .expect("list links")
            .into_inner()
            .links
            .pop()
    }

    /// Waits for `item`'s link to reach `state`, and returns it.
    pub async fn link_in(
        &self,
        item: &str,
        state: gpb::TrackerLinkState,
    ) -> gpb::TrackerLinkStatus {
        eventually(&format!("{item} {state:?}"), || async {
            match self.link(item).await {
                Some(l) if l.state == state as i32 => Ok(l),
                other => Err(format!("{other:?}")),
            }
        })
        .await
    }

    pub async fn action_item(&self, name: &str) -> pb::ActionItem {
        self.app
            .risks()
            .get_action_item(pb::GetActionItemRequest { name: name.into() })
            .await
            .expect("get action item")
            .into_inner()
    }

    /// Waits for the action item `name` to have `status`.
    pub async fn item_status(&self, name: &str, status: tv::WorkItemStatus) -> pb::ActionItem {
        eventually(&format!("{name} {status:?}"), || async {
            let item = self.action_item(name).await;
            if item.status == status as i32 {
                Ok(item)
            } else {
                Err(format!("status {:?}", item.status))
            }
        })
        .await
    }

    /// The issue number of a synced link (`org/repo#N`).
    pub fn number(link: &gpb::TrackerLinkStatus) -> u64 {
        link.external_key
            .rsplit_once('#')
            .and_then(|(_, n)| n.parse().ok())
            .expect("an issue key")
    }

    /// Sends GitHub's `issues` event `action` about issue `number` of `repo`, signed.
    pub async fn deliver(&self, action: &str, repo: &str, number: u64, delivery: &str) -> u16 {
        let body = self.github.issues_event(action, repo, number);
        assurance_tests::github_mock::deliver(
            &self.hook_url("github"),
            "issues",
            delivery,
            Some(SECRET.as_bytes()),
            body,
        )
        .await
        .expect("the gateway answers")
    }

    pub fn hook_url(&self, tracker: &str) -> String {
        format!("http://{}/webhooks/github/{tracker}", self.app.http_addr)
    }
}

/// A new action item on a new risk of `service`.
pub async fn item_on(app: &App, service: &str, title: &str) -> pb::ActionItem {
    let risk = create_risk(app, new_risk(&format!("Risk of {title}"), service)).await;
    let plan = create_action_plan(app, "admin", &risk.name, "Plan").await;
    add_action_item(app, "admin", &plan, action_item(title, days(30)))
        .await
        .expect("add action item")
}
