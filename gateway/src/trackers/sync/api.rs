//! `TrackerSyncService`: the sync's state for people and trackers (`GetTrackerSync`,
//! `ListTrackerLinks`) and `ResyncWorkItem`, which forces one item.

use std::sync::{Arc, atomic::Ordering};

use assurance_proto::gateway::v1::{
    GetTrackerSyncRequest, ListTrackerLinksRequest, ListTrackerLinksResponse,
    ResyncWorkItemRequest, TrackerHealth, TrackerLinkState, TrackerLinkStatus, TrackerSync as Pb,
    WorkItemKind, tracker_sync_service_server::TrackerSyncService,
};
use assurance_runtime::{
    ApiError, audit,
    auth::Caller,
    filter::{self, FilterSchema, Op, compare, equality_only},
    page::{self, Key},
    time::{now_micros, to_timestamp},
};
use sea_orm::{Condition, TransactionTrait};
use tonic::{Request, Response, Status};

use super::{
    TrackerSync,
    items::kind_of,
    store::{Link, LinkState, NEVER, link::Column as L},
};
use crate::store::SERVICE;

/// The singleton's name.
const NAME: &str = "trackerSync";

/// The service over the sync, or over nothing when the gateway has no `--trackers-file`.
#[derive(Clone)]
pub struct TrackerSyncApi {
    sync: Option<Arc<TrackerSync>>,
}

impl TrackerSyncApi {
    pub fn new(sync: Option<Arc<TrackerSync>>) -> Self {
        TrackerSyncApi { sync }
    }
}

fn link_status(l: Link) -> TrackerLinkStatus {
    let time = |t: i64| (t != NEVER).then(|| to_timestamp(t));
    TrackerLinkStatus {
        kind: l.kind,
        item: l.item,
        tracker: l.tracker,
        project: l.project,
        state: l.state,
        external_key: l.external_key,
        url: l.url,
        remote_status: l.remote_status,
        unmapped_status: l.unmapped_status,
        last_error: l.last_error,
        attempts: l.attempts,
        next_attempt_time: time(l.next_attempt_time),
        sync_time: l.sync_time.map(to_timestamp),
        create_time: Some(to_timestamp(l.create_time)),
        update_time: Some(to_timestamp(l.update_time)),
    }
}

/// The fields of `ListTrackerLinks`'s filter.
struct LinkFilter;

impl FilterSchema for LinkFilter {
    fn compare(&self, field: &str, op: Op, value: &str) -> Result<Condition, String> {
        equality_only(field, op)?;
        let upper = value.to_ascii_uppercase();
        Ok(match field {
            "state" => {
                let state = TrackerLinkState::from_str_name(&upper)
                    .or_else(|| {
                        TrackerLinkState::from_str_name(&format!("TRACKER_LINK_STATE_{upper}"))
                    })
                    .filter(|s| *s != TrackerLinkState::Unspecified)
                    .ok_or_else(|| {
                        format!("`state` is one of PENDING, CREATING, SYNCED, FAILED, BROKEN (got {value:?})")
                    })?;
                compare(L::State, op, (state as i32).into())
            }
            "kind" => {
                let kind = WorkItemKind::from_str_name(&upper)
                    .or_else(|| WorkItemKind::from_str_name(&format!("WORK_ITEM_KIND_{upper}")))
                    .filter(|k| *k != WorkItemKind::Unspecified)
                    .ok_or_else(|| format!("`kind` is ACTION_ITEM or FOLLOW_UP (got {value:?})"))?;
                compare(L::Kind, op, (kind as i32).into())
            }
            "tracker" => compare(L::Tracker, op, value.into()),
            "item" => compare(L::Item, op, value.into()),
            other => {
                return Err(format!(
                    "unknown field `{other}`: filter on state, kind, tracker or item"
                ));
            }
        })
    }
}

