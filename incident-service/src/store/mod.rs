//! Storage of incident-service behind a small repository, one file per aggregate (incidents,
//! timeline, tasks, roles, indicators, evidence and custody, communications, review and outbox,
//! metrics, the posture summary). Every change of an incident appends its timeline event in
//! the same transaction, under the incident's row lock, so timeline sequence numbers have no
//! gaps and follow commit order — the cursor `WatchIncident` streams from.

mod communications;
pub mod entities;
mod evidence;
mod follow_ups;
mod gets;
mod incidents;
mod indicators;
pub mod metrics;
pub mod migration;
mod query;
mod review;
mod roles;
pub mod summary;
mod tasks;
mod timeline;

use std::sync::Arc;

use assurance_runtime::{
    ApiError, ApiResult,
    auth::Caller,
    db,
    idempotency::{self, Outcome, RequestKey},
    time::now_micros,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QuerySelect,
};
use uuid::Uuid;

pub use communications::{NOTIFICATION_FILTER, NOTIFICATION_SORTING, notification_keys};
pub use follow_ups::{
    FINISHED, FOLLOW_UP_FILTER, FOLLOW_UP_SORTING, follow_up_keys, follow_up_name,
};
pub use incidents::{
    IDENTIFIED, MAX_RISK_LINKS, REALIZED, phase_of, refuse_if_closed, replace_risk_links,
};
pub use query::{
    CUSTODY_FILTER, EVIDENCE_FILTER, EVIDENCE_SORTING, INCIDENT_FILTER, INCIDENT_SORTING,
    INDICATOR_FILTER, INDICATOR_SORTING, SEQUENCE_SORTING, TASK_FILTER, TASK_SORTING,
    TIMELINE_FILTER, incident_keys, row_keys, task_keys,
};
pub use review::{ReviewRows, outbox};
use timeline::append;

use crate::domain::timeline::TimelineKind;
use entities::{incident, incident_service};

/// This service's name in the audit trail it may share a database table with.
pub const SERVICE: &str = "incident-service";

/// The incident-service database.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// Woken after every committed change, so watchers of this process need not wait for
    /// their next poll; changes through other replicas are seen by polling.
    changed: Arc<tokio::sync::Notify>,
    /// Background jobs of this store (the WAL checkpointer) run while this lives.
    _alive: Arc<()>,
    /// Recent posture summaries, reused while the incidents they cover are unchanged.
    summaries: Arc<summary::Cache>,
}

/// The timeline side of a change: what happened, in words.
pub struct Change {
    pub kind: TimelineKind,
    pub summary: String,
    /// New affected services, when they changed.
    pub services: Option<Vec<String>>,
}

pub use assurance_runtime::etag::{check_version, etag, parse_etag};

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, DbErr> {
        let db = db::connect(url, max_connections).await?;
        assurance_runtime::migrate::run::<migration::Migrator>(&db, SERVICE).await?;
        let alive = Arc::new(());
        db::spawn_checkpointer(db.clone(), Arc::downgrade(&alive));
        Ok(Store {
            db,
            changed: Arc::default(),
            _alive: alive,
            summaries: Arc::default(),
        })
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Notified after every committed change (the outbox relay wakes on it).
    pub fn change_notifier(&self) -> Arc<tokio::sync::Notify> {
        self.changed.clone()
    }

    /// Returns after the next change committed through this process, or after `poll`.
    pub async fn wait_for_change(&self, poll: std::time::Duration) {
        let _ = tokio::time::timeout(poll, self.changed.notified()).await;
    }

    /// Read-modify-write of one incident in a transaction of its own (see [`modify_in`]).
    pub async fn modify(
        &self,
        id: Uuid,
        expected_version: Option<i64>,
        caller: &Caller,
        change: impl AsyncFnOnce(&DatabaseTransaction, &mut incident::Model) -> ApiResult<Change>,
    ) -> ApiResult<incident::Model> {
        let tx = db::begin_write(&self.db).await?;
        let next = modify_in(&tx, id, expected_version, caller, change).await?;
        tx.commit().await?;
        self.changed.notify_waiters();
        Ok(next)
    }

    /// A decision on one incident (advance, close, a notification's approval or sending):
    /// [`modify`](Self::modify), idempotently for `key`. A retry of a decision that was applied
    /// answers with the incident as it is now, and the decision (its timeline event, its audit
    /// row) is applied once.
    pub async fn decide(
        &self,
        id: Uuid,
        expected_version: Option<i64>,
        caller: &Caller,
        key: Option<RequestKey>,
        change: impl AsyncFnOnce(&DatabaseTransaction, &mut incident::Model) -> ApiResult<Change>,
    ) -> ApiResult<Outcome<incident::Model>> {
        let outcome = idempotency::run(&self.db, key, async |tx| {
            let next = modify_in(tx, id, expected_version, caller, change).await?;
            Ok((format!("incidents/{id}"), next))
        })
        .await?;
        self.changed.notify_waiters();
        Ok(outcome)
    }

    /// The one shape of every create inside an incident (indicator, evidence, custody entry,
    /// notification, task, review): idempotently for `key`, one transaction locks the incident
    /// (see [`modify_in`]), `create` writes its rows and says what it made and what the
    /// timeline should read, and the timeline event is appended. A replayed request answers
    /// with `reread` of the resource the first attempt named.
    async fn create_in<T: Clone>(
        &self,
        incident: Uuid,
        caller: &Caller,
        key: Option<RequestKey>,
        create: impl AsyncFnOnce(&DatabaseTransaction, &mut incident::Model) -> ApiResult<Created<T>>,
        reread: impl AsyncFnOnce(String) -> ApiResult<T>,
    ) -> ApiResult<T> {
        let outcome = idempotency::run(&self.db, key, async |tx| {
            let mut made = None;
            modify_in(tx, incident, None, caller, async |tx, m| {
                let Created {
                    name,
                    value,
                    change,
                } = create(tx, m).await?;
                made = Some((name, value));
                Ok(change)
            })
            .await?;
            made.ok_or_else(|| ApiError::Internal("created resource lost".into()))
        })
        .await?;
        self.changed.notify_waiters();
        match outcome {
            Outcome::Created(value) => Ok(value),
            Outcome::Replayed(name) => reread(name).await,
        }
    }
}

