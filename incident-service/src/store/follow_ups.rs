//! Post-incident follow-ups: tracked work items of an incident. The review creates its own in
//! its transaction; more are added once the incident is in POST_INCIDENT or CLOSED. A
//! follow-up outlives its incident's closure, so its changes are transactions of their own
//! (row-locked, etag-checked, audited) that leave the incident and its timeline as they are.

use std::collections::HashMap;

use assurance_runtime::{
    ApiError, ApiResult, Reason, audit,
    auth::Caller,
    db,
    filter::{Op, compare_pair, equality_only},
    idempotency::{self, Outcome, RequestKey, last_segment},
    list::{EnumValues, Field, FilterContext, FilterTable, KeyType, Kind, ListQuery, Sorting},
    page::Key,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter, QuerySelect, sea_query::Query,
};
use uuid::Uuid;

use super::{
    SERVICE, Store, check_version,
    entities::{follow_up, incident, incident_service},
    query::ordered_page,
};
use crate::domain::{phase::Phase, task::TaskStatus};

static STATUS: EnumValues = EnumValues {
    prefix: "WORK_ITEM_STATUS_",
    values: TaskStatus::NAMES,
};

/// DONE and WONT_DO: no longer due.
pub const FINISHED: [TaskStatus; 2] = [TaskStatus::Done, TaskStatus::WontDo];

/// The filter fields of `ListFollowUps`: the same names and meanings as `ListActionItems`'
/// (risk-service), so one work-item filter reads both; `name` compares in name order, which is
/// how the gateway's `ListWorkItems` continues after the last item it returned.
pub static FOLLOW_UP_FILTER: FilterTable<follow_up::Column> = FilterTable(&[
    Field::new(
        "status",
        Kind::Enum {
            column: follow_up::Column::Status,
            values: &STATUS,
            ordered: false,
        },
    ),
    Field::new("owner", Kind::Text(follow_up::Column::Owner)),
    Field::new("overdue", Kind::Flag(overdue)),
    Field::new("service", Kind::Custom(service)),
    Field::new(
        "tracker_system",
        Kind::Text(follow_up::Column::TrackerSystem),
    ),
    Field::new("external_key", Kind::Text(follow_up::Column::TrackerKey)),
    Field::new("due_time", Kind::Time(follow_up::Column::DueTime)),
    Field::new("create_time", Kind::Time(follow_up::Column::CreateTime)),
    Field::new("update_time", Kind::Time(follow_up::Column::UpdateTime)),
    Field::new("name", Kind::Custom(name)),
]);

/// `name OP "incidents/{incident}/followUps/{follow_up}"`, in name order (incident, then
/// follow-up).
fn name(field: &str, op: Op, value: &str, _: &FilterContext) -> Result<Condition, String> {
    let ids = match value.split('/').collect::<Vec<_>>().as_slice() {
        ["incidents", incident, "followUps", id] => {
            Uuid::parse_str(incident).ok().zip(Uuid::parse_str(id).ok())
        }
        _ => None,
    };
    let (incident, id) = ids.ok_or_else(|| {
        format!("`{field}` compares with `incidents/{{incident}}/followUps/{{follow_up}}` (got `{value}`)")
    })?;
    Ok(compare_pair(
        (follow_up::Column::IncidentId, incident.into()),
        (follow_up::Column::Id, id.into()),
        op,
    ))
}

/// Due before now and not finished.
fn overdue(cx: &FilterContext) -> Condition {
    Condition::all()
        .add(follow_up::Column::DueTime.lt(cx.now))
        .add(follow_up::Column::Status.is_not_in(FINISHED.map(|s| s as i32)))
}

