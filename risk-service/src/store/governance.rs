//! Risk responses and their approvals, the decision log, action plans and the expiry of
//! acceptances. Every change moves the risk through the status machine, appends to the decision
//! log and records its audit event in one transaction.

use assurance_runtime::{
    ApiError, ApiResult, audit,
    auth::Caller,
    db,
    filter::{Op, compare_pair},
    idempotency::last_segment,
    list::{EnumValues, Field, FilterContext, FilterTable, Kind, ListQuery},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    Outcome, RequestKey, SERVICE, Store, check_version,
    entities::{action_item, action_plan, decision, risk, risk_response},
    insert_new, listing, next_version, request_id_of,
    risks::{WhileOpen, lock_open_risk, lock_risk, modify_in, transition},
    write_version,
};
use crate::domain::{
    governance::{
        ActionItemStatus, ApprovalState, DecisionKind, is_finished, may_approve, required_role,
    },
    scoring::{Severity, Strategy},
    status::{Decision, RiskEvent, RiskStatus},
};

/// Plans are keyed by their risk (one plan per risk).
impl super::Versioned for action_plan::Model {
    const ID: action_plan::Column = action_plan::Column::RiskId;
    const VERSION: action_plan::Column = action_plan::Column::Version;
    fn id_value(&self) -> sea_orm::Value {
        self.risk_id.into()
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn stamp(&mut self, version: i64, update_time: i64) {
        (self.version, self.update_time) = (version, update_time);
    }
}

static ITEM_STATUS: EnumValues = EnumValues {
    prefix: "WORK_ITEM_STATUS_",
    values: ActionItemStatus::NAMES,
};

/// The filter fields of `ListActionItems`; `overdue` compares with the clock's now. The same
/// names and meanings as `ListFollowUps`' (incident-service), so one work-item filter reads
/// both; `name` compares in name order, which is how the gateway's `ListWorkItems` continues
/// after the last item it returned.
pub static ITEM_FILTER: FilterTable<action_item::Column> = FilterTable(&[
    Field::new(
        "status",
        Kind::Enum {
            column: action_item::Column::Status,
            values: &ITEM_STATUS,
            ordered: false,
        },
    ),
    Field::new("owner", Kind::Text(action_item::Column::Owner)),
    Field::new("overdue", Kind::Flag(overdue)),
    Field::new(
        "service",
        Kind::Id(action_item::Column::ServiceId, "services/"),
    ),
    Field::new(
        "business_unit",
        Kind::Id(action_item::Column::BusinessUnitId, "businessUnits/"),
    ),
    Field::new(
        "tracker_system",
        Kind::Text(action_item::Column::TrackerSystem),
    ),
    Field::new("external_key", Kind::Text(action_item::Column::TrackerKey)),
    Field::new("due_time", Kind::Time(action_item::Column::DueTime)),
    Field::new("create_time", Kind::Time(action_item::Column::CreateTime)),
    Field::new("update_time", Kind::Time(action_item::Column::UpdateTime)),
    Field::new("name", Kind::Custom(item_name)),
]);

/// `name OP "risks/{risk}/actionPlan/items/{item}"`, in name order (risk, then item).
fn item_name(field: &str, op: Op, value: &str, _: &FilterContext) -> Result<Condition, String> {
    let ids = match value.split('/').collect::<Vec<_>>().as_slice() {
        ["risks", risk, "actionPlan", "items", item] => {
            Uuid::parse_str(risk).ok().zip(Uuid::parse_str(item).ok())
        }
        _ => None,
    };
    let (risk, item) = ids.ok_or_else(|| {
        format!(
            "`{field}` compares with `risks/{{risk}}/actionPlan/items/{{item}}` (got `{value}`)"
        )
    })?;
    Ok(compare_pair(
        (action_item::Column::RiskId, risk.into()),
        (action_item::Column::Id, item.into()),
        op,
    ))
}

/// Due before now and not finished.
fn overdue(cx: &FilterContext) -> Condition {
    Condition::all()
        .add(action_item::Column::DueTime.lt(cx.now))
        .add(action_item::Column::Status.is_not_in(ActionItemStatus::FINISHED.map(|s| s as i32)))
}

fn decision_of(d: i32) -> ApiResult<Decision> {
    Decision::try_from(d).map_err(|_| ApiError::Internal(format!("unknown response decision {d}")))
}

fn decision_name(d: i32) -> &'static str {
    Decision::try_from(d).map_or("UNKNOWN", Decision::as_str)
}

