//! Periodic reviews, review cycles and monitoring observations. A review or an observation
//! that calls for reassessment moves a risk in MONITORING back to ASSESSED and says so in the
//! decision log; every change is audited in its transaction.

use assurance_runtime::{
    ApiError, ApiResult, audit,
    auth::Caller,
    db,
    idempotency::last_segment,
    list::{EnumValues, Field, FilterTable, KeyType, Kind, ListQuery, Sorting},
    page::Key,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Select, sea_query::Expr,
};
use sea_orm_migration::prelude::*;
use uuid::Uuid;

use super::{
    Outcome, RequestKey, SERVICE, Store, check_version,
    effectiveness::{control_failed, response_failed},
    entities::{assessment, risk},
    governance::log,
    request_id_of,
    risks::{WhileOpen, apply_assessment, lock_open_risk, lock_risk, modify_in, transition},
    write_if_version,
};
use crate::domain::{
    governance::{DecisionKind, next_review},
    reviews::{ObservationEffect, ObservationSource, ReviewCycleState, ReviewOutcome},
    status::{RiskEvent, RiskStatus},
};

pub mod review {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "risk_reviews")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub risk_id: Uuid,
        /// Newline-separated.
        pub participants: String,
        pub outcome: i32,
        pub notes: String,
        pub assessment_id: Option<Uuid>,
        pub reviewer: String,
        pub review_time: i64,
        pub next_review_time: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod review_cycle {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "review_cycles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub title: String,
        /// Empty, `businessUnits/{id}` or `services/{id}`.
        pub scope: String,
        pub due_time: i64,
        pub state: i32,
        pub summary: String,
        pub opened_by: String,
        pub closed_by: String,
        pub open_time: i64,
        pub close_time: Option<i64>,
        /// Bumped by every change (etag); 1 for cycles opened before etags.
        pub version: i64,
        /// Last change; the open time for cycles opened before etags.
        pub update_time: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod cycle_risk {
    use sea_orm::entity::prelude::*;

    /// A risk listed by a cycle, with its owner when the cycle opened and the review that
    /// covered it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "review_cycle_risks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub cycle_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub risk_id: Uuid,
        pub owner: String,
        pub review_id: Option<Uuid>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod observation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "observations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub risk_id: Uuid,
        pub source: i32,
        pub summary: String,
        pub effect: i32,
        pub reference: String,
        pub observer: String,
        pub observe_time: i64,
        pub reassessment_triggered: bool,
        /// The failed control's id (effect CONTROL_FAILED), empty otherwise.
        pub control_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Progress of one owner: (owner, risks, reviewed).
pub type OwnerProgress = (String, i64, i64);

/// A risk in MONITORING goes back to ASSESSED; other statuses keep theirs (a pending response
/// or a treatment carries on, and the next assessment takes the news into account).
/// Returns whether the risk moved.
async fn require_reassessment(
    tx: &DatabaseTransaction,
    risk_id: Uuid,
    caller: &Caller,
    why: String,
    now: i64,
) -> ApiResult<Option<risk::Model>> {
    let current = lock_risk(tx, risk_id).await?;
    if current.status != RiskStatus::Monitoring as i32 {
        return Ok(None);
    }
    let moved = modify_in(tx, risk_id, None, async |_, r| {
        r.status = transition(r, RiskEvent::ReassessmentRequired)? as i32;
        Ok(())
    })
    .await?;
    log(
        tx,
        risk_id,
        DecisionKind::ReassessmentRequired,
        caller.actor(),
        why,
        None,
        now,
    )
    .await?;
    Ok(Some(moved))
}

impl Store {
    /// Records a review of a risk, with its optional reassessment, and marks the risk
    /// reviewed in every open cycle that lists it.
    pub async fn record_review(
        &self,
        mut rev: review::Model,
        reassessment: Option<assessment::Model>,
        key: Option<RequestKey>,
        caller: &Caller,
        now: i64,
    ) -> ApiResult<review::Model> {
        let request_id = request_id_of(&key);
        let risk_id = rev.risk_id;
        let outcome = self
            .idempotent(key, async |tx| {
                rev.id = Uuid::now_v7();
                rev.reviewer = caller.person().to_string();
                rev.review_time = now;
                let mut changed: Option<risk::Model> = None;
                if let Some(mut a) = reassessment.clone() {
                    a.id = Uuid::now_v7();
                    a.risk_id = risk_id;
                    a.assess_time = now;
                    let r = modify_in(tx, risk_id, None, async |_, r| {
                        caller.may_change(&r.service_id)?;
                        let next = transition(r, RiskEvent::Assessed)?;
                        apply_assessment(r, next, &a);
                        Ok(())
                    })
                    .await?;
                    a.clone().into_active_model().insert(tx).await?;
                    rev.assessment_id = Some(a.id);
                    changed = Some(r);
                } else {
                    lock_open_risk(tx, risk_id, Some(caller), WhileOpen::Review).await?;
                    if rev.outcome == ReviewOutcome::ReassessmentRequired as i32 {
                        changed = require_reassessment(
                            tx,
                            risk_id,
                            caller,
                            "the periodic review asks for a reassessment".into(),
                            now,
                        )
                        .await?;
                    }
                }
                // The next review is due by the cadence of the severity after this review.
                let severity = match &changed {
                    Some(r) => r.severity,
                    None => risk::Entity::find_by_id(risk_id)
                        .one(tx)
                        .await?
                        .map(|r| r.severity)
                        .unwrap_or(1),
                };
                rev.next_review_time = next_review(now, severity);
                let after = modify_in(tx, risk_id, None, async |_, r| {
                    r.next_review_time = Some(rev.next_review_time);
                    Ok(())
                })
                .await?;
                rev.clone().into_active_model().insert(tx).await?;
                mark_reviewed(tx, risk_id, rev.id).await?;
                let name = format!("risks/{risk_id}/reviews/{}", rev.id);
                audit::record(tx, SERVICE, caller, &name, &request_id).await?;
                Ok((name, (after, rev.clone())))
            })
            .await?;
        match outcome {
            Outcome::Created((risk, rev)) => {
                self.cache.store(&risk);
                Ok(rev)
            }
            Outcome::Replayed(name) => {
                let id: Uuid = last_segment(&name)?;
                review::Entity::find_by_id(id)
                    .one(self.connection())
                    .await?
                    .ok_or_else(|| ApiError::not_found(name))
            }
        }
    }

    /// A page of a risk's reviews.
    pub async fn reviews(&self, risk_id: Uuid, q: &ListQuery) -> ApiResult<Vec<review::Model>> {
        self.get_risk(risk_id).await?;
        let select = review::Entity::find()
            .filter(review::Column::RiskId.eq(risk_id))
            .filter(q.condition.clone());
        let select = ordered(select, q, review::Column::Id, |f| match f {
            "review_time" => Some(review::Column::ReviewTime),
            _ => None,
        })?;
        Ok(select.limit(q.limit()).all(self.connection()).await?)
    }

    /// One review of a risk.
    pub async fn review(&self, risk_id: Uuid, id: Uuid) -> ApiResult<review::Model> {
        review::Entity::find_by_id(id)
            .filter(review::Column::RiskId.eq(risk_id))
            .one(self.connection())
            .await?
            .ok_or_else(|| ApiError::not_found(format!("risks/{risk_id}/reviews/{id}")))
    }

    /// Opens a cycle listing every open risk of `cycle.scope` with its owner.
    pub async fn open_cycle(
        &self,
        mut cycle: review_cycle::Model,
        key: Option<RequestKey>,
        caller: &Caller,
        now: i64,
    ) -> ApiResult<review_cycle::Model> {
        let request_id = request_id_of(&key);
        let outcome = self
            .idempotent(key, async |tx| {
                cycle.id = Uuid::now_v7();
                cycle.state = ReviewCycleState::Open as i32;
                cycle.opened_by = caller.person().to_string();
                cycle.open_time = now;
                (cycle.version, cycle.update_time) = (1, now);
                let mut scope =
                    Condition::all().add(risk::Column::Status.ne(RiskStatus::Closed as i32));
                if let Some(bu) = cycle.scope.strip_prefix("businessUnits/") {
                    super::org::require_business_unit(tx, bu).await?;
                    scope = scope.add(risk::Column::BusinessUnitId.eq(bu));
                } else if let Some(service) = cycle.scope.strip_prefix("services/") {
                    super::org::service_business_unit(tx, service).await?;
                    scope = scope.add(risk::Column::ServiceId.eq(service));
                }
                let risks: Vec<(Uuid, String)> = risk::Entity::find()
                    .select_only()
                    .column(risk::Column::Id)
                    .column(risk::Column::Owner)
                    .filter(scope)
                    .into_tuple()
                    .all(tx)
                    .await?;
                cycle.clone().into_active_model().insert(tx).await?;
                for chunk in risks.chunks(500) {
                    cycle_risk::Entity::insert_many(chunk.iter().map(|(risk_id, owner)| {
                        cycle_risk::Model {
                            cycle_id: cycle.id,
                            risk_id: *risk_id,
                            owner: owner.clone(),
                            review_id: None,
                        }
                        .into_active_model()
                    }))
                    .exec_without_returning(tx)
                    .await?;
                }
                let name = format!("reviewCycles/{}", cycle.id);
                audit::record(tx, SERVICE, caller, &name, &request_id).await?;
                Ok((name, cycle.clone()))
            })
            .await?;
        match outcome {
            Outcome::Created(c) => Ok(c),
            Outcome::Replayed(name) => self.cycle(last_segment::<Uuid>(&name)?).await,
        }
    }

    pub async fn cycle(&self, id: Uuid) -> ApiResult<review_cycle::Model> {
        review_cycle::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .ok_or_else(|| ApiError::not_found(format!("reviewCycles/{id}")))
    }

    /// Per owner: risks listed and reviewed, by owner.
    pub async fn cycle_progress(&self, id: Uuid) -> ApiResult<Vec<OwnerProgress>> {
        Ok(cycle_risk::Entity::find()
            .select_only()
            .column(cycle_risk::Column::Owner)
            .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "risks")
            .column_as(Expr::cust("CAST(COUNT(review_id) AS BIGINT)"), "reviewed")
            .filter(cycle_risk::Column::CycleId.eq(id))
            .group_by(cycle_risk::Column::Owner)
            .order_by_asc(cycle_risk::Column::Owner)
            .into_tuple()
            .all(self.connection())
            .await?)
    }

    /// A page of review cycles.
    pub async fn cycles(&self, q: &ListQuery) -> ApiResult<Vec<review_cycle::Model>> {
        let select = review_cycle::Entity::find().filter(q.condition.clone());
        let select = ordered(select, q, review_cycle::Column::Id, |f| match f {
            "due_time" => Some(review_cycle::Column::DueTime),
            "open_time" => Some(review_cycle::Column::OpenTime),
            _ => None,
        })?;
        Ok(select.limit(q.limit()).all(self.connection()).await?)
    }

    /// Changes an open cycle (etag checked when `expected_version` is given).
    pub async fn update_cycle(
        &self,
        id: Uuid,
        expected_version: Option<i64>,
        caller: &Caller,
        now: i64,
        authorize: impl FnOnce(&review_cycle::Model) -> ApiResult<()>,
        patch: impl FnOnce(&mut review_cycle::Model),
    ) -> ApiResult<review_cycle::Model> {
        let name = format!("reviewCycles/{id}");
        let tx = db::begin_write(self.connection()).await?;
        let current = lock_open_cycle(&tx, id, &name).await?;
        authorize(&current)?;
        check_version(&name, expected_version, current.version)?;
        let mut next = current.clone();
        patch(&mut next);
        (next.version, next.update_time) = (current.version + 1, now);
        write_if_version(
            &tx,
            next.clone().into_active_model().reset_all(),
            (review_cycle::Column::Id, id),
            (review_cycle::Column::Version, current.version),
            &name,
        )
        .await?;
        audit::record(&tx, SERVICE, caller, &name, "").await?;
        tx.commit().await?;
        Ok(next)
    }

    /// Closes an open cycle (etag checked when `expected_version` is given). With a request
    /// `key`, a retry of a close that was applied returns the cycle as it is now.
    pub async fn close_cycle(
        &self,
        id: Uuid,
        expected_version: Option<i64>,
        summary: String,
        key: Option<RequestKey>,
        caller: &Caller,
        now: i64,
    ) -> ApiResult<review_cycle::Model> {
        let name = format!("reviewCycles/{id}");
        let request_id = request_id_of(&key);
        let outcome = self
            .idempotent(key, async |tx| {
                let current = lock_open_cycle(tx, id, &name).await?;
                check_version(&name, expected_version, current.version)?;
                let mut cycle = current.clone();
                cycle.state = ReviewCycleState::Closed as i32;
                cycle.summary = summary.clone();
                cycle.closed_by = caller.person().to_string();
                cycle.close_time = Some(now);
                (cycle.version, cycle.update_time) = (current.version + 1, now);
                write_if_version(
                    tx,
                    cycle.clone().into_active_model().reset_all(),
                    (review_cycle::Column::Id, id),
                    (review_cycle::Column::Version, current.version),
                    &name,
                )
                .await?;
                audit::record(tx, SERVICE, caller, &name, &request_id).await?;
                Ok((name.clone(), cycle))
            })
            .await?;
        match outcome {
            Outcome::Created(c) => Ok(c),
            Outcome::Replayed(_) => self.cycle(id).await,
        }
    }

    /// Attaches an observation; a risk in MONITORING returns to ASSESSED. A failed control
    /// test lowers the control's operating effectiveness and counts against the response in
    /// force: a risk in IN_TREATMENT returns to ASSESSED too.
    pub async fn add_observation(
        &self,
        mut obs: observation::Model,
        key: Option<RequestKey>,
        caller: &Caller,
        now: i64,
    ) -> ApiResult<observation::Model> {
        let request_id = request_id_of(&key);
        let risk_id = obs.risk_id;
        let outcome = self
            .idempotent(key, async |tx| {
                lock_open_risk(tx, risk_id, Some(caller), WhileOpen::Observe).await?;
                obs.id = Uuid::now_v7();
                obs.observer = caller.person().to_string();
                obs.observe_time = now;
                let moved = if obs.effect == ObservationEffect::ControlFailed as i32 {
                    // A failed control test: the control operates worse, and the failure
                    // counts against the response in force.
                    let control = control_failed(tx, risk_id, &obs.control_id, caller, now).await?;
                    response_failed(
                        tx,
                        risk_id,
                        caller,
                        format!(
                            "control test failed: controls/{} ({}): {}",
                            control.id, control.title, obs.summary
                        ),
                        now,
                    )
                    .await?
                } else {
                    require_reassessment(
                        tx,
                        risk_id,
                        caller,
                        format!("observation: {}", obs.summary),
                        now,
                    )
                    .await?
                };
                obs.reassessment_triggered = moved.is_some();
                obs.clone().into_active_model().insert(tx).await?;
                let name = format!("risks/{risk_id}/observations/{}", obs.id);
                audit::record(tx, SERVICE, caller, &name, &request_id).await?;
                Ok((name, (moved, obs.clone())))
            })
            .await?;
        match outcome {
            Outcome::Created((moved, obs)) => {
                if let Some(r) = moved {
                    self.cache.store(&r);
                }
                Ok(obs)
            }
            Outcome::Replayed(name) => {
                observation::Entity::find_by_id(last_segment::<Uuid>(&name)?)
                    .one(self.connection())
                    .await?
                    .ok_or_else(|| ApiError::not_found(name))
            }
        }
    }

    /// A page of a risk's observations.
    pub async fn observations(
        &self,
        risk_id: Uuid,
        q: &ListQuery,
    ) -> ApiResult<Vec<observation::Model>> {
        self.get_risk(risk_id).await?;
        let select = observation::Entity::find()
            .filter(observation::Column::RiskId.eq(risk_id))
            .filter(q.condition.clone());
        let select = ordered(select, q, observation::Column::Id, |f| match f {
            "observe_time" => Some(observation::Column::ObserveTime),
            _ => None,
        })?;
        Ok(select.limit(q.limit()).all(self.connection()).await?)
    }

    /// One observation of a risk.
    pub async fn observation(&self, risk_id: Uuid, id: Uuid) -> ApiResult<observation::Model> {
        observation::Entity::find_by_id(id)
            .filter(observation::Column::RiskId.eq(risk_id))
            .one(self.connection())
            .await?
            .ok_or_else(|| ApiError::not_found(format!("risks/{risk_id}/observations/{id}")))
    }
}

/// The open cycle `id`, locked for the write; FAILED_PRECONDITION (CYCLE_CLOSED) once closed.
async fn lock_open_cycle(
    tx: &DatabaseTransaction,
    id: Uuid,
    name: &str,
) -> ApiResult<review_cycle::Model> {
    let cycle = review_cycle::Entity::find_by_id(id)
        .lock_exclusive()
        .one(tx)
        .await?
        .ok_or_else(|| ApiError::not_found(name))?;
    if cycle.state != ReviewCycleState::Open as i32 {
        return Err(ApiError::precondition(
            assurance_runtime::Reason::CycleClosed,
            format!("{name} is closed"),
        ));
    }
    Ok(cycle)
}

/// `select` in the order of `q` (its sort fields' columns from `column`, then `id` as the
/// tie-break), after the previous page.
fn ordered<E: EntityTrait>(
    mut select: Select<E>,
    q: &ListQuery,
    id: E::Column,
    column: impl Fn(&str) -> Option<E::Column>,
) -> ApiResult<Select<E>> {
    let mut columns = Vec::with_capacity(q.order.len());
    for (field, direction) in &q.order {
        let c = column(field)
            .ok_or_else(|| ApiError::Internal(format!("no column to order by `{field}`")))?;
        columns.push(c);
        select = select.order_by(c, direction.order());
    }
    select = select.order_by(id, q.tie_break().order());
    if let Some(after) = q.after_condition(&columns, id) {
        select = select.filter(after);
    }
    Ok(select)
}

/// The page-token keys of a row in `q`'s order: its time for each sort field (by `time`),
/// then its id.
pub fn time_keys(q: &ListQuery, id: Uuid, time: impl Fn(&str) -> i64) -> Vec<Key> {
    let mut keys: Vec<Key> = q.order.iter().map(|(f, _)| Key::Int(time(f))).collect();
    keys.push(Key::Text(id.to_string()));
    keys
}

static OUTCOME: EnumValues = EnumValues {
    prefix: "REVIEW_OUTCOME_",
    values: ReviewOutcome::NAMES,
};
static CYCLE_STATE: EnumValues = EnumValues {
    prefix: "REVIEW_CYCLE_STATE_",
    values: ReviewCycleState::NAMES,
};
static SOURCE: EnumValues = EnumValues {
    prefix: "OBSERVATION_SOURCE_",
    values: ObservationSource::NAMES,
};
static EFFECT: EnumValues = EnumValues {
    prefix: "OBSERVATION_EFFECT_",
    values: ObservationEffect::NAMES,
};

/// The filter fields of `ListReviews`.
pub static REVIEW_FILTER: FilterTable<review::Column> = FilterTable(&[
    Field::new(
        "outcome",
        Kind::Enum {
            column: review::Column::Outcome,
            values: &OUTCOME,
            ordered: false,
        },
    ),
    Field::new("reviewer", Kind::Text(review::Column::Reviewer)),
    Field::new("review_time", Kind::Time(review::Column::ReviewTime)),
    Field::new(
        "next_review_time",
        Kind::Time(review::Column::NextReviewTime),
    ),
]);

/// `order_by` of `ListReviews`: by id (creation order) unless asked otherwise.
pub const REVIEW_SORTING: Sorting = Sorting {
    fields: &[("review_time", KeyType::Int)],
    default: &[],
    max_fields: 1,
    id: KeyType::Uuid,
};

/// The filter fields of `ListObservations`.
pub static OBSERVATION_FILTER: FilterTable<observation::Column> = FilterTable(&[
    Field::new(
        "source",
        Kind::Enum {
            column: observation::Column::Source,
            values: &SOURCE,
            ordered: false,
        },
    ),
    Field::new(
        "effect",
        Kind::Enum {
            column: observation::Column::Effect,
            values: &EFFECT,
            ordered: false,
        },
    ),
    Field::new("observer", Kind::Text(observation::Column::Observer)),
    Field::new(
        "reassessment_triggered",
        Kind::Bool(observation::Column::ReassessmentTriggered),
    ),
    Field::new("observe_time", Kind::Time(observation::Column::ObserveTime)),
]);

/// `order_by` of `ListObservations`: by id (creation order) unless asked otherwise.
pub const OBSERVATION_SORTING: Sorting = Sorting {
    fields: &[("observe_time", KeyType::Int)],
    default: &[],
    max_fields: 1,
    id: KeyType::Uuid,
};

/// The filter fields of `ListReviewCycles`.
pub static CYCLE_FILTER: FilterTable<review_cycle::Column> = FilterTable(&[
    Field::new(
        "state",
        Kind::Enum {
            column: review_cycle::Column::State,
            values: &CYCLE_STATE,
            ordered: false,
        },
    ),
    Field::new("scope", Kind::Text(review_cycle::Column::Scope)),
    Field::new("opened_by", Kind::Text(review_cycle::Column::OpenedBy)),
    Field::new("due_time", Kind::Time(review_cycle::Column::DueTime)),
    Field::new("open_time", Kind::Time(review_cycle::Column::OpenTime)),
]);

/// `order_by` of `ListReviewCycles`: by id (creation order) unless asked otherwise.
pub const CYCLE_SORTING: Sorting = Sorting {
    fields: &[("due_time", KeyType::Int), ("open_time", KeyType::Int)],
    default: &[],
    max_fields: 2,
    id: KeyType::Uuid,
};

/// Marks `risk_id` reviewed (by `review_id`) in every open cycle listing it and not yet
/// covered.
async fn mark_reviewed(tx: &DatabaseTransaction, risk_id: Uuid, review_id: Uuid) -> ApiResult<()> {
    let open: Vec<Uuid> = review_cycle::Entity::find()
        .select_only()
        .column(review_cycle::Column::Id)
        .filter(review_cycle::Column::State.eq(ReviewCycleState::Open as i32))
        .into_tuple()
        .all(tx)
        .await?;
    if open.is_empty() {
        return Ok(());
    }
    cycle_risk::Entity::update_many()
        .col_expr(cycle_risk::Column::ReviewId, Expr::value(review_id))
        .filter(cycle_risk::Column::RiskId.eq(risk_id))
        .filter(cycle_risk::Column::CycleId.is_in(open))
        .filter(cycle_risk::Column::ReviewId.is_null())
        .exec(tx)
        .await?;
    Ok(())
}
