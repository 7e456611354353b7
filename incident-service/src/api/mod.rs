//! gRPC handlers of `assurance.incident.v1.IncidentService`: validation, mapping to and from
//! the protos, and calls into the store. One file per area holds that area's RPCs as inherent
//! methods of [`IncidentApi`]; the tonic trait impl below only delegates, one line per RPC.
//! `IncidentSummaryService` (the posture's incident half) is [`summary::SummaryApi`].

mod communications;
mod convert;
mod evidence;
mod follow_ups;
mod gets;
mod incidents;
mod indicators;
mod metrics;
mod need_to_know;
mod preparation;
mod report;
mod review;
mod roles;
pub mod summary;
mod tasks;
mod timeline;
mod watch;

/// The messages of `assurance.incident.v1` with the shared `assurance.type.v1` enums it uses.
mod pb {
    pub use assurance_proto::incident::v1::*;
    pub use assurance_proto::r#type::v1::{ReportFormat, Severity, WorkItemStatus};
}

use std::sync::Arc;

use assurance_proto::incident::v1::incident_service_server::IncidentService;
use assurance_runtime::validate::{Violations, name_id};
use prost_types::Timestamp;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::{preparation::Preparation, priority::SeverityRule},
    store::Store,
};

/// Clock skew tolerated on client-supplied times.
const SKEW_MICROS: i64 = 5 * 60 * 1_000_000;

pub struct IncidentApi {
    store: Store,
    rule: Arc<SeverityRule>,
    preparation: Arc<Preparation>,
    /// risk-service, for the org registry check of `affected_services`.
    risks: Option<Arc<dyn crate::relay::RiskRegister>>,
    /// The shared feeds of `WatchIncident`.
    watch: watch::WatchHub,
}

impl IncidentApi {
    pub fn new(
        store: Store,
        rule: Arc<SeverityRule>,
        preparation: Arc<Preparation>,
        risks: Option<Arc<dyn crate::relay::RiskRegister>>,
    ) -> Self {
        IncidentApi {
            watch: watch::WatchHub::new(store.clone()),
            store,
            rule,
            preparation,
            risks,
        }
    }

    /// Refuses the services of `ids` that the org registry lacks, when risk-service answers
    /// (`incident.affected_services[n]`); without an answer they are accepted.
    async fn check_registry(&self, ids: &[String]) -> assurance_runtime::ApiResult<()> {
        let Some(risks) = &self.risks else {
            return Ok(());
        };
        let names: Vec<String> = ids.iter().map(|id| format!("services/{id}")).collect();
        let unknown = crate::relay::unknown_services(risks.as_ref(), &names).await;
        if unknown.is_empty() {
            return Ok(());
        }
        Err(assurance_runtime::ApiError::InvalidArgument(
            unknown
                .into_iter()
                .map(|n| assurance_runtime::error::Violation {
                    field: format!("incident.affected_services[{n}]"),
                    description: format!("{} is not in the org registry", names[n]),
                })
                .collect(),
        ))
    }
}

/// A client-supplied time that must not be in the future (beyond the tolerated clock skew):
/// the time, None when absent, or a violation on `field`.
fn past_time(v: &mut Violations, field: &str, ts: Option<&Timestamp>, now: i64) -> Option<i64> {
    match v.timestamp(field, ts?) {
        Some(t) if t <= now.saturating_add(SKEW_MICROS) => Some(t),
        Some(_) => {
            v.add(field, "must not be in the future");
            None
        }
        None => None,
    }
}

/// An incident's occurred or detected time: a [`past_time`] no more than `horizon`
/// microseconds before `now` (the preparation's `time_horizon_days`).
fn incident_time(
    v: &mut Violations,
    field: &str,
    ts: Option<&Timestamp>,
    now: i64,
    horizon: i64,
) -> Option<i64> {
    let t = past_time(v, field, ts, now)?;
    if t < now.saturating_sub(horizon) {
        v.add(
            field,
            format!(
                "must not be more than {} days in the past",
                horizon / 86_400_000_000
            ),
        );
        return None;
    }
    Some(t)
}

/// The id of `incidents/{id}`, if `name` is one.
fn incident_uuid(name: &str) -> Option<Uuid> {
    name_id(name, "incidents").and_then(|id| Uuid::parse_str(id).ok())
}

