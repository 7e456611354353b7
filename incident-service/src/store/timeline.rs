//! The append-only timeline: every change of an incident appends one event (and its audit
//! record) in the same transaction; notes are events of their own.

use assurance_runtime::{
    ApiError, ApiResult, audit,
    auth::Caller,
    idempotency::{self, Outcome, RequestKey, last_segment},
    time::now_micros,
};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::{
    SERVICE, Store,
    entities::{incident, timeline_event},
    services_of,
};
use crate::domain::timeline::TimelineKind;

impl Store {
    /// Adds a note to the timeline.
    pub async fn add_note(
        &self,
        id: Uuid,
        summary: String,
        caller: &Caller,
        key: Option<RequestKey>,
    ) -> ApiResult<timeline_event::Model> {
        let outcome = idempotency::run(&self.db, key, async |tx| {
            let name = format!("incidents/{id}");
            let current = incident::Entity::find_by_id(id)
                .lock_exclusive()
                .one(tx)
                .await?;
            super::may_change_incident(caller, &name, current.as_ref().map(services_of))?;
            let current = current.ok_or_else(|| ApiError::not_found(&name))?;
            let seq = current.timeline_seq + 1;
            let now = now_micros();
            incident::Entity::update_many()
                .col_expr(
                    incident::Column::TimelineSeq,
                    sea_orm::sea_query::Expr::value(seq),
                )
                .filter(incident::Column::Id.eq(id))
                .exec(tx)
                .await?;
            let event = append(
                tx,
                &current,
                seq,
                TimelineKind::Note,
                caller,
                summary.clone(),
                now,
            )
            .await?;
            Ok((format!("incidents/{id}/timelineEvents/{seq}"), event))
        })
        .await?;
        self.changed.notify_waiters();
        match outcome {
            Outcome::Created(e) => Ok(e),
            Outcome::Replayed(name) => {
                let seq: i64 = last_segment(&name)?;
                timeline_event::Entity::find_by_id((id, seq))
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| ApiError::not_found(name))
            }
        }
    }

    /// Timeline events of an incident after `after_seq`, oldest first.
    pub async fn timeline(
        &self,
        id: Uuid,
        after_seq: i64,
        limit: u64,
    ) -> ApiResult<Vec<timeline_event::Model>> {
        self.timeline_where(id, sea_orm::Condition::all(), after_seq, limit)
            .await
    }

    /// Timeline events of an incident matching `filter` after `after_seq`, oldest first.
    pub async fn timeline_where(
        &self,
        id: Uuid,
        filter: sea_orm::Condition,
        after_seq: i64,
        limit: u64,
    ) -> ApiResult<Vec<timeline_event::Model>> {
        self.get(id).await?;
        Ok(timeline_event::Entity::find()
            .filter(timeline_event::Column::IncidentId.eq(id))
            .filter(filter)
            .filter(timeline_event::Column::Seq.gt(after_seq))
            .order_by_asc(timeline_event::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await?)
    }
}

/// Appends a timeline event and, in the same transaction, the audit record of the mutation
/// it describes: every incident mutation appends exactly one event.
pub(super) async fn append(
    tx: &DatabaseTransaction,
    inc: &incident::Model,
    seq: i64,
    kind: TimelineKind,
    caller: &Caller,
    summary: String,
    now: i64,
) -> ApiResult<timeline_event::Model> {
    let event = timeline_event::Model {
        incident_id: inc.id,
        seq,
        kind: kind as i32,
        actor: caller.actor(),
        summary,
        phase: inc.phase,
        event_time: now,
    };
    timeline_event::Entity::insert(event.clone().into_active_model())
        .exec_without_returning(tx)
        .await?;
    audit::record(tx, SERVICE, caller, &format!("incidents/{}", inc.id), "").await?;
    Ok(event)
}
