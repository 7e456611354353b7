//! Stakeholder notifications: drafts, a second approver, sending, overdue lists.

use super::pb;
use assurance_runtime::idempotency::RequestKey;
use assurance_runtime::{
    auth::Caller,
    list::{FilterContext, ListQuery, ListRequest, Sorting},
    time::now_micros,
    validate::Violations,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{IncidentApi, child_name, convert, incident_id};
use crate::{domain::notification::Audience, store::NOTIFICATION_FILTER};

impl IncidentApi {
    pub(super) async fn notifications_create(
        &self,
        request: Request<pb::CreateNotificationRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        v.request_id("request_id", &req.request_id);
        let n = v.require("notification", req.notification.as_ref())?;
        v.enumeration::<Audience>("notification.audience", n.audience);
        v.line("notification.subject", &n.subject, true, 200);
        v.paragraph("notification.body", &n.body, true, 20_000);
        v.finish()?;
        let model = crate::store::entities::notification::Model {
            id: Uuid::now_v7(),
            incident_id: id.unwrap_or_default(),
            audience: n.audience,
            subject: n.subject.clone(),
            body: n.body.clone(),
            status: 0,
            author: caller.person().to_string(),
            approver: String::new(),
            deadline_time: None,
            approve_time: None,
            send_time: None,
            create_time: 0,
        };
        let key = RequestKey::for_request("CreateNotification", req, |r| &mut r.request_id);
        let created = self
            .store
            .create_notification(model, self.preparation.deadline_hours(), &caller, key)
            .await?;
        Ok(Response::new(convert::notification(&created, now_micros())))
    }

    pub(super) async fn notifications_approve(
        &self,
        request: Request<pb::ApproveNotificationRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let ids = child_name(&mut v, "name", "notifications", &req.name);
        v.finish()?;
        let (incident, id) = ids.unwrap_or_default();
        let n = self
            .store
            .advance_notification(incident, id, Some(caller.person().to_string()), &caller)
            .await?;
        Ok(Response::new(convert::notification(&n, now_micros())))
    }

    pub(super) async fn notifications_mark_sent(
        &self,
        request: Request<pb::MarkNotificationSentRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        let caller = Caller::of(&request)?;
        let mut v = Violations::new();
        let ids = child_name(&mut v, "name", "notifications", &request.get_ref().name);
        v.finish()?;
        let (incident, id) = ids.unwrap_or_default();
        let n = self
            .store
            .advance_notification(incident, id, None, &caller)
            .await?;
        Ok(Response::new(convert::notification(&n, now_micros())))
    }

    pub(super) async fn notifications_list(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let incident = if req.parent == "incidents/-" {
            None
        } else {
            incident_id(&mut v, "parent", &req.parent)
        };
        let list = ListQuery::parse(
            &mut v,
            &ListRequest {
                scope: &["notifications", &req.parent],
                page_size: req.page_size,
                page_token: &req.page_token,
                filter: &req.filter,
                order_by: "",
            },
            Some(&NOTIFICATION_FILTER.at(FilterContext { now: now_micros() })),
            &Sorting::BY_UUID,
        );
        v.finish()?;
        let mut rows = self.store.notifications(incident, &list).await?;
        let next_page_token = list.next_page_by_id(&mut rows, |n| n.id);
        let now = now_micros();
        Ok(Response::new(pb::ListNotificationsResponse {
            notifications: rows.iter().map(|n| convert::notification(n, now)).collect(),
            next_page_token,
        }))
    }
}
