//! Incident and task lists: their AIP-160 filter fields (tables of data), their sort keys, and
//! the page queries over them; and the "affects this service" clause the metrics scope shares
//! with the `service` filter.

use assurance_runtime::{
    ApiError, ApiResult,
    filter::{Op, equality_only},
    list::{
        Direction, EnumValues, Field, FilterContext, FilterTable, KeyType, Kind, ListQuery, Sorting,
    },
    page::Key,
};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Query,
};
use uuid::Uuid;

use super::{
    Store,
    entities::{incident, incident_service, task},
};
use crate::domain::{
    phase::{Classification, Phase},
    preparation::{OwnerTeam, TaskPhase},
    priority::Severity,
    task::TaskStatus,
};

static PHASE: EnumValues = EnumValues {
    prefix: "PHASE_",
    values: &[
        ("DETECTION_ANALYSIS", Phase::DetectionAnalysis as i32),
        ("CONTAINMENT", Phase::Containment as i32),
        ("ERADICATION", Phase::Eradication as i32),
        ("RECOVERY", Phase::Recovery as i32),
        ("POST_INCIDENT", Phase::PostIncident as i32),
        ("CLOSED", Phase::Closed as i32),
    ],
};
static SEVERITY: EnumValues = EnumValues {
    prefix: "SEVERITY_",
    values: &[
        ("LOW", Severity::Low as i32),
        ("MEDIUM", Severity::Medium as i32),
        ("HIGH", Severity::High as i32),
        ("CRITICAL", Severity::Critical as i32),
    ],
};
static CLASSIFICATION: EnumValues = EnumValues {
    prefix: "CLASSIFICATION_",
    values: &[
        ("EVENT", Classification::Event as i32),
        ("SECURITY_INCIDENT", Classification::SecurityIncident as i32),
        ("NOT_AN_INCIDENT", Classification::NotAnIncident as i32),
    ],
};

/// The filter fields of `ListIncidents`.
pub static INCIDENT_FILTER: FilterTable<incident::Column> = FilterTable(&[
    Field::new(
        "phase",
        Kind::Enum {
            column: incident::Column::Phase,
            values: &PHASE,
            ordered: true,
        },
    ),
    Field::new(
        "severity",
        Kind::Enum {
            column: incident::Column::Severity,
            values: &SEVERITY,
            ordered: true,
        },
    ),
    Field::new(
        "classification",
        Kind::Enum {
            column: incident::Column::Classification,
            values: &CLASSIFICATION,
            ordered: false,
        },
    ),
    Field::new("service", Kind::Custom(service)),
    Field::new("incident_type", Kind::Text(incident::Column::IncidentType)),
    Field::new(
        "customer_data_affected",
        Kind::Bool(incident::Column::CustomerDataAffected),
    ),
    Field::new(
        "open",
        Kind::Flag(|_| Condition::all().add(incident::Column::Phase.ne(Phase::Closed as i32))),
    ),
    Field::new("declare_time", Kind::Time(incident::Column::DeclareTime)),
    Field::new("detect_time", Kind::Time(incident::Column::DetectTime)),
    Field::new("close_time", Kind::Time(incident::Column::CloseTime)),
    Field::new("update_time", Kind::Time(incident::Column::UpdateTime)),
]);

/// `order_by` of `ListIncidents`: one of its times, newest declared first by default.
pub const INCIDENT_SORTING: Sorting = Sorting {
    fields: &[
        ("declare_time", KeyType::Int),
        ("update_time", KeyType::Int),
    ],
    default: &[("declare_time", Direction::Desc)],
    max_fields: 1,
    id: KeyType::Uuid,
};

fn service(field: &str, op: Op, value: &str, _: &FilterContext) -> Result<Condition, String> {
    equality_only(field, op)?;
    let cond = affecting_service(value.strip_prefix("services/").unwrap_or(value));
    Ok(if op == Op::Eq { cond } else { cond.not() })
}

/// Incidents that affect the service `id`.
pub(super) fn affecting_service(id: &str) -> Condition {
    let matching = Query::select()
        .column(incident_service::Column::IncidentId)
        .from(incident_service::Entity)
        .and_where(incident_service::Column::ServiceId.eq(id))
        .to_owned();
    Condition::all().add(incident::Column::Id.in_subquery(matching))
}

