//! Storage of incident-service: incidents with their affected services, and the append-only
//! timeline. Every change of an incident appends its timeline event in the same transaction,
//! under the incident's row lock, so timeline sequence numbers have no gaps and follow commit
//! order — the cursor `WatchIncident` will stream from.

pub mod entities;
pub mod metrics;
pub mod migration;
mod query;

use std::sync::Arc;

use assurance_runtime::{
    ApiError, ApiResult, audit,
    auth::Caller,
    db,
    idempotency::{self, Outcome, RequestKey, last_segment},
    time::now_micros,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use sea_orm_migration::MigratorTrait;
use uuid::Uuid;

pub use query::{IncidentFilter, IncidentOrder, ListIncidents};

use crate::domain::phase::Phase;

/// This service's name in the audit trail it may share a database table with.
pub const SERVICE: &str = "incident-service";
use entities::{
    custody_entry, evidence, incident, incident_service, indicator, notification, outbox_event,
    review, role, task, timeline_event,
};

/// The incident-service database.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// Woken after every committed change, so watchers of this process need not wait for
    /// their next poll; changes through other replicas are seen by polling.
    changed: Arc<tokio::sync::Notify>,
    /// Background jobs of this store (the WAL checkpointer) run while this lives.
    _alive: Arc<()>,
}