#[tonic::async_trait]
impl TrackerSyncService for TrackerSyncApi {
    async fn get_tracker_sync(
        &self,
        request: Request<GetTrackerSyncRequest>,
    ) -> Result<Response<Pb>, Status> {
        let name = &request.get_ref().name;
        if name.is_empty() {
            return Err(ApiError::invalid("name", "is required").into());
        }
        if name != NAME {
            return Err(ApiError::not_found(name).into());
        }
        let Some(sync) = &self.sync else {
            return Ok(Response::new(Pb {
                name: NAME.into(),
                trackers: Vec::new(),
                enabled: false,
            }));
        };
        let mut trackers = Vec::new();
        for remote in &sync.remotes {
            let counts = sync.store.counts(&remote.config.name).await?;
            let count = |s: LinkState| {
                counts
                    .iter()
                    .find(|(state, _)| *state == s as i32)
                    .map_or(0, |(_, n)| *n)
            };
            let unmapped_statuses = sync.store.unmapped(&remote.config.name).await?;
            let health = remote.health().clone();
            let now = now_micros();
            trackers.push(TrackerHealth {
                tracker: remote.config.name.clone(),
                kind: remote.kind().into(),
                base_url: remote.config.base_url.clone(),
                healthy: health.healthy,
                problem: health.problem,
                check_time: health.check_time.map(to_timestamp),
                pending_links: count(LinkState::Pending),
                creating_links: count(LinkState::Creating),
                synced_links: count(LinkState::Synced),
                failed_links: count(LinkState::Failed),
                broken_links: count(LinkState::Broken),
                paused_until: health.paused_until.filter(|u| *u > now).map(to_timestamp),
                poll_time: health.poll_time.map(to_timestamp),
                deliveries_accepted: remote.accepted.load(Ordering::Relaxed),
                deliveries_replayed: remote.replayed.load(Ordering::Relaxed),
                deliveries_refused: remote.refused.load(Ordering::Relaxed),
                unmapped_statuses,
            });
        }
        Ok(Response::new(Pb {
            name: NAME.into(),
            trackers,
            enabled: true,
        }))
    }

    async fn list_tracker_links(
        &self,
        request: Request<ListTrackerLinksRequest>,
    ) -> Result<Response<ListTrackerLinksResponse>, Status> {
        let req = request.into_inner();
        let size = page::page_size("page_size", req.page_size)?;
        let condition = match filter::parse("filter", &req.filter)? {
            Some(f) => filter::compile("filter", &f, &LinkFilter)?,
            None => Condition::all(),
        };
        let fingerprint = page::query_fingerprint(&[&req.filter]);
        let after = match page::decode("page_token", &req.page_token, &fingerprint, 1)? {
            Some(keys) => match keys.as_slice() {
                [Key::Text(item)] => Some(item.clone()),
                _ => {
                    return Err(ApiError::invalid(
                        "page_token",
                        "is not a page token issued by this service",
                    )
                    .into());
                }
            },
            None => None,
        };
        let Some(sync) = &self.sync else {
            return Ok(Response::new(ListTrackerLinksResponse::default()));
        };
        let mut rows = sync
            .store
            .page(condition, after.as_deref(), size + 1)
            .await?;
        let next_page_token = page::finish(&mut rows, size, &fingerprint, |l| {
            vec![Key::Text(l.item.clone())]
        });
        Ok(Response::new(ListTrackerLinksResponse {
            links: rows.into_iter().map(link_status).collect(),
            next_page_token,
        }))
    }

    async fn resync_work_item(
        &self,
        request: Request<ResyncWorkItemRequest>,
    ) -> Result<Response<TrackerLinkStatus>, Status> {
        let caller = Caller::of(&request)?;
        let item = request.into_inner().item;
        if item.is_empty() {
            return Err(ApiError::invalid("item", "is required").into());
        }
        if item.len() > 300 || kind_of(&item).is_none() {
            return Err(ApiError::invalid(
                "item",
                "must name an action item (risks/{risk}/actionPlan/items/{item}) or a follow-up (incidents/{incident}/followUps/{follow_up})",
            )
            .into());
        }
        let Some(sync) = &self.sync else {
            return Err(ApiError::FailedPrecondition {
                reason: assurance_runtime::error::Reason::TrackerSyncDisabled,
                message: "the gateway runs without --trackers-file: there is no tracker sync"
                    .into(),
                metadata: Vec::new(),
            }
            .into());
        };
        let _held = sync.lock_item(&item).await;
        let Some(mut link) = sync.store.link(&item).await? else {
            return Err(ApiError::NotFound {
                resource: format!(
                    "the tracker link of {item} (not routed to a tracker, or not scanned yet)"
                ),
            }
            .into());
        };
        let now = now_micros();
        if LinkState::of(link.state) == LinkState::Broken {
            // A person asks for a new issue: start over, as for a new item.
            link.external_key.clear();
            link.url.clear();
            link.creating_time = None;
            link.pushed_hash.clear();
            link.remote_status.clear();
            link.remote_closed = false;
            link.remote_update_time = 0;
            link.synced_status = link.item_status;
        }
        if LinkState::of(link.state) != LinkState::Creating {
            link.state = LinkState::Pending as i32;
        }
        link.attempts = 0;
        link.next_attempt_time = now;
        link.last_error.clear();
        link.update_time = now;
        let txn = sync
            .store
            .connection()
            .begin()
            .await
            .map_err(ApiError::from)?;
        audit::record(&txn, SERVICE, &caller, &item, &caller.request_id).await?;
        txn.commit().await.map_err(ApiError::from)?;
        sync.store.save(&link).await?;
        if let Some(remote) = sync.remote(&link.tracker) {
            remote.wake.notify_one();
        }
        Ok(Response::new(link_status(link)))
    }
}
