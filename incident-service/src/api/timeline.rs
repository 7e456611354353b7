//! The append-only timeline: notes, pages of events, and the live watch stream.

use super::pb;
use assurance_runtime::idempotency::RequestKey;
use assurance_runtime::list::{FilterContext, ListQuery, ListRequest};
use assurance_runtime::page::Key;
use assurance_runtime::{auth::Caller, validate::Violations};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{IncidentApi, convert, incident_id};
use crate::domain::timeline::TimelineKind;
use crate::store::{SEQUENCE_SORTING, Store, TIMELINE_FILTER, row_keys};

/// How often a watcher looks for changes made through other replicas.
const WATCH_POLL: std::time::Duration = std::time::Duration::from_millis(250);

pub(super) type EventStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::TimelineEvent, Status>> + Send>>;

impl IncidentApi {
    pub(super) async fn timeline_watch(
        &self,
        request: Request<pb::WatchIncidentRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "name", &req.name);
        if req.after_sequence < 0 {
            v.add("after_sequence", "must not be negative");
        }
        v.finish()?;
        let id = id.unwrap_or_default();
        // Unknown incidents fail the call itself rather than the stream.
        self.store.get(id).await?;
        struct Cursor {
            store: Store,
            id: Uuid,
            after: i64,
            buffered: std::collections::VecDeque<crate::store::entities::timeline_event::Model>,
            done: bool,
        }
        let start = Cursor {
            store: self.store.clone(),
            id,
            after: req.after_sequence,
            buffered: Default::default(),
            done: false,
        };
        let stream = futures::stream::unfold(start, |mut c| async move {
            loop {
                if let Some(e) = c.buffered.pop_front() {
                    c.after = e.seq;
                    // The stream ends after the CLOSED event (and anything buffered with it).
                    c.done |= e.kind == TimelineKind::Closed as i32;
                    return Some((Ok(convert::timeline_event(&e)), c));
                }
                if c.done {
                    return None;
                }
                match c.store.timeline(c.id, c.after, 100).await {
                    Ok(rows) if !rows.is_empty() => c.buffered.extend(rows),
                    Ok(_) => c.store.wait_for_change(WATCH_POLL).await,
                    Err(e) => {
                        c.done = true;
                        return Some((Err(e.into()), c));
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
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
        let mut rows = self
            .store
            .timeline_page(id.unwrap_or_default(), &list)
            .await?;
        let next_page_token =
            list.next_page(&mut rows, |e| row_keys(&list, |_| e.seq, Key::Int(e.seq)));
        Ok(Response::new(pb::ListTimelineEventsResponse {
            timeline_events: rows.iter().map(convert::timeline_event).collect(),
            next_page_token,
        }))
    }
}
