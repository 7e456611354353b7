//! `assurance.risk.v1.RiskService`: the risk register and its assessments.

use std::sync::Arc;

use assurance_proto::risk::v1::{self as pb, risk_service_server::RiskService};
use assurance_runtime::list::{FilterContext, ListQuery, ListRequest};
use assurance_runtime::{
    auth::Caller,
    time::Clock,
    validate::{Violations, name_id, slug_name, update_paths},
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{convert, referenced};
use crate::store::RequestKey;
use crate::{
    domain::{
        check_labels,
        register::{IdentificationSource, Threat},
        scoring::ScoringPolicy,
    },
    store::{
        RISK_FILTER, RISK_SORTING, RiskPatch, Store, entities::risk, identified_risk, listing,
        parse_etag, risk_keys,
    },
};

pub struct RiskApi {
    pub(super) store: Store,
    policy: Arc<ScoringPolicy>,
    pub(super) clock: Clock,
}

impl RiskApi {
    pub fn new(store: Store, policy: Arc<ScoringPolicy>, clock: Clock) -> Self {
        RiskApi {
            store,
            policy,
            clock,
        }
    }
}

const RISK_UPDATABLE: &[&str] = &[
    "title",
    "description",
    "service",
    "category",
    "threat",
    "identification_source",
    "source_reference",
    "owner",
    "labels",
];

/// `risks/{uuid}` → the id, or a violation on `field`.
pub(super) fn risk_id(v: &mut Violations, field: &str, name: &str) -> Option<Uuid> {
    if name.is_empty() {
        v.add(field, "is required");
        return None;
    }
    let id = name_id(name, "risks").and_then(|id| Uuid::parse_str(id).ok());
    if id.is_none() {
        v.add(field, "must be a risk name `risks/{id}` with a UUID id");
    }
    id
}

/// Checks one mutable field of a risk; `service` returns the service id.
fn check_risk_field(v: &mut Violations, r: &mut pb::Risk, field: &str) -> Option<String> {
    match field {
        "title" => v.line("risk.title", &r.title, true, 200),
        "description" => v.paragraph("risk.description", &r.description, false, 10_000),
        "service" => {
            return slug_name(v, "risk.service", &r.service, "services").map(str::to_string);
        }
        "category" => v.line("risk.category", &r.category, false, 100),
        "threat" => v.known("risk.threat", r.threat, Threat::try_from(r.threat).is_ok()),
        "identification_source" => v.known(
            "risk.identification_source",
            r.identification_source,
            IdentificationSource::try_from(r.identification_source).is_ok(),
        ),
        "source_reference" => v.line("risk.source_reference", &r.source_reference, false, 500),
        "owner" => v.principal("risk.owner", &mut r.owner, true),
        "labels" => check_labels(v, "risk.labels", &r.labels),
        _ => {}
    }
    None
}

#[tonic::async_trait]
impl RiskService for RiskApi {
    async fn create_risk(
        &self,
        request: Request<pb::CreateRiskRequest>,
    ) -> Result<Response<pb::Risk>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        v.request_id("request_id", &req.request_id);
        let r = &mut v.message("risk", req.risk.clone());
        let mut service_id = None;
        for field in RISK_UPDATABLE {
            if let Some(id) = check_risk_field(&mut v, r, field) {
                service_id = Some(id);
            }
        }
        v.finish()?;
        let model = risk::Model {
            title: r.title.clone(),
            description: r.description.clone(),
            service_id: service_id.unwrap_or_default(),
            category: r.category.clone(),
            threat: r.threat,
            identification_source: r.identification_source,
            source_reference: r.source_reference.clone(),
            owner: r.owner.clone(),
            ..identified_risk(Uuid::now_v7())
        };
        let created = self
            .store
            .create_risk(
                model,
                r.labels.clone(),
                RequestKey::for_request("CreateRisk", &caller, req, |r| &mut r.request_id),
                &caller,
            )
            .await
            .map_err(referenced("risk.service", &["services"]))?;
        Ok(Response::new(convert::risk(&created)))
    }

    async fn get_risk(
        &self,
        request: Request<pb::GetRiskRequest>,
    ) -> Result<Response<pb::Risk>, Status> {
        let mut v = Violations::new();
        let id = risk_id(&mut v, "name", &request.get_ref().name);
        v.finish()?;
        let r = self.store.get_risk(id.unwrap_or_default()).await?;
        Ok(Response::new(convert::risk(&r)))
    }

    async fn list_risks(
        &self,
        request: Request<pb::ListRisksRequest>,
    ) -> Result<Response<pb::ListRisksResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let show = if req.show_deleted { "1" } else { "0" };
        let query = ListQuery::parse(
            &mut v,
            &ListRequest {
                scope: &["risks", show],
                page_size: req.page_size,
                page_token: &req.page_token,
                filter: &req.filter,
                order_by: &req.order_by,
            },
            Some(&RISK_FILTER.at(FilterContext {
                now: self.clock.now_micros(),
            })),
            &RISK_SORTING,
        );
        v.finish()?;
        // Closed risks are listed when asked for, or when the filter speaks of status.
        let include_closed = req.show_deleted || query.mentions("status");
        let mut rows = self.store.list_risks(&query, include_closed).await?;
        let next_page_token = query.next_page(&mut rows, |r| risk_keys(&query, r));
        Ok(Response::new(pb::ListRisksResponse {
            risks: rows.iter().map(convert::risk).collect(),
            next_page_token,
        }))
    }

    async fn update_risk(
        &self,
        request: Request<pb::UpdateRiskRequest>,
    ) -> Result<Response<pb::Risk>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let mut r = v.message("risk", req.risk);
        let id = risk_id(&mut v, "risk.name", &r.name);
        let paths = update_paths(req.update_mask.as_ref(), RISK_UPDATABLE, |p| match p {
            "title" => !r.title.is_empty(),
            "description" => !r.description.is_empty(),
            "service" => !r.service.is_empty(),
            "category" => !r.category.is_empty(),
            "threat" => r.threat != 0,
            "identification_source" => r.identification_source != 0,
            "source_reference" => !r.source_reference.is_empty(),
            "owner" => !r.owner.is_empty(),
            "labels" => !r.labels.is_empty(),
            _ => false,
        })?;
        if paths.is_empty() {
            v.add("update_mask", "names no field to update");
        }
        let mut patch = RiskPatch::default();
        for path in &paths {
            let service = check_risk_field(&mut v, &mut r, path);
            match *path {
                "title" => patch.title = Some(r.title.clone()),
                "description" => patch.description = Some(r.description.clone()),
                "service" => patch.service_id = service,
                "category" => patch.category = Some(r.category.clone()),
                "threat" => patch.threat = Some(r.threat),
                "identification_source" => {
                    patch.identification_source = Some(r.identification_source)
                }
                "source_reference" => patch.source_reference = Some(r.source_reference.clone()),
                "owner" => patch.owner = Some(r.owner.clone()),
                "labels" => patch.labels = Some(r.labels.clone()),
                _ => {}
            }
        }
        let expected = v
            .absorb("risk.etag", parse_etag("risk.etag", &r.etag))
            .flatten();
        v.finish()?;
        let updated = self
            .store
            .update_risk(id.unwrap_or_default(), expected, patch, &caller)
            .await
            .map_err(referenced("risk.service", &["services"]))?;
        Ok(Response::new(convert::risk(&updated)))
    }

    async fn delete_risk(
        &self,
        request: Request<pb::DeleteRiskRequest>,
    ) -> Result<Response<pb::Risk>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = risk_id(&mut v, "name", &req.name);
        v.paragraph("reason", &req.reason, true, 2000);
        let expected = v.absorb("etag", parse_etag("etag", &req.etag)).flatten();
        v.finish()?;
        let closed = self
            .store
            .close_risk(id.unwrap_or_default(), expected, req.reason, &caller)
            .await?;
        Ok(Response::new(convert::risk(&closed)))
    }

    async fn assess_risk(
        &self,
        request: Request<pb::AssessRiskRequest>,
    ) -> Result<Response<pb::Risk>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = risk_id(&mut v, "name", &req.name);
        v.request_id("request_id", &req.request_id);
        let mut a = v.message("assessment", req.assessment.clone());
        v.in_range("assessment.impact", a.impact, 1, 5);
        v.in_range("assessment.likelihood", a.likelihood, 1, 5);
        // Given, or derived from the risk's linked controls (domain::controls): never both.
        let derive = req.derive_control_deficiency;
        match (derive, a.control_deficiency) {
            (true, 0) => {}
            (true, _) => v.add(
                "derive_control_deficiency",
                "cannot be combined with assessment.control_deficiency: give the value or derive it",
            ),
            (false, 0) => v.add(
                "assessment.control_deficiency",
                "is required (1–5), unless derive_control_deficiency is set",
            ),
            (false, given) => v.in_range("assessment.control_deficiency", given, 1, 5),
        }
        v.principal("assessment.assessor", &mut a.assessor, true);
        v.paragraph("assessment.rationale", &a.rationale, false, 10_000);
        v.finish()?;
        if derive {
            let risk = id.unwrap_or_default();
            let derived = self.store.derived_control_deficiency(risk).await?;
            a.control_deficiency = i32::from(derived);
        }
        let mut model = convert::assessment_model(&self.policy, &a);
        model.control_deficiency_derived = derive;
        let risk = self
            .store
            .assess_risk(
                id.unwrap_or_default(),
                model,
                RequestKey::for_request("AssessRisk", &caller, req, |r| &mut r.request_id),
                &caller,
            )
            .await?;
        Ok(Response::new(convert::risk(&risk)))
    }

    async fn list_assessments(
        &self,
        request: Request<pb::ListAssessmentsRequest>,
    ) -> Result<Response<pb::ListAssessmentsResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::new();
        let id = risk_id(&mut v, "parent", &req.parent);
        let list = ListQuery::parse(
            &mut v,
            &ListRequest {
                scope: &["assessments", &req.parent],
                page_size: req.page_size,
                page_token: &req.page_token,
                filter: &req.filter,
                order_by: &req.order_by,
            },
            Some(&listing::ASSESSMENT_FILTER.at(FilterContext {
                now: self.clock.now_micros(),
            })),
            &listing::ASSESSMENT_SORTING,
        );
        v.finish()?;
        let mut rows = self
            .store
            .list_assessments(id.unwrap_or_default(), &list)
            .await?;
        let next_page_token = list.next_page(&mut rows, |r| listing::assessment_keys(&list, r));
        Ok(Response::new(pb::ListAssessmentsResponse {
            assessments: rows.iter().map(convert::assessment).collect(),
            next_page_token,
        }))
    }

    async fn get_assessment(
        &self,
        request: Request<pb::GetAssessmentRequest>,
    ) -> Result<Response<pb::Assessment>, Status> {
        self.get_assessment(request).await
    }

    async fn get_risk_response(
        &self,
        request: Request<pb::GetRiskResponseRequest>,
    ) -> Result<Response<pb::RiskResponse>, Status> {
        self.get_response(request).await
    }

    async fn get_decision(
        &self,
        request: Request<pb::GetDecisionRequest>,
    ) -> Result<Response<pb::Decision>, Status> {
        self.get_decision(request).await
    }

    async fn update_action_plan(
        &self,
        request: Request<pb::UpdateActionPlanRequest>,
    ) -> Result<Response<pb::ActionPlan>, Status> {
        self.update_plan(request).await
    }

    async fn get_action_plan(
        &self,
        request: Request<pb::GetActionPlanRequest>,
    ) -> Result<Response<pb::ActionPlan>, Status> {
        self.get_plan(request).await
    }

    async fn get_action_item(
        &self,
        request: Request<pb::GetActionItemRequest>,
    ) -> Result<Response<pb::ActionItem>, Status> {
        self.get_item(request).await
    }

    async fn record_risk_realization(
        &self,
        request: Request<pb::RecordRiskRealizationRequest>,
    ) -> Result<Response<pb::ResponseEffectiveness>, Status> {
        self.record_realization(request).await
    }

    async fn get_response_effectiveness(
        &self,
        request: Request<pb::GetResponseEffectivenessRequest>,
    ) -> Result<Response<pb::ResponseEffectiveness>, Status> {
        self.get_effectiveness(request).await
    }

    async fn create_risk_response(
        &self,
        request: Request<pb::CreateRiskResponseRequest>,
    ) -> Result<Response<pb::RiskResponse>, Status> {
        self.create_response(request).await
    }

    async fn approve_risk_response(
        &self,
        request: Request<pb::ApproveRiskResponseRequest>,
    ) -> Result<Response<pb::RiskResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let key =
            RequestKey::for_request("ApproveRiskResponse", &caller, &req, |r| &mut r.request_id);
        let fields = (&*req.name, &*req.comment, &*req.etag, &*req.request_id);
        self.decide(caller, fields, true, key).await
    }

    async fn reject_risk_response(
        &self,
        request: Request<pb::RejectRiskResponseRequest>,
    ) -> Result<Response<pb::RiskResponse>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.into_inner();
        let key =
            RequestKey::for_request("RejectRiskResponse", &caller, &req, |r| &mut r.request_id);
        let fields = (&*req.name, &*req.reason, &*req.etag, &*req.request_id);
        self.decide(caller, fields, false, key).await
    }

    async fn list_risk_responses(
        &self,
        request: Request<pb::ListRiskResponsesRequest>,
    ) -> Result<Response<pb::ListRiskResponsesResponse>, Status> {
        self.list_responses(request).await
    }

    async fn list_decisions(
        &self,
        request: Request<pb::ListDecisionsRequest>,
    ) -> Result<Response<pb::ListDecisionsResponse>, Status> {
        self.decisions_page(request).await
    }

    async fn create_action_plan(
        &self,
        request: Request<pb::CreateActionPlanRequest>,
    ) -> Result<Response<pb::ActionPlan>, Status> {
        self.create_plan(request).await
    }

    async fn create_action_item(
        &self,
        request: Request<pb::CreateActionItemRequest>,
    ) -> Result<Response<pb::ActionItem>, Status> {
        self.create_item(request).await
    }

    async fn update_action_item(
        &self,
        request: Request<pb::UpdateActionItemRequest>,
    ) -> Result<Response<pb::ActionItem>, Status> {
        self.update_item(request).await
    }

    async fn list_action_items(
        &self,
        request: Request<pb::ListActionItemsRequest>,
    ) -> Result<Response<pb::ListActionItemsResponse>, Status> {
        self.list_items(request).await
    }
}
