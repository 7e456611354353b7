//! `assurance.risk.v1.ReviewService`: periodic reviews, review cycles, observations.

use std::sync::Arc;

use assurance_proto::risk::v1::{self as pb, review_service_server::ReviewService};
use assurance_runtime::list::{ListRequest, Sorting, page_by_id};
use assurance_runtime::{
    ApiError, ApiResult,
    auth::{Caller, Role, Roles},
    time::{Clock, from_timestamp, to_timestamp},
    validate::{Violations, name_id, slug_name},
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{convert, referenced, risk::risk_id};
use crate::{
    domain::{
        reviews::{ObservationEffect, ObservationSource, ReviewOutcome},
        scoring::ScoringPolicy,
    },
    store::{
        RequestKey, Store,
        reviews::{OwnerProgress, observation, review, review_cycle},
    },
};

pub struct ReviewApi {
    store: Store,
    policy: Arc<ScoringPolicy>,
    clock: Clock,
}

impl ReviewApi {
    pub fn new(store: Store, policy: Arc<ScoringPolicy>, clock: Clock) -> Self {
        ReviewApi {
            store,
            policy,
            clock,
        }
    }
}

fn cycle_id(v: &mut Violations, field: &str, name: &str) -> Option<Uuid> {
    let id = name_id(name, "reviewCycles").and_then(|id| Uuid::parse_str(id).ok());
    if id.is_none() {
        v.add(
            field,
            "must be a review cycle name `reviewCycles/{id}` with a UUID id",
        );
    }
    id
}

/// A service's cycle is its team's (within scope); cycles of a business unit or of the
/// enterprise are the trust team's.
fn cycle_scope_allowed(caller: &Caller, scope: &str) -> ApiResult<()> {
    if let Some(service) = scope.strip_prefix("services/") {
        return caller.may_change(service);
    }
    caller.must_be_unscoped("run review cycles beyond its services")?;
    let trust = Roles::of(&[Role::TrustTeam, Role::System, Role::Admin]);
    if caller.principal.roles.intersects(trust) {
        Ok(())
    } else {
        Err(ApiError::PermissionDenied(format!(
            "review cycles of a business unit or the enterprise are run by the trust team; {} has {}",
            caller.principal.subject, caller.principal.roles
        )))
    }
}

fn review_pb(r: &review::Model) -> pb::Review {
    pb::Review {
        name: format!("risks/{}/reviews/{}", r.risk_id, r.id),
        participants: r.participants.lines().map(str::to_string).collect(),
        outcome: r.outcome,
        notes: r.notes.clone(),
        reassessment: r.assessment_id.map(|id| pb::Assessment {
            name: format!("risks/{}/assessments/{id}", r.risk_id),
            ..Default::default()
        }),
        reviewer: r.reviewer.clone(),
        review_time: Some(to_timestamp(r.review_time)),
        next_review_time: Some(to_timestamp(r.next_review_time)),
    }
}

fn cycle_pb(c: &review_cycle::Model, progress: Vec<OwnerProgress>) -> pb::ReviewCycle {
    let count = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
    pb::ReviewCycle {
        name: format!("reviewCycles/{}", c.id),
        title: c.title.clone(),
        scope: c.scope.clone(),
        due_time: Some(to_timestamp(c.due_time)),
        state: c.state,
        risks: count(progress.iter().map(|p| p.1).sum()),
        reviewed: count(progress.iter().map(|p| p.2).sum()),
        progress: progress
            .into_iter()
            .map(|(owner, risks, reviewed)| pb::OwnerProgress {
                owner,
                risks: count(risks),
                reviewed: count(reviewed),
            })
            .collect(),
        summary: c.summary.clone(),
        opened_by: c.opened_by.clone(),
        closed_by: c.closed_by.clone(),
        open_time: Some(to_timestamp(c.open_time)),
        close_time: c.close_time.map(to_timestamp),
    }
}

fn observation_pb(o: &observation::Model) -> pb::Observation {
    pb::Observation {
        name: format!("risks/{}/observations/{}", o.risk_id, o.id),
        source: o.source,
        summary: o.summary.clone(),
        effect: o.effect,
        reference: o.reference.clone(),
        observer: o.observer.clone(),
        observe_time: Some(to_timestamp(o.observe_time)),
        reassessment_triggered: o.reassessment_triggered,
    }
}

#[tonic::async_trait]
impl ReviewService for ReviewApi {
    async fn record_review(
        &self,
        request: Request<pb::RecordReviewRequest>,
    ) -> Result<Response<pb::Review>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let risk = risk_id(&mut v, "parent", &req.parent);
        v.request_id("request_id", &req.request_id);
        let r = v.require("review", req.review.as_ref())?;
        if r.participants.is_empty() || r.participants.len() > 50 {
            v.add("review.participants", "must name 1 to 50 participants");
        }
        for (n, p) in r.participants.iter().enumerate() {
            v.principal(&format!("review.participants[{n}]"), p, true);
        }
        v.known(
            "review.outcome",
            r.outcome,
            ReviewOutcome::try_from(r.outcome).is_ok(),
        );
        v.paragraph("review.notes", &r.notes, false, 10_000);
        let reassessed = r.outcome == ReviewOutcome::Reassessed as i32;
        match (&r.reassessment, reassessed) {
            (None, true) => v.add("review.reassessment", "is required with outcome REASSESSED"),
            (Some(_), false) => v.add("review.reassessment", "is only for outcome REASSESSED"),
            (Some(a), true) => {
                v.in_range("review.reassessment.impact", a.impact, 1, 5);
                v.in_range("review.reassessment.likelihood", a.likelihood, 1, 5);
                // 0: derived from the linked controls, as in AssessRisk.
                if a.control_deficiency != 0 {
                    v.in_range(
                        "review.reassessment.control_deficiency",
                        a.control_deficiency,
                        1,
                        5,
                    );
                }
                v.paragraph("review.reassessment.rationale", &a.rationale, false, 10_000);
                v.principal("review.reassessment.assessor", &a.assessor, false);
            }
            (None, false) => {}
        }
        v.finish()?;
        let reassessment = match &r.reassessment {
            None => None,
            Some(a) => {
                let mut a = a.clone();
                if a.assessor.is_empty() {
                    a.assessor = caller.person().to_string();
                }
                let derive = a.control_deficiency == 0;
                if derive {
                    let derived = self
                        .store
                        .derived_control_deficiency(risk.unwrap_or_default())
                        .await?;
                    a.control_deficiency = i32::from(derived);
                }
                let mut model = convert::assessment_model(&self.policy, &a);
                model.control_deficiency_derived = derive;
                Some(model)
            }
        };
        let model = review::Model {
            id: Uuid::nil(),
            risk_id: risk.unwrap_or_default(),
            participants: r.participants.join("\n"),
            outcome: r.outcome,
            notes: r.notes.clone(),
            assessment_id: None,
            reviewer: String::new(),
            review_time: 0,
            next_review_time: 0,
        };
        let key = RequestKey::for_request("RecordReview", req, |r| &mut r.request_id);
        let recorded = self
            .store
            .record_review(model, reassessment, key, &caller, self.clock.now_micros())
            .await?;
        Ok(Response::new(review_pb(&recorded)))
    }

    async fn list_reviews(
        &self,
        request: Request<pb::ListReviewsRequest>,
    ) -> Result<Response<pb::ListReviewsResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let risk = risk_id(&mut v, "parent", &req.parent);
        let (rows, next_page_token) = page_by_id(
            v,
            &ListRequest::paged(&["reviews", &req.parent], req.page_size, &req.page_token),
            &Sorting::BY_UUID,
            async |list| {
                let risk = risk.unwrap_or_default();
                self.store
                    .reviews(risk, list.after_id(), list.limit())
                    .await
            },
            |r| r.id,
        )
        .await?;
        Ok(Response::new(pb::ListReviewsResponse {
            reviews: rows.iter().map(review_pb).collect(),
            next_page_token,
        }))
    }

    async fn open_review_cycle(
        &self,
        request: Request<pb::OpenReviewCycleRequest>,
    ) -> Result<Response<pb::ReviewCycle>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        v.request_id("request_id", &req.request_id);
        let c = v.require("review_cycle", req.review_cycle.as_ref())?;
        v.line("review_cycle.title", &c.title, true, 200);
        if !c.scope.is_empty() {
            let kind = if c.scope.starts_with("services/") {
                "services"
            } else {
                "businessUnits"
            };
            slug_name(&mut v, "review_cycle.scope", &c.scope, kind);
        }
        let due = match &c.due_time {
            None => {
                v.add("review_cycle.due_time", "is required");
                None
            }
            Some(ts) => {
                let due = from_timestamp(ts);
                match due {
                    None => v.add("review_cycle.due_time", "is not a valid timestamp"),
                    Some(d) if d <= self.clock.now_micros() => {
                        v.add("review_cycle.due_time", "must be in the future")
                    }
                    _ => {}
                }
                due
            }
        };
        v.finish()?;
        cycle_scope_allowed(&caller, &c.scope)?;
        let model = review_cycle::Model {
            id: Uuid::nil(),
            title: c.title.clone(),
            scope: c.scope.clone(),
            due_time: due.unwrap_or_default(),
            state: 0,
            summary: String::new(),
            opened_by: String::new(),
            closed_by: String::new(),
            open_time: 0,
            close_time: None,
        };
        let key = RequestKey::for_request("OpenReviewCycle", req, |r| &mut r.request_id);
        let opened = self
            .store
            .open_cycle(model, key, &caller, self.clock.now_micros())
            .await
            .map_err(referenced(
                "review_cycle.scope",
                &["businessUnits", "services"],
            ))?;
        let progress = self.store.cycle_progress(opened.id).await?;
        Ok(Response::new(cycle_pb(&opened, progress)))
    }

    async fn get_review_cycle(
        &self,
        request: Request<pb::GetReviewCycleRequest>,
    ) -> Result<Response<pb::ReviewCycle>, Status> {
        let mut v = Violations::new();
        let id = cycle_id(&mut v, "name", &request.get_ref().name);
        v.finish()?;
        let id = id.unwrap_or_default();
        let cycle = self.store.cycle(id).await?;
        let progress = self.store.cycle_progress(id).await?;
        Ok(Response::new(cycle_pb(&cycle, progress)))
    }

    async fn list_review_cycles(
        &self,
        request: Request<pb::ListReviewCyclesRequest>,
    ) -> Result<Response<pb::ListReviewCyclesResponse>, Status> {
        let req = request.get_ref();
        let (rows, next_page_token) = page_by_id(
            Violations::new(),
            &ListRequest::paged(&["review-cycles"], req.page_size, &req.page_token),
            &Sorting::BY_UUID,
            async |list| self.store.cycles(list.after_id(), list.limit()).await,
            |c| c.id,
        )
        .await?;
        let mut review_cycles = Vec::with_capacity(rows.len());
        for c in &rows {
            review_cycles.push(cycle_pb(c, self.store.cycle_progress(c.id).await?));
        }
        Ok(Response::new(pb::ListReviewCyclesResponse {
            review_cycles,
            next_page_token,
        }))
    }

    async fn close_review_cycle(
        &self,
        request: Request<pb::CloseReviewCycleRequest>,
    ) -> Result<Response<pb::ReviewCycle>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = cycle_id(&mut v, "name", &req.name);
        v.paragraph("summary", &req.summary, true, 10_000);
        v.finish()?;
        let id = id.unwrap_or_default();
        let current = self.store.cycle(id).await?;
        cycle_scope_allowed(&caller, &current.scope)?;
        let closed = self
            .store
            .close_cycle(id, req.summary.clone(), &caller, self.clock.now_micros())
            .await?;
        let progress = self.store.cycle_progress(id).await?;
        Ok(Response::new(cycle_pb(&closed, progress)))
    }

    async fn add_observation(
        &self,
        request: Request<pb::AddObservationRequest>,
    ) -> Result<Response<pb::Observation>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let risk = risk_id(&mut v, "parent", &req.parent);
        v.request_id("request_id", &req.request_id);
        let o = v.require("observation", req.observation.as_ref())?;
        v.known(
            "observation.source",
            o.source,
            ObservationSource::try_from(o.source).is_ok(),
        );
        v.known(
            "observation.effect",
            o.effect,
            ObservationEffect::try_from(o.effect).is_ok(),
        );
        v.paragraph("observation.summary", &o.summary, true, 4000);
        v.line("observation.reference", &o.reference, false, 500);
        v.finish()?;
        let model = observation::Model {
            id: Uuid::nil(),
            risk_id: risk.unwrap_or_default(),
            source: o.source,
            summary: o.summary.clone(),
            effect: o.effect,
            reference: o.reference.clone(),
            observer: String::new(),
            observe_time: 0,
            reassessment_triggered: false,
        };
        let key = RequestKey::for_request("AddObservation", req, |r| &mut r.request_id);
        let added = self
            .store
            .add_observation(model, key, &caller, self.clock.now_micros())
            .await?;
        Ok(Response::new(observation_pb(&added)))
    }

    async fn list_observations(
        &self,
        request: Request<pb::ListObservationsRequest>,
    ) -> Result<Response<pb::ListObservationsResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let risk = risk_id(&mut v, "parent", &req.parent);
        let (rows, next_page_token) = page_by_id(
            v,
            &ListRequest::paged(
                &["observations", &req.parent],
                req.page_size,
                &req.page_token,
            ),
            &Sorting::BY_UUID,
            async |list| {
                let risk = risk.unwrap_or_default();
                self.store
                    .observations(risk, list.after_id(), list.limit())
                    .await
            },
            |o| o.id,
        )
        .await?;
        Ok(Response::new(pb::ListObservationsResponse {
            observations: rows.iter().map(observation_pb).collect(),
            next_page_token,
        }))
    }
}
