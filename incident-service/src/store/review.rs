//! The post-incident review and the outbox it fills (follow-ups for the trackers, identified
//! risks for risk-service).

use assurance_runtime::{
    ApiError, ApiResult, Reason, auth::Caller, idempotency::RequestKey, time::now_micros,
};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::{
    Change, Created, Store,
    entities::{follow_up, incident, outbox_event, review},
    follow_ups::insert_follow_ups,
    phase_of,
};
use crate::domain::phase::Phase;
use crate::domain::timeline::TimelineKind;

/// Outbox event kinds of incident-service.
pub mod outbox {
    pub const FOLLOW_UP: &str = "incident.follow_up";
    pub const IDENTIFIED_RISK: &str = "incident.identified_risk";
    /// An incident `REALIZED` a risk (by `UpdateIncident` or `LinkIncidentRisk`).
    pub const RISK_REALIZED: &str = "incident.risk_realized";
}

/// What recording a review writes: the review, its follow-ups and its outbox events.
pub struct ReviewRows {
    pub review: review::Model,
    pub follow_ups: Vec<follow_up::Model>,
    pub events: Vec<outbox_event::Model>,
}

impl Store {
    /// Records the post-incident review and its follow-ups, queues the follow-ups and
    /// identified risks in the outbox and marks the review complete — one transaction.
    pub async fn record_review(
        &self,
        id: Uuid,
        rows: ReviewRows,
        caller: &Caller,
        key: Option<RequestKey>,
    ) -> ApiResult<review::Model> {
        let ReviewRows {
            mut review,
            follow_ups,
            events,
        } = rows;
        let create = async |tx: &DatabaseTransaction, m: &mut incident::Model| {
            let now = now_micros();
            review.incident_id = id;
            review.review_time = now;
            let count = |kind: &str| events.iter().filter(|e| e.kind == kind).count();
            let summary = format!(
                "post-incident review recorded: {} follow-up item(s), {} identified risk(s)",
                count(outbox::FOLLOW_UP),
                count(outbox::IDENTIFIED_RISK),
            );
            if phase_of(m)? != Phase::PostIncident {
                return Err(ApiError::precondition(
                    Reason::ReviewNotAllowed,
                    format!(
                        "incidents/{id} is in {}; the review is recorded in POST_INCIDENT",
                        phase_name(m.phase)
                    ),
                ));
            }
            if m.review_complete {
                return Err(ApiError::precondition(
                    Reason::ReviewExists,
                    format!("incidents/{id} already has its post-incident review"),
                ));
            }
            m.review_complete = true;
            review::Entity::insert(review.clone().into_active_model())
                .exec_without_returning(tx)
                .await?;
            insert_follow_ups(tx, &follow_ups, now).await?;
            if !events.is_empty() {
                let rows = events.iter().cloned().map(|mut e| {
                    e.create_time = now;
                    e.into_active_model()
                });
                outbox_event::Entity::insert_many(rows)
                    .exec_without_returning(tx)
                    .await?;
            }
            Ok(Created {
                name: format!("incidents/{id}/review"),
                change: Change {
                    kind: TimelineKind::ReviewRecorded,
                    summary,
                    services: None,
                },
                value: review,
            })
        };
        self.create_in(id, caller, key, create, async |_| self.review(id).await)
            .await
    }

    pub async fn review(&self, id: Uuid) -> ApiResult<review::Model> {
        review::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("incidents/{id}/review")))
    }

    /// Outbox events not yet delivered, oldest first.
    pub async fn pending_outbox(&self, limit: u64) -> ApiResult<Vec<outbox_event::Model>> {
        Ok(outbox_event::Entity::find()
            .filter(outbox_event::Column::DeliveredTime.is_null())
            .order_by_asc(outbox_event::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?)
    }
}

fn phase_name(v: i32) -> &'static str {
    Phase::try_from(v).map_or("an unknown phase", Phase::as_str)
}
