//! Inbound: what the trackers say. A webhook delivery (GitHub) is verified, recorded once by
//! its delivery id and answered at once; the worker then fetches the issue again and applies
//! it. The reconciliation poll (Redmine's only way in, GitHub's safety net) applies every
//! issue changed since its cursor the same way. Applying compares the issue with the state the
//! link last recorded, so an echo of the sync's own write changes nothing.

use std::sync::{Arc, atomic::Ordering};

use assurance_proto::r#type::v1::WorkItemStatus;
use assurance_runtime::{ApiResult, time::now_micros};
use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};

use super::{
    Remote, TrackerSync,
    items::{self, WriteBack},
    outbound::record_remote,
    store::{Link, LinkState, NEVER},
};
use crate::trackers::{
    RemoteIssue, TrackerError,
    config::TrackerKind,
    github::webhook::{self, EVENT_HEADER},
};

/// Deliveries worked per round of a worker.
const DELIVERIES: u64 = 50;
/// How far before its cursor a poll looks again (clock skew, whole-second trackers).
const POLL_OVERLAP_MICROS: i64 = 2_000_000;
/// How long worked-off deliveries are remembered (for replays).
const DELIVERY_MEMORY_MICROS: i64 = 7 * 24 * 3600 * 1_000_000;

/// `POST /webhooks/github/{tracker}` on the gateway's HTTP listener.
pub fn webhook_routes(sync: Arc<TrackerSync>) -> Router {
    Router::new()
        .route("/webhooks/github/{tracker}", post(github_webhook))
        .with_state(sync)
}

