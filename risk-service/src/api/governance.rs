//! Handlers of risk responses and approvals, the decision log and action plans.

use assurance_proto::risk::v1 as pb;
use assurance_runtime::list::{FilterContext, ListQuery, ListRequest};
use assurance_runtime::{
    auth::Caller,
    time::{from_timestamp, to_timestamp},
    validate::{TrackerLink, Violations, tracker_sync_state, update_paths},
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::risk::{RiskApi, risk_id};
use crate::domain::{
    governance::{ActionItemStatus, is_finished},
    scoring::Strategy,
    status::Decision,
};
use crate::store::{
    ITEM_FILTER, RequestKey,
    entities::{action_item, action_plan, decision, risk_response},
    etag, listing, parse_etag, response_version,
};

/// Acceptances may run at most this long.
const MAX_ACCEPTANCE_MICROS: i64 = 3 * 366 * 24 * 3600 * 1_000_000;

/// `risks/{risk}/{collection}/{id}` → (risk, id).
fn child_name(
    v: &mut Violations,
    field: &str,
    name: &str,
    collection: &str,
) -> Option<(Uuid, Uuid)> {
    let parts: Vec<&str> = name.split('/').collect();
    let parsed = match parts.as_slice() {
        ["risks", risk, c, id] if *c == collection => {
            Uuid::parse_str(risk).ok().zip(Uuid::parse_str(id).ok())
        }
        _ => None,
    };
    if parsed.is_none() {
        v.add(
            field,
            format!("must be `risks/{{risk}}/{collection}/{{id}}` with UUID ids"),
        );
    }
    parsed
}

/// `risks/{risk}/actionPlan` → the risk; `risks/-/actionPlan` → None when `any` is allowed.
fn plan_name(v: &mut Violations, field: &str, name: &str, any: bool) -> Option<Option<Uuid>> {
    let parsed = match name.split('/').collect::<Vec<_>>().as_slice() {
        ["risks", "-", "actionPlan"] if any => Some(None),
        ["risks", risk, "actionPlan"] => Uuid::parse_str(risk).ok().map(Some),
        _ => None,
    };
    if parsed.is_none() {
        v.add(
            field,
            if any {
                "must be `risks/{id}/actionPlan` or `risks/-/actionPlan`"
            } else {
                "must be `risks/{id}/actionPlan` with a UUID id"
            },
        );
    }
    parsed
}

/// `risks/{risk}/actionPlan/items/{id}` → (risk, id).
fn item_name(v: &mut Violations, field: &str, name: &str) -> Option<(Uuid, Uuid)> {
    let parsed = match name.split('/').collect::<Vec<_>>().as_slice() {
        ["risks", risk, "actionPlan", "items", id] => {
            Uuid::parse_str(risk).ok().zip(Uuid::parse_str(id).ok())
        }
        _ => None,
    };
    if parsed.is_none() {
        v.add(
            field,
            "must be `risks/{risk}/actionPlan/items/{id}` with UUID ids",
        );
    }
    parsed
}

fn time(
    v: &mut Violations,
    field: &str,
    ts: Option<&prost_types::Timestamp>,
    required: bool,
) -> Option<i64> {
    match ts {
        None => {
            if required {
                v.add(field, "is required");
            }
            None
        }
        Some(ts) => v.timestamp(field, ts),
    }
}

/// The tracker link of a request, for validation.
fn link(t: &pb::TrackerLink) -> TrackerLink<'_> {
    TrackerLink {
        system: &t.system,
        external_key: &t.external_key,
        url: &t.url,
        sync_state: t.sync_state,
        sync_time: t.sync_time.as_ref(),
    }
}

fn set_tracker(m: &mut action_item::Model, t: Option<&pb::TrackerLink>) {
    let t = t.cloned().unwrap_or_default();
    m.sync_state = tracker_sync_state(t.sync_state, &t.system);
    m.tracker_system = t.system;
    m.tracker_key = t.external_key;
    m.tracker_url = t.url;
    m.sync_time = t.sync_time.as_ref().and_then(from_timestamp);
}

