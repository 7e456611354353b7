//! Incidents: declaring one (with its template tasks), reading it, and what every change of one
//! checks (its phase, the refusal to change a CLOSED incident).

use assurance_runtime::{
    ApiError, ApiResult, Reason,
    auth::Caller,
    idempotency::{self, Outcome, RequestKey, last_segment},
    time::now_micros,
};
use sea_orm::{EntityTrait, IntoActiveModel};
use uuid::Uuid;

use super::{
    Store, append,
    entities::{incident, task},
    write_services,
};
use crate::domain::phase::Phase;
use crate::domain::priority::Severity;
use crate::domain::timeline::TimelineKind;

impl Store {
    /// Records a declared incident and its first timeline event.
    pub async fn declare(
        &self,
        mut inc: incident::Model,
        services: Vec<String>,
        tasks: Vec<task::Model>,
        caller: &Caller,
        key: Option<RequestKey>,
    ) -> ApiResult<incident::Model> {
        let now = now_micros();
        (
            inc.version,
            inc.create_time,
            inc.update_time,
            inc.declare_time,
        ) = (1, now, now, now);
        caller.may_change_all(services.iter().map(String::as_str))?;
        if services.is_empty() {
            caller.must_be_unscoped("declare an incident that affects none of its services")?;
        }
        inc.phase = Phase::DetectionAnalysis as i32;
        inc.timeline_seq = 1;
        let outcome = idempotency::run(&self.db, key, async |tx| {
            incident::Entity::insert(inc.clone().into_active_model())
                .exec_without_returning(tx)
                .await?;
            write_services(tx, inc.id, &services).await?;
            let mut tasks = tasks.clone();
            for t in &mut tasks {
                (t.incident_id, t.version, t.create_time, t.update_time) = (inc.id, 1, now, now);
            }
            if !tasks.is_empty() {
                task::Entity::insert_many(
                    tasks
                        .iter()
                        .cloned()
                        .map(IntoActiveModel::into_active_model),
                )
                .exec_without_returning(tx)
                .await?;
            }
            let seeded = if tasks.is_empty() {
                String::new()
            } else {
                format!("; {} tasks from the response template", tasks.len())
            };
            append(
                tx,
                &inc,
                1,
                TimelineKind::Declared,
                caller,
                format!("declared: {}{seeded}", inc.title),
                now,
            )
            .await?;
            Ok((format!("incidents/{}", inc.id), inc.clone()))
        })
        .await?;
        self.changed.notify_waiters();
        match outcome {
            Outcome::Created(m) => Ok(m),
            // The incident the first attempt declared, not the one this attempt would have.
            Outcome::Replayed(name) => self.get(last_segment(&name)?).await,
        }
    }

    pub async fn get(&self, id: Uuid) -> ApiResult<incident::Model> {
        incident::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("incidents/{id}")))
    }
}

/// Refuses a change of a CLOSED incident.
pub fn refuse_if_closed(m: &incident::Model) -> ApiResult<()> {
    if m.phase == Phase::Closed as i32 {
        return Err(ApiError::precondition(
            Reason::IncidentClosed,
            format!("incidents/{} is CLOSED", m.id),
        ));
    }
    Ok(())
}

/// The phase of a stored incident.
pub fn phase_of(m: &incident::Model) -> ApiResult<Phase> {
    Phase::try_from(m.phase)
        .map_err(|_| ApiError::Internal(format!("incident {} has unknown phase {}", m.id, m.phase)))
}

/// Replaces an incident's risk links, in `tx` (inside the incident's change).
/// `RiskLinkRelation` IDENTIFIED (the proto's number): the incident revealed the risk.
pub const IDENTIFIED: i32 = 1;
/// `RiskLinkRelation` REALIZED (the proto's number): the incident is the risk coming true.
pub const REALIZED: i32 = 2;
/// The most risk links an incident keeps.
pub const MAX_RISK_LINKS: usize = 100;

/// Replaces the risk links of the incident `m` with `links` (risk id, relation) in `tx`. Each
/// risk that becomes `REALIZED` by this change queues an `incident.risk_realized` event in the
/// outbox, in the same transaction, for risk-service (`RecordRiskRealization`).
pub async fn replace_risk_links(
    tx: &sea_orm::DatabaseTransaction,
    m: &incident::Model,
    links: &[(String, i32)],
) -> ApiResult<()> {
    use super::entities::risk_link;
    use assurance_runtime::outbox::NewEvent;
    use sea_orm::{ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter};
    let realized = REALIZED;
    let before: std::collections::HashSet<String> = risk_link::Entity::find()
        .filter(risk_link::Column::IncidentId.eq(m.id))
        .filter(risk_link::Column::Relation.eq(realized))
        .all(tx)
        .await?
        .into_iter()
        .map(|l| l.risk_id)
        .collect();
    risk_link::Entity::delete_many()
        .filter(risk_link::Column::IncidentId.eq(m.id))
        .exec(tx)
        .await?;
    if links.is_empty() {
        return Ok(());
    }
    let rows = links.iter().enumerate().map(|(n, (risk, relation))| {
        risk_link::Model {
            incident_id: m.id,
            risk_id: risk.clone(),
            relation: *relation,
            position: n as i32,
        }
        .into_active_model()
    });
    risk_link::Entity::insert_many(rows)
        .exec_without_returning(tx)
        .await?;
    let now = now_micros();
    let severity = Severity::try_from(m.severity).map_or("SEVERITY_UNSPECIFIED".to_string(), |s| {
        format!("SEVERITY_{}", s.as_str())
    });
    let events = links
        .iter()
        .filter(|(risk, relation)| *relation == realized && !before.contains(risk))
        .map(|(risk, _)| NewEvent {
            kind: super::outbox::RISK_REALIZED,
            aggregate: format!("incidents/{}", m.id),
            payload: serde_json::json!({
                "risk": format!("risks/{risk}"),
                "incident": format!("incidents/{}", m.id),
                "incident_severity": severity,
                "realize_time": assurance_runtime::time::to_timestamp(now).to_string(),
            }),
        });
    assurance_runtime::outbox::queue(tx, super::SERVICE, events).await?;
    Ok(())
}

impl Store {
    /// The risk links of some incidents, each incident's in the order they were given.
    pub async fn risk_links(
        &self,
        incidents: &[Uuid],
    ) -> ApiResult<std::collections::HashMap<Uuid, Vec<super::entities::risk_link::Model>>> {
        use super::entities::risk_link;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        let mut out: std::collections::HashMap<Uuid, Vec<risk_link::Model>> = Default::default();
        if incidents.is_empty() {
            return Ok(out);
        }
        let rows = risk_link::Entity::find()
            .filter(risk_link::Column::IncidentId.is_in(incidents.iter().copied()))
            .order_by_asc(risk_link::Column::IncidentId)
            .order_by_asc(risk_link::Column::Position)
            .all(&self.db)
            .await?;
        for r in rows {
            out.entry(r.incident_id).or_default().push(r);
        }
        Ok(out)
    }
}
