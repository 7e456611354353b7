//! `ListWorkItems` (issue #14): one lookup across a risk's action items (risk-service) and an
//! incident's follow-ups (incident-service), for the tracker sync and for people.
//!
//! Each service is asked for one page with the translated filter, after its own cursor, in
//! (`update_time`, name) order; the gateway merges the two pages in that order, keeps a page's
//! worth and advances each service's cursor past the items it returned. An item that changes
//! gets a later `update_time` and so is listed again further on; an unchanged item stays after
//! its service's cursor until it is listed.

pub(crate) mod query;
pub(crate) mod sources;

use assurance_proto::gateway::v1::{
    ListWorkItemsRequest, ListWorkItemsResponse, WorkItem,
    work_item_service_server::WorkItemService,
};
use tonic::{Request, Response, Status};

use crate::posture::{on_behalf, upstream::Upstreams};
use query::{Cursor, Source, WorkItemQuery};
use sources::{SourcePage, position};

/// The `WorkItemService` over the services, in process or forwarded.
#[derive(Clone)]
pub struct WorkItemApi {
    upstreams: Upstreams,
}

impl WorkItemApi {
    pub fn new(upstreams: Upstreams) -> Self {
        WorkItemApi { upstreams }
    }
}

#[tonic::async_trait]
impl WorkItemService for WorkItemApi {
    async fn list_work_items(
        &self,
        request: Request<ListWorkItemsRequest>,
    ) -> Result<Response<ListWorkItemsResponse>, Status> {
        let on = on_behalf(&request)?;
        let req = request.into_inner();
        let query =
            WorkItemQuery::parse(req.page_size, &req.page_token, &req.filter, &req.order_by)?;
        let [follow_ups, actions] = Source::ALL.map(|s| query.source_filter(s));
        let (follow_ups, actions) = (follow_ups?, actions?);
        // Incidents are need-to-know: a scoped caller sees the follow-ups of its services'
        // incidents only, however the gateway reaches incident-service (the register is open).
        let follow_ups = match &on.caller.principal.services {
            Some(scope) => follow_ups.and_then(|f| within(f, scope)),
            None => follow_ups,
        };
        let (upstreams, on, size) = (&self.upstreams, &on, query.size);
        let fetch = move |source: Source, filter: Option<String>| async move {
            match filter {
                Some(f) => upstreams.work_items(on, source, f, size).await,
                None => Ok(SourcePage {
                    items: Vec::new(),
                    more: false,
                }),
            }
        };
        let (follow_ups, actions) = tokio::try_join!(
            fetch(Source::FollowUps, follow_ups),
            fetch(Source::ActionItems, actions),
        )?;
        let (work_items, cursors, more) = merge([follow_ups, actions], &query);
        let next_page_token = if more {
            query.token(&cursors)
        } else {
            String::new()
        };
        Ok(Response::new(ListWorkItemsResponse {
            work_items,
            next_page_token,
        }))
    }
}

/// `filter` (in the services' syntax) narrowed to items of the services `scope`; `None` when
/// the scope is empty (nothing to see).
fn within(filter: String, scope: &[String]) -> Option<String> {
    if scope.is_empty() {
        return None;
    }
    let any = scope
        .iter()
        .map(|id| format!("service = \"services/{id}\""))
        .collect::<Vec<_>>()
        .join(" OR ");
    Some(if filter.is_empty() {
        any
    } else {
        format!("({filter}) AND ({any})")
    })
}

/// The first `query.size` items of the sources' pages (in [`Source::ALL`] order) in
/// (update time, name) order, each source's cursor after the last of its items kept, and
/// whether more items follow.
fn merge(
    pages: [SourcePage; 2],
    query: &WorkItemQuery,
) -> (Vec<WorkItem>, [Option<Cursor>; 2], bool) {
    let more_upstream = pages.iter().any(|p| p.more);
    let mut tagged: Vec<(Cursor, usize, WorkItem)> = pages
        .into_iter()
        .enumerate()
        .flat_map(|(source, page)| {
            page.items
                .into_iter()
                .map(move |item| (position(&item), source, item))
        })
        .collect();
    // Each page is sorted already; a stable sort of the two is their merge.
    tagged.sort_by(|a, b| a.0.cmp(&b.0));
    let size = usize::try_from(query.size).unwrap_or(usize::MAX);
    let more = more_upstream || tagged.len() > size;
    tagged.truncate(size);
    let mut cursors = query.cursors.clone();
    let mut items = Vec::with_capacity(tagged.len());
    for (at, source, item) in tagged {
        cursors[source] = Some(at);
        items.push(item);
    }
    (items, cursors, more)
}