pub fn response(r: &risk_response::Model) -> pb::RiskResponse {
    pb::RiskResponse {
        name: format!("risks/{}/responses/{}", r.risk_id, r.id),
        decision: r.decision,
        strategy: r.strategy,
        strategy_override: r.strategy_override,
        override_justification: r.override_justification.clone(),
        rationale: r.rationale.clone(),
        acceptance_expire_time: r.acceptance_expire_time.map(to_timestamp),
        state: r.state,
        severity: r.severity,
        required_role: r.required_role.clone(),
        proposer: r.proposer.clone(),
        decided_by: r.decided_by.clone(),
        decision_comment: r.decision_comment.clone(),
        create_time: Some(to_timestamp(r.create_time)),
        decide_time: r.decide_time.map(to_timestamp),
        expired: r.expired,
        etag: etag(response_version(r)),
    }
}

fn decision(d: &decision::Model) -> pb::Decision {
    pb::Decision {
        name: format!("risks/{}/decisions/{}", d.risk_id, d.id),
        risk: format!("risks/{}", d.risk_id),
        kind: d.kind,
        actor: d.actor.clone(),
        summary: d.summary.clone(),
        response: d
            .response_id
            .map(|id| format!("risks/{}/responses/{id}", d.risk_id))
            .unwrap_or_default(),
        decide_time: Some(to_timestamp(d.time)),
    }
}

fn plan(p: &action_plan::Model, (items, open): (u64, u64)) -> pb::ActionPlan {
    pb::ActionPlan {
        name: format!("risks/{}/actionPlan", p.risk_id),
        title: p.title.clone(),
        owner: p.owner.clone(),
        item_count: i32::try_from(items).unwrap_or(i32::MAX),
        open_item_count: i32::try_from(open).unwrap_or(i32::MAX),
        create_time: Some(to_timestamp(p.create_time)),
        etag: etag(p.version),
        update_time: Some(to_timestamp(p.update_time)),
    }
}

fn item(i: &action_item::Model, now: i64) -> pb::ActionItem {
    pb::ActionItem {
        name: format!("risks/{}/actionPlan/items/{}", i.risk_id, i.id),
        title: i.title.clone(),
        description: i.description.clone(),
        owner: i.owner.clone(),
        due_time: Some(to_timestamp(i.due_time)),
        status: i.status,
        tracker: Some(pb::TrackerLink {
            system: i.tracker_system.clone(),
            external_key: i.tracker_key.clone(),
            url: i.tracker_url.clone(),
            sync_state: i.sync_state,
            sync_time: i.sync_time.map(to_timestamp),
        }),
        overdue: !is_finished(i.status) && i.due_time < now,
        etag: etag(i.version),
        service: format!("services/{}", i.service_id),
        business_unit: format!("businessUnits/{}", i.business_unit_id),
        create_time: Some(to_timestamp(i.create_time)),
        update_time: Some(to_timestamp(i.update_time)),
    }
}

const PLAN_UPDATABLE: &[&str] = &["title", "owner"];

const ITEM_UPDATABLE: &[&str] = &[
    "title",
    "description",
    "owner",
    "due_time",
    "status",
    "tracker",
];

