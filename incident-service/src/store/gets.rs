//! Standard Gets of an incident's child resources: each reads one row by its key and checks it
//! belongs to the incident its name names; NOT_FOUND names the resource asked for.

use assurance_runtime::{ApiError, ApiResult};
use sea_orm::EntityTrait;
use uuid::Uuid;

use super::{
    Store,
    entities::{custody_entry, evidence, indicator, role, timeline_event},
};

impl Store {
    pub async fn evidence_item(&self, incident: Uuid, id: Uuid) -> ApiResult<evidence::Model> {
        evidence::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|e| e.incident_id == incident)
            .ok_or_else(|| ApiError::not_found(format!("incidents/{incident}/evidence/{id}")))
    }

    pub async fn custody_record(
        &self,
        incident: Uuid,
        evidence_id: Uuid,
        seq: i64,
    ) -> ApiResult<custody_entry::Model> {
        custody_entry::Entity::find_by_id((evidence_id, seq))
            .one(&self.db)
            .await?
            .filter(|c| c.incident_id == incident)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "incidents/{incident}/evidence/{evidence_id}/custodyRecords/{seq}"
                ))
            })
    }

    pub async fn indicator(&self, incident: Uuid, id: Uuid) -> ApiResult<indicator::Model> {
        indicator::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|i| i.incident_id == incident)
            .ok_or_else(|| ApiError::not_found(format!("incidents/{incident}/indicators/{id}")))
    }

    pub async fn timeline_event(
        &self,
        incident: Uuid,
        seq: i64,
    ) -> ApiResult<timeline_event::Model> {
        timeline_event::Entity::find_by_id((incident, seq))
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!("incidents/{incident}/timelineEvents/{seq}"))
            })
    }

    /// The holder of a role; `slug` is the kind's id in the name.
    pub async fn role(&self, incident: Uuid, kind: i32, slug: &str) -> ApiResult<role::Model> {
        role::Entity::find_by_id((incident, kind))
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("incidents/{incident}/roles/{slug}")))
    }
}