/// Appends to the decision log (inside the deciding transaction).
pub(super) async fn log(
    tx: &DatabaseTransaction,
    risk_id: Uuid,
    kind: DecisionKind,
    actor: String,
    summary: String,
    response_id: Option<Uuid>,
    now: i64,
) -> ApiResult<()> {
    decision::Model {
        id: Uuid::now_v7(),
        risk_id,
        kind: kind as i32,
        actor,
        summary,
        response_id,
        time: now,
    }
    .into_active_model()
    .insert(tx)
    .await?;
    Ok(())
}

/// (items, items not DONE or WONT_DO) of a risk's action plan.
async fn item_counts(conn: &impl ConnectionTrait, risk_id: Uuid) -> ApiResult<(u64, u64)> {
    let items = action_item::Entity::find().filter(action_item::Column::RiskId.eq(risk_id));
    let all = items.clone().count(conn).await?;
    let open = items
        .filter(action_item::Column::Status.is_not_in(ActionItemStatus::FINISHED.map(i32::from)))
        .count(conn)
        .await?;
    Ok((all, open))
}

/// Ends the treatment of a risk `IN_TREATMENT` whose action plan has items, all `DONE` or
/// `WONT_DO` (→ `MONITORING`), with its decision-log entry. The risk row is locked before the
/// items are counted, so two callers finishing the last two items at once are serialised and
/// the second sees both finished.
async fn finish_treatment(
    tx: &DatabaseTransaction,
    risk_id: Uuid,
    caller: &Caller,
    now: i64,
) -> ApiResult<Option<risk::Model>> {
    let Some(risk) = risk::Entity::find_by_id(risk_id)
        .lock_exclusive()
        .one(tx)
        .await?
    else {
        return Ok(None);
    };
    if risk.status != RiskStatus::InTreatment as i32 {
        return Ok(None);
    }
    let (all, open) = item_counts(tx, risk_id).await?;
    if all == 0 || open > 0 {
        return Ok(None);
    }
    let moved = modify_in(tx, risk_id, None, async |_, r| {
        r.status = transition(r, RiskEvent::ActionsFinished)? as i32;
        Ok(())
    })
    .await?;
    log(
        tx,
        risk_id,
        DecisionKind::ActionsCompleted,
        caller.actor(),
        format!("every one of the {all} action items is done or won't be done"),
        None,
        now,
    )
    .await?;
    Ok(Some(moved))
}

/// The version of a response, its etag: 1 while pending, 2 once decided, 3 once an approved
/// response stopped governing its risk (`expired`). Those are the only changes a response
/// undergoes, in that order, so the version needs no column of its own.
pub fn response_version(r: &risk_response::Model) -> i64 {
    1 + i64::from(r.state != ApprovalState::Pending as i32) + i64::from(r.expired)
}

