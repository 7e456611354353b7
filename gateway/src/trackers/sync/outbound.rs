//! Outbound: the scan that keeps each link's copy of its item current, and the worker step that
//! creates, updates and closes issues from the links.

use assurance_proto::{
    gateway::v1::WorkItemKind,
    r#type::v1::{SyncState, WorkItemStatus},
};
use assurance_runtime::{ApiResult, time::now_micros};

use super::{
    Remote, TrackerSync,
    items::{self, SyncItem, WriteBack},
    store::{Link, LinkState, NEVER},
};
use crate::trackers::{
    CloseReason, IssueContent, RemoteIssue, TrackerError,
    config::{ItemKind, Route, Selector, TrackerKind},
};

/// Items read per page of the scan.
const SCAN_PAGE: i32 = 200;
/// Links worked per round of a worker.
const ROUND: u64 = 20;
/// How far before its cursor each scan reads again (commit-time skew between writers).
const SCAN_OVERLAP_MICROS: i64 = 5_000_000;

fn finished(status: i32) -> bool {
    status == WorkItemStatus::Done as i32 || status == WorkItemStatus::WontDo as i32
}

/// What the link holds of its item's issue content.
pub(super) fn link_content(link: &Link) -> IssueContent {
    IssueContent {
        title: link.title.clone(),
        body: link.body.clone(),
        due_time: link.due_time,
        assignee: (!link.assignee.is_empty()).then(|| link.assignee.clone()),
    }
}

/// The item was finished in Assurance (by a person) since both sides last agreed, and the
/// issue is still open: close it.
fn close_needed(link: &Link) -> bool {
    finished(link.item_status) && link.item_status != link.synced_status && !link.remote_closed
}

/// Something of ours is not in the tracker yet.
fn needs_push(link: &Link) -> bool {
    link.external_key.is_empty()
        || items::digest(&link_content(link)) != link.pushed_hash
        || close_needed(link)
}

/// Records the issue as fetched or as a write of ours answered.
pub(super) fn record_remote(link: &mut Link, issue: &RemoteIssue) {
    link.remote_status = issue.status.clone();
    link.remote_closed = issue.closed;
    link.remote_update_time = link.remote_update_time.max(issue.update_time);
}

/// The sync state the item's tracker link shows for a link state.
pub(super) fn sync_state(state: LinkState) -> SyncState {
    match state {
        LinkState::Pending | LinkState::Creating => SyncState::Pending,
        LinkState::Synced => SyncState::Synced,
        LinkState::Failed => SyncState::Failed,
        LinkState::Broken => SyncState::Broken,
    }
}

impl TrackerSync {
    /// The route of `item`: a route of one of its services, else of one of their business
    /// units, else the default; `None` when no route takes its kind.
    async fn route_of(&self, item: &SyncItem) -> Option<&Route> {
        let takes = |selector: &Selector| {
            self.config
                .routes
                .iter()
                .find(|r| &r.selector == selector && r.kinds.contains(&item.kind))
        };
        if let Some(route) = item
            .services
            .iter()
            .find_map(|s| takes(&Selector::Service(s.clone())))
        {
            return Some(route);
        }
        let by_unit = self
            .config
            .routes
            .iter()
            .any(|r| matches!(r.selector, Selector::BusinessUnit(_)));
        if by_unit {
            let mut units: Vec<String> = item.business_unit.iter().cloned().collect();
            if units.is_empty() && !item.services.is_empty() {
                let (registry, _) = self
                    .registry
                    .read(
                        &self.upstreams,
                        &items::on_behalf(),
                        std::time::Duration::from_secs(5),
                    )
                    .await;
                if let Some(registry) = registry {
                    units.extend(
                        item.services
                            .iter()
                            .filter_map(|s| registry.services.get(s))
                            .map(|s| s.business_unit.clone()),
                    );
                }
            }
            if let Some(route) = units
                .iter()
                .find_map(|u| takes(&Selector::BusinessUnit(u.clone())))
            {
                return Some(route);
            }
        }
        takes(&Selector::Default)
    }