async fn github_webhook(
    State(sync): State<Arc<TrackerSync>>,
    Path(tracker): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let Some(remote) = sync
        .remote(&tracker)
        .filter(|r| r.config.kind == TrackerKind::Github)
    else {
        return (StatusCode::NOT_FOUND, "no such GitHub tracker\n");
    };
    let secret = remote
        .config
        .webhook_secret
        .as_ref()
        .map(|s| s.expose().as_bytes())
        .unwrap_or_default();
    let signature = headers
        .get(webhook::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    if secret.is_empty() || !webhook::verify_signature(secret, &body, signature) {
        remote.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(tracker = %tracker, "webhook refused: missing or wrong X-Hub-Signature-256");
        return (StatusCode::UNAUTHORIZED, "missing or wrong signature\n");
    }
    let Some(delivery) = webhook::delivery_id(&headers) else {
        return (StatusCode::BAD_REQUEST, "missing X-GitHub-Delivery\n");
    };
    let event = headers
        .get(EVENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let issue_key = match event {
        "issues" => match webhook::parse_issues_event(&body) {
            Ok(hint) => hint.key(),
            Err(e) => {
                tracing::warn!(tracker = %tracker, error = %e, "webhook: unreadable issues event");
                return (StatusCode::BAD_REQUEST, "not an issues event\n");
            }
        },
        // `ping` and events the sync does not read: acknowledged, nothing to do.
        _ => String::new(),
    };
    match sync
        .store
        .receive(&tracker, delivery, &issue_key, now_micros())
        .await
    {
        Ok(true) => {
            remote.accepted.fetch_add(1, Ordering::Relaxed);
            remote.wake.notify_one();
            (StatusCode::ACCEPTED, "accepted\n")
        }
        Ok(false) => {
            remote.replayed.fetch_add(1, Ordering::Relaxed);
            (StatusCode::OK, "already received\n")
        }
        Err(e) => {
            tracing::error!(tracker = %tracker, error = %e, "webhook: cannot record the delivery");
            (StatusCode::SERVICE_UNAVAILABLE, "try again later\n")
        }
    }
}

impl TrackerSync {
    /// Works off `remote`'s open deliveries: each issue fetched again and applied.
    pub(super) async fn work_deliveries(&self, remote: &Remote) -> ApiResult<()> {
        let name = &remote.config.name;
        for delivery in self.store.open_deliveries(name, DELIVERIES).await? {
            let found = self.store.link_of_issue(name, &delivery.issue_key).await?;
            let held = match &found {
                Some(found) => Some(self.lock_item(&found.item).await),
                None => None,
            };
            let link = match &found {
                // Read again under the lock.
                Some(found) => self.store.link(&found.item).await?,
                None => None,
            };
            if let Some(link) = link {
                match self.refresh(remote, link).await {
                    Ok(()) => {}
                    Err(TrackerError::RateLimited { retry_after }) => {
                        remote.pause(
                            now_micros()
                                + i64::try_from(retry_after.as_micros()).unwrap_or(i64::MAX / 2),
                        );
                        return Ok(());
                    }
                    Err(TrackerError::Unavailable(why)) => {
                        tracing::warn!(tracker = %name, error = %why, "tracker sync: cannot fetch an issue a delivery named; keeping the delivery");
                        return Ok(());
                    }
                    Err(e) => {
                        tracing::warn!(tracker = %name, key = %delivery.issue_key, error = %e, "tracker sync: a delivery's issue cannot be read");
                    }
                }
            }
            drop(held);
            self.store
                .delivery_done(name, &delivery.delivery_id)
                .await?;
        }
        Ok(())
    }

    /// Fetches the link's issue and applies it; a deleted or moved issue breaks the link.
    async fn refresh(&self, remote: &Remote, mut link: Link) -> Result<(), TrackerError> {
        if LinkState::of(link.state) == LinkState::Broken {
            return Ok(());
        }
        remote.spend()?;
        match remote.client.get(&link.project, &link.external_key).await {
            Ok(issue) => self.apply(remote, link, &issue).await,
            Err(TrackerError::Gone) => {
                link.state = LinkState::Broken as i32;
                link.next_attempt_time = NEVER;
                link.last_error = "the issue was deleted or moved out of the project".into();
                link.update_time = now_micros();
                self.store.save(&link).await.map_err(unavailable)?;
                self.write_link(remote, &mut link)
                    .await
                    .map_err(unavailable)
            }
            Err(e) => Err(e),
        }
    }

    /// Applies the issue as fetched to the link and, when the tracker changed its status, to
    /// the item. An issue older than the last one seen, or whose status is the one last
    /// recorded (our own write echoed, an edit of a field Assurance owns), changes nothing.
    pub(super) async fn apply(
        &self,
        remote: &Remote,
        mut link: Link,
        issue: &RemoteIssue,
    ) -> Result<(), TrackerError> {
        if issue.update_time < link.remote_update_time {
            return Ok(());
        }
        let reopened = link.remote_closed && !issue.closed;
        let changed = issue.status != link.remote_status || issue.closed != link.remote_closed;
        record_remote(&mut link, issue);
        link.update_time = now_micros();
        if !changed {
            return self.store.save(&link).await.map_err(unavailable);
        }
        let target = if reopened {
            Some(WorkItemStatus::InProgress)
        } else {
            remote.config.statuses.get(&issue.status).copied()
        };
        let Some(target) = target else {
            link.unmapped_status = true;
            tracing::warn!(tracker = %remote.config.name, status = %issue.status, item = %link.item, "tracker sync: the issue's status is not mapped; nothing changes");
            return self.store.save(&link).await.map_err(unavailable);
        };
        link.unmapped_status = false;
        if target as i32 != link.item_status {
            let change = WriteBack {
                tracker: None,
                status: Some(target),
            };
            match items::write_back(&self.upstreams, &link.item, change).await {
                Ok(()) => link.item_status = target as i32,
                // Refused for good (the item is gone, or read-only: its risk is closed): the
                // tracker's status is recorded, and the refusal shown on the link.
                Err(status) if refused_for_good(status.code()) => {
                    tracing::warn!(item = %link.item, code = ?status.code(), error = %status.message(), "tracker sync: the item refused the tracker's status");
                    link.last_error = format!(
                        "the item refused the status {}: {}",
                        issue.status,
                        status.message()
                    );
                }
                // Not recorded: the next poll or delivery applies it again.
                Err(status) => {
                    return Err(TrackerError::Unavailable(format!(
                        "cannot set {}'s status: {}",
                        link.item,
                        status.message()
                    )));
                }
            }
        }
        link.synced_status = target as i32;
        link.sync_time = Some(now_micros());
        self.store.save(&link).await.map_err(unavailable)
    }

    /// One reconciliation poll of `remote` when due: every issue changed in its projects since
    /// the cursor, applied to its link.
    pub(super) async fn poll(&self, remote: &Remote) -> ApiResult<()> {
        let now = now_micros();
        if remote.health().next_poll > now {
            return Ok(());
        }
        let interval =
            i64::try_from(self.settings.poll_interval.as_micros()).unwrap_or(i64::MAX / 2);
        remote.health().next_poll = now + interval;
        let name = &remote.config.name;
        let mut projects: Vec<String> = self.store.projects(name).await?;
        projects.sort();
        projects.dedup();
        for project in projects {
            let cursor = format!("poll:{name}:{project}");
            let since = match self.store.cursor(&cursor).await? {
                Some((time, _)) => time - POLL_OVERLAP_MICROS,
                None => now - interval.max(60_000_000),
            };
            if let Err(e) = remote.spend() {
                tracing::debug!(tracker = %name, error = %e, "tracker sync: poll deferred by the budget");
                return Ok(());
            }
            let issues = match remote.client.changed_since(&project, since).await {
                Ok(issues) => issues,
                Err(e) => {
                    if let TrackerError::RateLimited { retry_after } = &e {
                        remote.pause(now + i64::try_from(retry_after.as_micros()).unwrap_or(0));
                    }
                    tracing::warn!(tracker = %name, %project, error = %e, "tracker sync: the reconciliation poll failed; trying again later");
                    return Ok(());
                }
            };
            let mut newest = since + POLL_OVERLAP_MICROS;
            for issue in issues {
                newest = newest.max(issue.update_time);
                let Some(found) = self.store.link_of_issue(name, &issue.key).await? else {
                    continue;
                };
                let _held = self.lock_item(&found.item).await;
                if let Some(link) = self.store.link(&found.item).await?
                    && let Err(e) = self.apply(remote, link, &issue).await
                {
                    tracing::warn!(tracker = %name, key = %issue.key, error = %e, "tracker sync: cannot apply a polled issue");
                    return Ok(());
                }
            }
            self.store.set_cursor(&cursor, newest, "").await?;
        }
        remote.health().poll_time = Some(now);
        self.store
            .forget_deliveries(now - DELIVERY_MEMORY_MICROS)
            .await
    }
}

/// A refusal retrying cannot change: the item is gone, read-only or refuses the value.
pub(super) fn refused_for_good(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::NotFound
            | tonic::Code::FailedPrecondition
            | tonic::Code::InvalidArgument
            | tonic::Code::PermissionDenied
    )
}

fn unavailable(e: assurance_runtime::ApiError) -> TrackerError {
    TrackerError::Unavailable(format!("the sync store: {e}"))
}
