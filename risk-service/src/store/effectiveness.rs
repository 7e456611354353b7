//! Response effectiveness: the failures counted against a risk's responses — incidents that
//! realised the risk (`risk_realizations`, recorded by the incident relay) and observations of
//! a failed control — and their effects: the failed control's operating effectiveness goes down
//! a step, a risk in treatment or monitoring returns to ASSESSED, and the decision log says why.

use assurance_runtime::{ApiError, ApiResult, audit, auth::Caller};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, sea_query::OnConflict,
};
use uuid::Uuid;

use super::{
    Outcome, RequestKey, SERVICE, Store,
    entities::{control, risk, risk_control, risk_response},
    governance::log,
    request_id_of,
    reviews::observation,
    risks::{lock_risk, modify_in, transition},
};
use crate::domain::{
    controls::Effectiveness,
    effectiveness::{Proposal, WINDOW_MICROS, propose},
    governance::{ApprovalState, DecisionKind},
    reviews::ObservationEffect,
    scoring::Severity,
    status::{RiskEvent, RiskStatus},
};

pub mod realization {
    use sea_orm::entity::prelude::*;

    /// An incident that realised a risk; one row per risk and incident.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "risk_realizations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub risk_id: Uuid,
        /// `incidents/{id}`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub incident: String,
        /// `Severity` number.
        pub incident_severity: i32,
        pub realize_time: i64,
        pub recorder: String,
        pub create_time: i64,
    }

    assurance_runtime::entity_without_relations!();
}

/// The response in force: the latest approved response of the risk, if any.
async fn current_response(
    tx: &DatabaseTransaction,
    risk_id: Uuid,
) -> ApiResult<Option<risk_response::Model>> {
    Ok(risk_response::Entity::find()
        .filter(risk_response::Column::RiskId.eq(risk_id))
        .filter(risk_response::Column::State.eq(ApprovalState::Approved as i32))
        .order_by_desc(risk_response::Column::DecideTime)
        .limit(1)
        .one(tx)
        .await?)
}

/// Counts a failure (`why`) against the risk's current response, in `tx`: a risk in
/// IN_TREATMENT or MONITORING returns to ASSESSED, with a RESPONSE_FAILED decision naming the
/// response. Other statuses keep theirs, and the decision is logged all the same. Returns the
/// risk when it moved.
pub(super) async fn response_failed(
    tx: &DatabaseTransaction,
    risk_id: Uuid,
    caller: &Caller,
    why: String,
    now: i64,
) -> ApiResult<Option<risk::Model>> {
    let current = lock_risk(tx, risk_id).await?;
    let response = current_response(tx, risk_id).await?;
    let against = response
        .as_ref()
        .map(|r| format!(" against risks/{risk_id}/responses/{}", r.id))
        .unwrap_or_default();
    let status = RiskStatus::try_from(current.status).ok();
    let moves = matches!(
        status,
        Some(RiskStatus::InTreatment | RiskStatus::Monitoring)
    );
    let moved = if moves {
        Some(
            modify_in(tx, risk_id, None, async |_, r| {
                r.status = transition(r, RiskEvent::ResponseFailed)? as i32;
                Ok(())
            })
            .await?,
        )
    } else {
        None
    };
    let summary = format!(
        "{why}: counted{against}{}",
        if moves {
            "; the risk returns to ASSESSED for reassessment"
        } else {
            ""
        }
    );
    log(
        tx,
        risk_id,
        DecisionKind::ResponseFailed,
        caller.actor(),
        summary,
        response.map(|r| r.id),
        now,
    )
    .await?;
    Ok(moved)
}

/// The control `id`, which must be linked to the risk, with its operating effectiveness one
/// step down and tested now; audited. Returns the control as it was.
pub(super) async fn control_failed(
    tx: &DatabaseTransaction,
    risk_id: Uuid,
    id: &str,
    caller: &Caller,
    now: i64,
) -> ApiResult<control::Model> {
    let name = format!("controls/{id}");
    let linked = risk_control::Entity::find_by_id((risk_id, id.to_string()))
        .one(tx)
        .await?
        .is_some();
    if !linked {
        return Err(ApiError::invalid(
            "observation.control",
            format!(
                "{name} is not linked to risks/{risk_id}; link it first or name a linked control"
            ),
        ));
    }
    let current = control::Entity::find_by_id(id.to_string())
        .lock_exclusive()
        .one(tx)
        .await?
        .ok_or_else(|| ApiError::not_found(&name))?;
    let before = Effectiveness::from_i32(current.operating_effectiveness)
        .unwrap_or(Effectiveness::NotTested);
    let mut next = current.clone();
    next.operating_effectiveness = before.after_failure() as i32;
    next.last_test_time = Some(now);
    next.version = current.version + 1;
    next.update_time = now;
    next.into_active_model().reset_all().update(tx).await?;
    audit::record(tx, SERVICE, caller, &name, "").await?;
    Ok(current)
}

