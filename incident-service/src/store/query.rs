//! Incident and task lists: their AIP-160 filter fields (tables of data), their sort keys, and
//! the page queries over them; and the "affects this service" clause the metrics scope shares
//! with the `service` filter.

use assurance_runtime::{
    ApiError, ApiResult,
    filter::{Op, equality_only},
    list::{EnumValues, Field, FilterContext, FilterTable, KeyType, Kind, ListQuery, Sorting},
    page::Key,
};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Query,
};
use uuid::Uuid;

use super::{
    Store,
    entities::{
        custody_entry, evidence, incident, incident_service, indicator, task, timeline_event,
    },
};
use crate::domain::{
    indicator::{IndicatorType, Tlp},
    phase::{Classification, Phase},
    preparation::{OwnerTeam, TaskPhase},
    priority::Severity,
    task::TaskStatus,
};

/// The names of a domain enum, also accepted with the proto `prefix`.
const fn named(prefix: &'static str, values: &'static [(&'static str, i32)]) -> EnumValues {
    EnumValues { prefix, values }
}

/// A filter field on the enum stored in `column`; `ordered` allows `<`, `>` and the like.
const fn enum_field<C: ColumnTrait>(
    name: &'static str,
    column: C,
    values: &'static EnumValues,
    ordered: bool,
) -> Field<C> {
    Field::new(
        name,
        Kind::Enum {
            column,
            values,
            ordered,
        },
    )
}

static PHASE: EnumValues = named("PHASE_", Phase::NAMES);
static SEVERITY: EnumValues = named("SEVERITY_", Severity::NAMES);
static CLASSIFICATION: EnumValues = named("CLASSIFICATION_", Classification::NAMES);

/// The filter fields of `ListIncidents`.
pub static INCIDENT_FILTER: FilterTable<incident::Column> = FilterTable(&[
    enum_field("phase", incident::Column::Phase, &PHASE, true),
    enum_field("severity", incident::Column::Severity, &SEVERITY, true),
    enum_field(
        "classification",
        incident::Column::Classification,
        &CLASSIFICATION,
        false,
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
    // The default order rule: ascending id (UUIDv7: creation order).
    default: &[],
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

static TASK_PHASE: EnumValues = named("PHASE_", TaskPhase::NAMES);
static OWNER_TEAM: EnumValues = named("OWNER_TEAM_", OwnerTeam::NAMES);
static TASK_STATUS: EnumValues = named("WORK_ITEM_STATUS_", TaskStatus::NAMES);

static INDICATOR_TYPE: EnumValues = named("INDICATOR_TYPE_", IndicatorType::NAMES);
static TLP: EnumValues = named("TLP_", Tlp::NAMES);
static TIMELINE_KIND: EnumValues = named(
    "TIMELINE_EVENT_KIND_",
    &[
        ("DECLARED", 1),
        ("UPDATED", 2),
        ("PHASE_CHANGED", 3),
        ("CLOSED", 4),
        ("NOTE", 5),
        ("REVIEW_RECORDED", 6),
        ("INDICATOR_ADDED", 7),
        ("ROLE_ASSIGNED", 8),
        ("EVIDENCE", 9),
        ("COMMUNICATION", 10),
        ("TASK", 11),
    ],
);

/// The filter fields of `ListEvidence`.
pub static EVIDENCE_FILTER: FilterTable<evidence::Column> = FilterTable(&[
    Field::new("collector", Kind::Text(evidence::Column::Collector)),
    Field::new("custodian", Kind::Text(evidence::Column::Custodian)),
    Field::new("hash", Kind::Text(evidence::Column::Hash)),
    Field::new("collect_time", Kind::Time(evidence::Column::CollectTime)),
    Field::new("create_time", Kind::Time(evidence::Column::CreateTime)),
]);

/// The filter fields of `ListCustodyRecords`.
pub static CUSTODY_FILTER: FilterTable<custody_entry::Column> = FilterTable(&[
    Field::new(
        "from_custodian",
        Kind::Text(custody_entry::Column::FromCustodian),
    ),
    Field::new(
        "to_custodian",
        Kind::Text(custody_entry::Column::ToCustodian),
    ),
    Field::new(
        "transfer_time",
        Kind::Time(custody_entry::Column::TransferTime),
    ),
]);

/// The filter fields of `ListIndicators`.
pub static INDICATOR_FILTER: FilterTable<indicator::Column> = FilterTable(&[
    enum_field("type", indicator::Column::Kind, &INDICATOR_TYPE, false),
    enum_field("tlp", indicator::Column::Tlp, &TLP, true),
    Field::new("value", Kind::Text(indicator::Column::Value)),
    Field::new("create_time", Kind::Time(indicator::Column::CreateTime)),
]);

/// The filter fields of `ListTimelineEvents`.
pub static TIMELINE_FILTER: FilterTable<timeline_event::Column> = FilterTable(&[
    enum_field("kind", timeline_event::Column::Kind, &TIMELINE_KIND, false),
    enum_field("phase", timeline_event::Column::Phase, &PHASE, false),
    Field::new("actor", Kind::Text(timeline_event::Column::Actor)),
    Field::new("event_time", Kind::Time(timeline_event::Column::EventTime)),
]);

/// The filter fields of `ListTasks` (equality only).
pub static TASK_FILTER: FilterTable<task::Column> = FilterTable(&[
    enum_field("phase", task::Column::Phase, &TASK_PHASE, false),
    enum_field("owner_team", task::Column::OwnerTeam, &OWNER_TEAM, false),
    enum_field("status", task::Column::Status, &TASK_STATUS, false),
    Field::new("assignee", Kind::Text(task::Column::Assignee)),
]);

/// Tasks list in creation order by default (ascending UUIDv7 id: the default order rule);
/// `order_by` up to two of `phase`, `status`, `create_time`, `update_time`, each optionally
/// `desc` (`phase` groups them by phase, in creation order within one).
pub const TASK_SORTING: Sorting = Sorting {
    fields: &[
        ("phase", KeyType::Int),
        ("status", KeyType::Int),
        ("create_time", KeyType::Int),
        ("update_time", KeyType::Int),
    ],
    default: &[],
    max_fields: 2,
    id: KeyType::Uuid,
};

/// The columns of `ListTasks`' `order_by` fields.
const TASK_COLUMNS: [(&str, task::Column); 4] = [
    ("phase", task::Column::Phase),
    ("status", task::Column::Status),
    ("create_time", task::Column::CreateTime),
    ("update_time", task::Column::UpdateTime),
];

/// The page-token keys of a task in `q`'s order.
pub fn task_keys(q: &ListQuery, t: &task::Model) -> Vec<Key> {
    row_keys(
        q,
        |field| match field {
            "phase" => i64::from(t.phase),
            "status" => i64::from(t.status),
            "update_time" => t.update_time,
            _ => t.create_time,
        },
        Key::Text(t.id.to_string()),
    )
}

/// The page-token keys of an incident in `q`'s order.
pub fn incident_keys(q: &ListQuery, i: &incident::Model) -> Vec<Key> {
    let time = match q.order.first() {
        None => return vec![Key::Text(i.id.to_string())],
        Some(("update_time", _)) => i.update_time,
        _ => i.declare_time,
    };
    vec![Key::Int(time), Key::Text(i.id.to_string())]
}

impl Store {
    /// A page of incidents.
    /// A page of incidents; with `scope`, only those affecting one of its services.
    pub async fn list(
        &self,
        q: &ListQuery,
        scope: Option<&[String]>,
    ) -> ApiResult<Vec<incident::Model>> {
        let mut select = incident::Entity::find();
        if let Some(scope) = scope {
            select = select.filter(super::affecting(incident::Column::Id, scope));
        }
        let columns = [
            ("update_time", incident::Column::UpdateTime),
            ("declare_time", incident::Column::DeclareTime),
        ];
        Ok(ordered_page(select, q, &columns, incident::Column::Id)?
            .all(self.connection())
            .await?)
    }

    /// A page of an incident's tasks.
    pub async fn tasks(&self, incident: Uuid, q: &ListQuery) -> ApiResult<Vec<task::Model>> {
        self.get(incident).await?;
        let select = task::Entity::find().filter(task::Column::IncidentId.eq(incident));
        Ok(ordered_page(select, q, &TASK_COLUMNS, task::Column::Id)?
            .all(&self.db)
            .await?)
    }
}

/// Evidence lists in creation order by default; `order_by` `create_time` or `collect_time`,
/// optionally `desc`.
pub const EVIDENCE_SORTING: Sorting = Sorting {
    fields: &[
        ("create_time", KeyType::Int),
        ("collect_time", KeyType::Int),
    ],
    default: &[],
    max_fields: 1,
    id: KeyType::Uuid,
};

/// Indicators list in creation order by default; `order_by` `create_time`, optionally `desc`.
pub const INDICATOR_SORTING: Sorting = Sorting {
    fields: &[("create_time", KeyType::Int)],
    default: &[],
    max_fields: 1,
    id: KeyType::Uuid,
};

/// Append-only logs (timeline, custody) list in sequence order; `order_by` `sequence desc`
/// gives newest first.
pub const SEQUENCE_SORTING: Sorting = Sorting {
    fields: &[("sequence", KeyType::Int)],
    default: &[],
    max_fields: 1,
    id: KeyType::Int,
};

/// A page of `select` in `q`'s order: its sort fields (`columns` maps their names to
/// columns), then `id` in the first field's direction; after the previous page.
pub(super) fn ordered_page<E: EntityTrait>(
    mut select: sea_orm::Select<E>,
    q: &ListQuery,
    columns: &[(&str, E::Column)],
    id: E::Column,
) -> ApiResult<sea_orm::Select<E>> {
    let mut sort = Vec::new();
    for (field, direction) in &q.order {
        let column = columns
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, c)| *c)
            .ok_or_else(|| ApiError::Internal(format!("no column for order `{field}`")))?;
        select = select.order_by(column, direction.order());
        sort.push(column);
    }
    select = select
        .filter(q.condition.clone())
        .order_by(id, q.tie_break().order());
    if let Some(after) = q.after_condition(&sort, id) {
        select = select.filter(after);
    }
    Ok(select.limit(q.limit()))
}

/// The page-token keys of a row: its sort-field values (`value` by field name), then its id.
pub fn row_keys(q: &ListQuery, value: impl Fn(&str) -> i64, id: Key) -> Vec<Key> {
    q.order
        .iter()
        .map(|(f, _)| Key::Int(value(f)))
        .chain([id])
        .collect()
}

impl Store {
    /// A page of an incident's evidence.
    pub async fn evidence_page(
        &self,
        incident: Uuid,
        q: &ListQuery,
    ) -> ApiResult<Vec<evidence::Model>> {
        self.get(incident).await?;
        let select = evidence::Entity::find().filter(evidence::Column::IncidentId.eq(incident));
        let columns = [
            ("create_time", evidence::Column::CreateTime),
            ("collect_time", evidence::Column::CollectTime),
        ];
        Ok(ordered_page(select, q, &columns, evidence::Column::Id)?
            .all(&self.db)
            .await?)
    }

    /// A page of an incident's indicators.
    pub async fn indicators_page(
        &self,
        incident: Uuid,
        q: &ListQuery,
    ) -> ApiResult<Vec<indicator::Model>> {
        self.get(incident).await?;
        let select = indicator::Entity::find().filter(indicator::Column::IncidentId.eq(incident));
        let columns = [("create_time", indicator::Column::CreateTime)];
        Ok(ordered_page(select, q, &columns, indicator::Column::Id)?
            .all(&self.db)
            .await?)
    }

    /// A page of an incident's timeline.
    pub async fn timeline_page(
        &self,
        incident: Uuid,
        q: &ListQuery,
    ) -> ApiResult<Vec<timeline_event::Model>> {
        self.get(incident).await?;
        let select =
            timeline_event::Entity::find().filter(timeline_event::Column::IncidentId.eq(incident));
        let columns = [("sequence", timeline_event::Column::Seq)];
        Ok(
            ordered_page(select, q, &columns, timeline_event::Column::Seq)?
                .all(&self.db)
                .await?,
        )
    }

    /// A page of an item's chain of custody.
    pub async fn custody_page(
        &self,
        incident: Uuid,
        evidence_id: Uuid,
        q: &ListQuery,
    ) -> ApiResult<Vec<custody_entry::Model>> {
        self.evidence_item(incident, evidence_id).await?;
        let select =
            custody_entry::Entity::find().filter(custody_entry::Column::EvidenceId.eq(evidence_id));
        let columns = [("sequence", custody_entry::Column::Seq)];
        Ok(
            ordered_page(select, q, &columns, custody_entry::Column::Seq)?
                .all(&self.db)
                .await?,
        )
    }
}
