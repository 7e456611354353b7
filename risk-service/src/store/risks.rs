//! Risks and their append-only assessments: create, update, close, assess, and the shared
//! read-modify-write of a locked risk row (`modify_in`, `lock_open_risk`). Listing is
//! `risk_list`, labels `labels`.

use std::collections::BTreeMap;

use assurance_runtime::{
    ApiError, ApiResult, audit, auth::Caller, db, list::ListQuery, time::now_micros,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use std::sync::Arc;

use super::{
    Outcome, RequestKey, SERVICE, Store,
    batch::{Job, Work},
    check_version,
    entities::{action_item, assessment, risk, risk_label},
    labels::{labels_json, write_labels},
    listing, notify_risks,
    org::service_business_unit,
    request_id_of, write_if_version,
};
use crate::domain::status::{RiskEvent, RiskStatus};

/// A risk as it is identified, before it is stored: only its id, no assessment, response or
/// labels yet.
pub fn identified_risk(id: Uuid) -> risk::Model {
    risk::Model {
        id,
        title: String::new(),
        description: String::new(),
        service_id: String::new(),
        business_unit_id: String::new(),
        category: String::new(),
        threat: 0,
        identification_source: 0,
        source_reference: String::new(),
        owner: String::new(),
        status: RiskStatus::Identified as i32,
        labels: String::new(),
        close_reason: String::new(),
        close_time: None,
        version: 0,
        create_time: 0,
        update_time: 0,
        latest_assessment_id: None,
        impact: 0,
        likelihood: 0,
        control_deficiency: 0,
        exposure: 0,
        score: 0,
        severity: 0,
        strategy: 0,
        risk_level: 0,
        methodology: 0,
        policy_id: String::new(),
        assessment_rationale: String::new(),
        assessor: String::new(),
        assess_time: None,
        next_review_time: None,
        control_deficiency_derived: false,
    }
}

/// Fields a caller may change on a risk; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct RiskPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub service_id: Option<String>,
    pub category: Option<String>,
    pub threat: Option<i32>,
    pub identification_source: Option<i32>,
    pub source_reference: Option<String>,
    pub owner: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
}

impl Store {
    /// Records a new risk (status IDENTIFIED) in the business unit of its service; committed
    /// in a batch with concurrent creates and assessments.
    pub async fn create_risk(
        &self,
        risk: risk::Model,
        labels: BTreeMap<String, String>,
        key: Option<RequestKey>,
        caller: &Caller,
    ) -> ApiResult<risk::Model> {
        caller.may_change(&risk.service_id)?;
        match &self.writer {
            Some(writer) => {
                let caller = caller.clone();
                submit(
                    writer,
                    Work::Create {
                        risk,
                        labels,
                        key,
                        caller,
                    },
                )
                .await
            }
            None => self.create_risk_now(risk, labels, key, caller).await,
        }
    }

    /// `create_risk` in a transaction of its own.
    pub(super) async fn create_risk_now(
        &self,
        mut r: risk::Model,
        labels: BTreeMap<String, String>,
        key: Option<RequestKey>,
        caller: &Caller,
    ) -> ApiResult<risk::Model> {
        let request_id = request_id_of(&key);
        let now = now_micros();
        (r.version, r.create_time, r.update_time) = (1, now, now);
        r.status = RiskStatus::Identified as i32;
        r.labels = labels_json(&labels);
        let outcome = self
            .idempotent(key, async |tx| {
                r.business_unit_id = service_business_unit(tx, &r.service_id).await?;
                let am = r.clone().into_active_model().reset_all();
                risk::Entity::insert(am).exec_without_returning(tx).await?;
                write_labels(tx, r.id, &labels).await?;
                let name = format!("risks/{}", r.id);
                audit::record(tx, SERVICE, caller, &name, &request_id).await?;
                Ok((name, r.clone()))
            })
            .await?;
        match outcome {
            Outcome::Created(m) => {
                self.cache.store_new(&m);
                Ok(m)
            }
            Outcome::Replayed(name) => self.get_risk(parse_risk_name(&name)?).await,
        }
    }

