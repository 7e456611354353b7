//! Risks, their labels and their append-only assessments.

use std::collections::BTreeMap;

use assurance_proto::risk::v1 as pb;
use assurance_runtime::{
    ApiError, ApiResult, audit,
    auth::Caller,
    db,
    filter::{FilterSchema, Op, compare, enum_value, equality_only},
    page::Key,
    time::{now_micros, parse_rfc3339},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    IntoActiveModel, Order, QueryFilter, QueryOrder, QuerySelect, Value,
    sea_query::{Expr, Query},
};
use uuid::Uuid;

use std::sync::Arc;

use super::{
    Outcome, RequestKey, SERVICE, Store,
    batch::{Job, Work},
    check_version,
    entities::{action_item, assessment, risk, risk_label},
    notify_risks,
    org::service_business_unit,
    request_id_of,
};
use crate::domain::status::{RiskEvent, RiskStatus};

/// Sortable fields of a risk list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskOrder {
    CreateTime,
    UpdateTime,
    Score,
    Title,
}

impl RiskOrder {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "create_time" => RiskOrder::CreateTime,
            "update_time" => RiskOrder::UpdateTime,
            "score" => RiskOrder::Score,
            "title" => RiskOrder::Title,
            _ => return None,
        })
    }

    fn column(self) -> risk::Column {
        match self {
            RiskOrder::CreateTime => risk::Column::CreateTime,
            RiskOrder::UpdateTime => risk::Column::UpdateTime,
            RiskOrder::Score => risk::Column::Score,
            RiskOrder::Title => risk::Column::Title,
        }
    }

    fn key(self, r: &risk::Model) -> Key {
        match self {
            RiskOrder::CreateTime => Key::Int(r.create_time),
            RiskOrder::UpdateTime => Key::Int(r.update_time),
            RiskOrder::Score => Key::Int(i64::from(r.score)),
            RiskOrder::Title => Key::Text(r.title.clone()),
        }
    }
}

/// A page of a risk list: filter condition, sort fields (the id breaks ties), and the keys
/// of the last row of the previous page.
pub struct ListRisks {
    pub condition: Condition,
    pub order: Vec<(RiskOrder, Order)>,
    pub after: Option<Vec<Key>>,
    pub limit: u64,
}

impl ListRisks {
    /// The page-token keys of a row: one per sort field, then the id.
    pub fn keys_of(&self, r: &risk::Model) -> Vec<Key> {
        let mut keys: Vec<Key> = self.order.iter().map(|(f, _)| f.key(r)).collect();
        keys.push(Key::Text(r.id.to_string()));
        keys
    }

    fn tie_break(&self) -> Order {
        self.order.first().map_or(Order::Asc, |(_, o)| o.clone())
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

    pub async fn list_risks(&self, q: &ListRisks) -> ApiResult<Vec<risk::Model>> {
        let mut select = risk::Entity::find().filter(q.condition.clone());
        for (field, order) in &q.order {
            select = select.order_by(field.column(), order.clone());
        }
        select = select.order_by(risk::Column::Id, q.tie_break());
        if let Some(after) = &q.after {
            select = select.filter(after_condition(q, after)?);
        }
        Ok(select.limit(q.limit).all(self.connection()).await?)
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

    /// Assessments of a risk, newest first, after the assessment id `after`.
    pub async fn list_assessments(
        &self,
        risk_id: Uuid,
        after: Option<Uuid>,
        limit: u64,
    ) -> ApiResult<Vec<assessment::Model>> {
        // Distinguish "no assessments" from "no such risk".
        self.get_risk(risk_id).await?;
        let mut q = assessment::Entity::find()
            .filter(assessment::Column::RiskId.eq(risk_id))
            .order_by_desc(assessment::Column::Id);
        if let Some(after) = after {
            q = q.filter(assessment::Column::Id.lt(after));
        }
        Ok(q.limit(limit).all(self.connection()).await?)
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
    let written = risk::Entity::update_many()
        .set(next.clone().into_active_model().reset_all())
        .filter(risk::Column::Id.eq(id))
        .filter(risk::Column::Version.eq(current.version))
        .exec(tx)
        .await?;
    if written.rows_affected != 1 {
        return Err(ApiError::Conflict { resource: name });
    }
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
        RiskEvent::Closed => "close",
    }
}

pub(super) fn labels_json(labels: &BTreeMap<String, String>) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "{}".into())
}

