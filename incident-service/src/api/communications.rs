//! Stakeholder notifications: drafts, a second approver, sending, overdue lists.

use super::pb;
use assurance_runtime::idempotency::RequestKey;
use assurance_runtime::{
    ApiError,
    auth::{Caller, Role},
    list::{FilterContext, ListQuery, ListRequest},
    time::now_micros,
    validate::{Violations, update_paths},
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{IncidentApi, child_name, convert, incident_id};
use crate::{
    domain::notification::Audience,
    store::{NOTIFICATION_FILTER, NOTIFICATION_SORTING, notification_keys, parse_etag},
};

/// The fields of a draft `UpdateNotification` may change.
const EDITABLE: &[&str] = &["subject", "body"];

/// PERMISSION_DENIED unless `caller` holds `security_lead`: notifications are approved by a
/// security lead (not the drafter, checked by the store); `admin` approves nothing.
fn may_approve(caller: &Caller) -> Result<(), ApiError> {
    if caller.principal.roles.contains(Role::SecurityLead) {
        return Ok(());
    }
    Err(ApiError::PermissionDenied(format!(
        "{} may not approve notifications: that needs the security_lead role, and it has {} \
         (admin approves nothing)",
        caller.principal.subject, caller.principal.roles
    )))
}

/// A notification's name (`incidents/{id}/notifications/{id}`) in the request field `name`
/// or `notification.name`; "is required" when empty.
fn notification_name(v: &mut Violations, field: &str, name: &str) -> Option<(Uuid, Uuid)> {
    if name.is_empty() {
        v.add(field, "is required");
        return None;
    }
    child_name(v, field, "notifications", name)
}

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
        let n = &v.message("notification", req.notification.clone());
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
            version: 1,
        };
        let key =
            RequestKey::for_request("CreateNotification", &caller, req, |r| &mut r.request_id);
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
        may_approve(&caller)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let ids = notification_name(&mut v, "name", &req.name);
        v.request_id("request_id", &req.request_id);
        let expected = v.absorb("etag", parse_etag("etag", &req.etag)).flatten();
        v.finish()?;
        let (incident, id) = ids.unwrap_or_default();
        let key =
            RequestKey::for_request("ApproveNotification", &caller, req, |r| &mut r.request_id);
        let approver = Some(caller.person().to_string());
        let n = self
            .store
            .advance_notification(incident, id, approver, expected, &caller, key)
            .await?;
        Ok(Response::new(convert::notification(&n, now_micros())))
    }

    pub(super) async fn notifications_mark_sent(
        &self,
        request: Request<pb::MarkNotificationSentRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let ids = notification_name(&mut v, "name", &req.name);
        v.request_id("request_id", &req.request_id);
        let expected = v.absorb("etag", parse_etag("etag", &req.etag)).flatten();
        v.finish()?;
        let (incident, id) = ids.unwrap_or_default();
        let key =
            RequestKey::for_request("MarkNotificationSent", &caller, req, |r| &mut r.request_id);
        let n = self
            .store
            .advance_notification(incident, id, None, expected, &caller, key)
            .await?;
        Ok(Response::new(convert::notification(&n, now_micros())))
    }

    pub(super) async fn notifications_update(
        &self,
        request: Request<pb::UpdateNotificationRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let n = v.message("notification", req.notification);
        let ids = notification_name(&mut v, "notification.name", &n.name);
        let paths = update_paths(req.update_mask.as_ref(), EDITABLE, |p| match p {
            "subject" => !n.subject.is_empty(),
            "body" => !n.body.is_empty(),
            _ => false,
        })?;
        if paths.is_empty() {
            v.add("update_mask", "names no field to update (subject, body)");
        }
        for p in &paths {
            match *p {
                "subject" => v.line("notification.subject", &n.subject, true, 200),
                "body" => v.paragraph("notification.body", &n.body, true, 20_000),
                _ => {}
            }
        }
        let expected = v
            .absorb(
                "notification.etag",
                parse_etag("notification.etag", &n.etag),
            )
            .flatten();
        v.finish()?;
        let (incident, id) = ids.unwrap_or_default();
        let updated = self
            .store
            .update_notification(incident, id, expected, &caller, |m| {
                for p in &paths {
                    match *p {
                        "subject" => m.subject = n.subject.clone(),
                        "body" => m.body = n.body.clone(),
                        _ => {}
                    }
                }
                paths.join(", ")
            })
            .await?;
        Ok(Response::new(convert::notification(&updated, now_micros())))
    }

    pub(super) async fn notifications_list(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let caller = Caller::of(&request)?;
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
                order_by: &req.order_by,
            },
            Some(&NOTIFICATION_FILTER.at(FilterContext { now: now_micros() })),
            &NOTIFICATION_SORTING,
        );
        v.finish()?;
        if let Some(id) = incident {
            self.visible(&caller, id).await?;
        }
        let mut rows = self
            .store
            .notifications(incident, caller.read_scope(), &list)
            .await?;
        let next_page_token = list.next_page(&mut rows, |n| notification_keys(&list, n));
        let now = now_micros();
        Ok(Response::new(pb::ListNotificationsResponse {
            notifications: rows.iter().map(|n| convert::notification(n, now)).collect(),
            next_page_token,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use assurance_runtime::auth::{Caller, Principal, Role, Roles};

    fn caller(roles: &[Role]) -> Caller {
        Caller {
            principal: Arc::new(Principal {
                subject: "someone@example.com".into(),
                roles: Roles::of(roles),
                services: None,
            }),
            on_behalf_of: None,
            rpc: "/assurance.incident.v1.IncidentService/ApproveNotification".into(),
            request_id: String::new(),
        }
    }

    #[test]
    fn only_security_leads_approve_notifications_admin_never() {
        assert!(super::may_approve(&caller(&[Role::SecurityLead])).is_ok());
        assert!(super::may_approve(&caller(&[Role::SecurityLead, Role::Admin])).is_ok());
        for roles in [
            &[Role::Admin][..],
            &[Role::Responder],
            &[Role::System, Role::Admin],
        ] {
            let err = super::may_approve(&caller(roles)).expect_err("not an approver");
            assert!(
                matches!(err, assurance_runtime::ApiError::PermissionDenied(_)),
                "{err:?}"
            );
        }
    }
}