fn incident_id(v: &mut Violations, field: &str, name: &str) -> Option<Uuid> {
    if name.is_empty() {
        v.add(field, "is required");
        return None;
    }
    let id = incident_uuid(name);
    if id.is_none() {
        v.add(
            field,
            "must be an incident name `incidents/{id}` with a UUID id",
        );
    }
    id
}

/// `incidents/{id}/{collection}/{id}` → both ids, or a violation on `field`.
fn child_name(
    v: &mut Violations,
    field: &str,
    collection: &str,
    name: &str,
) -> Option<(Uuid, Uuid)> {
    let parsed = name
        .split_once(&format!("/{collection}/"))
        .and_then(|(incident, item)| Some((incident_uuid(incident)?, Uuid::parse_str(item).ok()?)));
    if parsed.is_none() {
        v.add(
            field,
            format!("must be `incidents/{{id}}/{collection}/{{id}}` with UUID ids"),
        );
    }
    parsed
}

#[tonic::async_trait]
impl IncidentService for IncidentApi {
    type WatchIncidentStream = watch::EventStream;

    async fn watch_incident(
        &self,
        request: Request<pb::WatchIncidentRequest>,
    ) -> Result<Response<Self::WatchIncidentStream>, Status> {
        self.timeline_watch(request).await
    }

    async fn declare_incident(
        &self,
        request: Request<pb::DeclareIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        self.incidents_declare(request).await
    }

    async fn get_incident(
        &self,
        request: Request<pb::GetIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        self.incidents_get(request).await
    }

    async fn list_incidents(
        &self,
        request: Request<pb::ListIncidentsRequest>,
    ) -> Result<Response<pb::ListIncidentsResponse>, Status> {
        self.incidents_list(request).await
    }

    async fn update_incident(
        &self,
        request: Request<pb::UpdateIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        self.incidents_update(request).await
    }

    async fn advance_phase(
        &self,
        request: Request<pb::AdvancePhaseRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        self.incidents_advance_phase(request).await
    }

    async fn close_incident(
        &self,
        request: Request<pb::CloseIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        self.incidents_close(request).await
    }

    async fn create_post_incident_review(
        &self,
        request: Request<pb::CreatePostIncidentReviewRequest>,
    ) -> Result<Response<pb::PostIncidentReview>, Status> {
        self.review_record(request).await
    }

    async fn get_post_incident_review(
        &self,
        request: Request<pb::GetPostIncidentReviewRequest>,
    ) -> Result<Response<pb::PostIncidentReview>, Status> {
        self.review_get(request).await
    }

    async fn assign_role(
        &self,
        request: Request<pb::AssignRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        self.roles_assign(request).await
    }

    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> Result<Response<pb::ListRolesResponse>, Status> {
        self.roles_list(request).await
    }

    async fn create_evidence(
        &self,
        request: Request<pb::CreateEvidenceRequest>,
    ) -> Result<Response<pb::Evidence>, Status> {
        self.evidence_add(request).await
    }

    async fn list_evidence(
        &self,
        request: Request<pb::ListEvidenceRequest>,
    ) -> Result<Response<pb::ListEvidenceResponse>, Status> {
        self.evidence_list(request).await
    }

    async fn create_custody_record(
        &self,
        request: Request<pb::CreateCustodyRecordRequest>,
    ) -> Result<Response<pb::CustodyRecord>, Status> {
        self.custody_record(request).await
    }

    async fn list_custody_records(
        &self,
        request: Request<pb::ListCustodyRecordsRequest>,
    ) -> Result<Response<pb::ListCustodyRecordsResponse>, Status> {
        self.custody_list(request).await
    }

    async fn create_notification(
        &self,
        request: Request<pb::CreateNotificationRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        self.notifications_create(request).await
    }

    async fn approve_notification(
        &self,
        request: Request<pb::ApproveNotificationRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        self.notifications_approve(request).await
    }