pub fn labels_from_json(json: &str) -> BTreeMap<String, String> {
    serde_json::from_str(json).unwrap_or_default()
}

async fn write_labels(
    conn: &impl ConnectionTrait,
    risk_id: Uuid,
    labels: &BTreeMap<String, String>,
) -> ApiResult<()> {
    if labels.is_empty() {
        return Ok(());
    }
    let rows = labels.iter().map(|(k, v)| {
        risk_label::Model {
            risk_id,
            key: k.clone(),
            value: v.clone(),
        }
        .into_active_model()
        .reset_all()
    });
    risk_label::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

fn parse_risk_name(name: &str) -> ApiResult<Uuid> {
    name.strip_prefix("risks/")
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| ApiError::Internal(format!("bad stored resource name {name}")))
}

/// Rows strictly after `after` in the list's order (keyset pagination).
fn after_condition(q: &ListRisks, after: &[Key]) -> ApiResult<Condition> {
    let malformed =
        || ApiError::invalid("page_token", "is not a page token issued by this service");
    let mut fields: Vec<(risk::Column, Order, Value)> = Vec::new();
    for ((field, order), key) in q.order.iter().zip(after) {
        let value = match (field, key) {
            (RiskOrder::Title, Key::Text(t)) => Value::from(t.clone()),
            (RiskOrder::Title, _) | (_, Key::Text(_)) => return Err(malformed()),
            (_, Key::Int(i)) => Value::from(*i),
        };
        fields.push((field.column(), order.clone(), value));
    }
    let id = match after.last() {
        Some(Key::Text(id)) => Uuid::parse_str(id).map_err(|_| malformed())?,
        _ => return Err(malformed()),
    };
    fields.push((risk::Column::Id, q.tie_break(), Value::from(id)));
    let mut any = Condition::any();
    for k in 0..fields.len() {
        let mut all = Condition::all();
        for (col, _, v) in &fields[..k] {
            all = all.add(col.eq(v.clone()));
        }
        let (col, order, v) = &fields[k];
        all = all.add(match order {
            Order::Desc => col.lt(v.clone()),
            _ => col.gt(v.clone()),
        });
        any = any.add(all);
    }
    Ok(any)
}

/// The AIP-160 fields of `ListRisks`.
pub struct RiskFilter {
    /// "Now" for `review_overdue`, in microseconds.
    pub now: i64,
}