/// Follow-ups of incidents affecting the service.
fn service(field: &str, op: Op, value: &str, _: &FilterContext) -> Result<Condition, String> {
    equality_only(field, op)?;
    let id = value.strip_prefix("services/").unwrap_or(value);
    let incidents = Query::select()
        .column(incident_service::Column::IncidentId)
        .from(incident_service::Entity)
        .and_where(incident_service::Column::ServiceId.eq(id))
        .to_owned();
    let cond = Condition::all().add(follow_up::Column::IncidentId.in_subquery(incidents));
    Ok(if op == Op::Eq { cond } else { cond.not() })
}

/// Follow-ups list in creation order by default; `order_by` one or two of `due_time`,
/// `create_time`, `update_time`, `title`, `name`, each optionally `desc`.
pub const FOLLOW_UP_SORTING: Sorting = Sorting {
    fields: &[
        ("due_time", KeyType::Int),
        ("create_time", KeyType::Int),
        ("update_time", KeyType::Int),
        ("title", KeyType::Text),
        // Name order: the incident, then (the id that ends every order) the follow-up.
        ("name", KeyType::Uuid),
    ],
    default: &[],
    max_fields: 2,
    id: KeyType::Uuid,
};

const COLUMNS: [(&str, follow_up::Column); 5] = [
    ("due_time", follow_up::Column::DueTime),
    ("create_time", follow_up::Column::CreateTime),
    ("update_time", follow_up::Column::UpdateTime),
    ("title", follow_up::Column::Title),
    ("name", follow_up::Column::IncidentId),
];

/// The page-token keys of a follow-up in `q`'s order.
pub fn follow_up_keys(q: &ListQuery, f: &follow_up::Model) -> Vec<Key> {
    q.order
        .iter()
        .map(|(field, _)| match *field {
            "title" => Key::Text(f.title.clone()),
            "name" => Key::Text(f.incident_id.to_string()),
            "due_time" => Key::Int(f.due_time),
            "update_time" => Key::Int(f.update_time),
            _ => Key::Int(f.create_time),
        })
        .chain([Key::Text(f.id.to_string())])
        .collect()
}

/// The name of a follow-up.
pub fn follow_up_name(f: &follow_up::Model) -> String {
    format!("incidents/{}/followUps/{}", f.incident_id, f.id)
}

/// Inserts `rows` (their version and times set here) in the caller's transaction.
pub(super) async fn insert_follow_ups(
    tx: &DatabaseTransaction,
    rows: &[follow_up::Model],
    now: i64,
) -> ApiResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let models = rows.iter().cloned().map(|mut f| {
        (f.version, f.create_time, f.update_time) = (1, now, now);
        f.into_active_model()
    });
    follow_up::Entity::insert_many(models)
        .exec_without_returning(tx)
        .await?;
    Ok(())
}

/// The affected services of `incident`, read in `conn`.
async fn services_of(conn: &impl ConnectionTrait, incident: Uuid) -> ApiResult<Vec<String>> {
    Ok(incident_service::Entity::find()
        .filter(incident_service::Column::IncidentId.eq(incident))
        .all(conn)
        .await?
        .into_iter()
        .map(|s| s.service_id)
        .collect())
}

impl Store {
    /// Adds a follow-up to an incident in POST_INCIDENT or CLOSED; idempotent with `key`.
    pub async fn create_follow_up(
        &self,
        row: follow_up::Model,
        caller: &Caller,
        key: Option<RequestKey>,
        now: i64,
    ) -> ApiResult<follow_up::Model> {
        let request_id = key
            .as_ref()
            .map(|k| k.request_id.clone())
            .unwrap_or_default();
        let incident_id = row.incident_id;
        let outcome = idempotency::run(&self.db, key, async |tx| {
            let parent = format!("incidents/{incident_id}");
            let m = incident::Entity::find_by_id(incident_id).one(tx).await?;
            let services = services_of(tx, incident_id).await?;
            super::may_change_incident(
                caller,
                &parent,
                m.as_ref().map(|_| services.iter().map(String::as_str)),
            )?;
            let m = m.ok_or_else(|| ApiError::not_found(&parent))?;
            if m.phase != Phase::PostIncident as i32 && m.phase != Phase::Closed as i32 {
                return Err(ApiError::precondition(
                    Reason::FollowUpNotAllowed,
                    format!(
                        "{parent} is in {}: follow-ups are added in POST_INCIDENT or after \
                         closure (during the response, add a task)",
                        Phase::try_from(m.phase).map_or("an unknown phase", Phase::as_str)
                    ),
                ));
            }
            insert_follow_ups(tx, std::slice::from_ref(&row), now).await?;
            let name = follow_up_name(&row);
            audit::record(tx, SERVICE, caller, &name, &request_id).await?;
            Ok((name, ()))
        })
        .await?;
        let name = match outcome {
            Outcome::Created(()) => follow_up_name(&row),
            Outcome::Replayed(name) => name,
        };
        self.follow_up(incident_id, last_segment(&name)?).await
    }