/// What a create inside an incident made: its resource name (the idempotency record keeps it),
/// the row, and the timeline side of the change.
struct Created<T> {
    name: String,
    value: T,
    change: Change,
}

/// Read-modify-write of one incident inside `tx`: locks it (PostgreSQL; SQLite writes are
/// serial), checks the etag, applies `change`, and appends the change's timeline event.
async fn modify_in(
    tx: &DatabaseTransaction,
    id: Uuid,
    expected_version: Option<i64>,
    caller: &Caller,
    change: impl AsyncFnOnce(&DatabaseTransaction, &mut incident::Model) -> ApiResult<Change>,
) -> ApiResult<incident::Model> {
    let name = format!("incidents/{id}");
    let current = incident::Entity::find_by_id(id)
        .lock_exclusive()
        .one(tx)
        .await?;
    may_change_incident(caller, &name, current.as_ref().map(services_of))?;
    let current = current.ok_or_else(|| ApiError::not_found(&name))?;
    check_version(&name, expected_version, current.version)?;
    let before = services_of(&current);
    caller.may_change_any(before.iter().copied())?;
    let mut next = current.clone();
    let Change {
        kind,
        summary,
        services,
    } = change(tx, &mut next).await?;
    if let Some(after) = &services {
        // A scoped caller may neither add nor remove another team's service.
        let added = after
            .iter()
            .map(String::as_str)
            .filter(|s| !before.contains(s));
        let removed = before
            .iter()
            .copied()
            .filter(|s| !after.iter().any(|a| a == s));
        caller.may_change_all(added.chain(removed))?;
    }
    let now = now_micros();
    next.version = current.version + 1;
    next.update_time = now;
    next.timeline_seq = current.timeline_seq + 1;
    let written = incident::Entity::update_many()
        .set(next.clone().into_active_model().reset_all())
        .filter(incident::Column::Id.eq(id))
        .filter(incident::Column::Version.eq(current.version))
        .exec(tx)
        .await?;
    if written.rows_affected != 1 {
        return Err(ApiError::Conflict { resource: name });
    }
    if let Some(services) = services {
        incident_service::Entity::delete_many()
            .filter(incident_service::Column::IncidentId.eq(id))
            .exec(tx)
            .await?;
        write_services(tx, id, &services).await?;
    }
    append(tx, &next, next.timeline_seq, kind, caller, summary, now).await?;
    Ok(next)
}

async fn write_services(
    tx: &DatabaseTransaction,
    id: Uuid,
    services: &[String],
) -> Result<(), DbErr> {
    if services.is_empty() {
        return Ok(());
    }
    let rows = services.iter().map(|s| {
        incident_service::Model {
            incident_id: id,
            service_id: s.clone(),
        }
        .into_active_model()
    });
    incident_service::Entity::insert_many(rows)
        .exec_without_returning(tx)
        .await?;
    Ok(())
}

/// Refuses `caller` a change of the incident `name`, whose affected services are `services`
/// (`None`: it does not exist): `NOT_FOUND` for a missing incident, but for a scoped caller
/// the same `PERMISSION_DENIED` as for an incident of other services (need-to-know: a hidden
/// incident cannot be told from a missing one).
pub fn may_change_incident<'a>(
    caller: &Caller,
    name: &str,
    services: Option<impl IntoIterator<Item = &'a str>>,
) -> ApiResult<()> {
    match services {
        Some(services) => {
            if caller.sees_any(services) {
                Ok(())
            } else {
                Err(caller.hidden(name))
            }
        }
        None if caller.read_scope().is_none() => Err(ApiError::not_found(name)),
        None => Err(caller.hidden(name)),
    }
}

/// Rows whose incident (the column `incident`) affects at least one of the services `scope`
/// (need-to-know reads of a scoped caller).
pub fn affecting(
    incident: impl sea_orm::ColumnTrait,
    scope: &[String],
) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::Query;
    incident.in_subquery(
        Query::select()
            .column(incident_service::Column::IncidentId)
            .from(incident_service::Entity)
            .and_where(incident_service::Column::ServiceId.is_in(scope.iter().cloned()))
            .to_owned(),
    )
}

/// The affected service ids of an incident.
pub fn services_of(m: &incident::Model) -> Vec<&str> {
    m.affected_services
        .split(',')
        .filter(|s| !s.is_empty())
        .collect()
}