/// [`Store::decide_response`] inside its transaction: the risk as moved and the decided response.
#[allow(clippy::too_many_arguments)]
async fn decide_in(
    tx: &DatabaseTransaction,
    risk_id: Uuid,
    id: Uuid,
    approve: bool,
    comment: &str,
    expected_version: Option<i64>,
    caller: &Caller,
    now: i64,
) -> ApiResult<(risk::Model, risk_response::Model)> {
    let name = format!("risks/{risk_id}/responses/{id}");
    let mut response = risk_response::Entity::find_by_id(id)
        .lock_exclusive()
        .one(tx)
        .await?
        .filter(|r| r.risk_id == risk_id)
        .ok_or_else(|| ApiError::not_found(&name))?;
    check_version(&name, expected_version, response_version(&response))?;
    if response.state != ApprovalState::Pending as i32 {
        return Err(ApiError::precondition(
            assurance_runtime::Reason::NotPending,
            format!("{name} was already decided"),
        ));
    }
    let own = assurance_runtime::auth::same_principal(&response.proposer, caller.person());
    if approve && own {
        return Err(ApiError::precondition(
            assurance_runtime::Reason::SelfApproval,
            format!(
                "{name} was proposed by {}; someone else must approve it",
                response.proposer
            ),
        ));
    }
    if approve && response.acceptance_expire_time.is_some_and(|at| at <= now) {
        return Err(ApiError::precondition(
            assurance_runtime::Reason::Expired,
            format!("{name} is an acceptance whose expiry has passed; propose a new response"),
        ));
    }
    let proposed = assurance_runtime::auth::Role::parse(&response.required_role)
        .ok_or_else(|| ApiError::Internal(format!("{name} has an unknown required role")))?;
    let withdrawing = own && !approve;
    let event = if approve {
        RiskEvent::ResponseApproved(decision_of(response.decision)?)
    } else {
        RiskEvent::ResponseRejected
    };
    let risk = modify_in(tx, risk_id, None, async |_, r| {
            caller.may_change(&r.service_id)?;
            // The level follows the risk's severity now if a reassessment raised it since.
            let current = required_role(r.severity);
            let required = if current > proposed { current } else { proposed };
            if !withdrawing && !may_approve(caller.principal.roles, required) {
                return Err(ApiError::PermissionDenied(format!(
                    "{name} is a response to a {} risk: deciding it needs the {required} role or a higher one \
                     (risk_owner < service_manager < trust_team < erm_executive); {} has {}",
                    severity_name(r.severity),
                    caller.principal.subject,
                    caller.principal.roles
                )));
            }
            r.status = transition(r, event)? as i32;
            Ok(())
        })
        .await?;
    if approve {
        // The approved response replaces any earlier one: an older acceptance no longer
        // governs the risk and must not expire it later.
        risk_response::Entity::update_many()
            .col_expr(risk_response::Column::Expired, Expr::value(true))
            .filter(risk_response::Column::RiskId.eq(risk_id))
            .filter(risk_response::Column::State.eq(ApprovalState::Approved as i32))
            .filter(risk_response::Column::Id.ne(id))
            .exec(tx)
            .await?;
    }
    response.state = if approve {
        ApprovalState::Approved
    } else {
        ApprovalState::Rejected
    } as i32;
    response.decided_by = caller.person().to_string();
    response.decision_comment = comment.to_string();
    response.decide_time = Some(now);
    risk_response::Entity::update(response.clone().into_active_model().reset_all())
        .exec(tx)
        .await?;
    let (kind, verb) = if approve {
        (DecisionKind::ResponseApproved, "approved")
    } else {
        (DecisionKind::ResponseRejected, "rejected")
    };
    let mut summary = format!("{verb} {}", decision_name(response.decision));
    if !comment.is_empty() {
        summary.push_str(&format!(": {comment}"));
    }
    log(tx, risk_id, kind, caller.actor(), summary, Some(id), now).await?;
    // A plan already finished when the treatment is approved ends it at once.
    let risk = finish_treatment(tx, risk_id, caller, now)
        .await?
        .unwrap_or(risk);
    Ok((risk, response))
}