    /// One outbound scan: every item changed since the cursors, each kind in turn.
    pub(super) async fn scan(&self) -> Result<(), String> {
        for kind in [ItemKind::ActionItem, ItemKind::FollowUp] {
            let name = match kind {
                ItemKind::ActionItem => "scan:action_items",
                ItemKind::FollowUp => "scan:follow_ups",
            };
            let cursor = self
                .store
                .cursor(name)
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            // Each scan reads again the last moments before its cursor: an update's time is
            // taken before its commit, so a change committed late may carry a time the cursor
            // has passed. Items already taken are skipped by their update time.
            let (mut time, mut last) = ((cursor.0 - SCAN_OVERLAP_MICROS).max(0), String::new());
            loop {
                let page = items::changed(&self.upstreams, kind, time, SCAN_PAGE)
                    .await
                    .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
                let full = page.len() >= SCAN_PAGE as usize;
                let mut advanced = false;
                for item in page {
                    if (item.update_time, item.name.as_str()) <= (time, last.as_str()) {
                        continue;
                    }
                    self.take_item(&item).await.map_err(|e| e.to_string())?;
                    (time, last) = (item.update_time, item.name.clone());
                    if (time, last.as_str()) > (cursor.0, cursor.1.as_str()) {
                        self.store
                            .set_cursor(name, time, &last)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    advanced = true;
                }
                // A full page of one instant: step past it rather than read it forever.
                if full && !advanced {
                    time += 1;
                    last.clear();
                    continue;
                }
                if !full {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Brings `item`'s link up to date (making one when a route takes a new item), and wakes
    /// the tracker's worker when there is something to push.
    async fn take_item(&self, item: &SyncItem) -> ApiResult<()> {
        let _held = self.lock_item(&item.name).await;
        let now = now_micros();
        let existing = self.store.link(&item.name).await?;
        let mut link = match existing {
            Some(link) if link.item_update_time >= item.update_time => return Ok(()),
            Some(link) => link,
            None => {
                // An item finished before it was ever routed gets no issue.
                if finished(item.status) {
                    return Ok(());
                }
                let Some(route) = self.route_of(item).await else {
                    return Ok(());
                };
                new_link(item, route, now)
            }
        };
        let Some(remote) = self.remote(&link.tracker).cloned() else {
            return Ok(());
        };
        let content = self.content_of(&remote, item);
        link.title = content.title;
        link.body = content.body;
        link.due_time = content.due_time;
        link.assignee = content.assignee.unwrap_or_default();
        link.item_status = item.status;
        link.item_update_time = item.update_time;
        link.update_time = now;
        let state = LinkState::of(link.state);
        let wake = match state {
            LinkState::Synced if needs_push(&link) => {
                link.state = LinkState::Pending as i32;
                link.next_attempt_time = now;
                true
            }
            LinkState::Pending | LinkState::Creating => link.next_attempt_time <= now,
            _ => false,
        };
        self.store.save(&link).await?;
        if wake {
            remote.wake.notify_one();
        }
        Ok(())
    }

    /// What Assurance owns of `item`'s issue in `remote`.
    fn content_of(&self, remote: &Remote, item: &SyncItem) -> IssueContent {
        let mapped = remote.config.assignees.get(&item.owner).cloned();
        let (show_owner, assignee) = match remote.config.kind {
            // GitHub shows the owner (and the due time) in the body itself.
            TrackerKind::Github => (false, Some(mapped.unwrap_or_else(|| item.owner.clone()))),
            TrackerKind::Redmine => (mapped.is_none(), mapped),
        };
        items::content(item, self.item_url.as_deref(), show_owner, assignee)
    }

    /// Works up to a round of `remote`'s due links; true when more may be due.
    pub(super) async fn work_links(&self, remote: &Remote) -> ApiResult<bool> {
        let due = self
            .store
            .due(&remote.config.name, now_micros(), ROUND)
            .await?;
        let more = due.len() as u64 >= ROUND;
        for due in due {
            let paused = remote
                .health()
                .paused_until
                .is_some_and(|u| u > now_micros());
            if paused {
                return Ok(false);
            }
            let _held = self.lock_item(&due.item).await;
            // Read again under the lock: the scan may have changed it since.
            if let Some(link) = self.store.link(&due.item).await?
                && link.next_attempt_time <= now_micros()
            {
                self.work_link(remote, link).await?;
            }
        }
        Ok(more)
    }

    /// Brings one link's issue in step with its item.
    async fn work_link(&self, remote: &Remote, mut link: Link) -> ApiResult<()> {
        let now = now_micros();
        let result = self.push(remote, &mut link).await;
        if let Err(e) = &result {
            assurance_runtime::observe::tracker_error(
                &remote.config.name,
                match e {
                    TrackerError::RateLimited { .. } => "rate_limited",
                    TrackerError::Unavailable(_) => "unavailable",
                    TrackerError::Gone => "gone",
                    TrackerError::Refused(_) => "refused",
                },
            );
        }
        let mut counted_error = None;
        match result {
            Ok(()) => {
                link.state = LinkState::Synced as i32;
                link.attempts = 0;
                link.next_attempt_time = NEVER;
                link.last_error.clear();
                link.sync_time = Some(now);
            }
            Err(TrackerError::RateLimited { retry_after }) => {
                let until = now + i64::try_from(retry_after.as_micros()).unwrap_or(i64::MAX / 2);
                remote.pause(until);
                link.next_attempt_time = until;
                link.last_error = format!(
                    "rate limited until {}",
                    assurance_runtime::time::to_timestamp(until)
                );
            }
            Err(TrackerError::Unavailable(why)) => {
                link.attempts = link.attempts.saturating_add(1);
                link.next_attempt_time = now + self.backoff(link.attempts);
                link.last_error = format!("unavailable: {why}");
                counted_error = Some(why);
            }
            Err(TrackerError::Gone) => {
                link.state = LinkState::Broken as i32;
                link.next_attempt_time = NEVER;
                link.last_error = "the issue was deleted or moved out of the project".into();
            }
            Err(TrackerError::Refused(why)) => {
                link.state = LinkState::Failed as i32;
                link.next_attempt_time = NEVER;
                link.last_error = format!("refused: {why}");
            }
        }
        if let Some(why) = counted_error {
            tracing::warn!(tracker = %remote.config.name, item = %link.item, error = %why, attempts = link.attempts, "tracker sync: the tracker is unavailable; the item stays queued");
        }
        link.update_time = now;
        self.store.save(&link).await?;
        self.write_link(remote, &mut link).await
    }

    /// The tracker calls of one link: find or create its issue, push our content, close it.
    async fn push(&self, remote: &Remote, link: &mut Link) -> Result<(), TrackerError> {
        let content = link_content(link);
        if link.external_key.is_empty() {
            let found = match link.creating_time {
                Some(since) => {
                    remote.spend()?;
                    let found = remote
                        .client
                        .find_created(&link.project, &link.item, since)
                        .await?;
                    if found.is_some() {
                        // Created before a timeout or a crash: push the current content again.
                        link.pushed_hash.clear();
                    }
                    found
                }
                None => None,
            };
            let issue = match found {
                Some(issue) => issue,
                None => {
                    link.creating_time.get_or_insert(now_micros());
                    link.state = LinkState::Creating as i32;
                    self.store
                        .save(link)
                        .await
                        .map_err(|e| TrackerError::Unavailable(format!("the sync store: {e}")))?;
                    remote.spend()?;
                    let issue = remote.client.create(&link.project, &content).await?;
                    link.pushed_hash = items::digest(&content);
                    issue
                }
            };
            link.external_key = issue.key.clone();
            link.url = issue.url.clone();
            record_remote(link, &issue);
            // The issue is ours from here on, whatever happens next.
            self.store
                .save(link)
                .await
                .map_err(|e| TrackerError::Unavailable(format!("the sync store: {e}")))?;
        }
        if items::digest(&content) != link.pushed_hash {
            remote.spend()?;
            let issue = remote
                .client
                .update(&link.project, &link.external_key, &content)
                .await?;
            link.pushed_hash = items::digest(&content);
            record_remote(link, &issue);
        }
        if close_needed(link) {
            let reason = if link.item_status == WorkItemStatus::WontDo as i32 {
                CloseReason::NotPlanned
            } else {
                CloseReason::Completed
            };
            remote.spend()?;
            let issue = remote
                .client
                .close(&link.project, &link.external_key, reason)
                .await?;
            record_remote(link, &issue);
        }
        // Finished here and closed there: both sides agree.
        if finished(link.item_status) && link.remote_closed {
            link.synced_status = link.item_status;
        }
        Ok(())
    }

    /// Writes the link's state and key to its item when they changed since the last write;
    /// a failed write keeps the link due, so it is tried again.
    pub(super) async fn write_link(&self, remote: &Remote, link: &mut Link) -> ApiResult<()> {
        let state = sync_state(LinkState::of(link.state));
        if link.written_state == state as i32 && link.written_key == link.external_key {
            return Ok(());
        }
        let now = now_micros();
        let change = WriteBack {
            tracker: Some(items::tracker_link(
                remote.kind(),
                &link.external_key,
                &link.url,
                state,
                now,
            )),
            status: None,
        };
        match items::write_back(&self.upstreams, &link.item, change).await {
            Ok(()) => {
                link.written_state = state as i32;
                link.written_key = link.external_key.clone();
            }
            Err(status) if super::inbound::refused_for_good(status.code()) => {
                tracing::warn!(item = %link.item, code = ?status.code(), error = %status.message(), "tracker sync: the item refuses its tracker link (gone or read-only); the link is kept here");
                link.written_state = state as i32;
                link.written_key = link.external_key.clone();
            }
            Err(status) => {
                tracing::warn!(item = %link.item, code = ?status.code(), error = %status.message(), "tracker sync: cannot write the link to the item; retrying");
                link.attempts = link.attempts.saturating_add(1);
                link.next_attempt_time = link
                    .next_attempt_time
                    .min(now + self.backoff(link.attempts));
            }
        }
        self.store.save(link).await
    }
}

/// A new link of `item`, routed by `route`, due now.
fn new_link(item: &SyncItem, route: &Route, now: i64) -> Link {
    Link {
        item: item.name.clone(),
        kind: match item.kind {
            ItemKind::ActionItem => WorkItemKind::ActionItem,
            ItemKind::FollowUp => WorkItemKind::FollowUp,
        } as i32,
        tracker: route.tracker.clone(),
        project: route.project.clone(),
        state: LinkState::Pending as i32,
        external_key: String::new(),
        url: String::new(),
        creating_time: None,
        title: String::new(),
        body: String::new(),
        due_time: None,
        assignee: String::new(),
        item_status: item.status,
        item_update_time: 0,
        pushed_hash: String::new(),
        synced_status: item.status,
        remote_status: String::new(),
        remote_closed: false,
        remote_update_time: 0,
        unmapped_status: false,
        written_state: 0,
        written_key: String::new(),
        attempts: 0,
        next_attempt_time: now,
        last_error: String::new(),
        sync_time: None,
        create_time: now,
        update_time: now,
    }
}
