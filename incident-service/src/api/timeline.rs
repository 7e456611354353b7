//! The append-only timeline: notes, pages of events, and the live watch stream.

use super::pb;
use assurance_runtime::idempotency::RequestKey;
use assurance_runtime::list::{FilterContext, ListQuery, ListRequest};
use assurance_runtime::page::Key;
use assurance_runtime::{auth::Caller, validate::Violations};
use tonic::{Request, Response, Status};

use super::{IncidentApi, convert, incident_id, watch};
use crate::store::{SEQUENCE_SORTING, TIMELINE_FILTER, row_keys};

impl IncidentApi {
    pub(super) async fn timeline_watch(
        &self,
        request: Request<pb::WatchIncidentRequest>,
    ) -> Result<Response<watch::EventStream>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "name", &req.name);
        if req.after_sequence < 0 {
            v.add("after_sequence", "must not be negative");
        }
        v.finish()?;
        let id = id.unwrap_or_default();
        // Unknown incidents fail the call itself rather than the stream.
        let incident = self.visible(&caller, id).await?;
        Ok(Response::new(self.watch.watch(
            id,
            req.after_sequence,
            incident.phase,
        )))
    }

    pub(super) async fn timeline_add_note(
        &self,
        request: Request<pb::CreateTimelineEventRequest>,
    ) -> Result<Response<pb::TimelineEvent>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        v.paragraph("summary", &req.summary, true, 4000);
        v.request_id("request_id", &req.request_id);
        v.finish()?;
        let key = RequestKey::for_request("AddTimelineEvent", &caller, req, |r| &mut r.request_id);
        let event = self
            .store
            .add_note(id.unwrap_or_default(), req.summary.clone(), &caller, key)
            .await?;
        Ok(Response::new(convert::timeline_event(&event)))
    }

    pub(super) async fn timeline_list(
        &self,
        request: Request<pb::ListTimelineEventsRequest>,
    ) -> Result<Response<pb::ListTimelineEventsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        let list = ListQuery::parse(
            &mut v,
            &ListRequest {
                filter: &req.filter,
                order_by: &req.order_by,
                ..ListRequest::paged(&["timeline", &req.parent], req.page_size, &req.page_token)
            },
            Some(&TIMELINE_FILTER.at(FilterContext::default())),
            &SEQUENCE_SORTING,
        );
        v.finish()?;
        let id = id.unwrap_or_default();
        self.visible(&caller, id).await?;
        let mut rows = self.store.timeline_page(id, &list).await?;
        let next_page_token =
            list.next_page(&mut rows, |e| row_keys(&list, |_| e.seq, Key::Int(e.seq)));
        Ok(Response::new(pb::ListTimelineEventsResponse {
            timeline_events: rows.iter().map(convert::timeline_event).collect(),
            next_page_token,
        }))
    }
}