impl Store {
    /// Proposes `response` for the risk `risk_id` (→ RESPONSE_PLANNED).
    pub async fn set_response(
        &self,
        risk_id: Uuid,
        mut response: risk_response::Model,
        key: Option<RequestKey>,
        caller: &Caller,
        now: i64,
    ) -> ApiResult<risk_response::Model> {
        let request_id = request_id_of(&key);
        let outcome = self
            .idempotent(key, async |tx| {
                let risk = modify_in(tx, risk_id, None, async |_, r| {
                    caller.may_change(&r.service_id)?;
                    r.status = transition(r, RiskEvent::ResponseProposed)? as i32;
                    Ok(())
                })
                .await?;
                response.id = Uuid::now_v7();
                response.risk_id = risk_id;
                response.severity = risk.severity;
                response.strategy = if response.strategy_override != 0 {
                    response.strategy_override
                } else {
                    risk.strategy
                };
                let level = super::approval_level::governing_severity(tx, &risk).await?;
                response.required_role = required_role(level).as_str().to_string();
                response.state = ApprovalState::Pending as i32;
                response.proposer = caller.person().to_string();
                response.create_time = now;
                response.clone().into_active_model().insert(tx).await?;
                let name = format!("risks/{risk_id}/responses/{}", response.id);
                log(
                    tx,
                    risk_id,
                    DecisionKind::ResponseProposed,
                    caller.actor(),
                    format!(
                        "proposed {}; approval by {} required",
                        decision_name(response.decision),
                        response.required_role
                    ),
                    Some(response.id),
                    now,
                )
                .await?;
                if response.strategy_override != 0 && response.strategy_override != risk.strategy {
                    log(
                        tx,
                        risk_id,
                        DecisionKind::StrategyOverridden,
                        caller.actor(),
                        format!(
                            "strategy {} overridden to {}: {}",
                            strategy_name(risk.strategy),
                            strategy_name(response.strategy_override),
                            response.override_justification
                        ),
                        Some(response.id),
                        now,
                    )
                    .await?;
                }
                audit::record(tx, SERVICE, caller, &name, &request_id).await?;
                Ok((name, (risk, response.clone())))
            })
            .await?;
        match outcome {
            Outcome::Created((risk, response)) => {
                self.cache.store(&risk);
                Ok(response)
            }
            Outcome::Replayed(name) => {
                let id = last_segment(&name)?;
                self.response(risk_id, id).await
            }
        }
    }

    pub async fn response(&self, risk_id: Uuid, id: Uuid) -> ApiResult<risk_response::Model> {
        risk_response::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .filter(|r| r.risk_id == risk_id)
            .ok_or_else(|| ApiError::not_found(format!("risks/{risk_id}/responses/{id}")))
    }

    /// Approves (→ IN_TREATMENT, or MONITORING for ACCEPT) or rejects (→ ASSESSED) a pending
    /// response. Approvers need the level of the risk's severity and must not be the proposer;
    /// a rejection needs the same level, except that proposers may withdraw their own.
    /// `expected_version` (the etag), when given, must be the response's current version; a
    /// request key makes a retry answer with the response as it is now, deciding it once.
    #[allow(clippy::too_many_arguments)]
    pub async fn decide_response(
        &self,
        risk_id: Uuid,
        id: Uuid,
        approve: bool,
        comment: String,
        expected_version: Option<i64>,
        key: Option<RequestKey>,
        caller: &Caller,
        now: i64,
    ) -> ApiResult<risk_response::Model> {
        let name = format!("risks/{risk_id}/responses/{id}");
        let request_id = request_id_of(&key);
        let outcome = self
            .idempotent(key, async |tx| {
                let decided = decide_in(
                    tx,
                    risk_id,
                    id,
                    approve,
                    &comment,
                    expected_version,
                    caller,
                    now,
                )
                .await?;
                audit::record(tx, SERVICE, caller, &name, &request_id).await?;
                Ok((name.clone(), decided))
            })
            .await?;
        match outcome {
            Outcome::Created((risk, response)) => {
                self.cache.store(&risk);
                Ok(response)
            }
            Outcome::Replayed(_) => self.response(risk_id, id).await,
        }
    }

    /// A page of a risk's responses in `q`'s filter and order.
    pub async fn responses(
        &self,
        risk_id: Uuid,
        q: &ListQuery,
    ) -> ApiResult<Vec<risk_response::Model>> {
        self.get_risk(risk_id).await?;
        let select =
            risk_response::Entity::find().filter(risk_response::Column::RiskId.eq(risk_id));
        let select = listing::page_of(
            select,
            q,
            listing::response_column,
            risk_response::Column::Id,
        )?;
        Ok(select.all(self.connection()).await?)
    }