/// The timeline side of a change: what happened, in words.
pub struct Change {
    pub kind: TimelineKind,
    pub summary: String,
    /// New affected services, when they changed.
    pub services: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineKind {
    Declared = 1,
    Updated = 2,
    PhaseChanged = 3,
    Closed = 4,
    Note = 5,
    ReviewRecorded = 6,
    IndicatorAdded = 7,
    RoleAssigned = 8,
    Evidence = 9,
    Communication = 10,
    Task = 11,
}

/// Notification statuses and audiences, as stored.
pub mod comms {
    pub const DRAFT: i32 = 1;
    pub const APPROVED: i32 = 2;
    pub const SENT: i32 = 3;
    pub const CUSTOMERS: i32 = 1;
    pub const REGULATOR: i32 = 2;
    /// Customers and regulators are due this long after declaration when customer data is
    /// affected.
    pub const DEADLINE_MICROS: i64 = 72 * 3600 * 1_000_000;
}

/// Outbox event kinds of incident-service.
pub mod outbox {
    pub const FOLLOW_UP: &str = "incident.follow_up";
    pub const IDENTIFIED_RISK: &str = "incident.identified_risk";
}

pub use assurance_runtime::etag::{check_version, etag, parse_etag};

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, DbErr> {
        let db = db::connect(url, max_connections).await?;
        migration::Migrator::up(&db, None).await?;
        let alive = Arc::new(());
        db::spawn_checkpointer(db.clone(), Arc::downgrade(&alive));
        Ok(Store {
            db,
            changed: Arc::default(),
            _alive: alive,
        })
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Returns after the next change committed through this process, or after `poll`.
    pub async fn wait_for_change(&self, poll: std::time::Duration) {
        let _ = tokio::time::timeout(poll, self.changed.notified()).await;
    }

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
            Outcome::Replayed(_) => self.get(inc.id).await,
        }
    }

    pub async fn get(&self, id: Uuid) -> ApiResult<incident::Model> {
        incident::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("incidents/{id}")))
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

    /// Records the post-incident review, queues its follow-ups and identified risks in the
    /// outbox and marks the review complete — one transaction.
    pub async fn record_review(
        &self,
        id: Uuid,
        mut review: review::Model,
        events: Vec<outbox_event::Model>,
        caller: &Caller,
        key: Option<RequestKey>,
    ) -> ApiResult<review::Model> {
        let outcome = idempotency::run(&self.db, key, async |tx| {
            let now = now_micros();
            review.incident_id = id;
            review.review_time = now;
            let summary = format!(
                "post-incident review recorded: {} follow-up item(s), {} identified risk(s)",
                events
                    .iter()
                    .filter(|e| e.kind == outbox::FOLLOW_UP)
                    .count(),
                events
                    .iter()
                    .filter(|e| e.kind == outbox::IDENTIFIED_RISK)
                    .count(),
            );
            modify_in(tx, id, None, caller, async |tx, m| {
                if phase_of(m)? != Phase::PostIncident {
                    return Err(ApiError::precondition(
                        assurance_runtime::Reason::ReviewNotAllowed,
                        format!(
                            "incidents/{id} is in {}; the review is recorded in POST_INCIDENT",
                            phase_name(m.phase)
                        ),
                    ));
                }
                if m.review_complete {
                    return Err(ApiError::precondition(
                        assurance_runtime::Reason::ReviewExists,
                        format!("incidents/{id} already has its post-incident review"),
                    ));
                }
                m.review_complete = true;
                review::Entity::insert(review.clone().into_active_model())
                    .exec_without_returning(tx)
                    .await?;
                if !events.is_empty() {
                    let rows = events.iter().cloned().map(|mut e| {
                        e.create_time = now;
                        e.into_active_model()
                    });
                    outbox_event::Entity::insert_many(rows)
                        .exec_without_returning(tx)
                        .await?;
                }
                Ok(Change {
                    kind: TimelineKind::ReviewRecorded,
                    summary: summary.clone(),
                    services: None,
                })
            })
            .await?;
            Ok((format!("incidents/{id}/review"), review.clone()))
        })
        .await?;
        self.changed.notify_waiters();
        match outcome {
            Outcome::Created(r) => Ok(r),
            Outcome::Replayed(_) => self.review(id).await,
        }
    }

    pub async fn review(&self, id: Uuid) -> ApiResult<review::Model> {
        review::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("incidents/{id}/review")))
    }

    /// Adds an indicator (normalised by the caller) and its timeline event.
    pub async fn add_indicator(
        &self,
        mut ind: indicator::Model,
        kind_name: &str,
        caller: &Caller,
        key: Option<RequestKey>,
    ) -> ApiResult<indicator::Model> {
        let incident_id = ind.incident_id;
        let outcome = idempotency::run(&self.db, key, async |tx| {
            ind.create_time = now_micros();
            let name = format!("incidents/{incident_id}/indicators/{}", ind.id);
            modify_in(tx, incident_id, None, caller, async |tx, _| {
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
                Ok(Change {
                    kind: TimelineKind::IndicatorAdded,
                    summary: format!("indicator added: {kind_name} {}", ind.value),
                    services: None,
                })
            })
            .await?;
            Ok((name, ind.clone()))
        })
        .await?;
        self.changed.notify_waiters();
        match outcome {
            Outcome::Created(i) => Ok(i),
            Outcome::Replayed(name) => {
                let id: Uuid = last_segment(&name)?;
                indicator::Entity::find_by_id(id)
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| ApiError::not_found(name))
            }
        }
    }

    /// Indicators of one incident (`incident`) or, for a sweep, of every incident with this
    /// type and value; by id after `after`.
    pub async fn indicators(
        &self,
        incident: Option<Uuid>,
        sweep: Option<(i32, String)>,
        after: Option<Uuid>,
        limit: u64,
    ) -> ApiResult<Vec<indicator::Model>> {
        let mut q = indicator::Entity::find().order_by_asc(indicator::Column::Id);
        if let Some(id) = incident {
            self.get(id).await?;
            q = q.filter(indicator::Column::IncidentId.eq(id));
        }
        if let Some((kind, value)) = sweep {
            q = q
                .filter(indicator::Column::Kind.eq(kind))
                .filter(indicator::Column::Value.eq(value));
        }
        if let Some(after) = after {
            q = q.filter(indicator::Column::Id.gt(after));
        }
        Ok(q.limit(limit).all(&self.db).await?)
    }

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
            if m.phase == Phase::Closed as i32 {
                return Err(ApiError::precondition(
                    assurance_runtime::Reason::IncidentClosed,
                    format!("incidents/{id} is CLOSED"),
                ));
            }
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

    pub async fn roles(&self, id: Uuid) -> ApiResult<Vec<role::Model>> {
        self.get(id).await?;
        Ok(role::Entity::find()
            .filter(role::Column::IncidentId.eq(id))
            .order_by_asc(role::Column::Kind)
            .all(&self.db)
            .await?)
    }

    /// Records an item of evidence and the first entry of its custody log (the collection).
    pub async fn add_evidence(
        &self,
        mut item: evidence::Model,
        caller: &Caller,
        key: Option<RequestKey>,
    ) -> ApiResult<evidence::Model> {
        let id = item.incident_id;
        let outcome = idempotency::run(&self.db, key, async |tx| {
            let now = now_micros();
            (item.create_time, item.custody_seq, item.custodian) = (now, 1, item.collector.clone());
            modify_in(tx, id, None, caller, async |tx, _| {
                evidence::Entity::insert(item.clone().into_active_model())
                    .exec_without_returning(tx)
                    .await?;
                let first = custody_entry::Model {
                    evidence_id: item.id,
                    seq: 1,
                    incident_id: id,
                    from_custodian: String::new(),
                    to_custodian: item.collector.clone(),
                    purpose: "collected".into(),
                    location: item.location.clone(),
                    transfer_time: item.collect_time,
                };
                custody_entry::Entity::insert(first.into_active_model())
                    .exec_without_returning(tx)
                    .await?;
                Ok(Change {
                    kind: TimelineKind::Evidence,
                    summary: format!(
                        "evidence collected by {}: {} ({})",
                        item.collector, item.description, item.hash
                    ),
                    services: None,
                })
            })
            .await?;
            Ok((format!("incidents/{id}/evidence/{}", item.id), item.clone()))
        })
        .await?;
        self.changed.notify_waiters();
        match outcome {
            Outcome::Created(e) => Ok(e),
            Outcome::Replayed(name) => self.evidence_by_name(&name).await,
        }
    }

    async fn evidence_by_name(&self, name: &str) -> ApiResult<evidence::Model> {
        let id = last_segment(name)?;
        self.evidence(id).await
    }

    pub async fn evidence(&self, id: Uuid) -> ApiResult<evidence::Model> {
        evidence::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("evidence {id}")))
    }

    /// Evidence of an incident by id, after `after`.
    pub async fn evidence_of(
        &self,
        incident: Uuid,
        after: Option<Uuid>,
        limit: u64,
    ) -> ApiResult<Vec<evidence::Model>> {
        self.get(incident).await?;
        let mut q = evidence::Entity::find()
            .filter(evidence::Column::IncidentId.eq(incident))
            .order_by_asc(evidence::Column::Id);
        if let Some(after) = after {
            q = q.filter(evidence::Column::Id.gt(after));
        }
        Ok(q.limit(limit).all(&self.db).await?)
    }

    /// Appends a custody transfer of an item of `incident`.
    pub async fn record_custody(
        &self,
        incident: Uuid,
        evidence_id: Uuid,
        mut entry: custody_entry::Model,
        caller: &Caller,
        key: Option<RequestKey>,
    ) -> ApiResult<custody_entry::Model> {
        let outcome = idempotency::run(&self.db, key, async |tx| {
            modify_in(tx, incident, None, caller, async |tx, _| {
                let item = evidence::Entity::find_by_id(evidence_id)
                    .lock_exclusive()
                    .one(tx)
                    .await?
                    .filter(|e| e.incident_id == incident)
                    .ok_or_else(|| {
                        ApiError::not_found(format!("incidents/{incident}/evidence/{evidence_id}"))
                    })?;
                entry.evidence_id = evidence_id;
                entry.incident_id = incident;
                entry.seq = item.custody_seq + 1;
                entry.from_custodian = item.custodian.clone();
                entry.transfer_time = now_micros();
                let mut next = item.clone();
                next.custody_seq = entry.seq;
                next.custodian = entry.to_custodian.clone();
                if !entry.location.is_empty() {
                    next.location = entry.location.clone();
                }
                evidence::Entity::update(next.into_active_model().reset_all())
                    .exec(tx)
                    .await?;
                custody_entry::Entity::insert(entry.clone().into_active_model())
                    .exec_without_returning(tx)
                    .await?;
                Ok(Change {
                    kind: TimelineKind::Evidence,
                    summary: format!(
                        "custody of {}: {} → {}: {}",
                        item.description, entry.from_custodian, entry.to_custodian, entry.purpose
                    ),
                    services: None,
                })
            })
            .await?;
            Ok((
                format!(
                    "incidents/{incident}/evidence/{evidence_id}/custody/{}",
                    entry.seq
                ),
                entry.clone(),
            ))
        })
        .await?;
        self.changed.notify_waiters();
        match outcome {
            Outcome::Created(e) => Ok(e),
            Outcome::Replayed(name) => {
                let seq: i64 = last_segment(&name)?;
                custody_entry::Entity::find_by_id((evidence_id, seq))
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| ApiError::not_found(name))
            }
        }
    }

    /// The custody log of an item, oldest first.
    pub async fn custody(
        &self,
        incident: Uuid,
        evidence_id: Uuid,
    ) -> ApiResult<Vec<custody_entry::Model>> {
        let item = self.evidence(evidence_id).await?;
        if item.incident_id != incident {
            return Err(ApiError::not_found(format!(
                "incidents/{incident}/evidence/{evidence_id}"
            )));
        }
        Ok(custody_entry::Entity::find()
            .filter(custody_entry::Column::EvidenceId.eq(evidence_id))
            .order_by_asc(custody_entry::Column::Seq)
            .all(&self.db)
            .await?)
    }

    /// Drafts a notification; its deadline follows from the incident (see [`comms`]).
    pub async fn create_notification(
        &self,
        mut n: notification::Model,
        caller: &Caller,
        key: Option<RequestKey>,
    ) -> ApiResult<notification::Model> {
        let id = n.incident_id;
        let outcome = idempotency::run(&self.db, key, async |tx| {
            n.create_time = now_micros();
            n.status = comms::DRAFT;
            modify_in(tx, id, None, caller, async |tx, m| {
                n.deadline_time = (m.customer_data_affected
                    && matches!(n.audience, comms::CUSTOMERS | comms::REGULATOR))
                .then_some(m.declare_time + comms::DEADLINE_MICROS);
                notification::Entity::insert(n.clone().into_active_model())
                    .exec_without_returning(tx)
                    .await?;
                Ok(Change {
                    kind: TimelineKind::Communication,
                    summary: format!("notification drafted by {}: {}", n.author, n.subject),
                    services: None,
                })
            })
            .await?;
            Ok((format!("incidents/{id}/notifications/{}", n.id), n.clone()))
        })
        .await?;
        self.changed.notify_waiters();
        match outcome {
            Outcome::Created(n) => Ok(n),
            Outcome::Replayed(name) => {
                let nid = last_segment(&name)?;
                self.notification(id, nid).await
            }
        }
    }

    pub async fn notification(&self, incident: Uuid, id: Uuid) -> ApiResult<notification::Model> {
        notification::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|n| n.incident_id == incident)
            .ok_or_else(|| ApiError::not_found(format!("incidents/{incident}/notifications/{id}")))
    }

    /// Moves a notification DRAFT → APPROVED (`approver`: Some) or APPROVED → SENT (None).
    pub async fn advance_notification(
        &self,
        incident: Uuid,
        id: Uuid,
        approver: Option<String>,
        caller: &Caller,
    ) -> ApiResult<notification::Model> {
        let mut out = None;
        self.modify(incident, None, caller, async |tx, _| {
            let mut n = notification::Entity::find_by_id(id)
                .lock_exclusive()
                .one(tx)
                .await?
                .filter(|n| n.incident_id == incident)
                .ok_or_else(|| {
                    ApiError::not_found(format!("incidents/{incident}/notifications/{id}"))
                })?;
            let now = now_micros();
            let summary = match (&approver, n.status) {
                (Some(a), comms::DRAFT) => {
                    if *a == n.author {
                        return Err(ApiError::precondition(
                            assurance_runtime::Reason::SelfApproval,
                            "a notification is approved by someone other than its author",
                        ));
                    }
                    (n.status, n.approver, n.approve_time) =
                        (comms::APPROVED, a.clone(), Some(now));
                    format!("notification approved by {a}: {}", n.subject)
                }
                (None, comms::APPROVED) => {
                    (n.status, n.send_time) = (comms::SENT, Some(now));
                    format!("notification sent: {}", n.subject)
                }
                (Some(_), _) => {
                    return Err(ApiError::precondition(
                        assurance_runtime::Reason::NotADraft,
                        "only a DRAFT notification can be approved",
                    ));
                }
                (None, _) => {
                    return Err(ApiError::precondition(
                        assurance_runtime::Reason::NotApproved,
                        "only an APPROVED notification can be marked sent; approve it first",
                    ));
                }
            };
            notification::Entity::update(n.clone().into_active_model().reset_all())
                .exec(tx)
                .await?;
            out = Some(n);
            Ok(Change {
                kind: TimelineKind::Communication,
                summary,
                services: None,
            })
        })
        .await?;
        out.ok_or_else(|| ApiError::Internal("notification change lost".into()))
    }

    /// Notifications of an incident (or all), optionally only overdue ones, by id after `after`.
    pub async fn notifications(
        &self,
        incident: Option<Uuid>,
        only_overdue: bool,
        after: Option<Uuid>,
        limit: u64,
    ) -> ApiResult<Vec<notification::Model>> {
        let mut q = notification::Entity::find().order_by_asc(notification::Column::Id);
        if let Some(id) = incident {
            self.get(id).await?;
            q = q.filter(notification::Column::IncidentId.eq(id));
        }
        if only_overdue {
            q = q
                .filter(notification::Column::Status.ne(comms::SENT))
                .filter(notification::Column::DeadlineTime.lt(now_micros()));
        }
        if let Some(after) = after {
            q = q.filter(notification::Column::Id.gt(after));
        }
        Ok(q.limit(limit).all(&self.db).await?)
    }

    /// Adds a task to an incident.
    pub async fn create_task(
        &self,
        mut t: task::Model,
        caller: &Caller,
        key: Option<RequestKey>,
    ) -> ApiResult<task::Model> {
        let id = t.incident_id;
        let outcome = idempotency::run(&self.db, key, async |tx| {
            let now = now_micros();
            (t.version, t.create_time, t.update_time) = (1, now, now);
            modify_in(tx, id, None, caller, async |tx, m| {
                if m.phase == Phase::Closed as i32 {
                    return Err(ApiError::precondition(
                        assurance_runtime::Reason::IncidentClosed,
                        format!("incidents/{id} is CLOSED"),
                    ));
                }
                task::Entity::insert(t.clone().into_active_model())
                    .exec_without_returning(tx)
                    .await?;
                Ok(Change {
                    kind: TimelineKind::Task,
                    summary: format!("task added: {}", t.title),
                    services: None,
                })
            })
            .await?;
            Ok((format!("incidents/{id}/tasks/{}", t.id), t.clone()))
        })
        .await?;
        self.changed.notify_waiters();
        match outcome {
            Outcome::Created(t) => Ok(t),
            Outcome::Replayed(name) => {
                let tid = last_segment(&name)?;
                self.task(id, tid).await
            }
        }
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

    /// Tasks of an incident matching `filter`, in phase order then creation, after `after`.
    pub async fn tasks(
        &self,
        incident: Uuid,
        filter: sea_orm::Condition,
        after: Option<(i32, Uuid)>,
        limit: u64,
    ) -> ApiResult<Vec<task::Model>> {
        self.get(incident).await?;
        let mut q = task::Entity::find()
            .filter(task::Column::IncidentId.eq(incident))
            .filter(filter)
            .order_by_asc(task::Column::Phase)
            .order_by_asc(task::Column::Id);
        if let Some((phase, id)) = after {
            q = q.filter(
                sea_orm::Condition::any()
                    .add(task::Column::Phase.gt(phase))
                    .add(
                        sea_orm::Condition::all()
                            .add(task::Column::Phase.eq(phase))
                            .add(task::Column::Id.gt(id)),
                    ),
            );
        }
        Ok(q.limit(limit).all(&self.db).await?)
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

    /// Adds a note to the timeline.
    pub async fn add_note(
        &self,
        id: Uuid,
        summary: String,
        caller: &Caller,
        key: Option<RequestKey>,
    ) -> ApiResult<timeline_event::Model> {
        let outcome = idempotency::run(&self.db, key, async |tx| {
            let current = incident::Entity::find_by_id(id)
                .lock_exclusive()
                .one(tx)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("incidents/{id}")))?;
            caller.may_change_any(services_of(&current))?;
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
            Ok((format!("incidents/{id}/timeline/{seq}"), event))
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
        self.get(id).await?;
        Ok(timeline_event::Entity::find()
            .filter(timeline_event::Column::IncidentId.eq(id))
            .filter(timeline_event::Column::Seq.gt(after_seq))
            .order_by_asc(timeline_event::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await?)
    }
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
        .await?
        .ok_or_else(|| ApiError::not_found(&name))?;
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

fn phase_of(m: &incident::Model) -> ApiResult<Phase> {
    Phase::from_i32(m.phase).ok_or_else(|| {
        ApiError::Internal(format!("incident {} has unknown phase {}", m.id, m.phase))
    })
}

fn task_status_name(v: i32) -> &'static str {
    match v {
        1 => "OPEN",
        2 => "IN_PROGRESS",
        3 => "BLOCKED",
        4 => "DONE",
        5 => "WONT_DO",
        _ => "UNKNOWN",
    }
}

fn phase_name(v: i32) -> &'static str {
    Phase::from_i32(v).map_or("an unknown phase", Phase::as_str)
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

/// The affected service ids of an incident.
fn services_of(m: &incident::Model) -> Vec<&str> {
    m.affected_services
        .split(',')
        .filter(|s| !s.is_empty())
        .collect()
}

/// Appends a timeline event and, in the same transaction, the audit record of the mutation
/// it describes: every incident mutation appends exactly one event.
async fn append(
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
