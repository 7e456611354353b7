//! The post-incident review: validation, storage form (JSON lists) and outbox payloads.

use assurance_proto::incident::v1 as pb;
use assurance_runtime::auth::Caller;
use assurance_runtime::{
    ApiError, ApiResult,
    time::{from_timestamp, to_timestamp},
    validate::{Violations, slug_name},
};
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{IncidentApi, incident_id, request_key};
use crate::store::{
    entities::{outbox_event, review},
    outbox,
};

const MAX_ITEMS: usize = 100;

#[derive(Serialize, Deserialize)]
struct FollowUp {
    title: String,
    description: String,
    owner: String,
    due_time: i64,
}

#[derive(Serialize, Deserialize)]
struct IdentifiedRisk {
    title: String,
    description: String,
    service: String,
    owner: String,
}

/// Checks a review; every violation at once.
pub fn check(v: &mut Violations, r: &pb::PostIncidentReview) {
    v.paragraph("review.root_cause", &r.root_cause, true, 10_000);
    v.paragraph("review.went_well", &r.went_well, false, 10_000);
    v.paragraph("review.went_poorly", &r.went_poorly, false, 10_000);
    v.paragraph("review.lessons_learned", &r.lessons_learned, true, 10_000);
    for (field, len) in [
        ("review.participants", r.participants.len()),
        ("review.follow_ups", r.follow_ups.len()),
        ("review.identified_risks", r.identified_risks.len()),
    ] {
        if len > MAX_ITEMS {
            v.add(field, format!("must have at most {MAX_ITEMS} entries"));
        }
    }
    for (n, p) in r.participants.iter().enumerate() {
        v.principal(&format!("review.participants[{n}]"), p, true);
    }
    for (n, f) in r.follow_ups.iter().enumerate() {
        let at = |name: &str| format!("review.follow_ups[{n}].{name}");
        v.line(&at("title"), &f.title, true, 200);
        v.paragraph(&at("description"), &f.description, false, 4000);
        v.principal(&at("owner"), &f.owner, true);
        if f.due_time.as_ref().and_then(from_timestamp).is_none() {
            v.add(at("due_time"), "is required");
        }
    }
    for (n, risk) in r.identified_risks.iter().enumerate() {
        let at = |name: &str| format!("review.identified_risks[{n}].{name}");
        v.line(&at("title"), &risk.title, true, 200);
        v.paragraph(&at("description"), &risk.description, false, 10_000);
        slug_name(v, &at("service"), &risk.service, "services");
        v.principal(&at("owner"), &risk.owner, true);
    }
}

fn json<T: Serialize>(value: &T) -> ApiResult<String> {
    serde_json::to_string(value).map_err(|e| ApiError::Internal(format!("serialise review: {e}")))
}