    /// A page of the decision log of one risk (or all) in `q`'s filter and order.
    pub async fn decisions(
        &self,
        risk_id: Option<Uuid>,
        q: &ListQuery,
    ) -> ApiResult<Vec<decision::Model>> {
        let mut select = decision::Entity::find();
        if let Some(risk_id) = risk_id {
            self.get_risk(risk_id).await?;
            select = select.filter(decision::Column::RiskId.eq(risk_id));
        }
        let select = listing::page_of(select, q, listing::decision_column, decision::Column::Id)?;
        Ok(select.all(self.connection()).await?)
    }

    /// One entry of a risk's decision log.
    pub async fn decision(&self, risk_id: Uuid, id: Uuid) -> ApiResult<decision::Model> {
        decision::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .filter(|d| d.risk_id == risk_id)
            .ok_or_else(|| ApiError::not_found(format!("risks/{risk_id}/decisions/{id}")))
    }

    /// Creates the action plan of a risk.
    pub async fn create_plan(
        &self,
        mut plan: action_plan::Model,
        key: Option<RequestKey>,
        caller: &Caller,
        now: i64,
    ) -> ApiResult<action_plan::Model> {
        let request_id = request_id_of(&key);
        let name = format!("risks/{}/actionPlan", plan.risk_id);
        (plan.version, plan.create_time, plan.update_time) = (1, now, now);
        let outcome = self
            .idempotent(key, async |tx| {
                let risk = lock_open_risk(tx, plan.risk_id, None, WhileOpen::Change).await?;
                caller.may_change(&risk.service_id)?;
                insert_new(tx, plan.clone().into_active_model().reset_all(), &name).await?;
                audit::record(tx, SERVICE, caller, &name, &request_id).await?;
                Ok((name.clone(), plan.clone()))
            })
            .await?;
        match outcome {
            Outcome::Created(p) => Ok(p),
            Outcome::Replayed(_) => self.plan(plan.risk_id).await,
        }
    }

    pub async fn plan(&self, risk_id: Uuid) -> ApiResult<action_plan::Model> {
        action_plan::Entity::find_by_id(risk_id)
            .one(self.connection())
            .await?
            .ok_or_else(|| ApiError::not_found(format!("risks/{risk_id}/actionPlan")))
    }

    /// Applies `patch` to the action plan of a risk (etag checked), as the risk's service
    /// scope allows.
    pub async fn update_plan(
        &self,
        risk_id: Uuid,
        expected_version: Option<i64>,
        caller: &Caller,
        now: i64,
        patch: impl FnOnce(&mut action_plan::Model),
    ) -> ApiResult<action_plan::Model> {
        let name = format!("risks/{risk_id}/actionPlan");
        let tx = db::begin_write(self.connection()).await?;
        let current = action_plan::Entity::find_by_id(risk_id)
            .lock_exclusive()
            .one(&tx)
            .await?
            .ok_or_else(|| ApiError::not_found(&name))?;
        let risk = lock_risk(&tx, risk_id).await?;
        caller.may_change(&risk.service_id)?;
        check_version(&name, expected_version, current.version)?;
        let next = next_version(&current, now, patch);
        write_version(&tx, &next, current.version, &name).await?;
        audit::record(&tx, SERVICE, caller, &name, "").await?;
        tx.commit().await?;
        Ok(next)
    }

    /// (items, open items) of a risk's plan.
    pub async fn plan_counts(&self, risk_id: Uuid) -> ApiResult<(u64, u64)> {
        item_counts(self.connection(), risk_id).await
    }