    pub async fn follow_up(&self, incident: Uuid, id: Uuid) -> ApiResult<follow_up::Model> {
        follow_up::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|f| f.incident_id == incident)
            .ok_or_else(|| ApiError::not_found(format!("incidents/{incident}/followUps/{id}")))
    }

    /// Applies `change` to a follow-up (etag-checked), audited.
    pub async fn update_follow_up(
        &self,
        incident: Uuid,
        id: Uuid,
        expected_version: Option<i64>,
        caller: &Caller,
        now: i64,
        change: impl FnOnce(&mut follow_up::Model),
    ) -> ApiResult<follow_up::Model> {
        let name = format!("incidents/{incident}/followUps/{id}");
        let tx = db::begin_write(&self.db).await?;
        let current = follow_up::Entity::find_by_id(id)
            .lock_exclusive()
            .one(&tx)
            .await?
            .filter(|f| f.incident_id == incident);
        let services = services_of(&tx, incident).await?;
        // A missing item of a hidden incident reads as the incident's refusal.
        if !caller.sees_any(services.iter().map(String::as_str)) {
            return Err(caller.hidden(&format!("incidents/{incident}")));
        }
        let current = current.ok_or_else(|| ApiError::not_found(&name))?;
        check_version(&name, expected_version, current.version)?;
        let mut next = current.clone();
        change(&mut next);
        next.version = current.version + 1;
        next.update_time = now;
        next.clone()
            .into_active_model()
            .reset_all()
            .update(&tx)
            .await?;
        audit::record(&tx, SERVICE, caller, &name, "").await?;
        tx.commit().await?;
        Ok(next)
    }

    /// A page of follow-ups of `incident`, or of every incident.
    pub async fn follow_ups(
        &self,
        incident: Option<Uuid>,
        scope: Option<&[String]>,
        q: &ListQuery,
    ) -> ApiResult<Vec<follow_up::Model>> {
        let mut select = follow_up::Entity::find();
        if let Some(scope) = scope {
            select = select.filter(super::affecting(follow_up::Column::IncidentId, scope));
        }
        if let Some(incident) = incident {
            self.get(incident).await?;
            select = select.filter(follow_up::Column::IncidentId.eq(incident));
        }
        Ok(ordered_page(select, q, &COLUMNS, follow_up::Column::Id)?
            .all(&self.db)
            .await?)
    }

    /// The affected services of each of `incidents`.
    pub async fn services_of_incidents(
        &self,
        incidents: impl IntoIterator<Item = Uuid>,
    ) -> ApiResult<HashMap<Uuid, Vec<String>>> {
        let ids: Vec<Uuid> = incidents.into_iter().collect();
        let mut out: HashMap<Uuid, Vec<String>> = HashMap::new();
        for chunk in ids.chunks(500) {
            for row in incident_service::Entity::find()
                .filter(incident_service::Column::IncidentId.is_in(chunk.iter().copied()))
                .all(&self.db)
                .await?
            {
                out.entry(row.incident_id).or_default().push(row.service_id);
            }
        }
        for services in out.values_mut() {
            services.sort();
        }
        Ok(out)
    }
}