impl FilterSchema for RiskFilter {
    fn compare(&self, field: &str, op: Op, value: &str) -> Result<Condition, String> {
        let bad_enum =
            |allowed: &str| format!("`{value}` is not a valid {field}; one of {allowed}");
        match field {
            "service" => {
                equality_only(field, op)?;
                let id = value.strip_prefix("services/").unwrap_or(value);
                Ok(compare(risk::Column::ServiceId, op, id.into()))
            }
            "business_unit" => {
                equality_only(field, op)?;
                let id = value.strip_prefix("businessUnits/").unwrap_or(value);
                Ok(compare(risk::Column::BusinessUnitId, op, id.into()))
            }
            "owner" | "category" => {
                equality_only(field, op)?;
                let col = if field == "owner" {
                    risk::Column::Owner
                } else {
                    risk::Column::Category
                };
                Ok(compare(col, op, value.into()))
            }
            "review_overdue" => {
                equality_only(field, op)?;
                let wanted = match value {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(format!(
                            "`review_overdue` compares with true or false (got `{value}`)"
                        ));
                    }
                } == (op == Op::Eq);
                let overdue = Condition::all()
                    .add(risk::Column::NextReviewTime.lt(self.now))
                    .add(risk::Column::Status.ne(RiskStatus::Closed as i32));
                Ok(if wanted { overdue } else { overdue.not() })
            }
            "status" => {
                equality_only(field, op)?;
                let v = enum_value(value, "RISK_STATUS_", |s| {
                    pb::RiskStatus::from_str_name(s).map(|e| e as i32)
                })
                .ok_or_else(|| {
                    bad_enum(
                        "IDENTIFIED, ASSESSED, RESPONSE_PLANNED, IN_TREATMENT, MONITORING, CLOSED",
                    )
                })?;
                Ok(compare(risk::Column::Status, op, v.into()))
            }
            "severity" => {
                let v = enum_value(value, "SEVERITY_", |s| {
                    pb::Severity::from_str_name(s).map(|e| e as i32)
                })
                .ok_or_else(|| bad_enum("LOW, MEDIUM, HIGH, CRITICAL"))?;
                // Unassessed risks have no severity: ordered comparisons never match them.
                let cond = compare(risk::Column::Severity, op, v.into());
                Ok(if op == Op::Ne {
                    cond
                } else {
                    cond.add(risk::Column::Severity.gt(0))
                })
            }
            "strategy" => {
                equality_only(field, op)?;
                let v = enum_value(value, "RESPONSE_STRATEGY_", |s| {
                    pb::ResponseStrategy::from_str_name(s).map(|e| e as i32)
                })
                .ok_or_else(|| bad_enum("TOLERATE, OPERATE, MONITOR, IMPROVE"))?;
                Ok(compare(risk::Column::Strategy, op, v.into()))
            }
            "identification_source" | "source" => {
                equality_only(field, op)?;
                let v = enum_value(value, "IDENTIFICATION_SOURCE_", |s| pb::IdentificationSource::from_str_name(s).map(|e| e as i32))
                    .ok_or_else(|| bad_enum("INTERVIEW, VULNERABILITY_SCAN, ATTACK_SIMULATION, AUDIT_FINDING, INCIDENT, CONTINUOUS_MONITORING, OTHER"))?;
                Ok(compare(risk::Column::IdentificationSource, op, v.into()))
            }
            "threat" => {
                equality_only(field, op)?;
                let v = enum_value(value, "THREAT_", |s| {
                    pb::Threat::from_str_name(s).map(|e| e as i32)
                })
                .ok_or_else(|| bad_enum("INTERNAL, EXTERNAL"))?;
                Ok(compare(risk::Column::Threat, op, v.into()))
            }
            "score" | "exposure" => {
                let n: i32 = value.parse().map_err(|_| {
                    format!("`{field}` compares with a whole number (got `{value}`)")
                })?;
                let col = if field == "score" {
                    risk::Column::Score
                } else {
                    risk::Column::Exposure
                };
                Ok(compare(col, op, n.into()).add(risk::Column::Score.gt(0)))
            }
            "create_time" | "update_time" => {
                let micros = parse_rfc3339(value).ok_or_else(|| {
                    format!("`{field}` compares with an RFC 3339 time such as \"2026-01-31T00:00:00Z\" (got `{value}`)")
                })?;
                let col = if field == "create_time" {
                    risk::Column::CreateTime
                } else {
                    risk::Column::UpdateTime
                };
                Ok(compare(col, op, micros.into()))
            }
            _ => {
                if let Some(key) = field.strip_prefix("labels.") {
                    equality_only(field, op)?;
                    let matching = Query::select()
                        .column(risk_label::Column::RiskId)
                        .from(risk_label::Entity)
                        .and_where(risk_label::Column::Key.eq(key))
                        .and_where(risk_label::Column::Value.eq(value))
                        .to_owned();
                    let cond = Condition::all().add(risk::Column::Id.in_subquery(matching));
                    return Ok(if op == Op::Eq { cond } else { cond.not() });
                }
                Err(format!(
                    "unknown field `{field}`; filterable: service, business_unit, status, severity, strategy, owner, \
                     identification_source, category, threat, score, exposure, create_time, update_time, review_overdue, labels.<key>"
                ))
            }
        }
    }
}