static TASK_PHASE: EnumValues = EnumValues {
    prefix: "PHASE_",
    values: &[
        ("DETECTION_ANALYSIS", TaskPhase::DetectionAnalysis as i32),
        ("CONTAINMENT", TaskPhase::Containment as i32),
        ("ERADICATION", TaskPhase::Eradication as i32),
        ("RECOVERY", TaskPhase::Recovery as i32),
        ("POST_INCIDENT", TaskPhase::PostIncident as i32),
    ],
};
static OWNER_TEAM: EnumValues = EnumValues {
    prefix: "OWNER_TEAM_",
    values: &[
        ("SECURITY_TEAM", OwnerTeam::SecurityTeam as i32),
        ("SERVICE_TEAM", OwnerTeam::ServiceTeam as i32),
    ],
};
static TASK_STATUS: EnumValues = EnumValues {
    prefix: "TASK_STATUS_",
    values: &[
        ("OPEN", TaskStatus::Open as i32),
        ("IN_PROGRESS", TaskStatus::InProgress as i32),
        ("BLOCKED", TaskStatus::Blocked as i32),
        ("DONE", TaskStatus::Done as i32),
        ("WONT_DO", TaskStatus::WontDo as i32),
    ],
};

/// The filter fields of `ListTasks` (equality only).
pub static TASK_FILTER: FilterTable<task::Column> = FilterTable(&[
    Field::new(
        "phase",
        Kind::Enum {
            column: task::Column::Phase,
            values: &TASK_PHASE,
            ordered: false,
        },
    ),
    Field::new(
        "owner_team",
        Kind::Enum {
            column: task::Column::OwnerTeam,
            values: &OWNER_TEAM,
            ordered: false,
        },
    ),
    Field::new(
        "status",
        Kind::Enum {
            column: task::Column::Status,
            values: &TASK_STATUS,
            ordered: false,
        },
    ),
    Field::new("assignee", Kind::Text(task::Column::Assignee)),
]);

/// Tasks are listed in phase order, then by id.
pub const TASK_SORTING: Sorting = Sorting {
    fields: &[("phase", KeyType::Int)],
    default: &[("phase", Direction::Asc)],
    max_fields: 0,
    id: KeyType::Uuid,
};

/// The page-token keys of an incident in `q`'s order.
pub fn incident_keys(q: &ListQuery, i: &incident::Model) -> Vec<Key> {
    let time = match q.order.first() {
        Some(("update_time", _)) => i.update_time,
        _ => i.declare_time,
    };
    vec![Key::Int(time), Key::Text(i.id.to_string())]
}

impl Store {
    /// A page of incidents.
    pub async fn list(&self, q: &ListQuery) -> ApiResult<Vec<incident::Model>> {
        let column = match q.order.first() {
            Some(("update_time", _)) => incident::Column::UpdateTime,
            Some(("declare_time", _)) => incident::Column::DeclareTime,
            other => {
                return Err(ApiError::Internal(format!("no incident order {other:?}")));
            }
        };
        let direction = q.tie_break().order();
        let mut select = incident::Entity::find()
            .filter(q.condition.clone())
            .order_by(column, direction.clone())
            .order_by(incident::Column::Id, direction);
        if let Some(after) = q.after_condition(&[column], incident::Column::Id) {
            select = select.filter(after);
        }
        Ok(select.limit(q.limit()).all(self.connection()).await?)
    }

    /// A page of an incident's tasks, in phase order.
    pub async fn tasks(&self, incident: Uuid, q: &ListQuery) -> ApiResult<Vec<task::Model>> {
        self.get(incident).await?;
        let mut select = task::Entity::find()
            .filter(task::Column::IncidentId.eq(incident))
            .filter(q.condition.clone())
            .order_by_asc(task::Column::Phase)
            .order_by_asc(task::Column::Id);
        if let Some(after) = q.after_condition(&[task::Column::Phase], task::Column::Id) {
            select = select.filter(after);
        }
        Ok(select.limit(q.limit()).all(&self.db).await?)
    }
}