impl RiskApi {
    pub(super) async fn create_response(
        &self,
        request: Request<pb::CreateRiskResponseRequest>,
    ) -> Result<Response<pb::RiskResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let now = self.clock.now_micros();
        let mut v = Violations::new();
        let risk = risk_id(&mut v, "parent", &req.parent);
        v.request_id("request_id", &req.request_id);
        let r = &v.message("response", req.response.clone());
        v.known(
            "response.decision",
            r.decision,
            Decision::try_from(r.decision).is_ok(),
        );
        v.paragraph("response.rationale", &r.rationale, true, 4000);
        if r.strategy_override != 0 {
            v.known(
                "response.strategy_override",
                r.strategy_override,
                Strategy::try_from(r.strategy_override).is_ok(),
            );
            v.paragraph(
                "response.override_justification",
                &r.override_justification,
                true,
                4000,
            );
        } else if !r.override_justification.is_empty() {
            v.add(
                "response.override_justification",
                "is only for a strategy_override",
            );
        }
        let accept = r.decision == Decision::Accept as i32;
        let expiry = time(
            &mut v,
            "response.acceptance_expire_time",
            r.acceptance_expire_time.as_ref(),
            accept,
        );
        match (accept, expiry) {
            (true, Some(at)) if at <= now => {
                v.add("response.acceptance_expire_time", "must be in the future")
            }
            (true, Some(at)) if at > now.saturating_add(MAX_ACCEPTANCE_MICROS) => v.add(
                "response.acceptance_expire_time",
                "must be within three years",
            ),
            (false, Some(_)) => v.add(
                "response.acceptance_expire_time",
                "is only for an ACCEPT decision",
            ),
            _ => {}
        }
        v.finish()?;
        let model = risk_response::Model {
            id: Uuid::nil(),
            risk_id: risk.unwrap_or_default(),
            decision: r.decision,
            strategy: 0,
            strategy_override: r.strategy_override,
            override_justification: r.override_justification.clone(),
            rationale: r.rationale.clone(),
            acceptance_expire_time: expiry,
            state: 0,
            severity: 0,
            required_role: String::new(),
            proposer: String::new(),
            decided_by: String::new(),
            decision_comment: String::new(),
            expired: false,
            create_time: 0,
            decide_time: None,
        };
        // The operation keeps its pre-#11 name: it keys the request records of past retries.
        let key = RequestKey::for_request("SetRiskResponse", &caller, req, |r| &mut r.request_id);
        let created = self
            .store
            .set_response(risk.unwrap_or_default(), model, key, &caller, now)
            .await?;
        Ok(Response::new(response(&created)))
    }

    /// Approves or rejects (`approve`) the response `name`; `comment` is the approval comment or
    /// the rejection reason.
    pub(super) async fn decide(
        &self,
        caller: Caller,
        (name, comment, etag, request_id): (&str, &str, &str, &str),
        approve: bool,
        key: Option<RequestKey>,
    ) -> Result<Response<pb::RiskResponse>, Status> {
        let mut v = Violations::new();
        let ids = child_name(&mut v, "name", name, "responses");
        if approve {
            v.paragraph("comment", comment, false, 4000);
        } else {
            v.paragraph("reason", comment, true, 4000);
        }
        let expected = v.absorb("etag", parse_etag("etag", etag)).flatten();
        v.request_id("request_id", request_id);
        v.finish()?;
        let (risk, id) = ids.unwrap_or_default();
        let decided = self
            .store
            .decide_response(
                risk,
                id,
                approve,
                comment.to_string(),
                expected,
                key,
                &caller,
                self.clock.now_micros(),
            )
            .await?;
        Ok(Response::new(response(&decided)))
    }

    pub(super) async fn get_response(
        &self,
        request: Request<pb::GetRiskResponseRequest>,
    ) -> Result<Response<pb::RiskResponse>, Status> {
        let mut v = Violations::new();
        let ids = child_name(&mut v, "name", &request.get_ref().name, "responses");
        v.finish()?;
        let (risk, id) = ids.unwrap_or_default();
        Ok(Response::new(response(
            &self.store.response(risk, id).await?,
        )))
    }

    pub(super) async fn get_assessment(
        &self,
        request: Request<pb::GetAssessmentRequest>,
    ) -> Result<Response<pb::Assessment>, Status> {
        let mut v = Violations::new();
        let ids = child_name(&mut v, "name", &request.get_ref().name, "assessments");
        v.finish()?;
        let (risk, id) = ids.unwrap_or_default();
        let a = self.store.assessment(risk, id).await?;
        Ok(Response::new(super::convert::assessment(&a)))
    }

    pub(super) async fn get_decision(
        &self,
        request: Request<pb::GetDecisionRequest>,
    ) -> Result<Response<pb::Decision>, Status> {
        let mut v = Violations::new();
        let ids = child_name(&mut v, "name", &request.get_ref().name, "decisions");
        v.finish()?;
        let (risk, id) = ids.unwrap_or_default();
        Ok(Response::new(decision(
            &self.store.decision(risk, id).await?,
        )))
    }

    pub(super) async fn update_plan(
        &self,
        request: Request<pb::UpdateActionPlanRequest>,
    ) -> Result<Response<pb::ActionPlan>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let mut p = v.message("action_plan", req.action_plan);
        let risk = plan_name(&mut v, "action_plan.name", &p.name, false).flatten();
        let paths = update_paths(
            req.update_mask.as_ref(),
            PLAN_UPDATABLE,
            |path| match path {
                "title" => !p.title.is_empty(),
                "owner" => !p.owner.is_empty(),
                _ => false,
            },
        )?;
        if paths.is_empty() {
            v.add("update_mask", "names no field to update");
        }
        for path in &paths {
            match *path {
                "title" => v.line("action_plan.title", &p.title, true, 200),
                "owner" => v.principal("action_plan.owner", &mut p.owner, true),
                _ => {}
            }
        }
        let expected = v
            .absorb("action_plan.etag", parse_etag("action_plan.etag", &p.etag))
            .flatten();
        v.finish()?;
        let risk = risk.unwrap_or_default();
        let updated = self
            .store
            .update_plan(risk, expected, &caller, self.clock.now_micros(), |m| {
                for path in &paths {
                    match *path {
                        "title" => m.title = p.title.clone(),
                        "owner" => m.owner = p.owner.clone(),
                        _ => {}
                    }
                }
            })
            .await?;
        let counts = self.store.plan_counts(risk).await?;
        Ok(Response::new(plan(&updated, counts)))
    }

    pub(super) async fn get_plan(
        &self,
        request: Request<pb::GetActionPlanRequest>,
    ) -> Result<Response<pb::ActionPlan>, Status> {
        let mut v = Violations::new();
        let risk = plan_name(&mut v, "name", &request.get_ref().name, false).flatten();
        v.finish()?;
        let risk = risk.unwrap_or_default();
        let p = self.store.plan(risk).await?;
        let counts = self.store.plan_counts(risk).await?;
        Ok(Response::new(plan(&p, counts)))
    }

    pub(super) async fn get_item(
        &self,
        request: Request<pb::GetActionItemRequest>,
    ) -> Result<Response<pb::ActionItem>, Status> {
        let mut v = Violations::new();
        let ids = item_name(&mut v, "name", &request.get_ref().name);
        v.finish()?;
        let (risk, id) = ids.unwrap_or_default();
        let i = self.store.item(risk, id).await?;
        Ok(Response::new(item(&i, self.clock.now_micros())))
    }

    pub(super) async fn list_responses(
        &self,
        request: Request<pb::ListRiskResponsesRequest>,
    ) -> Result<Response<pb::ListRiskResponsesResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let risk = risk_id(&mut v, "parent", &req.parent);
        let list = ListQuery::parse(
            &mut v,
            &ListRequest {
                scope: &["responses", &req.parent],
                page_size: req.page_size,
                page_token: &req.page_token,
                filter: &req.filter,
                order_by: &req.order_by,
            },
            Some(&listing::RESPONSE_FILTER.at(FilterContext {
                now: self.clock.now_micros(),
            })),
            &listing::RESPONSE_SORTING,
        );
        v.finish()?;
        let mut rows = self
            .store
            .responses(risk.unwrap_or_default(), &list)
            .await?;
        let next_page_token = list.next_page(&mut rows, |r| listing::response_keys(&list, r));
        Ok(Response::new(pb::ListRiskResponsesResponse {
            responses: rows.iter().map(response).collect(),
            next_page_token,
        }))
    }

    pub(super) async fn decisions_page(
        &self,
        request: Request<pb::ListDecisionsRequest>,
    ) -> Result<Response<pb::ListDecisionsResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let risk = if req.parent == "risks/-" {
            None
        } else {
            risk_id(&mut v, "parent", &req.parent)
        };
        let list = ListQuery::parse(
            &mut v,
            &ListRequest {
                scope: &["decisions", &req.parent],
                page_size: req.page_size,
                page_token: &req.page_token,
                filter: &req.filter,
                order_by: &req.order_by,
            },
            Some(&listing::DECISION_FILTER.at(FilterContext {
                now: self.clock.now_micros(),
            })),
            &listing::DECISION_SORTING,
        );
        v.finish()?;
        let mut rows = self.store.decisions(risk, &list).await?;
        let next_page_token = list.next_page(&mut rows, |r| listing::decision_keys(&list, r));
        Ok(Response::new(pb::ListDecisionsResponse {
            decisions: rows.iter().map(decision).collect(),
            next_page_token,
        }))
    }

    pub(super) async fn create_plan(
        &self,
        request: Request<pb::CreateActionPlanRequest>,
    ) -> Result<Response<pb::ActionPlan>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let risk = risk_id(&mut v, "parent", &req.parent);
        v.request_id("request_id", &req.request_id);
        let p = &mut v.message("action_plan", req.action_plan.clone());
        v.line("action_plan.title", &p.title, true, 200);
        v.principal("action_plan.owner", &mut p.owner, true);
        v.finish()?;
        let model = action_plan::Model {
            risk_id: risk.unwrap_or_default(),
            title: p.title.clone(),
            owner: p.owner.clone(),
            create_time: 0,
            version: 1,
            update_time: 0,
        };
        let key = RequestKey::for_request("CreateActionPlan", &caller, req, |r| &mut r.request_id);
        let created = self
            .store
            .create_plan(model, key, &caller, self.clock.now_micros())
            .await?;
        let counts = self.store.plan_counts(created.risk_id).await?;
        Ok(Response::new(plan(&created, counts)))
    }

    pub(super) async fn create_item(
        &self,
        request: Request<pb::CreateActionItemRequest>,
    ) -> Result<Response<pb::ActionItem>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let risk = plan_name(&mut v, "parent", &req.parent, false).flatten();
        v.request_id("request_id", &req.request_id);
        let i = &mut v.message("action_item", req.action_item.clone());
        v.line("action_item.title", &i.title, true, 200);
        v.paragraph("action_item.description", &i.description, false, 4000);
        v.principal("action_item.owner", &mut i.owner, true);
        let due = time(&mut v, "action_item.due_time", i.due_time.as_ref(), true);
        if i.status != 0 && ActionItemStatus::try_from(i.status).is_err() {
            v.add(
                "action_item.status",
                format!("{} is not a known value", i.status),
            );
        }
        if let Some(t) = &i.tracker {
            v.tracker_link("action_item.tracker", &link(t));
        }
        v.finish()?;
        let mut model = action_item::Model {
            id: Uuid::nil(),
            risk_id: risk.unwrap_or_default(),
            service_id: String::new(),
            business_unit_id: String::new(),
            title: i.title.clone(),
            description: i.description.clone(),
            owner: i.owner.clone(),
            due_time: due.unwrap_or_default(),
            status: if i.status == 0 {
                ActionItemStatus::Open as i32
            } else {
                i.status
            },
            tracker_system: String::new(),
            tracker_key: String::new(),
            tracker_url: String::new(),
            sync_state: 0,
            sync_time: None,
            version: 0,
            create_time: 0,
            update_time: 0,
        };
        set_tracker(&mut model, i.tracker.as_ref());
        // The operation keeps its pre-#11 name: it keys the request records of past retries.
        let key = RequestKey::for_request("AddActionItem", &caller, req, |r| &mut r.request_id);
        let now = self.clock.now_micros();
        let created = self.store.add_item(model, key, &caller, now).await?;
        Ok(Response::new(item(&created, now)))
    }

    pub(super) async fn update_item(
        &self,
        request: Request<pb::UpdateActionItemRequest>,
    ) -> Result<Response<pb::ActionItem>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let mut i = v.message("action_item", req.action_item);
        let ids = item_name(&mut v, "action_item.name", &i.name);
        let paths = update_paths(req.update_mask.as_ref(), ITEM_UPDATABLE, |p| match p {
            "title" => !i.title.is_empty(),
            "description" => !i.description.is_empty(),
            "owner" => !i.owner.is_empty(),
            "due_time" => i.due_time.is_some(),
            "status" => i.status != 0,
            "tracker" => i.tracker.is_some(),
            _ => false,
        })?;
        caller.check_tracker_fields(&paths)?;
        let mut due = None;
        for path in &paths {
            match *path {
                "title" => v.line("action_item.title", &i.title, true, 200),
                "description" => {
                    v.paragraph("action_item.description", &i.description, false, 4000)
                }
                "owner" => v.principal("action_item.owner", &mut i.owner, true),
                "due_time" => due = time(&mut v, "action_item.due_time", i.due_time.as_ref(), true),
                "status" => v.known(
                    "action_item.status",
                    i.status,
                    ActionItemStatus::try_from(i.status).is_ok(),
                ),
                "tracker" => {
                    if let Some(t) = &i.tracker {
                        v.tracker_link("action_item.tracker", &link(t));
                    }
                }
                _ => {}
            }
        }
        let expected = v.absorb("action_item.etag", parse_etag("action_item.etag", &i.etag));
        v.finish()?;
        let (risk, id) = ids.unwrap_or_default();
        let now = self.clock.now_micros();
        let updated = self
            .store
            .update_item(risk, id, expected.flatten(), &caller, now, |m| {
                for path in &paths {
                    match *path {
                        "title" => m.title = i.title.clone(),
                        "description" => m.description = i.description.clone(),
                        "owner" => m.owner = i.owner.clone(),
                        "due_time" => m.due_time = due.unwrap_or(m.due_time),
                        "status" => m.status = i.status,
                        "tracker" => set_tracker(m, i.tracker.as_ref()),
                        _ => {}
                    }
                }
            })
            .await?;
        Ok(Response::new(item(&updated, now)))
    }

    pub(super) async fn list_items(
        &self,
        request: Request<pb::ListActionItemsRequest>,
    ) -> Result<Response<pb::ListActionItemsResponse>, Status> {
        let req = request.get_ref();
        let now = self.clock.now_micros();
        let mut v = Violations::new();
        let risk = plan_name(&mut v, "parent", &req.parent, true);
        let list = ListQuery::parse(
            &mut v,
            &ListRequest {
                scope: &["items", &req.parent],
                page_size: req.page_size,
                page_token: &req.page_token,
                filter: &req.filter,
                order_by: &req.order_by,
            },
            Some(&ITEM_FILTER.at(FilterContext { now })),
            &listing::ITEM_SORTING,
        );
        v.finish()?;
        let risk = risk.flatten();
        if let Some(risk) = risk {
            self.store.plan(risk).await?;
        }
        let mut rows = self.store.items(risk, &list).await?;
        let next_page_token = list.next_page(&mut rows, |i| listing::item_keys(&list, i));
        Ok(Response::new(pb::ListActionItemsResponse {
            action_items: rows.iter().map(|i| item(i, now)).collect(),
            next_page_token,
        }))
    }
}
