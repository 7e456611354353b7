//! Stakeholder notifications: drafts, approval by someone other than the author, sending, and
//! the deadline customer and regulator notices keep.

use assurance_runtime::{
    ApiError, ApiResult, Reason,
    auth::Caller,
    idempotency::{Outcome, RequestKey, last_segment},
    list::{EnumValues, Field, FilterContext, FilterTable, KeyType, Kind, ListQuery, Sorting},
    page::Key,
    time::now_micros,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, IntoActiveModel,
    QueryFilter, QuerySelect,
};
use uuid::Uuid;

use super::{
    Change, Created, Store, check_version,
    entities::{incident, notification},
};
use crate::domain::notification::{Audience, NotificationStatus, deadline};
use crate::domain::timeline::TimelineKind;

static AUDIENCE: EnumValues = EnumValues {
    prefix: "AUDIENCE_",
    values: Audience::NAMES,
};
static STATUS: EnumValues = EnumValues {
    prefix: "NOTIFICATION_STATUS_",
    values: NotificationStatus::NAMES,
};

/// The filter fields of `ListNotifications`.
pub static NOTIFICATION_FILTER: FilterTable<notification::Column> = FilterTable(&[
    Field::new("overdue", Kind::Flag(overdue)),
    Field::new(
        "audience",
        Kind::Enum {
            column: notification::Column::Audience,
            values: &AUDIENCE,
            ordered: false,
        },
    ),
    Field::new(
        "status",
        Kind::Enum {
            column: notification::Column::Status,
            values: &STATUS,
            ordered: false,
        },
    ),
]);

/// `order_by` of `ListNotifications`: `create_time` or `status`, optionally `desc`; creation
/// order (ascending UUIDv7 id) by default.
pub const NOTIFICATION_SORTING: Sorting = Sorting {
    fields: &[("create_time", KeyType::Int), ("status", KeyType::Int)],
    default: &[],
    max_fields: 2,
    id: KeyType::Uuid,
};

/// The page-token keys of a notification in `q`'s order.
pub fn notification_keys(q: &ListQuery, n: &notification::Model) -> Vec<Key> {
    super::row_keys(
        q,
        |field| match field {
            "status" => i64::from(n.status),
            _ => n.create_time,
        },
        Key::Text(n.id.to_string()),
    )
}

/// A notification of `incident`, locked for a change, whose version is `expected` (when given).
async fn locked_notification(
    tx: &DatabaseTransaction,
    incident: Uuid,
    id: Uuid,
    expected: Option<i64>,
) -> ApiResult<notification::Model> {
    let name = format!("incidents/{incident}/notifications/{id}");
    let n = notification::Entity::find_by_id(id)
        .lock_exclusive()
        .one(tx)
        .await?
        .filter(|n| n.incident_id == incident)
        .ok_or_else(|| ApiError::not_found(&name))?;
    check_version(&name, expected, n.version)?;
    Ok(n)
}

/// Unsent and past its deadline (notifications without a deadline are never overdue).
fn overdue(cx: &FilterContext) -> Condition {
    Condition::all()
        .add(notification::Column::Status.ne(NotificationStatus::Sent as i32))
        .add(notification::Column::DeadlineTime.lt(cx.now))
}