    /// A risk, from the read cache when it holds it.
    pub async fn get_risk(&self, id: Uuid) -> ApiResult<risk::Model> {
        if let Some(hit) = self.cache.get(&id) {
            return Ok(Arc::unwrap_or_clone(hit));
        }
        let token = self.cache.fill_token(&id);
        let found = risk::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .ok_or_else(|| ApiError::not_found(format!("risks/{id}")))?;
        self.cache.fill(token, &found);
        Ok(found)
    }

    /// Applies `patch` to an open risk, checking the etag.
    pub async fn update_risk(
        &self,
        id: Uuid,
        expected_version: Option<i64>,
        patch: RiskPatch,
        caller: &Caller,
    ) -> ApiResult<risk::Model> {
        self.modify_risk(id, expected_version, caller, async |tx, r| {
            status_of(r)?;
            refuse_closed(r, WhileOpen::Change)?;
            if let Some(service) = patch.service_id.clone()
                && service != r.service_id
            {
                caller.may_change(&service)?;
                r.business_unit_id = service_business_unit(tx, &service).await?;
                r.service_id = service;
                // The risk's action items follow it (their list filters and scope).
                action_item::Entity::update_many()
                    .col_expr(
                        action_item::Column::ServiceId,
                        Expr::value(r.service_id.clone()),
                    )
                    .col_expr(
                        action_item::Column::BusinessUnitId,
                        Expr::value(r.business_unit_id.clone()),
                    )
                    .filter(action_item::Column::RiskId.eq(id))
                    .exec(tx)
                    .await?;
            }
            let RiskPatch {
                title,
                description,
                category,
                threat,
                identification_source,
                source_reference,
                owner,
                labels,
                ..
            } = patch.clone();
            set(&mut r.title, title);
            set(&mut r.description, description);
            set(&mut r.category, category);
            set(&mut r.threat, threat);
            set(&mut r.identification_source, identification_source);
            set(&mut r.source_reference, source_reference);
            set(&mut r.owner, owner);
            if let Some(labels) = labels {
                r.labels = labels_json(&labels);
                risk_label::Entity::delete_many()
                    .filter(risk_label::Column::RiskId.eq(id))
                    .exec(tx)
                    .await?;
                write_labels(tx, id, &labels).await?;
            }
            Ok(())
        })
        .await
    }

    /// Closes a risk with a reason (the risk is kept).
    pub async fn close_risk(
        &self,
        id: Uuid,
        expected_version: Option<i64>,
        reason: String,
        caller: &Caller,
    ) -> ApiResult<risk::Model> {
        self.modify_risk(id, expected_version, caller, async |tx, r| {
            let next = transition(r, RiskEvent::Closed)?;
            let now = now_micros();
            r.status = next as i32;
            r.close_reason = reason.clone();
            r.close_time = Some(now);
            Store::log_closure(tx, id, caller, &reason, now).await
        })
        .await
    }

    /// Appends an assessment and makes it the risk's latest; moves the status. Committed in a
    /// batch with concurrent creates and assessments.
    pub async fn assess_risk(
        &self,
        id: Uuid,
        assessment: assessment::Model,
        key: Option<RequestKey>,
        caller: &Caller,
    ) -> ApiResult<risk::Model> {
        match &self.writer {
            Some(writer) => {
                let caller = caller.clone();
                submit(
                    writer,
                    Work::Assess {
                        id,
                        assessment,
                        key,
                        caller,
                    },
                )
                .await
            }
            None => self.assess_risk_now(id, assessment, key, caller).await,
        }
    }

    /// `assess_risk` in a transaction of its own.
    pub(super) async fn assess_risk_now(
        &self,
        id: Uuid,
        mut a: assessment::Model,
        key: Option<RequestKey>,
        caller: &Caller,
    ) -> ApiResult<risk::Model> {
        let request_id = request_id_of(&key);
        // Minted when applied, so "newest by id" is the latest applied.
        a.id = Uuid::now_v7();
        a.risk_id = id;
        a.assess_time = now_micros();
        let outcome = self
            .idempotent(key, async |tx| {
                let risk = modify_in(tx, id, None, async |_, r| {
                    caller.may_change(&r.service_id)?;
                    let next = transition(r, RiskEvent::Assessed)?;
                    apply_assessment(r, next, &a);
                    Ok(())
                })
                .await?;
                let am = a.clone().into_active_model().reset_all();
                assessment::Entity::insert(am)
                    .exec_without_returning(tx)
                    .await?;
                let name = format!("risks/{id}/assessments/{}", a.id);
                audit::record(tx, SERVICE, caller, &name, &request_id).await?;
                Ok((name, risk))
            })
            .await?;
        match outcome {
            Outcome::Created(m) => {
                self.cache.store(&m);
                Ok(m)
            }
            Outcome::Replayed(_) => self.get_risk(id).await,
        }
    }

