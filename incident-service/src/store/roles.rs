//! Incident roles: the current holder of each role (history is in the timeline).

use assurance_runtime::{ApiResult, auth::Caller, time::now_micros};
use sea_orm::{ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::{Change, Store, entities::role, refuse_if_closed};
use crate::domain::timeline::TimelineKind;

impl Store {
    /// Gives `role.kind` of an incident to `role.person`, replacing any holder.
    pub async fn assign_role(
        &self,
        mut role: role::Model,
        role_name: &str,
        caller: &Caller,
    ) -> ApiResult<role::Model> {
        role.assign_time = now_micros();
        let id = role.incident_id;
        self.modify(id, None, caller, async |tx, m| {
            refuse_if_closed(m)?;
            let previous = role::Entity::find_by_id((id, role.kind)).one(tx).await?;
            let summary = match &previous {
                Some(p) => format!(
                    "{role_name}: {} → {} ({})",
                    p.person, role.person, role.team
                ),
                None => format!("{role_name}: {} ({})", role.person, role.team),
            };
            if previous.is_some() {
                role::Entity::delete_by_id((id, role.kind)).exec(tx).await?;
            }
            role::Entity::insert(role.clone().into_active_model())
                .exec_without_returning(tx)
                .await?;
            Ok(Change {
                kind: TimelineKind::RoleAssigned,
                summary,
                services: None,
            })
        })
        .await?;
        Ok(role)
    }

    /// A page of an incident's roles in role order, after the role kind `after`.
    pub async fn roles(
        &self,
        id: Uuid,
        after: Option<i64>,
        limit: u64,
    ) -> ApiResult<Vec<role::Model>> {
        self.get(id).await?;
        let mut q = role::Entity::find()
            .filter(role::Column::IncidentId.eq(id))
            .order_by_asc(role::Column::Kind);
        if let Some(kind) = after {
            q = q.filter(role::Column::Kind.gt(kind));
        }
        Ok(q.limit(limit).all(&self.db).await?)
    }
}
