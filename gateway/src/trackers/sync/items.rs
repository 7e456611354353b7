//! The work items as the sync sees them: read from the services in `update_time` order
//! (`update_time >= T`, the scan's cursor), rendered into what Assurance owns of an issue, and
//! written back (the item's tracker link; its status when the tracker changed it) as the
//! gateway's `system` principal — in process, or with its service token.

use assurance_proto::{
    incident::v1::{
        FollowUp, ListFollowUpsRequest, UpdateFollowUpRequest,
        incident_service_client::IncidentServiceClient, incident_service_server::IncidentService,
    },
    risk::v1::{
        self as risk, ActionItem, ListActionItemsRequest, UpdateActionItemRequest,
        risk_service_client::RiskServiceClient, risk_service_server::RiskService,
    },
    r#type::v1::{SyncState, TrackerLink, WorkItemStatus},
};
use assurance_runtime::{
    auth::Caller,
    time::{from_timestamp, to_timestamp},
};
use prost_types::FieldMask;
use sha2::{Digest, Sha256};
use tonic::Status;

use crate::{
    posture::upstream::{OnBehalf, Upstreams},
    trackers::{IssueContent, config::ItemKind, marker},
    work_items::query::SOURCE_ORDER,
};

/// What the sync reads of an action item or a follow-up.
#[derive(Debug, Clone)]
pub struct SyncItem {
    pub name: String,
    pub kind: ItemKind,
    pub title: String,
    pub description: String,
    pub owner: String,
    pub due_time: Option<i64>,
    pub status: i32,
    /// Service ids (`exchange-online`): the risk's, or the incident's affected services.
    pub services: Vec<String>,
    /// The business unit id, when the item says (action items do).
    pub business_unit: Option<String>,
    pub update_time: i64,
}

/// The gateway's own identity for the sync's calls (its audit records name the job).
pub fn on_behalf() -> OnBehalf {
    OnBehalf {
        caller: Caller::system("gateway", "TrackerSync"),
        authorization: None,
    }
}

fn id(name: &str) -> String {
    name.rsplit('/').next().unwrap_or(name).to_string()
}

fn micros(t: Option<&prost_types::Timestamp>) -> Option<i64> {
    t.and_then(from_timestamp)
}

impl From<ActionItem> for SyncItem {
    fn from(i: ActionItem) -> Self {
        SyncItem {
            kind: ItemKind::ActionItem,
            title: i.title,
            description: i.description,
            owner: i.owner,
            due_time: micros(i.due_time.as_ref()),
            status: i.status,
            services: (!i.service.is_empty())
                .then(|| id(&i.service))
                .into_iter()
                .collect(),
            business_unit: (!i.business_unit.is_empty()).then(|| id(&i.business_unit)),
            update_time: micros(i.update_time.as_ref()).unwrap_or_default(),
            name: i.name,
        }
    }
}

impl From<FollowUp> for SyncItem {
    fn from(f: FollowUp) -> Self {
        SyncItem {
            kind: ItemKind::FollowUp,
            title: f.title,
            description: f.description,
            owner: f.owner,
            due_time: micros(f.due_time.as_ref()),
            status: f.status,
            services: f.services.iter().map(|s| id(s)).collect(),
            business_unit: None,
            update_time: micros(f.update_time.as_ref()).unwrap_or_default(),
            name: f.name,
        }
    }
}

/// The kind of the item `name`, from its pattern.
pub fn kind_of(name: &str) -> Option<ItemKind> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["risks", r, "actionPlan", "items", i] if !r.is_empty() && !i.is_empty() => {
            Some(ItemKind::ActionItem)
        }
        ["incidents", n, "followUps", f] if !n.is_empty() && !f.is_empty() => {
            Some(ItemKind::FollowUp)
        }
        _ => None,
    }
}

/// Up to `size` items of `kind` changed at or after `since` (microseconds), in (update time,
/// name) order.
pub async fn changed(
    upstreams: &Upstreams,
    kind: ItemKind,
    since: i64,
    size: i32,
) -> Result<Vec<SyncItem>, Status> {
    let on = on_behalf();
    let filter = format!("update_time >= \"{}\"", to_timestamp(since));
    Ok(match kind {
        ItemKind::ActionItem => {
            let request = ListActionItemsRequest {
                parent: "risks/-/actionPlan".into(),
                page_size: size,
                page_token: String::new(),
                filter,
                order_by: SOURCE_ORDER.into(),
            };
            upstreams
                .action_items(&on, request)
                .await?
                .action_items
                .into_iter()
                .map(SyncItem::from)
                .collect()
        }
        ItemKind::FollowUp => {
            let request = ListFollowUpsRequest {
                parent: "incidents/-".into(),
                page_size: size,
                page_token: String::new(),
                filter,
                order_by: SOURCE_ORDER.into(),
            };
            upstreams
                .follow_ups(&on, request)
                .await?
                .follow_ups
                .into_iter()
                .map(SyncItem::from)
                .collect()
        }
    })
}

/// A change the sync writes to an item: its tracker link, and the status the tracker set.
#[derive(Debug, Clone, Default)]
pub struct WriteBack {
    pub tracker: Option<TrackerLink>,
    pub status: Option<WorkItemStatus>,
}

