//! Security and compliance exceptions: requests, approvals (by role, never one's own),
//! rejections, revocations and the expiry job. Every change records its audit event, and —
//! when the exception is linked to a risk — appends to that risk's decision log, in one
//! transaction. The lifecycle itself is `domain::exceptions`.

use std::collections::BTreeMap;

use assurance_runtime::{
    ApiError, ApiResult, audit,
    auth::Caller,
    db,
    filter::{Op, compare, equality_only},
    list::{EnumValues, Field, FilterContext, FilterTable, Kind, ListQuery},
    time::to_timestamp,
    validate::is_slug,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, sea_query::Query,
};
use uuid::Uuid;

use super::{
    Outcome, RequestKey, SERVICE, Store, check_version,
    entities::{exception, exception_service, service},
    governance::log,
    request_id_of,
    risks::{WhileOpen, lock_open_risk},
    write_if_version,
};
use crate::domain::{
    exceptions::{ExceptionStatus, Move, allowed, apply, may_approve, status_name},
    governance::DecisionKind,
};

fn transition(m: &exception::Model, mv: Move) -> ApiResult<ExceptionStatus> {
    let status = ExceptionStatus::try_from(m.status).map_err(|_| {
        ApiError::Internal(format!(
            "exceptions/{} has unknown status {}",
            m.id, m.status
        ))
    })?;
    apply(status, mv).ok_or_else(|| {
        let name = status_name(m.status);
        ApiError::illegal_move(
            assurance_runtime::Reason::IllegalTransition,
            format_args!("exceptions/{} is {name}: cannot {}", m.id, mv.label()),
            name,
            &allowed(status),
        )
    })
}

static STATUS: EnumValues = EnumValues {
    prefix: "POLICY_EXCEPTION_STATUS_",
    values: ExceptionStatus::NAMES,
};

/// The filter fields of `ListExceptions`.
pub static EXCEPTION_FILTER: FilterTable<exception::Column> = FilterTable(&[
    Field::new(
        "status",
        Kind::Enum {
            column: exception::Column::Status,
            values: &STATUS,
            ordered: false,
        },
    ),
    Field::new("service", Kind::Custom(covers_service)),
    Field::new("requester", Kind::Text(exception::Column::Requester)),
    Field::new("approver", Kind::Text(exception::Column::Approver)),
    Field::new("risk", Kind::Custom(linked_risk)),
    Field::new("expire_time", Kind::Time(exception::Column::ExpireTime)),
]);

/// `service = services/x`: the exception covers that service.
fn covers_service(
    field: &str,
    op: Op,
    value: &str,
    _: &FilterContext,
) -> Result<Condition, String> {
    equality_only(field, op)?;
    let id = value.strip_prefix("services/").unwrap_or(value);
    if !is_slug(id) {
        return Err(format!(
            "`service` compares with a service name such as \"services/exchange-online\" (got `{value}`)"
        ));
    }
    let covering = Query::select()
        .column(exception_service::Column::ExceptionId)
        .from(exception_service::Entity)
        .and_where(exception_service::Column::ServiceId.eq(id))
        .to_owned();
    Ok(Condition::all().add(if op == Op::Eq {
        exception::Column::Id.in_subquery(covering)
    } else {
        exception::Column::Id.not_in_subquery(covering)
    }))
}

/// `risk = risks/{id}`: the exception is linked to that risk.
fn linked_risk(field: &str, op: Op, value: &str, _: &FilterContext) -> Result<Condition, String> {
    equality_only(field, op)?;
    let id = value
        .strip_prefix("risks/")
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| {
            format!("`risk` compares with a risk name `risks/{{id}}` (got `{value}`)")
        })?;
    Ok(match op {
        // Exceptions without a risk are not linked to this one either.
        Op::Ne => Condition::any()
            .add(exception::Column::RiskId.ne(id))
            .add(exception::Column::RiskId.is_null()),
        _ => compare(exception::Column::RiskId, op, id.into()),
    })
}

/// An exception with the ids of the services it exempts (sorted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    pub model: exception::Model,
    pub services: Vec<String>,
}

fn name_of(id: Uuid) -> String {
    format!("exceptions/{id}")
}

fn time_text(micros: i64) -> String {
    to_timestamp(micros).to_string()
}

fn with_comment(mut summary: String, comment: &str) -> String {
    if !comment.is_empty() {
        summary.push_str(": ");
        summary.push_str(comment);
    }
    summary
}

