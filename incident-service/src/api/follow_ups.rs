//! Post-incident follow-ups: create, get, update (etag), list (AIP-160 filters), across one
//! incident or every incident (`incidents/-`).

use super::pb;
use assurance_proto::r#type::v1 as tv;
use assurance_runtime::{
    auth::Caller,
    idempotency::RequestKey,
    list::{FilterContext, ListQuery, ListRequest},
    time::{from_timestamp, now_micros},
    validate::{TrackerLink, Violations, tracker_sync_state, update_paths},
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{IncidentApi, child_name, convert, incident_id};
use crate::{
    domain::task::TaskStatus,
    store::{FOLLOW_UP_FILTER, FOLLOW_UP_SORTING, entities::follow_up, follow_up_keys, parse_etag},
};

const UPDATABLE: &[&str] = &[
    "title",
    "description",
    "owner",
    "due_time",
    "status",
    "tracker",
];

/// Checks `field` of `f`; the due time, when it is the field checked and valid, is returned.
fn check_field(v: &mut Violations, f: &mut pb::FollowUp, field: &str) -> Option<i64> {
    match field {
        "title" => v.line("follow_up.title", &f.title, true, 200),
        "description" => v.paragraph("follow_up.description", &f.description, false, 4000),
        "owner" => v.principal("follow_up.owner", &mut f.owner, true),
        "due_time" => match f.due_time.as_ref() {
            None => v.add("follow_up.due_time", "is required"),
            Some(ts) => return v.timestamp("follow_up.due_time", ts),
        },
        "status" => v.known(
            "follow_up.status",
            f.status,
            TaskStatus::try_from(f.status).is_ok(),
        ),
        "tracker" => {
            if let Some(t) = &f.tracker {
                v.tracker_link("follow_up.tracker", &link(t));
            }
        }
        _ => {}
    }
    None
}

/// The tracker link of a request, for validation.
fn link(t: &tv::TrackerLink) -> TrackerLink<'_> {
    TrackerLink {
        system: &t.system,
        external_key: &t.external_key,
        url: &t.url,
        sync_state: t.sync_state,
        sync_time: t.sync_time.as_ref(),
    }
}

/// Sets the tracker link of `m` (a linked item without a sync state is PENDING).
fn set_tracker(m: &mut follow_up::Model, t: Option<&tv::TrackerLink>) {
    let t = t.cloned().unwrap_or_default();
    m.sync_state = tracker_sync_state(t.sync_state, &t.system);
    m.tracker_system = t.system;
    m.tracker_key = t.external_key;
    m.tracker_url = t.url;
    m.sync_time = t.sync_time.as_ref().and_then(from_timestamp);
}

impl IncidentApi {
    /// `f` as the API shows it now.
    async fn follow_up_message(&self, f: &follow_up::Model) -> Result<pb::FollowUp, Status> {
        let services = self.store.services_of_incidents([f.incident_id]).await?;
        let own = services.get(&f.incident_id).map_or(&[][..], Vec::as_slice);
        Ok(convert::follow_up(f, own, now_micros()))
    }

