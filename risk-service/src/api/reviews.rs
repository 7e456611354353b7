//! `assurance.risk.v1.ReviewService`: periodic reviews, review cycles, observations.

use std::sync::Arc;

use assurance_proto::risk::v1::{self as pb, review_service_server::ReviewService};
use assurance_runtime::list::{FilterContext, ListQuery, ListRequest};
use assurance_runtime::{
    ApiError, ApiResult,
    auth::{Caller, Role, Roles},
    time::{Clock, from_timestamp, to_timestamp},
    validate::{Violations, name_id, slug_name, update_paths},
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
        RequestKey, Store, etag, parse_etag,
        reviews::{
            CYCLE_FILTER, CYCLE_SORTING, OBSERVATION_FILTER, OBSERVATION_SORTING, OwnerProgress,
            REVIEW_FILTER, REVIEW_SORTING, observation, review, review_cycle, time_keys,
        },
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
    if name.is_empty() {
        v.add(field, "is required");
        return None;
    }
    let id = name_id(name, "reviewCycles").and_then(|id| Uuid::parse_str(id).ok());
    if id.is_none() {
        v.add(
            field,
            "must be a review cycle name `reviewCycles/{id}` with a UUID id",
        );
    }
    id
}

/// `risks/{risk}/{collection}/{id}` (UUIDs) → (risk, id), or a violation on `field`.
fn child_id(v: &mut Violations, field: &str, name: &str, collection: &str) -> Option<(Uuid, Uuid)> {
    if name.is_empty() {
        v.add(field, "is required");
        return None;
    }
    let parsed = name
        .strip_prefix("risks/")
        .and_then(|rest| rest.split_once('/'))
        .and_then(|(risk, rest)| {
            let id = name_id(rest, collection)?;
            Some((Uuid::parse_str(risk).ok()?, Uuid::parse_str(id).ok()?))
        });
    if parsed.is_none() {
        v.add(
            field,
            format!("must be a name `risks/{{risk}}/{collection}/{{id}}` with UUID ids"),
        );
    }
    parsed
}

/// Paths `UpdateReviewCycle` may change.
const CYCLE_FIELDS: &[&str] = &["title", "due_time"];

/// A due time: valid and in the future, or a violation on `field`.
fn due_time(
    v: &mut Violations,
    field: &str,
    ts: Option<&prost_types::Timestamp>,
    now: i64,
) -> Option<i64> {
    let Some(ts) = ts else {
        v.add(field, "is required");
        return None;
    };
    let due = from_timestamp(ts);
    match due {
        None => v.add(field, "is not a valid timestamp"),
        Some(d) if d <= now => v.add(field, "must be in the future"),
        _ => {}
    }
    due
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
        etag: etag(c.version),
        update_time: Some(to_timestamp(c.update_time)),
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
        control: if o.control_id.is_empty() {
            String::new()
        } else {
            format!("controls/{}", o.control_id)
        },
    }
}

impl ReviewApi {
    /// Parses a list request of this service: paging, filter and order.
    fn list_query<C: sea_orm::ColumnTrait>(
        &self,
        v: &mut Violations,
        request: &ListRequest<'_>,
        filter: &'static assurance_runtime::list::FilterTable<C>,
        sorting: &assurance_runtime::list::Sorting,
    ) -> ListQuery {
        let cx = FilterContext {
            now: self.clock.now_micros(),
        };
        ListQuery::parse(v, request, Some(&filter.at(cx)), sorting)
    }
}

