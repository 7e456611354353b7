//! Indicators of compromise of an incident, and the sweep across incidents.

use assurance_runtime::{
    ApiError, ApiResult,
    auth::Caller,
    idempotency::{RequestKey, last_segment},
    time::now_micros,
};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, JoinType, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{
    Change, Created, Store,
    entities::{incident, indicator},
};
use crate::domain::{indicator::Tlp, timeline::TimelineKind};

/// The timeline summary of an added indicator: a TLP:RED or TLP:AMBER+STRICT value is
/// withheld, so the timeline (its lists, the watch stream, reports) never carries it.
pub fn indicator_summary(kind_name: &str, ind: &indicator::Model) -> String {
    let label = match Tlp::try_from(ind.tlp) {
        Ok(Tlp::Red) => "TLP:RED",
        Ok(Tlp::AmberStrict) => "TLP:AMBER+STRICT",
        _ => return format!("indicator added: {kind_name} {}", ind.value),
    };
    format!("indicator added: {kind_name} ({label}, value withheld)")
}

impl Store {
    /// Adds an indicator (normalised by the caller) and its timeline event; the same type and
    /// value twice in one incident is refused.
    pub async fn create_indicator(
        &self,
        mut ind: indicator::Model,
        kind_name: &str,
        caller: &Caller,
        key: Option<RequestKey>,
    ) -> ApiResult<indicator::Model> {
        let incident_id = ind.incident_id;
        let create = async |tx: &DatabaseTransaction, _: &mut incident::Model| {
            ind.create_time = now_micros();
            let existing = indicator::Entity::find()
                .filter(indicator::Column::IncidentId.eq(incident_id))
                .filter(indicator::Column::Kind.eq(ind.kind))
                .filter(indicator::Column::Value.eq(ind.value.clone()))
                .one(tx)
                .await?;
            if let Some(e) = existing {
                return Err(ApiError::AlreadyExists {
                    resource: format!("incidents/{incident_id}/indicators/{}", e.id),
                });
            }
            indicator::Entity::insert(ind.clone().into_active_model())
                .exec_without_returning(tx)
                .await?;
            Ok(Created {
                name: format!("incidents/{incident_id}/indicators/{}", ind.id),
                change: Change {
                    kind: TimelineKind::IndicatorAdded,
                    summary: indicator_summary(kind_name, &ind),
                    services: None,
                },
                value: ind,
            })
        };
        let reread = async |name: String| {
            let id: Uuid = last_segment(&name)?;
            indicator::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .ok_or_else(|| ApiError::not_found(name))
        };
        self.create_in(incident_id, caller, key, create, reread)
            .await
    }

    /// Indicators of one incident (`incident`) or, for a sweep, of every incident with this
    /// type and value; by id after `after`.
    pub async fn indicators(
        &self,
        incident: Option<Uuid>,
        filter: sea_orm::Condition,
        after: Option<Uuid>,
        limit: u64,
    ) -> ApiResult<Vec<indicator::Model>> {
        let mut q = indicator::Entity::find().filter(filter);
        if let Some(id) = incident {
            self.get(id).await?;
            q = q.filter(indicator::Column::IncidentId.eq(id));
        }
        Ok(
            assurance_runtime::db::page_after(&self.db, q, indicator::Column::Id, after, limit)
                .await?,
        )
    }

    /// A sweep: every incident's indicator of this type and value, with its incident, by
    /// indicator id after `after` — one query (a join), so a sweep needs no call per match.
    pub async fn sweep(
        &self,
        kind: i32,
        value: String,
        scope: Option<&[String]>,
        after: Option<Uuid>,
        limit: u64,
    ) -> ApiResult<Vec<(indicator::Model, incident::Model)>> {
        let on = indicator::Entity::belongs_to(incident::Entity)
            .from(indicator::Column::IncidentId)
            .to(incident::Column::Id)
            .into();
        let mut q = indicator::Entity::find()
            .join(JoinType::InnerJoin, on)
            .select_also(incident::Entity)
            .filter(indicator::Column::Kind.eq(kind))
            .filter(indicator::Column::Value.eq(value))
            .order_by_asc(indicator::Column::Id);
        if let Some(after) = after {
            q = q.filter(indicator::Column::Id.gt(after));
        }
        if let Some(scope) = scope {
            q = q.filter(super::affecting(indicator::Column::IncidentId, scope));
        }
        let rows = q.limit(limit).all(&self.db).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(i, m)| Some((i, m?)))
            .collect())
    }
}
