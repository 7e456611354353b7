//! Response tasks of an incident: created by hand or from the response template, updated with
//! an etag, listed in creation order or the `order_by` asked for (`phase` groups them).

use assurance_runtime::{
    ApiError, ApiResult,
    auth::Caller,
    idempotency::{RequestKey, last_segment},
    time::now_micros,
};
use sea_orm::{ActiveModelTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QuerySelect};
use uuid::Uuid;

use super::{
    Change, Created, Store, check_version,
    entities::{incident, task},
    refuse_if_closed,
};
use crate::domain::{task::TaskStatus, timeline::TimelineKind};

impl Store {
    /// Adds a task to an incident that is not CLOSED.
    pub async fn create_task(
        &self,
        mut t: task::Model,
        caller: &Caller,
        key: Option<RequestKey>,
    ) -> ApiResult<task::Model> {
        let id = t.incident_id;
        let create = async |tx: &DatabaseTransaction, m: &mut incident::Model| {
            let now = now_micros();
            (t.version, t.create_time, t.update_time) = (1, now, now);
            refuse_if_closed(m)?;
            task::Entity::insert(t.clone().into_active_model())
                .exec_without_returning(tx)
                .await?;
            Ok(Created {
                name: format!("incidents/{id}/tasks/{}", t.id),
                change: Change {
                    kind: TimelineKind::Task,
                    summary: format!("task added: {}", t.title),
                    services: None,
                },
                value: t,
            })
        };
        let reread = async |name: String| self.task(id, last_segment(&name)?).await;
        self.create_in(id, caller, key, create, reread).await
    }

    pub async fn task(&self, incident: Uuid, id: Uuid) -> ApiResult<task::Model> {
        task::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|t| t.incident_id == incident)
            .ok_or_else(|| ApiError::not_found(format!("incidents/{incident}/tasks/{id}")))
    }

    /// Applies `change` to a task (etag-checked) and records it in the timeline.
    pub async fn update_task(
        &self,
        incident: Uuid,
        id: Uuid,
        expected_version: Option<i64>,
        caller: &Caller,
        change: impl Fn(&mut task::Model),
    ) -> ApiResult<task::Model> {
        let mut out = None;
        self.modify(incident, None, caller, async |tx, _| {
            let name = format!("incidents/{incident}/tasks/{id}");
            let current = task::Entity::find_by_id(id)
                .lock_exclusive()
                .one(tx)
                .await?
                .filter(|t| t.incident_id == incident)
                .ok_or_else(|| ApiError::not_found(&name))?;
            check_version(&name, expected_version, current.version)?;
            let mut next = current.clone();
            change(&mut next);
            next.version = current.version + 1;
            next.update_time = now_micros();
            task::Entity::update(next.clone().into_active_model().reset_all())
                .exec(tx)
                .await?;
            let summary = if next.status != current.status {
                format!(
                    "task {}: {} → {}",
                    next.title,
                    task_status_name(current.status),
                    task_status_name(next.status)
                )
            } else {
                format!("task updated: {}", next.title)
            };
            out = Some(next);
            Ok(Change {
                kind: TimelineKind::Task,
                summary,
                services: None,
            })
        })
        .await?;
        out.ok_or_else(|| ApiError::Internal("task change lost".into()))
    }
}

fn task_status_name(v: i32) -> &'static str {
    TaskStatus::try_from(v).map_or("UNKNOWN", TaskStatus::as_str)
}
