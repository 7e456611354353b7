//! A `kill -9` of the gateway between the tracker's create and the sync's save (#15), with the
//! gateway as its real binary: GitHub makes the issue but the answer never arrives; the gateway
//! is killed while it waits. Restarted, it finds the issue by its marker among the issues made
//! since the CREATING time and links it: one issue, never two.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use assurance_proto::{
    gateway::v1::{self as gpb, tracker_sync_service_client::TrackerSyncServiceClient},
    risk::v1::{self as pb, risk_service_client::RiskServiceClient},
    r#type::v1 as tv,
};
use assurance_tests::{
    auth::SHARED,
    github_mock::{Fault, GitHubMock},
    server::{connect, free_addr, register_org, wait_serving},
};
use http::Method;

use crate::{helpers::*, sync_fixture::*};

crate::on_both_backends!(a_gateway_killed_mid_create_makes_no_duplicate);

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The gateway binary's code (`assurance-bench serve-gateway`), embedded, with the sync.
async fn start(
    db: &TestDb,
    backend: Backend,
    trackers: &std::path::Path,
) -> (Gateway, SocketAddr, SocketAddr) {
    let (addr, http) = (free_addr().expect("port"), free_addr().expect("port"));
    let mut command = Command::new(PathBuf::from(env!("CARGO_BIN_EXE_assurance-bench")));
    command
        .arg("serve-gateway")
        .args(["--embedded", "--log-format", "json"])
        .args([
            "--listen",
            &addr.to_string(),
            "--http-listen",
            &http.to_string(),
        ])
        .arg("--data-dir")
        .arg(db.data_dir())
        .arg("--tokens-file")
        .arg(&SHARED.path)
        .arg("--trackers-file")
        .arg(trackers)
        .args([
            "--tracker-scan-interval",
            "100ms",
            "--tracker-poll-interval",
            "500ms",
        ])
        .args([
            "--tracker-max-backoff",
            "500ms",
            "--tracker-timeout",
            "120s",
        ])
        .args(["--snapshot-interval", "off"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if backend == Backend::Postgres {
        for flag in [
            "--risk-database-url",
            "--incident-database-url",
            "--database-url",
        ] {
            command.args([flag, &db.url]);
        }
    }
    let child = command.spawn().expect("spawn the gateway");
    wait_serving(addr, Duration::from_secs(60))
        .await
        .expect("gateway ready");
    (Gateway(child), addr, http)
}

async fn a_gateway_killed_mid_create_makes_no_duplicate(backend: Backend) {
    let db = TestDb::new(backend).await;
    let github = GitHubMock::start(TOKEN, &[EXCHANGE, PRODUCTIVITY]).await;
    let file = trackers_file(&db, &github, "");
    let (gateway, addr, http) = start(&db, backend, &file).await;
    eventually("the tracker checked", || async {
        match http_get(http, "/readyz").await {
            (200, body) if body == "ready\n" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let channel = connect(addr).await.expect("connect");
    register_org(channel.clone(), "productivity", "exchange-online")
        .await
        .expect("org");
    github.fail_next_on(Method::POST, 1, Fault::Hang(Duration::from_secs(600)));
    let mut risks = RiskServiceClient::new(channel);
    let risk = risks
        .create_risk(pb::CreateRiskRequest {
            risk: Some(new_risk("Stale admin accounts", "exchange-online")),
            request_id: String::new(),
        })
        .await
        .expect("risk")
        .into_inner();
    let plan = risks
        .create_action_plan(pb::CreateActionPlanRequest {
            parent: risk.name.clone(),
            action_plan: Some(pb::ActionPlan {
                title: "Plan".into(),
                owner: "owner@example.com".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("plan")
        .into_inner();
    let item = risks
        .create_action_item(pb::CreateActionItemRequest {
            parent: plan.name.clone(),
            action_item: Some(action_item("Disable stale admins", days(7))),
            request_id: String::new(),
        })
        .await
        .expect("item")
        .into_inner();
    // GitHub has made the issue; the gateway waits for an answer that never comes.
    eventually("the issue made in GitHub", || async {
        match github.issues(EXCHANGE).len() {
            1 => Ok(()),
            n => Err(format!("{n} issues")),
        }
    })
    .await;
    drop(gateway);

    let (_gateway, addr, _) = start(&db, backend, &file).await;
    let channel = connect(addr).await.expect("connect");
    let link = eventually("the link after the restart", || async {
        let links = TrackerSyncServiceClient::new(channel.clone())
            .list_tracker_links(gpb::ListTrackerLinksRequest::default())
            .await
            .map_err(|e| e.to_string())?
            .into_inner()
            .links;
        match links.first() {
            Some(l) if l.state == gpb::TrackerLinkState::Synced as i32 => Ok(l.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let issues = github.issues(EXCHANGE);
    assert_eq!(issues.len(), 1, "a duplicate after the crash: {issues:?}");
    assert_eq!(
        link.external_key,
        format!("{EXCHANGE}#{}", issues[0].number)
    );
    // The link is saved SYNCED first, then written back to its item.
    eventually("the item's link written back", || async {
        let synced = RiskServiceClient::new(channel.clone())
            .get_action_item(pb::GetActionItemRequest {
                name: item.name.clone(),
            })
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        match synced.tracker {
            Some(t)
                if t.external_key == link.external_key
                    && t.sync_state == tv::SyncState::Synced as i32 =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}