    /// One assessment of a risk.
    pub async fn assessment(&self, risk_id: Uuid, id: Uuid) -> ApiResult<assessment::Model> {
        assessment::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .filter(|a| a.risk_id == risk_id)
            .ok_or_else(|| ApiError::not_found(format!("risks/{risk_id}/assessments/{id}")))
    }

    /// A page of a risk's assessments in `q`'s filter and order.
    pub async fn list_assessments(
        &self,
        risk_id: Uuid,
        q: &ListQuery,
    ) -> ApiResult<Vec<assessment::Model>> {
        // Distinguish "no assessments" from "no such risk".
        self.get_risk(risk_id).await?;
        let select = assessment::Entity::find().filter(assessment::Column::RiskId.eq(risk_id));
        let select = listing::page_of(
            select,
            q,
            listing::assessment_column,
            assessment::Column::Id,
        )?;
        Ok(select.all(self.connection()).await?)
    }

    /// Read-modify-write of one risk in its own write transaction.
    async fn modify_risk(
        &self,
        id: Uuid,
        expected_version: Option<i64>,
        caller: &Caller,
        change: impl AsyncFnOnce(&sea_orm::DatabaseTransaction, &mut risk::Model) -> ApiResult<()>,
    ) -> ApiResult<risk::Model> {
        let tx = db::begin_write(self.connection()).await?;
        let out = modify_in(&tx, id, expected_version, async |tx, r| {
            caller.may_change(&r.service_id)?;
            change(tx, r).await
        })
        .await?;
        audit::record(&tx, SERVICE, caller, &format!("risks/{id}"), "").await?;
        tx.commit().await?;
        self.cache.store(&out);
        Ok(out)
    }
}

/// What a closed risk refuses, for the refusal's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WhileOpen {
    /// Any change: its fields, its response or its action plan.
    Change,
    /// Linking or unlinking controls.
    ChangeControls,
    /// A periodic review.
    Review,
    /// A monitoring observation.
    Observe,
    /// Linking a new exception.
    LinkException,
}

/// `FAILED_PRECONDITION` (`RISK_CLOSED`) when `r` is closed and so refuses `what`.
pub(super) fn refuse_closed(r: &risk::Model, what: WhileOpen) -> ApiResult<()> {
    if r.status != RiskStatus::Closed as i32 {
        return Ok(());
    }
    let name = format!("risks/{}", r.id);
    let message = match what {
        WhileOpen::Change => format!("{name} is CLOSED and can no longer be changed"),
        WhileOpen::ChangeControls => {
            format!("{name} is CLOSED and its controls can no longer change")
        }
        WhileOpen::Review => format!("{name} is CLOSED and is no longer reviewed"),
        WhileOpen::Observe => format!("{name} is CLOSED"),
        WhileOpen::LinkException => {
            format!("{name} is CLOSED; an exception cannot be linked to it")
        }
    };
    Err(ApiError::precondition(
        assurance_runtime::Reason::RiskClosed,
        message,
    ))
}

/// The risk `id`, locked for the rest of `tx` (a row lock on PostgreSQL; a SQLite write
/// transaction holds the database already); `NOT_FOUND` when there is none.
pub(super) async fn lock_risk(tx: &DatabaseTransaction, id: Uuid) -> ApiResult<risk::Model> {
    risk::Entity::find_by_id(id)
        .lock_exclusive()
        .one(tx)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("risks/{id}")))
}

/// The risk `id`, locked for the rest of `tx`, when it is open for `what`. With `scope`, that
/// caller's scope must cover the risk's service (checked before the status, so an
/// out-of-scope caller learns nothing of it); `None` where the caller's scope is checked
/// afterwards.
pub(super) async fn lock_open_risk(
    tx: &DatabaseTransaction,
    id: Uuid,
    scope: Option<&Caller>,
    what: WhileOpen,
) -> ApiResult<risk::Model> {
    let r = lock_risk(tx, id).await?;
    if let Some(caller) = scope {
        caller.may_change(&r.service_id)?;
    }
    refuse_closed(&r, what)?;
    Ok(r)
}