impl Store {
    /// Records a requested exception over `services` (REQUESTED). Every service must exist
    /// and be in the caller's scope; a linked risk must exist, be open and be in scope.
    pub async fn request_exception(
        &self,
        mut e: exception::Model,
        services: Vec<String>,
        key: Option<RequestKey>,
        caller: &Caller,
        now: i64,
    ) -> ApiResult<Exception> {
        caller.may_change_all(services.iter().map(String::as_str))?;
        let request_id = request_id_of(&key);
        e.id = Uuid::now_v7();
        e.status = ExceptionStatus::Requested as i32;
        e.requester = caller.person().to_string();
        (e.version, e.create_time, e.update_time) = (1, now, now);
        let outcome = self
            .idempotent(key, async |tx| {
                for id in &services {
                    if service::Entity::find_by_id(id.clone())
                        .filter(service::Column::DeleteTime.is_null())
                        .one(tx)
                        .await?
                        .is_none()
                    {
                        return Err(ApiError::not_found(format!("services/{id}")));
                    }
                }
                if let Some(risk_id) = e.risk_id {
                    lock_open_risk(tx, risk_id, Some(caller), WhileOpen::LinkException).await?;
                }
                e.clone().into_active_model().insert(tx).await?;
                for id in &services {
                    exception_service::Model {
                        exception_id: e.id,
                        service_id: id.clone(),
                    }
                    .into_active_model()
                    .insert(tx)
                    .await?;
                }
                let name = name_of(e.id);
                if let Some(risk_id) = e.risk_id {
                    let listed = services
                        .iter()
                        .map(|s| format!("services/{s}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    log(
                        tx,
                        risk_id,
                        DecisionKind::ExceptionRequested,
                        caller.actor(),
                        format!(
                            "exception {name} requested for {listed} until {}: {}",
                            time_text(e.expire_time),
                            e.title
                        ),
                        None,
                        now,
                    )
                    .await?;
                }
                audit::record(tx, SERVICE, caller, &name, &request_id).await?;
                Ok((
                    name,
                    Exception {
                        model: e.clone(),
                        services: services.clone(),
                    },
                ))
            })
            .await?;
        match outcome {
            Outcome::Created(mut x) => {
                x.services.sort();
                Ok(x)
            }
            Outcome::Replayed(name) => {
                let id = name
                    .strip_prefix("exceptions/")
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .ok_or_else(|| ApiError::Internal(format!("bad stored resource {name}")))?;
                self.exception(id).await
            }
        }
    }

    /// One exception with its services.
    pub async fn exception(&self, id: Uuid) -> ApiResult<Exception> {
        let model = exception::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .ok_or_else(|| ApiError::not_found(name_of(id)))?;
        let mut list = self.with_services(vec![model]).await?;
        list.pop()
            .ok_or_else(|| ApiError::Internal("exception vanished".into()))
    }

    /// Exceptions matching `condition`, by id (creation order), after `after`.
    /// A page of exceptions.
    pub async fn exceptions(&self, list: &ListQuery) -> ApiResult<Vec<Exception>> {
        let mut q = exception::Entity::find()
            .filter(list.condition.clone())
            .order_by_asc(exception::Column::Id);
        if let Some(after) = list.after_id() {
            q = q.filter(exception::Column::Id.gt(after));
        }
        let rows = q.limit(list.limit()).all(self.connection()).await?;
        self.with_services(rows).await
    }

    async fn with_services(&self, rows: Vec<exception::Model>) -> ApiResult<Vec<Exception>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let links = exception_service::Entity::find()
            .filter(exception_service::Column::ExceptionId.is_in(rows.iter().map(|r| r.id)))
            .order_by_asc(exception_service::Column::ServiceId)
            .all(self.connection())
            .await?;
        let mut by_exception: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
        for link in links {
            by_exception
                .entry(link.exception_id)
                .or_default()
                .push(link.service_id);
        }
        Ok(rows
            .into_iter()
            .map(|model| Exception {
                services: by_exception.remove(&model.id).unwrap_or_default(),
                model,
            })
            .collect())
    }

    /// Approves, rejects or revokes an exception (etag checked when `expected_version` is
    /// given). Approvals and rejections need [`crate::domain::exceptions::EXCEPTION_APPROVERS`]; nobody approves their own
    /// request, though a requester may withdraw it by rejecting it. Scoped callers decide only
    /// exceptions of their services. With a request `key`, a retry of an applied decision
    /// returns the exception as it is now, and the decision is applied (audited, logged) once.
    #[allow(clippy::too_many_arguments)]
    pub async fn decide_exception(
        &self,
        id: Uuid,
        mv: Move,
        expected_version: Option<i64>,
        comment: String,
        key: Option<RequestKey>,
        caller: &Caller,
        now: i64,
    ) -> ApiResult<Exception> {
        let request_id = request_id_of(&key);
        let outcome = self
            .idempotent(key, async |tx| {
                let decided =
                    decide_in(tx, id, mv, expected_version, &comment, caller, now).await?;
                audit::record(tx, SERVICE, caller, &name_of(id), &request_id).await?;
                Ok((name_of(id), decided))
            })
            .await?;
        match outcome {
            Outcome::Created(x) => Ok(x),
            Outcome::Replayed(_) => self.exception(id).await,
        }
    }

