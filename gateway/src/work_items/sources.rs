//! The two lists `ListWorkItems` merges, reached in process (embedded mode) or over gRPC with
//! the gateway's credential acting for the caller (forwarding mode), and their items as work
//! items.

use assurance_proto::{
    gateway::v1::{WorkItem, WorkItemKind},
    incident::v1::{
        FollowUp, ListFollowUpsRequest, incident_service_client::IncidentServiceClient,
        incident_service_server::IncidentService,
    },
    risk::v1::{
        ActionItem, ListActionItemsRequest, risk_service_client::RiskServiceClient,
        risk_service_server::RiskService,
    },
    r#type::v1::TrackerLink,
};
use assurance_runtime::time::from_timestamp;
use tonic::Status;

use super::query::{Cursor, SOURCE_ORDER, Source};
use crate::posture::upstream::{OnBehalf, Upstreams};

/// One page of a source: its items as work items, in (update time, name) order, and whether
/// it has more after them.
pub struct SourcePage {
    pub items: Vec<WorkItem>,
    pub more: bool,
}

/// Where `item` sits in the (update time, name) order.
pub fn position(item: &WorkItem) -> Cursor {
    Cursor {
        update_time: item
            .update_time
            .as_ref()
            .and_then(from_timestamp)
            .unwrap_or_default(),
        name: item.name.clone(),
    }
}

impl Upstreams {
    /// Up to `size` items of `source` matching `filter` (in the services' syntax), in the
    /// gateway's order.
    pub(crate) async fn work_items(
        &self,
        on: &OnBehalf,
        source: Source,
        filter: String,
        size: u64,
    ) -> Result<SourcePage, Status> {
        let page_size = i32::try_from(size).unwrap_or(i32::MAX);
        match source {
            Source::FollowUps => {
                let request = ListFollowUpsRequest {
                    parent: "incidents/-".into(),
                    page_size,
                    page_token: String::new(),
                    filter,
                    order_by: SOURCE_ORDER.into(),
                };
                let page = self.follow_ups(on, request).await?;
                Ok(SourcePage {
                    more: !page.next_page_token.is_empty(),
                    items: page.follow_ups.into_iter().map(follow_up).collect(),
                })
            }
            Source::ActionItems => {
                let request = ListActionItemsRequest {
                    parent: "risks/-/actionPlan".into(),
                    page_size,
                    page_token: String::new(),
                    filter,
                    order_by: SOURCE_ORDER.into(),
                };
                let page = self.action_items(on, request).await?;
                Ok(SourcePage {
                    more: !page.next_page_token.is_empty(),
                    items: page.action_items.into_iter().map(action_item).collect(),
                })
            }
        }
    }

    pub(crate) async fn follow_ups(
        &self,
        on: &OnBehalf,
        message: ListFollowUpsRequest,
    ) -> Result<assurance_proto::incident::v1::ListFollowUpsResponse, Status> {
        const RPC: &str = "/assurance.incident.v1.IncidentService/ListFollowUps";
        match self {
            Upstreams::Local { follow_ups, .. } => follow_ups
                .list_follow_ups(on.local(message, RPC))
                .await
                .map(tonic::Response::into_inner),
            Upstreams::Remote {
                incident, token, ..
            } => IncidentServiceClient::new(on.remote(incident, token.as_deref())?)
                .max_decoding_message_size(64 << 20)
                .list_follow_ups(message)
                .await
                .map(tonic::Response::into_inner),
        }
    }

    pub(crate) async fn action_items(
        &self,
        on: &OnBehalf,
        message: ListActionItemsRequest,
    ) -> Result<assurance_proto::risk::v1::ListActionItemsResponse, Status> {
        const RPC: &str = "/assurance.risk.v1.RiskService/ListActionItems";
        match self {
            Upstreams::Local { actions, .. } => actions
                .list_action_items(on.local(message, RPC))
                .await
                .map(tonic::Response::into_inner),
            Upstreams::Remote { risk, token, .. } => {
                RiskServiceClient::new(on.remote(risk, token.as_deref())?)
                    .max_decoding_message_size(64 << 20)
                    .list_action_items(message)
                    .await
                    .map(tonic::Response::into_inner)
            }
        }
    }
}

/// The part of `name` before `/{collection}/`: the item's risk or incident.
fn parent(name: &str, collection: &str) -> String {
    name.split_once(collection)
        .map_or(name, |(parent, _)| parent)
        .to_string()
}

fn follow_up(f: FollowUp) -> WorkItem {
    WorkItem {
        parent: parent(&f.name, "/followUps/"),
        name: f.name,
        kind: WorkItemKind::FollowUp as i32,
        title: f.title,
        owner: f.owner,
        due_time: f.due_time,
        status: f.status,
        overdue: f.overdue,
        services: f.services,
        tracker: f.tracker,
        etag: f.etag,
        create_time: f.create_time,
        update_time: f.update_time,
    }
}

fn action_item(i: ActionItem) -> WorkItem {
    WorkItem {
        parent: parent(&i.name, "/actionPlan/"),
        name: i.name,
        kind: WorkItemKind::ActionItem as i32,
        title: i.title,
        owner: i.owner,
        due_time: i.due_time,
        status: i.status,
        overdue: i.overdue,
        services: if i.service.is_empty() {
            Vec::new()
        } else {
            vec![i.service]
        },
        // The risk API's link has the same fields and sync states as the shared type.
        tracker: i.tracker.map(|t| TrackerLink {
            system: t.system,
            external_key: t.external_key,
            url: t.url,
            sync_state: t.sync_state,
            sync_time: t.sync_time,
        }),
        etag: i.etag,
        create_time: i.create_time,
        update_time: i.update_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_the_risk_or_the_incident() {
        assert_eq!(
            parent("risks/r1/actionPlan/items/i1", "/actionPlan/"),
            "risks/r1"
        );
        assert_eq!(
            parent("incidents/x/followUps/y", "/followUps/"),
            "incidents/x"
        );
        let item = action_item(ActionItem {
            name: "risks/r1/actionPlan/items/i1".into(),
            service: "services/teams".into(),
            ..Default::default()
        });
        assert_eq!(item.services, ["services/teams"]);
        assert_eq!(item.kind, WorkItemKind::ActionItem as i32);
    }
}