/// Read-modify-write of one risk inside `tx`: locks the row (PostgreSQL), checks the etag,
/// applies `change`, bumps the version and writes it back.
pub(super) async fn modify_in(
    tx: &sea_orm::DatabaseTransaction,
    id: Uuid,
    expected_version: Option<i64>,
    change: impl AsyncFnOnce(&sea_orm::DatabaseTransaction, &mut risk::Model) -> ApiResult<()>,
) -> ApiResult<risk::Model> {
    let name = format!("risks/{id}");
    let current = risk::Entity::find_by_id(id)
        .lock_exclusive()
        .one(tx)
        .await?
        .ok_or_else(|| ApiError::not_found(&name))?;
    check_version(&name, expected_version, current.version)?;
    let mut next = current.clone();
    change(tx, &mut next).await?;
    next.version = current.version + 1;
    next.update_time = now_micros();
    write_if_version(
        tx,
        next.clone().into_active_model().reset_all(),
        (risk::Column::Id, id),
        (risk::Column::Version, current.version),
        &name,
    )
    .await?;
    notify_risks(tx, &id.to_string()).await?;
    Ok(next)
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// Makes `a` the latest assessment of `r`, in status `next`.
pub(super) fn apply_assessment(r: &mut risk::Model, next: RiskStatus, a: &assessment::Model) {
    r.status = next as i32;
    r.latest_assessment_id = Some(a.id);
    r.impact = a.impact;
    r.likelihood = a.likelihood;
    r.control_deficiency = a.control_deficiency;
    r.control_deficiency_derived = a.control_deficiency_derived;
    r.exposure = a.exposure;
    r.score = a.score;
    r.severity = a.severity;
    r.strategy = a.strategy;
    r.risk_level = a.risk_level;
    r.methodology = a.methodology;
    r.policy_id = a.policy_id.clone();
    r.assessment_rationale = a.rationale.clone();
    r.assessor = a.assessor.clone();
    r.assess_time = Some(a.assess_time);
    r.next_review_time = Some(crate::domain::governance::next_review(
        a.assess_time,
        a.severity,
    ));
}

/// Hands `work` to the group-commit writer and waits for its commit.
async fn submit(writer: &tokio::sync::mpsc::Sender<Job>, work: Work) -> ApiResult<risk::Model> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    writer
        .send(Job { work, reply })
        .await
        .map_err(|_| ApiError::Unavailable("the writer has stopped; retry".into()))?;
    answer.await.map_err(|_| {
        ApiError::Unavailable("the write was interrupted; retry with the same request_id".into())
    })?
}

fn status_of(r: &risk::Model) -> ApiResult<RiskStatus> {
    RiskStatus::try_from(r.status)
        .map_err(|_| ApiError::Internal(format!("risk {} has unknown status {}", r.id, r.status)))
}

/// The status after `event`, or FAILED_PRECONDITION naming the allowed moves.
pub(super) fn transition(r: &risk::Model, event: RiskEvent) -> ApiResult<RiskStatus> {
    let status = status_of(r)?;
    status.apply(event).ok_or_else(|| {
        ApiError::illegal_move(
            assurance_runtime::Reason::IllegalTransition,
            format_args!("risks/{} is {status}: cannot {}", r.id, event_label(event)),
            &status.to_string(),
            &status.allowed(),
        )
    })
}

fn event_label(event: RiskEvent) -> &'static str {
    match event {
        RiskEvent::Assessed => "assess",
        RiskEvent::ResponseProposed => "propose a response",
        RiskEvent::ResponseRejected => "reject the response",
        RiskEvent::ResponseApproved(_) => "approve the response",
        RiskEvent::ActionsFinished => "finish the action plan",
        RiskEvent::ReassessmentRequired => "require reassessment",
        RiskEvent::ResponseFailed => "record a response failure",
        RiskEvent::Closed => "close",
    }
}

fn parse_risk_name(name: &str) -> ApiResult<Uuid> {
    name.strip_prefix("risks/")
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| ApiError::Internal(format!("bad stored resource name {name}")))
}