    /// Adds an item to a risk's action plan.
    pub async fn add_item(
        &self,
        mut item: action_item::Model,
        key: Option<RequestKey>,
        caller: &Caller,
        now: i64,
    ) -> ApiResult<action_item::Model> {
        let request_id = request_id_of(&key);
        let risk_id = item.risk_id;
        let outcome = self
            .idempotent(key, async |tx| {
                let risk = lock_open_risk(tx, risk_id, None, WhileOpen::Change).await?;
                caller.may_change(&risk.service_id)?;
                if action_plan::Entity::find_by_id(risk_id)
                    .one(tx)
                    .await?
                    .is_none()
                {
                    return Err(ApiError::not_found(format!("risks/{risk_id}/actionPlan")));
                }
                item.id = Uuid::now_v7();
                item.service_id = risk.service_id.clone();
                item.business_unit_id = risk.business_unit_id.clone();
                (item.version, item.create_time, item.update_time) = (1, now, now);
                item.clone().into_active_model().insert(tx).await?;
                let moved = if is_finished(item.status) {
                    finish_treatment(tx, risk_id, caller, now).await?
                } else {
                    None
                };
                let name = format!("risks/{risk_id}/actionPlan/items/{}", item.id);
                queue_item_event(tx, &name, &item).await?;
                audit::record(tx, SERVICE, caller, &name, &request_id).await?;
                Ok((name, (item.clone(), moved)))
            })
            .await?;
        match outcome {
            Outcome::Created((i, moved)) => {
                if let Some(risk) = moved {
                    self.cache.store(&risk);
                }
                Ok(i)
            }
            Outcome::Replayed(name) => {
                let id = last_segment(&name)?;
                self.item(risk_id, id).await
            }
        }
    }

    pub async fn item(&self, risk_id: Uuid, id: Uuid) -> ApiResult<action_item::Model> {
        action_item::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .filter(|i| i.risk_id == risk_id)
            .ok_or_else(|| ApiError::not_found(format!("risks/{risk_id}/actionPlan/items/{id}")))
    }

    /// Applies `patch` to an item (etag checked). When it finishes the last open item of a
    /// risk IN_TREATMENT, the risk moves to MONITORING in the same transaction.
    pub async fn update_item(
        &self,
        risk_id: Uuid,
        id: Uuid,
        expected_version: Option<i64>,
        caller: &Caller,
        now: i64,
        patch: impl Fn(&mut action_item::Model),
    ) -> ApiResult<action_item::Model> {
        let name = format!("risks/{risk_id}/actionPlan/items/{id}");
        let tx = db::begin_write(self.connection()).await?;
        let current = action_item::Entity::find_by_id(id)
            .lock_exclusive()
            .one(&tx)
            .await?
            .filter(|i| i.risk_id == risk_id)
            .ok_or_else(|| ApiError::not_found(&name))?;
        // Scope follows the risk as it is now (its service may have changed since); a CLOSED
        // risk's items are read-only (RISK_CLOSED).
        let risk = lock_open_risk(&tx, risk_id, None, WhileOpen::Change).await?;
        caller.may_change(&risk.service_id)?;
        check_version(&name, expected_version, current.version)?;
        let next = next_version(&current, now, patch);
        write_version(&tx, &next, current.version, &name).await?;
        queue_item_event(&tx, &name, &next).await?;
        let moved = if is_finished(next.status) {
            finish_treatment(&tx, risk_id, caller, now).await?
        } else {
            None
        };
        audit::record(&tx, SERVICE, caller, &name, "").await?;
        tx.commit().await?;
        if let Some(risk) = moved {
            self.cache.store(&risk);
        }
        Ok(next)
    }

    /// A page of action items: of one risk's plan, or of every plan (`risk` = `None`).
    pub async fn items(
        &self,
        risk: Option<Uuid>,
        list: &ListQuery,
    ) -> ApiResult<Vec<action_item::Model>> {
        let mut select = action_item::Entity::find();
        if let Some(risk) = risk {
            select = select.filter(action_item::Column::RiskId.eq(risk));
        }
        let select = listing::page_of(select, list, listing::item_column, action_item::Column::Id)?;
        Ok(select.all(self.connection()).await?)
    }

