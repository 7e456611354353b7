//! Standard Gets of an incident's child resources (AIP-131): task, role, evidence, custody
//! record, notification, indicator, timeline event. Readable by whoever may list them.

use assurance_runtime::{auth::Caller, time::now_micros, validate::Violations};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{IncidentApi, child_name, convert, incident_uuid, need_to_know, pb};
use crate::domain::role::RoleKind;

/// `{parent}/{collection}/{n}` with `parent` an incident name and `n` a sequence number.
fn numbered_child(v: &mut Violations, name: &str, collection: &str) -> Option<(Uuid, i64)> {
    if name.is_empty() {
        v.add("name", "is required");
        return None;
    }
    let parsed = name
        .split_once(&format!("/{collection}/"))
        .and_then(|(incident, n)| Some((incident_uuid(incident)?, n.parse::<i64>().ok()?)))
        .filter(|(_, n)| *n > 0);
    if parsed.is_none() {
        v.add(
            "name",
            format!("must be `incidents/{{id}}/{collection}/{{sequence}}`"),
        );
    }
    parsed
}

/// `incidents/{id}/{collection}/{id}` → both ids; "is required" when empty.
fn uuid_child(v: &mut Violations, name: &str, collection: &str) -> Option<(Uuid, Uuid)> {
    if name.is_empty() {
        v.add("name", "is required");
        return None;
    }
    child_name(v, "name", collection, name)
}

/// The ids of a child resource's `name`, or INVALID_ARGUMENT naming `name`.
fn child_ids(name: &str, collection: &str) -> Result<(Uuid, Uuid), Status> {
    let mut v = Violations::new();
    let ids = uuid_child(&mut v, name, collection);
    v.finish()?;
    Ok(ids.unwrap_or_default())
}

impl IncidentApi {
    pub(super) async fn tasks_get(
        &self,
        request: Request<pb::GetTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let caller = Caller::of(&request)?;
        let (incident, id) = child_ids(&request.get_ref().name, "tasks")?;
        self.visible(&caller, incident).await?;
        let t = self.store.task(incident, id).await?;
        Ok(Response::new(convert::task(&t)))
    }

    pub(super) async fn roles_get(
        &self,
        request: Request<pb::GetRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        let caller = Caller::of(&request)?;
        let name = &request.get_ref().name;
        let mut v = Violations::new();
        let parsed = if name.is_empty() {
            v.add("name", "is required");
            None
        } else {
            let parsed = name.split_once("/roles/").and_then(|(incident, slug)| {
                let kind = (1..=7)
                    .filter_map(|n| RoleKind::try_from(n).ok())
                    .find(|k| k.slug() == slug)?;
                Some((incident_uuid(incident)?, kind))
            });
            if parsed.is_none() {
                v.add(
                    "name",
                    "must be `incidents/{id}/roles/{role}` with a role such as \
                     `incident-response-lead`",
                );
            }
            parsed
        };
        v.finish()?;
        let Some((incident, kind)) = parsed else {
            return Err(Status::internal("validated name lost"));
        };
        self.visible(&caller, incident).await?;
        let r = self.store.role(incident, kind as i32, kind.slug()).await?;
        Ok(Response::new(convert::role(&r)))
    }

    pub(super) async fn evidence_get(
        &self,
        request: Request<pb::GetEvidenceRequest>,
    ) -> Result<Response<pb::Evidence>, Status> {
        let caller = Caller::of(&request)?;
        let (incident, id) = child_ids(&request.get_ref().name, "evidence")?;
        self.may_see_evidence(&caller, incident).await?;
        let e = self.store.evidence_item(incident, id).await?;
        Ok(Response::new(convert::evidence(&e)))
    }

    pub(super) async fn custody_get(
        &self,
        request: Request<pb::GetCustodyRecordRequest>,
    ) -> Result<Response<pb::CustodyRecord>, Status> {
        let caller = Caller::of(&request)?;
        let name = &request.get_ref().name;
        let mut v = Violations::new();
        let parsed = if name.is_empty() {
            v.add("name", "is required");
            None
        } else {
            let parsed = name.split_once("/custodyRecords/").and_then(|(item, n)| {
                let mut inner = Violations::new();
                let (incident, evidence) = child_name(&mut inner, "name", "evidence", item)?;
                let seq = n.parse::<i64>().ok().filter(|n| *n > 0)?;
                Some((incident, evidence, seq))
            });
            if parsed.is_none() {
                v.add(
                    "name",
                    "must be `incidents/{id}/evidence/{id}/custodyRecords/{sequence}`",
                );
            }
            parsed
        };
        v.finish()?;
        let (incident, evidence, seq) = parsed.unwrap_or_default();
        self.may_see_evidence(&caller, incident).await?;
        let c = self.store.custody_record(incident, evidence, seq).await?;
        Ok(Response::new(convert::custody_entry(&c)))
    }

    pub(super) async fn notifications_get(
        &self,
        request: Request<pb::GetNotificationRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        let caller = Caller::of(&request)?;
        let (incident, id) = child_ids(&request.get_ref().name, "notifications")?;
        self.visible(&caller, incident).await?;
        let n = self.store.notification(incident, id).await?;
        Ok(Response::new(convert::notification(&n, now_micros())))
    }

    pub(super) async fn indicators_get(
        &self,
        request: Request<pb::GetIndicatorRequest>,
    ) -> Result<Response<pb::Indicator>, Status> {
        let caller = Caller::of(&request)?;
        let (incident, id) = child_ids(&request.get_ref().name, "indicators")?;
        self.visible(&caller, incident).await?;
        let i = self.store.indicator(incident, id).await?;
        let sees =
            !need_to_know::restricted_tlp(i.tlp) || self.sees_restricted(&caller, incident).await?;
        Ok(Response::new(need_to_know::redact_indicator(
            convert::indicator(&i),
            sees,
        )))
    }

    pub(super) async fn timeline_get(
        &self,
        request: Request<pb::GetTimelineEventRequest>,
    ) -> Result<Response<pb::TimelineEvent>, Status> {
        let caller = Caller::of(&request)?;
        let mut v = Violations::new();
        let parsed = numbered_child(&mut v, &request.get_ref().name, "timelineEvents");
        v.finish()?;
        let (incident, seq) = parsed.unwrap_or_default();
        self.visible(&caller, incident).await?;
        let e = self.store.timeline_event(incident, seq).await?;
        Ok(Response::new(convert::timeline_event(&e)))
    }
}