    pub(super) async fn follow_ups_create(
        &self,
        request: Request<pb::CreateFollowUpRequest>,
    ) -> Result<Response<pb::FollowUp>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let incident = incident_id(&mut v, "parent", &req.parent);
        v.request_id("request_id", &req.request_id);
        let f = &mut v.message("follow_up", req.follow_up.clone());
        let mut due = None;
        for field in ["title", "description", "owner", "due_time", "tracker"] {
            due = due.or(check_field(&mut v, f, field));
        }
        if f.status != 0 {
            check_field(&mut v, f, "status");
        }
        v.finish()?;
        let mut row = follow_up::Model {
            id: Uuid::now_v7(),
            incident_id: incident.unwrap_or_default(),
            title: f.title.clone(),
            description: f.description.clone(),
            owner: f.owner.clone(),
            due_time: due.unwrap_or_default(),
            status: if f.status == 0 {
                TaskStatus::Open as i32
            } else {
                f.status
            },
            tracker_system: String::new(),
            tracker_key: String::new(),
            tracker_url: String::new(),
            sync_state: 0,
            sync_time: None,
            from_review: false,
            version: 0,
            create_time: 0,
            update_time: 0,
        };
        set_tracker(&mut row, f.tracker.as_ref());
        let key = RequestKey::for_request("CreateFollowUp", &caller, req, |r| &mut r.request_id);
        let created = self
            .store
            .create_follow_up(row, &caller, key, now_micros())
            .await?;
        Ok(Response::new(self.follow_up_message(&created).await?))
    }

    pub(super) async fn follow_ups_get(
        &self,
        request: Request<pb::GetFollowUpRequest>,
    ) -> Result<Response<pb::FollowUp>, Status> {
        let caller = Caller::of(&request)?;
        let mut v = Violations::new();
        let ids = child_name(&mut v, "name", "followUps", &request.get_ref().name);
        v.finish()?;
        let (incident, id) = ids.unwrap_or_default();
        self.visible(&caller, incident).await?;
        let found = self.store.follow_up(incident, id).await?;
        Ok(Response::new(self.follow_up_message(&found).await?))
    }

    pub(super) async fn follow_ups_update(
        &self,
        request: Request<pb::UpdateFollowUpRequest>,
    ) -> Result<Response<pb::FollowUp>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let mut f = v.message("follow_up", req.follow_up);
        let ids = child_name(&mut v, "follow_up.name", "followUps", &f.name);
        let paths = update_paths(req.update_mask.as_ref(), UPDATABLE, |p| match p {
            "title" => !f.title.is_empty(),
            "description" => !f.description.is_empty(),
            "owner" => !f.owner.is_empty(),
            "due_time" => f.due_time.is_some(),
            "status" => f.status != 0,
            "tracker" => f.tracker.is_some(),
            _ => false,
        })?;
        if paths.is_empty() {
            v.add("update_mask", "names no field to update");
        }
        caller.check_tracker_fields(&paths)?;
        let mut due = None;
        for p in &paths {
            due = due.or(check_field(&mut v, &mut f, p));
        }
        let expected = v
            .absorb("follow_up.etag", parse_etag("follow_up.etag", &f.etag))
            .flatten();
        v.finish()?;
        let (incident, id) = ids.unwrap_or_default();
        let updated = self
            .store
            .update_follow_up(incident, id, expected, &caller, now_micros(), |m| {
                for p in &paths {
                    match *p {
                        "title" => m.title = f.title.clone(),
                        "description" => m.description = f.description.clone(),
                        "owner" => m.owner = f.owner.clone(),
                        "due_time" => m.due_time = due.unwrap_or(m.due_time),
                        "status" => m.status = f.status,
                        "tracker" => set_tracker(m, f.tracker.as_ref()),
                        _ => {}
                    }
                }
            })
            .await?;
        Ok(Response::new(self.follow_up_message(&updated).await?))
    }

    pub(super) async fn follow_ups_list(
        &self,
        request: Request<pb::ListFollowUpsRequest>,
    ) -> Result<Response<pb::ListFollowUpsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let now = now_micros();
        let mut v = Violations::new();
        let incident = if req.parent == "incidents/-" {
            None
        } else {
            incident_id(&mut v, "parent", &req.parent)
        };
        let list = ListQuery::parse(
            &mut v,
            &ListRequest {
                scope: &["followUps", &req.parent],
                page_size: req.page_size,
                page_token: &req.page_token,
                filter: &req.filter,
                order_by: &req.order_by,
            },
            Some(&FOLLOW_UP_FILTER.at(FilterContext { now })),
            &FOLLOW_UP_SORTING,
        );
        v.finish()?;
        if let Some(id) = incident {
            self.visible(&caller, id).await?;
        }
        let mut rows = self
            .store
            .follow_ups(incident, caller.read_scope(), &list)
            .await?;
        let next_page_token = list.next_page(&mut rows, |f| follow_up_keys(&list, f));
        let services = self
            .store
            .services_of_incidents(rows.iter().map(|f| f.incident_id))
            .await?;
        Ok(Response::new(pb::ListFollowUpsResponse {
            follow_ups: rows
                .iter()
                .map(|f| {
                    let own = services.get(&f.incident_id).map_or(&[][..], Vec::as_slice);
                    convert::follow_up(f, own, now)
                })
                .collect(),
            next_page_token,
        }))
    }
}