/// Writes `change` to the item `name` (no etag: only the sync's own fields are in the mask).
pub async fn write_back(
    upstreams: &Upstreams,
    name: &str,
    change: WriteBack,
) -> Result<(), Status> {
    let on = on_behalf();
    let mut paths = Vec::new();
    if change.tracker.is_some() {
        paths.push("tracker".to_string());
    }
    if change.status.is_some() {
        paths.push("status".to_string());
    }
    if paths.is_empty() {
        return Ok(());
    }
    let mask = Some(FieldMask { paths });
    let status = change.status.map_or(0, |s| s as i32);
    match kind_of(name) {
        Some(ItemKind::ActionItem) => {
            const RPC: &str = "/assurance.risk.v1.RiskService/UpdateActionItem";
            let message = UpdateActionItemRequest {
                action_item: Some(ActionItem {
                    name: name.to_string(),
                    status,
                    tracker: change.tracker.map(|t| risk::TrackerLink {
                        system: t.system,
                        external_key: t.external_key,
                        url: t.url,
                        sync_state: t.sync_state,
                        sync_time: t.sync_time,
                    }),
                    ..Default::default()
                }),
                update_mask: mask,
            };
            match upstreams {
                Upstreams::Local { actions, .. } => actions
                    .update_action_item(on.local(message, RPC))
                    .await
                    .map(drop),
                Upstreams::Remote { risk, token, .. } => {
                    RiskServiceClient::new(on.remote(risk, token.as_deref())?)
                        .update_action_item(message)
                        .await
                        .map(drop)
                }
            }
        }
        Some(ItemKind::FollowUp) => {
            const RPC: &str = "/assurance.incident.v1.IncidentService/UpdateFollowUp";
            let message = UpdateFollowUpRequest {
                follow_up: Some(FollowUp {
                    name: name.to_string(),
                    status,
                    tracker: change.tracker,
                    ..Default::default()
                }),
                update_mask: mask,
            };
            match upstreams {
                Upstreams::Local { follow_ups, .. } => follow_ups
                    .update_follow_up(on.local(message, RPC))
                    .await
                    .map(drop),
                Upstreams::Remote {
                    incident, token, ..
                } => IncidentServiceClient::new(on.remote(incident, token.as_deref())?)
                    .update_follow_up(message)
                    .await
                    .map(drop),
            }
        }
        None => Err(Status::invalid_argument(format!(
            "{name} is not an action item or a follow-up"
        ))),
    }
}

/// The item's tracker link as the sync writes it.
pub fn tracker_link(system: &str, key: &str, url: &str, state: SyncState, at: i64) -> TrackerLink {
    TrackerLink {
        system: system.to_string(),
        external_key: key.to_string(),
        url: url.to_string(),
        sync_state: state as i32,
        sync_time: Some(to_timestamp(at)),
    }
}

/// What Assurance owns of the item's issue: the title, and a body of the description, the
/// owner and due time where the tracker has no field for them (`show_owner`), a link back
/// (`item_url`: the base of the item's page, when configured) and the item's marker.
pub fn content(
    item: &SyncItem,
    item_url: Option<&str>,
    show_owner: bool,
    assignee: Option<String>,
) -> IssueContent {
    let mut body = item.description.trim().to_string();
    if !body.is_empty() {
        body.push_str("\n\n");
    }
    body.push_str("---\n");
    if show_owner {
        body.push_str(&format!("Owner: {}\n", item.owner));
    }
    match item_url {
        Some(base) => body.push_str(&format!(
            "Tracked in Assurance: {}/{}\n",
            base.trim_end_matches('/'),
            item.name
        )),
        None => body.push_str(&format!("Tracked in Assurance as `{}`\n", item.name)),
    }
    body.push_str(&marker(&item.name));
    body.push('\n');
    IssueContent {
        title: item.title.clone(),
        body,
        due_time: item.due_time,
        assignee,
    }
}

/// A digest of `content`: what was pushed, to know whether a change of the item is ours to push.
pub fn digest(content: &IssueContent) -> String {
    let mut h = Sha256::new();
    for part in [
        content.title.as_str(),
        content.body.as_str(),
        &content.due_time.map(|d| d.to_string()).unwrap_or_default(),
        content.assignee.as_deref().unwrap_or_default(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trackers::marked_item;

    fn item() -> SyncItem {
        SyncItem {
            name: "risks/r1/actionPlan/items/i1".into(),
            kind: ItemKind::ActionItem,
            title: "Rotate keys".into(),
            description: "All of them.".into(),
            owner: "alice@example.com".into(),
            due_time: Some(1_800_000_000_000_000),
            status: WorkItemStatus::Open as i32,
            services: vec!["teams".into()],
            business_unit: Some("productivity".into()),
            update_time: 1,
        }
    }

    #[test]
    fn bodies_carry_the_marker_and_the_link_back() {
        let c = content(&item(), Some("https://assurance.example.com/"), true, None);
        assert_eq!(marked_item(&c.body), Some("risks/r1/actionPlan/items/i1"));
        assert!(
            c.body
                .starts_with("All of them.\n\n---\nOwner: alice@example.com\n")
        );
        assert!(
            c.body
                .contains("https://assurance.example.com/risks/r1/actionPlan/items/i1")
        );
        let plain = content(&item(), None, false, Some("7".into()));
        assert!(!plain.body.contains("Owner"));
        assert_ne!(digest(&c), digest(&plain));
        assert_eq!(digest(&c), digest(&c.clone()));
    }

    #[test]
    fn kinds_follow_the_name_patterns() {
        assert_eq!(
            kind_of("risks/a/actionPlan/items/b"),
            Some(ItemKind::ActionItem)
        );
        assert_eq!(kind_of("incidents/a/followUps/b"), Some(ItemKind::FollowUp));
        assert_eq!(kind_of("incidents/a/followUps/"), None);
        assert_eq!(kind_of("risks/a"), None);
    }
}