    async fn mark_notification_sent(
        &self,
        request: Request<pb::MarkNotificationSentRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        self.notifications_mark_sent(request).await
    }

    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        self.notifications_list(request).await
    }

    async fn export_incident_report(
        &self,
        request: Request<pb::ExportIncidentReportRequest>,
    ) -> Result<Response<pb::IncidentReport>, Status> {
        self.report_export(request).await
    }

    async fn get_incident_metrics(
        &self,
        request: Request<pb::GetIncidentMetricsRequest>,
    ) -> Result<Response<pb::IncidentMetrics>, Status> {
        self.metrics_get(request).await
    }

    async fn list_response_templates(
        &self,
        _request: Request<pb::ListResponseTemplatesRequest>,
    ) -> Result<Response<pb::ListResponseTemplatesResponse>, Status> {
        self.preparation_templates(_request).await
    }

    async fn list_contacts(
        &self,
        _request: Request<pb::ListContactsRequest>,
    ) -> Result<Response<pb::ListContactsResponse>, Status> {
        self.preparation_contacts(_request).await
    }

    async fn list_notification_rules(
        &self,
        _request: Request<pb::ListNotificationRulesRequest>,
    ) -> Result<Response<pb::ListNotificationRulesResponse>, Status> {
        self.preparation_notification_rules(_request).await
    }

    async fn create_task(
        &self,
        request: Request<pb::CreateTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        self.tasks_create(request).await
    }

    async fn update_task(
        &self,
        request: Request<pb::UpdateTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        self.tasks_update(request).await
    }

    async fn list_tasks(
        &self,
        request: Request<pb::ListTasksRequest>,
    ) -> Result<Response<pb::ListTasksResponse>, Status> {
        self.tasks_list(request).await
    }

    async fn create_indicator(
        &self,
        request: Request<pb::CreateIndicatorRequest>,
    ) -> Result<Response<pb::Indicator>, Status> {
        self.indicators_add(request).await
    }

    async fn list_indicators(
        &self,
        request: Request<pb::ListIndicatorsRequest>,
    ) -> Result<Response<pb::ListIndicatorsResponse>, Status> {
        self.indicators_list(request).await
    }

    async fn search_indicators(
        &self,
        request: Request<pb::SearchIndicatorsRequest>,
    ) -> Result<Response<pb::SearchIndicatorsResponse>, Status> {
        self.indicators_find(request).await
    }

    async fn create_timeline_event(
        &self,
        request: Request<pb::CreateTimelineEventRequest>,
    ) -> Result<Response<pb::TimelineEvent>, Status> {
        self.timeline_add_note(request).await
    }

    async fn list_timeline_events(
        &self,
        request: Request<pb::ListTimelineEventsRequest>,
    ) -> Result<Response<pb::ListTimelineEventsResponse>, Status> {
        self.timeline_list(request).await
    }
    async fn get_task(
        &self,
        request: Request<pb::GetTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        self.tasks_get(request).await
    }

    async fn get_role(
        &self,
        request: Request<pb::GetRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        self.roles_get(request).await
    }

    async fn get_evidence(
        &self,
        request: Request<pb::GetEvidenceRequest>,
    ) -> Result<Response<pb::Evidence>, Status> {
        self.evidence_get(request).await
    }

    async fn get_custody_record(
        &self,
        request: Request<pb::GetCustodyRecordRequest>,
    ) -> Result<Response<pb::CustodyRecord>, Status> {
        self.custody_get(request).await
    }

    async fn get_notification(
        &self,
        request: Request<pb::GetNotificationRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        self.notifications_get(request).await
    }

    async fn get_indicator(
        &self,
        request: Request<pb::GetIndicatorRequest>,
    ) -> Result<Response<pb::Indicator>, Status> {
        self.indicators_get(request).await
    }

    async fn get_timeline_event(
        &self,
        request: Request<pb::GetTimelineEventRequest>,
    ) -> Result<Response<pb::TimelineEvent>, Status> {
        self.timeline_get(request).await
    }

    async fn update_notification(
        &self,
        request: Request<pb::UpdateNotificationRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        self.notifications_update(request).await
    }

    async fn create_follow_up(
        &self,
        request: Request<pb::CreateFollowUpRequest>,
    ) -> Result<Response<pb::FollowUp>, Status> {
        self.follow_ups_create(request).await
    }

    async fn get_follow_up(
        &self,
        request: Request<pb::GetFollowUpRequest>,
    ) -> Result<Response<pb::FollowUp>, Status> {
        self.follow_ups_get(request).await
    }

    async fn list_follow_ups(
        &self,
        request: Request<pb::ListFollowUpsRequest>,
    ) -> Result<Response<pb::ListFollowUpsResponse>, Status> {
        self.follow_ups_list(request).await
    }

    async fn update_follow_up(
        &self,
        request: Request<pb::UpdateFollowUpRequest>,
    ) -> Result<Response<pb::FollowUp>, Status> {
        self.follow_ups_update(request).await
    }

    async fn link_incident_risk(
        &self,
        request: Request<pb::LinkIncidentRiskRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        self.incidents_link_risk(request).await
    }
}
