//! `assurance.risk.v1.ExceptionService`: security and compliance exceptions — request,
//! approve (trust_team or erm_executive, never one's own request), reject, revoke, list
//! (AIP-160 filters) — over the store's exception records.

use assurance_proto::risk::v1::{self as pb, exception_service_server::ExceptionService};
use assurance_runtime::list::{FilterContext, ListQuery, ListRequest, Sorting};
use assurance_runtime::{
    auth::Caller,
    time::{Clock, from_timestamp, to_timestamp},
    validate::{Violations, name_id, slug_name},
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{reference_error, risk::risk_id};
use crate::domain::exceptions::Move;
use crate::store::{
    RequestKey, Store, entities::exception, etag, exceptions::EXCEPTION_FILTER,
    exceptions::Exception, parse_etag,
};

const DAY_MICROS: i64 = 24 * 3600 * 1_000_000;
/// Exceptions run at most this long (one year, leap years included).
const MAX_EXCEPTION_MICROS: i64 = 366 * DAY_MICROS;
/// Most services one exception may exempt.
const MAX_SERVICES: usize = 50;

pub struct ExceptionApi {
    store: Store,
    clock: Clock,
}

impl ExceptionApi {
    pub fn new(store: Store, clock: Clock) -> Self {
        ExceptionApi { store, clock }
    }
}

/// `exceptions/{uuid}` → the id, or a violation on `field`.
fn exception_id(v: &mut Violations, field: &str, name: &str) -> Option<Uuid> {
    if name.is_empty() {
        v.add(field, "is required");
        return None;
    }
    let id = name_id(name, "exceptions").and_then(|id| Uuid::parse_str(id).ok());
    if id.is_none() {
        v.add(
            field,
            "must be an exception name `exceptions/{id}` with a UUID id",
        );
    }
    id
}

pub fn to_proto(x: &Exception) -> pb::PolicyException {
    let e = &x.model;
    pb::PolicyException {
        name: format!("exceptions/{}", e.id),
        title: e.title.clone(),
        scope: e.scope.clone(),
        services: x.services.iter().map(|s| format!("services/{s}")).collect(),
        risk: e.risk_id.map(|r| format!("risks/{r}")).unwrap_or_default(),
        justification: e.justification.clone(),
        compensating_controls: e.compensating_controls.clone(),
        requester: e.requester.clone(),
        approver: e.approver.clone(),
        status: e.status,
        expire_time: Some(to_timestamp(e.expire_time)),
        approve_time: e.approve_time.map(to_timestamp),
        revoke_time: e.revoke_time.map(to_timestamp),
        revoke_reason: e.revoke_reason.clone(),
        decision_comment: e.decision_comment.clone(),
        etag: etag(e.version),
        create_time: Some(to_timestamp(e.create_time)),
        update_time: Some(to_timestamp(e.update_time)),
        lapse_time: e.expiry_time.map(to_timestamp),
    }
}

impl ExceptionApi {
    /// Approve, reject or revoke `name`.
    #[allow(clippy::too_many_arguments)]
    async fn decide(
        &self,
        caller: Caller,
        name: &str,
        mv: Move,
        comment: &str,
        etag: &str,
        request_id: &str,
        key: Option<RequestKey>,
    ) -> Result<Response<pb::PolicyException>, Status> {
        let mut v = Violations::new();
        let id = exception_id(&mut v, "name", name);
        match mv {
            Move::Approve => v.paragraph("comment", comment, false, 4000),
            _ => v.paragraph("reason", comment, true, 4000),
        }
        let expected = v.absorb("etag", parse_etag("etag", etag));
        v.request_id("request_id", request_id);
        v.finish()?;
        let decided = self
            .store
            .decide_exception(
                id.unwrap_or_default(),
                mv,
                expected.flatten(),
                comment.to_string(),
                key,
                &caller,
                self.clock.now_micros(),
            )
            .await?;
        Ok(Response::new(to_proto(&decided)))
    }
}

#[tonic::async_trait]
impl ExceptionService for ExceptionApi {
    async fn create_policy_exception(
        &self,
        request: Request<pb::CreatePolicyExceptionRequest>,
    ) -> Result<Response<pb::PolicyException>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let now = self.clock.now_micros();
        let mut v = Violations::new();
        v.request_id("request_id", &req.request_id);
        let e = v.message("policy_exception", req.policy_exception.clone());
        let e = &e;
        v.line("policy_exception.title", &e.title, true, 200);
        v.paragraph("policy_exception.scope", &e.scope, true, 4000);
        let mut services: Vec<String> = Vec::new();
        if e.services.is_empty() {
            v.add(
                "policy_exception.services",
                "must name at least one service",
            );
        } else if e.services.len() > MAX_SERVICES {
            v.add(
                "policy_exception.services",
                format!(
                    "must name at most {MAX_SERVICES} services (got {})",
                    e.services.len()
                ),
            );
        }
        for (i, name) in e.services.iter().enumerate().take(MAX_SERVICES) {
            let field = format!("policy_exception.services[{i}]");
            if let Some(id) = slug_name(&mut v, &field, name, "services") {
                if services.iter().any(|s| s == id) {
                    v.add(field, format!("repeats services/{id}"));
                } else {
                    services.push(id.to_string());
                }
            }
        }
        let risk = if e.risk.is_empty() {
            None
        } else {
            risk_id(&mut v, "policy_exception.risk", &e.risk)
        };
        v.paragraph(
            "policy_exception.justification",
            &e.justification,
            true,
            4000,
        );
        v.paragraph(
            "policy_exception.compensating_controls",
            &e.compensating_controls,
            false,
            4000,
        );
        let expire_time = match e.expire_time.as_ref() {
            None => {
                v.add("policy_exception.expire_time", "is required");
                None
            }
            Some(ts) => match from_timestamp(ts) {
                None => {
                    v.add("policy_exception.expire_time", "is not a valid timestamp");
                    None
                }
                Some(at) if at <= now => {
                    v.add("policy_exception.expire_time", "must be in the future");
                    None
                }
                Some(at) if at > now.saturating_add(MAX_EXCEPTION_MICROS) => {
                    v.add(
                        "policy_exception.expire_time",
                        "must be at most one year (366 days) from now",
                    );
                    None
                }
                Some(at) => Some(at),
            },
        };
        v.finish()?;
        let model = exception::Model {
            id: Uuid::nil(),
            title: e.title.clone(),
            scope: e.scope.clone(),
            risk_id: risk,
            justification: e.justification.clone(),
            compensating_controls: e.compensating_controls.clone(),
            requester: String::new(),
            approver: String::new(),
            status: 0,
            expire_time: expire_time.unwrap_or_default(),
            approve_time: None,
            revoke_time: None,
            revoke_reason: String::new(),
            decision_comment: String::new(),
            expiry_time: None,
            version: 0,
            create_time: 0,
            update_time: 0,
        };
        let key = RequestKey::for_request("RequestException", &caller, req, |r| &mut r.request_id);
        let created = self
            .store
            .request_exception(model, services.clone(), key, &caller, now)
            .await
            .map_err(|e| {
                reference_error(e, |resource| {
                    if resource.starts_with("risks/") {
                        return Some("policy_exception.risk".to_string());
                    }
                    let id = resource.strip_prefix("services/")?;
                    let i = services.iter().position(|s| s == id)?;
                    Some(format!("policy_exception.services[{i}]"))
                })
            })?;
        Ok(Response::new(to_proto(&created)))
    }

    async fn get_policy_exception(
        &self,
        request: Request<pb::GetPolicyExceptionRequest>,
    ) -> Result<Response<pb::PolicyException>, Status> {
        let mut v = Violations::new();
        let id = exception_id(&mut v, "name", &request.get_ref().name);
        v.finish()?;
        let found = self.store.exception(id.unwrap_or_default()).await?;
        Ok(Response::new(to_proto(&found)))
    }

    async fn list_policy_exceptions(
        &self,
        request: Request<pb::ListPolicyExceptionsRequest>,
    ) -> Result<Response<pb::ListPolicyExceptionsResponse>, Status> {
        let req = request.get_ref();
        let now = self.clock.now_micros();
        let mut v = Violations::new();
        let list = ListQuery::parse(
            &mut v,
            &ListRequest {
                scope: &["exceptions"],
                page_size: req.page_size,
                page_token: &req.page_token,
                filter: &req.filter,
                order_by: "",
            },
            Some(&EXCEPTION_FILTER.at(FilterContext { now })),
            &Sorting::BY_UUID,
        );
        v.finish()?;
        let mut rows = self.store.exceptions(&list).await?;
        let next_page_token = list.next_page_by_id(&mut rows, |x| x.model.id);
        Ok(Response::new(pb::ListPolicyExceptionsResponse {
            policy_exceptions: rows.iter().map(to_proto).collect(),
            next_page_token,
        }))
    }

    async fn approve_policy_exception(
        &self,
        request: Request<pb::ApprovePolicyExceptionRequest>,
    ) -> Result<Response<pb::PolicyException>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let key = RequestKey::for_request("ApprovePolicyException", &caller, req, |r| {
            &mut r.request_id
        });
        self.decide(
            caller,
            &req.name,
            Move::Approve,
            &req.comment,
            &req.etag,
            &req.request_id,
            key,
        )
        .await
    }

    async fn reject_policy_exception(
        &self,
        request: Request<pb::RejectPolicyExceptionRequest>,
    ) -> Result<Response<pb::PolicyException>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let key =
            RequestKey::for_request("RejectPolicyException", &caller, req, |r| &mut r.request_id);
        self.decide(
            caller,
            &req.name,
            Move::Reject,
            &req.reason,
            &req.etag,
            &req.request_id,
            key,
        )
        .await
    }

    async fn revoke_policy_exception(
        &self,
        request: Request<pb::RevokePolicyExceptionRequest>,
    ) -> Result<Response<pb::PolicyException>, Status> {
        let caller = Caller::of(&request)?;
        let req = request.get_ref();
        let key =
            RequestKey::for_request("RevokePolicyException", &caller, req, |r| &mut r.request_id);
        self.decide(
            caller,
            &req.name,
            Move::Revoke,
            &req.reason,
            &req.etag,
            &req.request_id,
            key,
        )
        .await
    }
}