    /// Sends risks whose approved acceptance has expired by `now` back to ASSESSED, as
    /// `caller` (the system principal of the expiry job). Returns how many.
    pub async fn expire_acceptances(&self, now: i64, caller: &Caller) -> ApiResult<usize> {
        let due = risk_response::Entity::find()
            .filter(risk_response::Column::State.eq(ApprovalState::Approved as i32))
            .filter(risk_response::Column::Expired.eq(false))
            .filter(risk_response::Column::AcceptanceExpireTime.lte(now))
            .order_by_asc(risk_response::Column::AcceptanceExpireTime)
            .limit(500)
            .all(self.connection())
            .await?;
        let mut expired = 0;
        for response in due {
            // One row failing (and retried next sweep) must not hold up the others.
            match self.expire_acceptance(response.id, now, caller).await {
                Ok(true) => expired += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(response = %response.id, error = %e, "acceptance not expired; retrying next sweep")
                }
            }
        }
        Ok(expired)
    }

    /// Expires one acceptance; false when another replica did already.
    async fn expire_acceptance(&self, id: Uuid, now: i64, caller: &Caller) -> ApiResult<bool> {
        let tx = db::begin_write(self.connection()).await?;
        // Re-read under the write lock: another replica may have expired it already.
        let Some(mut current) = risk_response::Entity::find_by_id(id)
            .lock_exclusive()
            .one(&tx)
            .await?
            .filter(|r| !r.expired)
        else {
            return Ok(false);
        };
        current.expired = true;
        risk_response::Entity::update(current.clone().into_active_model().reset_all())
            .exec(&tx)
            .await?;
        let risk = risk::Entity::find_by_id(current.risk_id)
            .lock_exclusive()
            .one(&tx)
            .await?;
        let mut moved = None;
        if risk.is_some_and(|r| r.status == RiskStatus::Monitoring as i32) {
            moved = Some(
                modify_in(&tx, current.risk_id, None, async |_, r| {
                    r.status = transition(r, RiskEvent::ReassessmentRequired)? as i32;
                    Ok(())
                })
                .await?,
            );
        }
        log(
            &tx,
            current.risk_id,
            DecisionKind::AcceptanceExpired,
            caller.actor(),
            "the acceptance expired; the risk must be reassessed".into(),
            Some(current.id),
            now,
        )
        .await?;
        let name = format!("risks/{}/responses/{}", current.risk_id, current.id);
        audit::record(&tx, SERVICE, caller, &name, "").await?;
        tx.commit().await?;
        if let Some(risk) = moved {
            self.cache.store(&risk);
        }
        Ok(true)
    }

    /// Records the closure of a risk in the decision log (inside the closing transaction).
    pub(super) async fn log_closure(
        tx: &DatabaseTransaction,
        risk_id: Uuid,
        caller: &Caller,
        reason: &str,
        now: i64,
    ) -> ApiResult<()> {
        log(
            tx,
            risk_id,
            DecisionKind::RiskClosed,
            caller.actor(),
            format!("closed: {reason}"),
            None,
            now,
        )
        .await
    }
}

fn strategy_name(v: i32) -> &'static str {
    Strategy::try_from(v).map_or("UNKNOWN", Strategy::as_str)
}

fn severity_name(v: i32) -> &'static str {
    Severity::try_from(v).map_or("UNKNOWN", Severity::as_str)
}

/// Event type of a created or changed action item (for the tracker sync).
pub const ACTION_ITEM_EVENT: &str = "risk.action_item";

/// Queues, in `tx`, the `risk.action_item` event of the item `name` as it is now (its row was
/// written first, so its events are in commit order).
async fn queue_item_event(
    tx: &impl sea_orm::ConnectionTrait,
    name: &str,
    item: &action_item::Model,
) -> ApiResult<()> {
    let status = assurance_proto::r#type::v1::WorkItemStatus::try_from(item.status)
        .map_or("WORK_ITEM_STATUS_UNSPECIFIED", |s| s.as_str_name());
    let event = assurance_runtime::outbox::NewEvent {
        kind: ACTION_ITEM_EVENT,
        aggregate: name.to_string(),
        payload: serde_json::json!({
            "name": name,
            "risk": format!("risks/{}", item.risk_id),
            "title": item.title,
            "owner": item.owner,
            "due_time": assurance_runtime::time::to_timestamp(item.due_time).to_string(),
            "status": status,
            "service": format!("services/{}", item.service_id),
            "version": item.version,
        }),
    };
    assurance_runtime::outbox::queue(tx, SERVICE, [event]).await
}