#[tonic::async_trait]
impl ReviewService for ReviewApi {
    async fn create_review(
        &self,
        request: Request<pb::CreateReviewRequest>,
    ) -> Result<Response<pb::Review>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let risk = risk_id(&mut v, "parent", &req.parent);
        v.request_id("request_id", &req.request_id);
        let mut r = v.message("review", req.review.clone());
        if r.participants.is_empty() || r.participants.len() > 50 {
            v.add("review.participants", "must name 1 to 50 participants");
        }
        for (n, p) in r.participants.iter_mut().enumerate() {
            v.principal(&format!("review.participants[{n}]"), p, true);
        }
        v.known(
            "review.outcome",
            r.outcome,
            ReviewOutcome::try_from(r.outcome).is_ok(),
        );
        v.paragraph("review.notes", &r.notes, false, 10_000);
        let reassessed = r.outcome == ReviewOutcome::Reassessed as i32;
        match (&mut r.reassessment, reassessed) {
            (None, true) => v.add("review.reassessment", "is required with outcome REASSESSED"),
            (Some(_), false) => v.add("review.reassessment", "is only for outcome REASSESSED"),
            (None, _) if req.derive_control_deficiency => v.add(
                "derive_control_deficiency",
                "is only for a review with a reassessment",
            ),
            (Some(a), true) => {
                v.in_range("review.reassessment.impact", a.impact, 1, 5);
                v.in_range("review.reassessment.likelihood", a.likelihood, 1, 5);
                // Given, or derived from the linked controls: never both (as in AssessRisk).
                match (req.derive_control_deficiency, a.control_deficiency) {
                    (true, 0) => {}
                    (true, _) => v.add(
                        "derive_control_deficiency",
                        "cannot be combined with review.reassessment.control_deficiency: give the value or derive it",
                    ),
                    (false, 0) => v.add(
                        "review.reassessment.control_deficiency",
                        "is required (1–5), unless derive_control_deficiency is set",
                    ),
                    (false, given) => {
                        v.in_range("review.reassessment.control_deficiency", given, 1, 5)
                    }
                }
                v.paragraph("review.reassessment.rationale", &a.rationale, false, 10_000);
                v.principal("review.reassessment.assessor", &mut a.assessor, false);
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
                let derive = req.derive_control_deficiency;
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
        // The operation string predates the rename (stored with past requests).
        let key = RequestKey::for_request("RecordReview", &caller, req, |r| &mut r.request_id);
        let recorded = self
            .store
            .record_review(model, reassessment, key, &caller, self.clock.now_micros())
            .await?;
        Ok(Response::new(review_pb(&recorded)))
    }

    async fn get_review(
        &self,
        request: Request<pb::GetReviewRequest>,
    ) -> Result<Response<pb::Review>, Status> {
        let mut v = Violations::new();
        let ids = child_id(&mut v, "name", &request.get_ref().name, "reviews");
        v.finish()?;
        let (risk, id) = ids.unwrap_or_default();
        let found = self.store.review(risk, id).await?;
        Ok(Response::new(review_pb(&found)))
    }

    async fn list_reviews(
        &self,
        request: Request<pb::ListReviewsRequest>,
    ) -> Result<Response<pb::ListReviewsResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let risk = risk_id(&mut v, "parent", &req.parent);
        let list = self.list_query(
            &mut v,
            &ListRequest {
                scope: &["reviews", &req.parent],
                page_size: req.page_size,
                page_token: &req.page_token,
                filter: &req.filter,
                order_by: &req.order_by,
            },
            &REVIEW_FILTER,
            &REVIEW_SORTING,
        );
        v.finish()?;
        let mut rows = self.store.reviews(risk.unwrap_or_default(), &list).await?;
        let next_page_token =
            list.next_page(&mut rows, |r| time_keys(&list, r.id, |_| r.review_time));
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
        let c = v.message("review_cycle", req.review_cycle.clone());
        v.line("review_cycle.title", &c.title, true, 200);
        if !c.scope.is_empty() {
            let kind = if c.scope.starts_with("services/") {
                "services"
            } else {
                "businessUnits"
            };
            slug_name(&mut v, "review_cycle.scope", &c.scope, kind);
        }
        let due = due_time(
            &mut v,
            "review_cycle.due_time",
            c.due_time.as_ref(),
            self.clock.now_micros(),
        );
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
            version: 0,
            update_time: 0,
        };
        let key = RequestKey::for_request("OpenReviewCycle", &caller, req, |r| &mut r.request_id);
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
        let mut v = Violations::new();
        let list = self.list_query(
            &mut v,
            &ListRequest {
                scope: &["review-cycles"],
                page_size: req.page_size,
                page_token: &req.page_token,
                filter: &req.filter,
                order_by: &req.order_by,
            },
            &CYCLE_FILTER,
            &CYCLE_SORTING,
        );
        v.finish()?;
        let mut rows = self.store.cycles(&list).await?;
        let next_page_token = list.next_page(&mut rows, |c| {
            time_keys(&list, c.id, |f| {
                if f == "due_time" {
                    c.due_time
                } else {
                    c.open_time
                }
            })
        });
        let mut review_cycles = Vec::with_capacity(rows.len());
        for c in &rows {
            review_cycles.push(cycle_pb(c, self.store.cycle_progress(c.id).await?));
        }
        Ok(Response::new(pb::ListReviewCyclesResponse {
            review_cycles,
            next_page_token,
        }))
    }

    async fn update_review_cycle(
        &self,
        request: Request<pb::UpdateReviewCycleRequest>,
    ) -> Result<Response<pb::ReviewCycle>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let now = self.clock.now_micros();
        let mut v = Violations::new();
        let c = v.message("review_cycle", req.review_cycle);
        let id = cycle_id(&mut v, "review_cycle.name", &c.name);
        let paths = v
            .absorb(
                "update_mask",
                update_paths(req.update_mask.as_ref(), CYCLE_FIELDS, |p| match p {
                    "title" => !c.title.is_empty(),
                    "due_time" => c.due_time.is_some(),
                    _ => false,
                }),
            )
            .inspect(|paths| {
                if paths.is_empty() {
                    v.add("update_mask", "names no field to update");
                }
            })
            .unwrap_or_default();
        let mut due = None;
        for path in &paths {
            match *path {
                "title" => v.line("review_cycle.title", &c.title, true, 200),
                "due_time" => {
                    due = due_time(&mut v, "review_cycle.due_time", c.due_time.as_ref(), now)
                }
                _ => {}
            }
        }
        let expected = v
            .absorb(
                "review_cycle.etag",
                parse_etag("review_cycle.etag", &c.etag),
            )
            .flatten();
        v.finish()?;
        let id = id.unwrap_or_default();
        let updated = self
            .store
            .update_cycle(
                id,
                expected,
                &caller,
                now,
                |current| cycle_scope_allowed(&caller, &current.scope),
                |m| {
                    for path in &paths {
                        match *path {
                            "title" => m.title = c.title.clone(),
                            "due_time" => m.due_time = due.unwrap_or(m.due_time),
                            _ => {}
                        }
                    }
                },
            )
            .await?;
        let progress = self.store.cycle_progress(id).await?;
        Ok(Response::new(cycle_pb(&updated, progress)))
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
        let expected = v.absorb("etag", parse_etag("etag", &req.etag)).flatten();
        v.request_id("request_id", &req.request_id);
        v.finish()?;
        let id = id.unwrap_or_default();
        let current = self.store.cycle(id).await?;
        cycle_scope_allowed(&caller, &current.scope)?;
        let key = RequestKey::for_request("CloseReviewCycle", &caller, req, |r| &mut r.request_id);
        let closed = self
            .store
            .close_cycle(
                id,
                expected,
                req.summary.clone(),
                key,
                &caller,
                self.clock.now_micros(),
            )
            .await?;
        let progress = self.store.cycle_progress(id).await?;
        Ok(Response::new(cycle_pb(&closed, progress)))
    }

    async fn create_observation(
        &self,
        request: Request<pb::CreateObservationRequest>,
    ) -> Result<Response<pb::Observation>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let risk = risk_id(&mut v, "parent", &req.parent);
        v.request_id("request_id", &req.request_id);
        let o = v.message("observation", req.observation.clone());
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
        // A failed control test names the control; no other effect does.
        let failed = o.effect == ObservationEffect::ControlFailed as i32;
        let control = match (failed, o.control.is_empty()) {
            (true, true) => {
                v.add(
                    "observation.control",
                    "is required with effect CONTROL_FAILED: name the failed control",
                );
                None
            }
            (false, false) => {
                v.add("observation.control", "is only for effect CONTROL_FAILED");
                None
            }
            (true, false) => {
                slug_name(&mut v, "observation.control", &o.control, "controls").map(str::to_string)
            }
            (false, true) => None,
        };
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
            control_id: control.unwrap_or_default(),
        };
        // The operation string predates the rename (stored with past requests).
        let key = RequestKey::for_request("AddObservation", &caller, req, |r| &mut r.request_id);
        let added = self
            .store
            .add_observation(model, key, &caller, self.clock.now_micros())
            .await?;
        Ok(Response::new(observation_pb(&added)))
    }

    async fn get_observation(
        &self,
        request: Request<pb::GetObservationRequest>,
    ) -> Result<Response<pb::Observation>, Status> {
        let mut v = Violations::new();
        let ids = child_id(&mut v, "name", &request.get_ref().name, "observations");
        v.finish()?;
        let (risk, id) = ids.unwrap_or_default();
        let found = self.store.observation(risk, id).await?;
        Ok(Response::new(observation_pb(&found)))
    }

    async fn list_observations(
        &self,
        request: Request<pb::ListObservationsRequest>,
    ) -> Result<Response<pb::ListObservationsResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let risk = risk_id(&mut v, "parent", &req.parent);
        let list = self.list_query(
            &mut v,
            &ListRequest {
                scope: &["observations", &req.parent],
                page_size: req.page_size,
                page_token: &req.page_token,
                filter: &req.filter,
                order_by: &req.order_by,
            },
            &OBSERVATION_FILTER,
            &OBSERVATION_SORTING,
        );
        v.finish()?;
        let mut rows = self
            .store
            .observations(risk.unwrap_or_default(), &list)
            .await?;
        let next_page_token =
            list.next_page(&mut rows, |o| time_keys(&list, o.id, |_| o.observe_time));
        Ok(Response::new(pb::ListObservationsResponse {
            observations: rows.iter().map(observation_pb).collect(),
            next_page_token,
        }))
    }
}