/// The stored review and the outbox events it causes: one per follow-up (for the trackers) and
/// one per identified risk (a draft risk for risk-service, source INCIDENT).
pub fn to_store(
    incident: Uuid,
    r: &pb::PostIncidentReview,
) -> ApiResult<(review::Model, Vec<outbox_event::Model>)> {
    let source = format!("incidents/{incident}");
    let follow_ups: Vec<FollowUp> = r
        .follow_ups
        .iter()
        .map(|f| FollowUp {
            title: f.title.clone(),
            description: f.description.clone(),
            owner: f.owner.clone(),
            due_time: f
                .due_time
                .as_ref()
                .and_then(from_timestamp)
                .unwrap_or_default(),
        })
        .collect();
    let risks: Vec<IdentifiedRisk> = r
        .identified_risks
        .iter()
        .map(|x| IdentifiedRisk {
            title: x.title.clone(),
            description: x.description.clone(),
            service: x.service.clone(),
            owner: x.owner.clone(),
        })
        .collect();
    let event = |kind: &str, payload: String| outbox_event::Model {
        id: Uuid::now_v7(),
        kind: kind.to_string(),
        aggregate: source.clone(),
        payload,
        create_time: 0,
        delivered_time: None,
        attempts: 0,
        last_error: String::new(),
    };
    let mut events = Vec::new();
    for f in &follow_ups {
        events.push(event(
            outbox::FOLLOW_UP,
            json(&serde_json::json!({
                "incident": source,
                "title": f.title,
                "description": f.description,
                "owner": f.owner,
                "due_time": to_timestamp(f.due_time).to_string(),
            }))?,
        ));
    }
    for x in &risks {
        events.push(event(
            outbox::IDENTIFIED_RISK,
            json(&serde_json::json!({
                "title": x.title,
                "description": x.description,
                "service": x.service,
                "owner": x.owner,
                "identification_source": "IDENTIFICATION_SOURCE_INCIDENT",
                "source_reference": source,
            }))?,
        ));
    }
    let model = review::Model {
        incident_id: incident,
        root_cause: r.root_cause.clone(),
        went_well: r.went_well.clone(),
        went_poorly: r.went_poorly.clone(),
        lessons_learned: r.lessons_learned.clone(),
        participants: json(&r.participants)?,
        follow_ups: json(&follow_ups)?,
        identified_risks: json(&risks)?,
        review_time: 0,
    };
    Ok((model, events))
}

pub fn to_proto(m: &review::Model) -> pb::PostIncidentReview {
    let follow_ups: Vec<FollowUp> = serde_json::from_str(&m.follow_ups).unwrap_or_default();
    let risks: Vec<IdentifiedRisk> = serde_json::from_str(&m.identified_risks).unwrap_or_default();
    pb::PostIncidentReview {
        name: format!("incidents/{}/review", m.incident_id),
        root_cause: m.root_cause.clone(),
        went_well: m.went_well.clone(),
        went_poorly: m.went_poorly.clone(),
        lessons_learned: m.lessons_learned.clone(),
        participants: serde_json::from_str(&m.participants).unwrap_or_default(),
        follow_ups: follow_ups
            .into_iter()
            .map(|f| pb::FollowUpItem {
                title: f.title,
                description: f.description,
                owner: f.owner,
                due_time: Some(to_timestamp(f.due_time)),
            })
            .collect(),
        identified_risks: risks
            .into_iter()
            .map(|x| pb::IdentifiedRisk {
                title: x.title,
                description: x.description,
                service: x.service,
                owner: x.owner,
            })
            .collect(),
        review_time: Some(to_timestamp(m.review_time)),
    }
}

impl IncidentApi {
    pub(super) async fn review_record(
        &self,
        request: Request<pb::RecordPostIncidentReviewRequest>,
    ) -> Result<Response<pb::PostIncidentReview>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = incident_id(&mut v, "parent", &req.parent);
        v.request_id("request_id", &req.request_id);
        let r = v.require("review", req.review.as_ref())?;
        check(&mut v, r);
        v.finish()?;
        let id = id.unwrap_or_default();
        let (model, events) = to_store(id, r)?;
        let key = request_key("RecordPostIncidentReview", req, |r| &mut r.request_id);
        let recorded = self
            .store
            .record_review(id, model, events, &caller, key)
            .await?;
        Ok(Response::new(to_proto(&recorded)))
    }

    pub(super) async fn review_get(
        &self,
        request: Request<pb::GetPostIncidentReviewRequest>,
    ) -> Result<Response<pb::PostIncidentReview>, Status> {
        let name = &request.get_ref().name;
        let mut v = Violations::new();
        let id = match name.strip_suffix("/review") {
            Some(parent) => incident_id(&mut v, "name", parent),
            None => {
                v.add("name", "must be `incidents/{id}/review`");
                None
            }
        };
        v.finish()?;
        let found = self.store.review(id.unwrap_or_default()).await?;
        Ok(Response::new(to_proto(&found)))
    }
}