/// Failures counted against one approved response (or, with `response` None, before any).
#[derive(Debug, Clone)]
pub struct ResponseRecord {
    pub response: Option<risk_response::Model>,
    pub realizations: Vec<realization::Model>,
    pub control_failures: Vec<observation::Model>,
}

/// The effectiveness of a risk's responses and the proposal for its next assessment.
#[derive(Debug, Clone)]
pub struct Effectivity {
    pub risk: risk::Model,
    pub responses: Vec<ResponseRecord>,
    pub proposal: Proposal,
}

impl Store {
    /// Records that `incident` realised the risk (once per risk and incident; idempotent with
    /// `key`) and counts it against the current response.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_realization(
        &self,
        risk_id: Uuid,
        incident: String,
        severity: Severity,
        realize_time: i64,
        key: Option<RequestKey>,
        caller: &Caller,
        now: i64,
    ) -> ApiResult<()> {
        let request_id = request_id_of(&key);
        let outcome = self
            .idempotent(key, async |tx| {
                let r = lock_risk(tx, risk_id).await?;
                caller.may_change(&r.service_id)?;
                let inserted = realization::Entity::insert(
                    realization::Model {
                        risk_id,
                        incident: incident.clone(),
                        incident_severity: severity as i32,
                        realize_time,
                        recorder: caller.person().to_string(),
                        create_time: now,
                    }
                    .into_active_model(),
                )
                .on_conflict(
                    OnConflict::columns([
                        realization::Column::RiskId,
                        realization::Column::Incident,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(tx)
                .await?;
                let name = format!("risks/{risk_id}");
                // The same incident recorded again (another event for the same link) counts
                // once.
                let moved = if inserted > 0 && r.status != RiskStatus::Closed as i32 {
                    response_failed(
                        tx,
                        risk_id,
                        caller,
                        format!(
                            "{incident} realised the risk (incident severity {})",
                            severity.as_str()
                        ),
                        now,
                    )
                    .await?
                } else {
                    None
                };
                audit::record(tx, SERVICE, caller, &name, &request_id).await?;
                Ok((name, moved))
            })
            .await?;
        if let Outcome::Created(Some(moved)) = outcome {
            self.cache.store(&moved);
        }
        Ok(())
    }

    /// How the risk's responses fared at `now` (see [`Effectivity`]).
    pub async fn effectiveness(&self, risk_id: Uuid, now: i64) -> ApiResult<Effectivity> {
        let conn = self.connection();
        let risk = self.get_risk(risk_id).await?;
        let mut approved: Vec<risk_response::Model> = risk_response::Entity::find()
            .filter(risk_response::Column::RiskId.eq(risk_id))
            .filter(risk_response::Column::State.eq(ApprovalState::Approved as i32))
            .filter(risk_response::Column::DecideTime.is_not_null())
            .order_by_asc(risk_response::Column::DecideTime)
            .all(conn)
            .await?;
        let realizations = realization::Entity::find()
            .filter(realization::Column::RiskId.eq(risk_id))
            .order_by_asc(realization::Column::RealizeTime)
            .all(conn)
            .await?;
        let failures = observation::Entity::find()
            .filter(observation::Column::RiskId.eq(risk_id))
            .filter(observation::Column::Effect.eq(ObservationEffect::ControlFailed as i32))
            .order_by_asc(observation::Column::ObserveTime)
            .all(conn)
            .await?;
        // Each failure belongs to the response approved last before it.
        let mut records: Vec<ResponseRecord> = std::iter::once(None)
            .chain(approved.drain(..).map(Some))
            .map(|response| ResponseRecord {
                response,
                realizations: Vec::new(),
                control_failures: Vec::new(),
            })
            .collect();
        let slot = |records: &[ResponseRecord], at: i64| {
            records
                .iter()
                .rposition(|r| {
                    r.response
                        .as_ref()
                        .and_then(|r| r.decide_time)
                        .is_none_or(|t| t <= at)
                })
                .unwrap_or(0)
        };
        for r in &realizations {
            let i = slot(&records, r.realize_time);
            records[i].realizations.push(r.clone());
        }
        for o in &failures {
            let i = slot(&records, o.observe_time);
            records[i].control_failures.push(o.clone());
        }
        if records[0].realizations.is_empty() && records[0].control_failures.is_empty() {
            records.remove(0);
        }
        let since = now.saturating_sub(WINDOW_MICROS);
        let recent: Vec<Severity> = realizations
            .iter()
            .filter(|r| r.realize_time >= since)
            .filter_map(|r| Severity::try_from(r.incident_severity).ok())
            .collect();
        let recent_failures = failures.iter().filter(|o| o.observe_time >= since).count();
        let assessed = risk.latest_assessment_id.is_some();
        let (likelihood, impact) = if assessed {
            (risk.likelihood, risk.impact)
        } else {
            (0, 0)
        };
        let proposal = propose(likelihood, impact, &recent, recent_failures);
        Ok(Effectivity {
            risk,
            responses: records,
            proposal,
        })
    }
}
