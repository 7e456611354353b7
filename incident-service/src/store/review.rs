//! The post-incident review and the outbox it fills (follow-ups for the trackers, identified
//! risks for risk-service).

use assurance_runtime::outbox::{NewEvent, outbox_event};
use assurance_runtime::{
    ApiError, ApiResult, Reason, auth::Caller, idempotency::RequestKey, time::now_micros,
};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use super::{
    Change, Created, Store,
    entities::{follow_up, incident, review},
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
    pub events: Vec<NewEvent>,
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
            assurance_runtime::outbox::queue(tx, super::SERVICE, events.clone()).await?;
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

    /// Records that risk-service created `risk` (`risks/{id}`) from the identified risk at
    /// `index` of the incident's review: the incident gains an IDENTIFIED link to it (unless
    /// it links that risk already, or holds the most links it keeps) and the review names it.
    /// Idempotent: the relay may deliver the event again.
    pub async fn link_identified_risk(&self, id: Uuid, index: usize, risk: &str) -> ApiResult<()> {
        use super::entities::risk_link;
        let risk_id = risk.strip_prefix("risks/").unwrap_or(risk).to_string();
        let caller = Caller::system(super::SERVICE, "OutboxRelay");
        let tx = assurance_runtime::db::begin_write(&self.db).await?;
        let links: Vec<(String, i32)> = risk_link::Entity::find()
            .filter(risk_link::Column::IncidentId.eq(id))
            .order_by_asc(risk_link::Column::Position)
            .all(&tx)
            .await?
            .into_iter()
            .map(|l| (l.risk_id, l.relation))
            .collect();
        if let Some(row) = review::Entity::find_by_id(id).one(&tx).await? {
            let mut risks: Vec<serde_json::Value> =
                serde_json::from_str(&row.identified_risks).unwrap_or_default();
            if let Some(entry) = risks.get_mut(index)
                && entry["risk"] != risk
            {
                entry["risk"] = risk.into();
                let mut row = row.into_active_model();
                row.identified_risks =
                    sea_orm::ActiveValue::Set(serde_json::Value::from(risks).to_string());
                review::Entity::update(row).exec(&tx).await?;
            }
        }
        if links.iter().all(|(r, _)| *r != risk_id) && links.len() < super::MAX_RISK_LINKS {
            let mut links = links;
            links.push((risk_id, super::IDENTIFIED));
            super::modify_in(&tx, id, None, &caller, async |tx, m| {
                super::replace_risk_links(tx, m, &links).await?;
                Ok(Change {
                    kind: TimelineKind::Updated,
                    summary: format!("risk identified in the register: {risk} (IDENTIFIED)"),
                    services: None,
                })
            })
            .await?;
        }
        tx.commit().await?;
        self.changed.notify_waiters();
        Ok(())
    }

    /// The outbox events of `aggregate` (e.g. `incidents/{id}`), in the order they were written.
    pub async fn outbox_events(&self, aggregate: &str) -> ApiResult<Vec<outbox_event::Model>> {
        use outbox_event::Column as C;
        Ok(outbox_event::Entity::find()
            .filter(C::Service.eq(super::SERVICE))
            .filter(C::Aggregate.eq(aggregate))
            .order_by_asc(C::Seq)
            .all(&self.db)
            .await?)
    }
}

fn phase_name(v: i32) -> &'static str {
    Phase::try_from(v).map_or("an unknown phase", Phase::as_str)
}