    /// Moves ACTIVE exceptions whose `expire_time` is at or before `now` to EXPIRED, as
    /// `caller` (the system principal of the expiry job), with their audit records and
    /// decision-log entries. Returns how many.
    pub async fn expire_exceptions(&self, now: i64, caller: &Caller) -> ApiResult<usize> {
        let due = exception::Entity::find()
            .filter(exception::Column::Status.eq(ExceptionStatus::Active as i32))
            .filter(exception::Column::ExpireTime.lte(now))
            .order_by_asc(exception::Column::ExpireTime)
            .limit(500)
            .all(self.connection())
            .await?;
        let mut expired = 0;
        for e in due {
            // One row failing (and retried next sweep) must not hold up the others.
            match self.expire_exception(e.id, now, caller).await {
                Ok(true) => expired += 1,
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(exception = %e.id, error = %err, "exception not expired; retrying next sweep")
                }
            }
        }
        Ok(expired)
    }

    /// Expires one exception; false when a revocation or another replica won.
    async fn expire_exception(&self, id: Uuid, now: i64, caller: &Caller) -> ApiResult<bool> {
        let tx = db::begin_write(self.connection()).await?;
        // Re-read under the write lock: another replica, or a revocation, may have won.
        let Some(current) = exception::Entity::find_by_id(id)
            .lock_exclusive()
            .one(&tx)
            .await?
            .filter(|c| c.status == ExceptionStatus::Active as i32 && c.expire_time <= now)
        else {
            return Ok(false);
        };
        let mut next = current.clone();
        next.status = ExceptionStatus::Expired as i32;
        next.expiry_time = Some(now);
        next.version = current.version + 1;
        next.update_time = now;
        exception::Entity::update(next.clone().into_active_model().reset_all())
            .exec(&tx)
            .await?;
        let name = name_of(current.id);
        if let Some(risk_id) = current.risk_id {
            log(
                &tx,
                risk_id,
                DecisionKind::ExceptionExpired,
                caller.actor(),
                format!(
                    "exception {name} expired at {}; its services must meet the requirement again",
                    time_text(current.expire_time)
                ),
                None,
                now,
            )
            .await?;
        }
        audit::record(&tx, SERVICE, caller, &name, "").await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// One decision about exception `id`, inside `tx` (audited by the caller).
async fn decide_in(
    tx: &DatabaseTransaction,
    id: Uuid,
    mv: Move,
    expected_version: Option<i64>,
    comment: &str,
    caller: &Caller,
    now: i64,
) -> ApiResult<Exception> {
    let name = name_of(id);
    let current = exception::Entity::find_by_id(id)
        .lock_exclusive()
        .one(tx)
        .await?
        .ok_or_else(|| ApiError::not_found(&name))?;
    let services: Vec<String> = exception_service::Entity::find()
        .filter(exception_service::Column::ExceptionId.eq(id))
        .order_by_asc(exception_service::Column::ServiceId)
        .all(tx)
        .await?
        .into_iter()
        .map(|l| l.service_id)
        .collect();
    caller.may_change_all(services.iter().map(String::as_str))?;
    check_version(&name, expected_version, current.version)?;
    let next_status = transition(&current, mv)?;
    let own = assurance_runtime::auth::same_principal(&current.requester, caller.person());
    if mv == Move::Approve && own {
        return Err(ApiError::precondition(
            assurance_runtime::Reason::SelfApproval,
            format!(
                "{name} was requested by {}; someone else must approve it",
                current.requester
            ),
        ));
    }
    if mv == Move::Approve && current.expire_time <= now {
        return Err(ApiError::precondition(
            assurance_runtime::Reason::Expired,
            format!("{name} would expire at once: its expire_time has passed; request a new one"),
        ));
    }
    let withdrawing = own && mv == Move::Reject;
    if matches!(mv, Move::Approve | Move::Reject)
        && !withdrawing
        && !may_approve(caller.principal.roles)
    {
        return Err(ApiError::PermissionDenied(format!(
            "deciding {name} needs the trust_team or erm_executive role (admin approves \
             nothing); {} has {}",
            caller.principal.subject, caller.principal.roles
        )));
    }
    let mut next = current.clone();
    next.status = next_status as i32;
    next.version = current.version + 1;
    next.update_time = now;
    let summary = match mv {
        Move::Approve => {
            next.approver = caller.person().to_string();
            next.approve_time = Some(now);
            next.decision_comment = comment.to_string();
            with_comment(
                format!(
                    "exception {name} approved until {}",
                    time_text(next.expire_time)
                ),
                comment,
            )
        }
        Move::Reject => {
            next.approver = caller.person().to_string();
            next.decision_comment = comment.to_string();
            with_comment(format!("exception {name} rejected"), comment)
        }
        Move::Revoke => {
            next.revoke_time = Some(now);
            next.revoke_reason = comment.to_string();
            with_comment(format!("exception {name} revoked"), comment)
        }
        Move::Expire => format!("exception {name} expired"),
    };
    write_if_version(
        tx,
        next.clone().into_active_model().reset_all(),
        (exception::Column::Id, id),
        (exception::Column::Version, current.version),
        &name,
    )
    .await?;
    if let Some(risk_id) = next.risk_id {
        log(tx, risk_id, mv.kind(), caller.actor(), summary, None, now).await?;
    }
    Ok(Exception {
        model: next,
        services,
    })
}