impl Store {
    /// Drafts a notification; its deadline follows from the incident (see
    /// [`notification::deadline`](crate::domain::notification::deadline)).
    pub async fn create_notification(
        &self,
        mut n: notification::Model,
        deadline_hours: u32,
        caller: &Caller,
        key: Option<RequestKey>,
    ) -> ApiResult<notification::Model> {
        let id = n.incident_id;
        let create = async |tx: &DatabaseTransaction, m: &mut incident::Model| {
            n.create_time = now_micros();
            n.status = NotificationStatus::Draft as i32;
            n.deadline_time = deadline(
                Audience::try_from(n.audience).ok(),
                m.customer_data_affected,
                m.declare_time,
                deadline_hours,
            );
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

    /// Moves a notification DRAFT → APPROVED (`approver`: Some) or APPROVED → SENT (None),
    /// when `expected` (its version) is current; idempotently for `key` (a retry answers with
    /// the notification as it is now).
    pub async fn advance_notification(
        &self,
        incident: Uuid,
        id: Uuid,
        approver: Option<String>,
        expected: Option<i64>,
        caller: &Caller,
        key: Option<RequestKey>,
    ) -> ApiResult<notification::Model> {
        let mut out = None;
        let outcome = self
            .decide(incident, None, caller, key, async |tx, _| {
                let mut n = locked_notification(tx, incident, id, expected).await?;
                let now = now_micros();
                let summary = match (&approver, NotificationStatus::try_from(n.status).ok()) {
                    (Some(a), Some(NotificationStatus::Draft)) => {
                        if assurance_runtime::auth::same_principal(a, &n.author) {
                            return Err(ApiError::precondition(
                                Reason::SelfApproval,
                                "a notification is approved by someone other than its author",
                            ));
                        }
                        (n.status, n.approver, n.approve_time) =
                            (NotificationStatus::Approved as i32, a.clone(), Some(now));
                        format!("notification approved by {a}: {}", n.subject)
                    }
                    (None, Some(NotificationStatus::Approved)) => {
                        (n.status, n.send_time) = (NotificationStatus::Sent as i32, Some(now));
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
                n.version += 1;
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
        match outcome {
            Outcome::Created(_) => {
                out.ok_or_else(|| ApiError::Internal("notification change lost".into()))
            }
            Outcome::Replayed(_) => self.notification(incident, id).await,
        }
    }

    /// Edits a DRAFT notification (`edit` changes its content and says what changed), when
    /// `expected` (its version) is current.
    pub async fn update_notification(
        &self,
        incident: Uuid,
        id: Uuid,
        expected: Option<i64>,
        caller: &Caller,
        edit: impl FnOnce(&mut notification::Model) -> String,
    ) -> ApiResult<notification::Model> {
        let mut out = None;
        self.modify(incident, None, caller, async |tx, _| {
            let mut n = locked_notification(tx, incident, id, expected).await?;
            if n.status != NotificationStatus::Draft as i32 {
                return Err(ApiError::precondition(
                    Reason::NotADraft,
                    "only a DRAFT notification can be edited; this one is approved or sent",
                ));
            }
            let what = edit(&mut n);
            n.version += 1;
            notification::Entity::update(n.clone().into_active_model().reset_all())
                .exec(tx)
                .await?;
            let summary = format!("notification draft edited ({what}): {}", n.subject);
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
    /// A page of notifications: of one incident, or of every incident (`incident` = `None`).
    pub async fn notifications(
        &self,
        incident: Option<Uuid>,
        scope: Option<&[String]>,
        list: &ListQuery,
    ) -> ApiResult<Vec<notification::Model>> {
        let mut q = notification::Entity::find();
        if let Some(scope) = scope {
            q = q.filter(super::affecting(notification::Column::IncidentId, scope));
        }
        if let Some(id) = incident {
            self.get(id).await?;
            q = q.filter(notification::Column::IncidentId.eq(id));
        }
        let columns = [
            ("create_time", notification::Column::CreateTime),
            ("status", notification::Column::Status),
        ];
        Ok(
            super::query::ordered_page(q, list, &columns, notification::Column::Id)?
                .all(&self.db)
                .await?,
        )
    }

    /// An incident's first `limit` notifications, oldest first (for its report).
    pub async fn notifications_of(
        &self,
        incident: Uuid,
        limit: u64,
    ) -> ApiResult<Vec<notification::Model>> {
        self.get(incident).await?;
        let q = notification::Entity::find().filter(notification::Column::IncidentId.eq(incident));
        Ok(assurance_runtime::db::page_after(
            &self.db,
            q,
            notification::Column::Id,
            None::<Uuid>,
            limit,
        )
        .await?)
    }
}
