//! Stakeholder notifications: drafts, approval by someone other than the author, sending, and
//! the deadline customer and regulator notices keep.

use assurance_runtime::{
    ApiError, ApiResult, Reason,
    auth::Caller,
    idempotency::{RequestKey, last_segment},
    time::now_micros,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{
    Change, Created, Store, TimelineKind,
    entities::{incident, notification},
};

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

impl Store {
    /// Drafts a notification; its deadline follows from the incident (see [`comms`]).
    pub async fn create_notification(
        &self,
        mut n: notification::Model,
        caller: &Caller,
        key: Option<RequestKey>,
    ) -> ApiResult<notification::Model> {
        let id = n.incident_id;
        let create = async |tx: &DatabaseTransaction, m: &mut incident::Model| {
            n.create_time = now_micros();
            n.status = comms::DRAFT;
            n.deadline_time = (m.customer_data_affected
                && matches!(n.audience, comms::CUSTOMERS | comms::REGULATOR))
            .then_some(m.declare_time + comms::DEADLINE_MICROS);
            notification::Entity::insert(n.clone().into_active_model())
                .exec_without_returning(tx)
                .await?;
            Ok(Created {
                name: format!("incidents/{id}/notifications/{}", n.id),
                change: Change {
                    kind: TimelineKind::Communication,
                    summary: format!("notification drafted by {}: {}", n.author, n.subject),
                    services: None,
                },
                value: n,
            })
        };
        let reread = async |name: String| self.notification(id, last_segment(&name)?).await;
        self.create_in(id, caller, key, create, reread).await
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
                            Reason::SelfApproval,
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
                        Reason::NotADraft,
                        "only a DRAFT notification can be approved",
                    ));
                }
                (None, _) => {
                    return Err(ApiError::precondition(
                        Reason::NotApproved,
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
}
