//! Filters and orders of the growing lists of a risk's governance and of the org registry
//! (#11, Lists): assessments, responses, decisions, action items, business units, services.
//! Without `order_by` a list is in ascending order of its ids — creation order for the UUIDv7
//! ids, alphabetical for the slugs (the default order rule).

use assurance_runtime::{
    ApiError, ApiResult,
    list::{EnumValues, Field, FilterTable, KeyType, Kind, ListQuery, Sorting},
    page::Key,
};
use sea_orm::{EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};

use super::entities::{action_item, assessment, business_unit, decision, risk_response, service};
use crate::domain::{
    governance::{ApprovalState, DecisionKind},
    scoring::{Methodology, Severity, Strategy},
    status::Decision,
};

/// The rows of `select` in `q`'s filter, order and page: `column` gives the column of an
/// `order_by` field; `id` breaks ties.
pub(super) fn page_of<E: EntityTrait>(
    select: Select<E>,
    q: &ListQuery,
    column: impl Fn(&str) -> Option<E::Column>,
    id: E::Column,
) -> ApiResult<Select<E>> {
    let mut select = select.filter(q.condition.clone());
    let mut columns = Vec::with_capacity(q.order.len());
    for (field, direction) in &q.order {
        let c = column(field)
            .ok_or_else(|| ApiError::Internal(format!("no column to order by `{field}`")))?;
        columns.push(c);
        select = select.order_by(c, direction.order());
    }
    select = select.order_by(id, q.tie_break().order());
    if let Some(after) = q.after_condition(&columns, id) {
        select = select.filter(after);
    }
    Ok(select.limit(q.limit()))
}

/// The page-token keys of a row: its `order_by` fields' keys (`key`), then its id.
pub fn keys_of<T>(q: &ListQuery, row: &T, key: impl Fn(&str, &T) -> Key, id: String) -> Vec<Key> {
    let mut keys: Vec<Key> = q.order.iter().map(|(f, _)| key(f, row)).collect();
    keys.push(Key::Text(id));
    keys
}

const fn sorting(fields: &'static [(&'static str, KeyType)], id: KeyType) -> Sorting {
    Sorting {
        fields,
        default: &[],
        max_fields: 2,
        id,
    }
}

static SEVERITY: EnumValues = EnumValues {
    prefix: "SEVERITY_",
    values: Severity::NAMES,
};
static STRATEGY: EnumValues = EnumValues {
    prefix: "RESPONSE_STRATEGY_",
    values: Strategy::NAMES,
};
static METHODOLOGY: EnumValues = EnumValues {
    prefix: "METHODOLOGY_",
    values: Methodology::NAMES,
};
static RESPONSE_DECISION: EnumValues = EnumValues {
    prefix: "RESPONSE_DECISION_",
    values: Decision::NAMES,
};
static APPROVAL_STATE: EnumValues = EnumValues {
    prefix: "APPROVAL_STATE_",
    values: ApprovalState::NAMES,
};
static DECISION_KIND: EnumValues = EnumValues {
    prefix: "DECISION_KIND_",
    values: DecisionKind::NAMES,
};

// ---- assessments ----

pub static ASSESSMENT_FILTER: FilterTable<assessment::Column> = FilterTable(&[
    Field::new("assessor", Kind::Text(assessment::Column::Assessor)),
    Field::new(
        "severity",
        Kind::Enum {
            column: assessment::Column::Severity,
            values: &SEVERITY,
            ordered: true,
        },
    ),
    Field::new(
        "strategy",
        Kind::Enum {
            column: assessment::Column::Strategy,
            values: &STRATEGY,
            ordered: false,
        },
    ),
    Field::new(
        "methodology",
        Kind::Enum {
            column: assessment::Column::Methodology,
            values: &METHODOLOGY,
            ordered: false,
        },
    ),
    Field::new("score", Kind::Int(assessment::Column::Score)),
    Field::new("exposure", Kind::Int(assessment::Column::Exposure)),
    Field::new(
        "control_deficiency_derived",
        Kind::Bool(assessment::Column::ControlDeficiencyDerived),
    ),
    Field::new("assess_time", Kind::Time(assessment::Column::AssessTime)),
]);
pub static ASSESSMENT_SORTING: Sorting = sorting(
    &[("assess_time", KeyType::Int), ("score", KeyType::Int)],
    KeyType::Uuid,
);

pub(super) fn assessment_column(field: &str) -> Option<assessment::Column> {
    match field {
        "assess_time" => Some(assessment::Column::AssessTime),
        "score" => Some(assessment::Column::Score),
        _ => None,
    }
}

pub fn assessment_keys(q: &ListQuery, a: &assessment::Model) -> Vec<Key> {
    keys_of(
        q,
        a,
        |f, a| match f {
            "score" => Key::Int(i64::from(a.score)),
            _ => Key::Int(a.assess_time),
        },
        a.id.to_string(),
    )
}

// ---- responses ----

pub static RESPONSE_FILTER: FilterTable<risk_response::Column> = FilterTable(&[
    Field::new(
        "decision",
        Kind::Enum {
            column: risk_response::Column::Decision,
            values: &RESPONSE_DECISION,
            ordered: false,
        },
    ),
    Field::new(
        "state",
        Kind::Enum {
            column: risk_response::Column::State,
            values: &APPROVAL_STATE,
            ordered: false,
        },
    ),
    Field::new(
        "severity",
        Kind::Enum {
            column: risk_response::Column::Severity,
            values: &SEVERITY,
            ordered: true,
        },
    ),
    Field::new("proposer", Kind::Text(risk_response::Column::Proposer)),
    Field::new("decided_by", Kind::Text(risk_response::Column::DecidedBy)),
    Field::new("expired", Kind::Bool(risk_response::Column::Expired)),
    Field::new("create_time", Kind::Time(risk_response::Column::CreateTime)),
]);
pub static RESPONSE_SORTING: Sorting = sorting(&[("create_time", KeyType::Int)], KeyType::Uuid);

pub(super) fn response_column(field: &str) -> Option<risk_response::Column> {
    (field == "create_time").then_some(risk_response::Column::CreateTime)
}

pub fn response_keys(q: &ListQuery, r: &risk_response::Model) -> Vec<Key> {
    keys_of(q, r, |_, r| Key::Int(r.create_time), r.id.to_string())
}

// ---- decisions ----

pub static DECISION_FILTER: FilterTable<decision::Column> = FilterTable(&[
    Field::new(
        "kind",
        Kind::Enum {
            column: decision::Column::Kind,
            values: &DECISION_KIND,
            ordered: false,
        },
    ),
    Field::new("actor", Kind::Text(decision::Column::Actor)),
    Field::new("decide_time", Kind::Time(decision::Column::Time)),
]);
pub static DECISION_SORTING: Sorting = sorting(&[("decide_time", KeyType::Int)], KeyType::Uuid);

pub(super) fn decision_column(field: &str) -> Option<decision::Column> {
    (field == "decide_time").then_some(decision::Column::Time)
}

pub fn decision_keys(q: &ListQuery, d: &decision::Model) -> Vec<Key> {
    keys_of(q, d, |_, d| Key::Int(d.time), d.id.to_string())
}

// ---- action items (the filter is ITEM_FILTER in governance.rs) ----

pub static ITEM_SORTING: Sorting = sorting(
    &[
        ("due_time", KeyType::Int),
        ("create_time", KeyType::Int),
        ("update_time", KeyType::Int),
        ("title", KeyType::Text),
        // Name order: the risk, then (the id that ends every order) the item.
        ("name", KeyType::Uuid),
    ],
    KeyType::Uuid,
);

pub(super) fn item_column(field: &str) -> Option<action_item::Column> {
    match field {
        "name" => Some(action_item::Column::RiskId),
        "due_time" => Some(action_item::Column::DueTime),
        "create_time" => Some(action_item::Column::CreateTime),
        "update_time" => Some(action_item::Column::UpdateTime),
        "title" => Some(action_item::Column::Title),
        _ => None,
    }
}

pub fn item_keys(q: &ListQuery, i: &action_item::Model) -> Vec<Key> {
    keys_of(
        q,
        i,
        |f, i| match f {
            "create_time" => Key::Int(i.create_time),
            "update_time" => Key::Int(i.update_time),
            "title" => Key::Text(i.title.clone()),
            "name" => Key::Text(i.risk_id.to_string()),
            _ => Key::Int(i.due_time),
        },
        i.id.to_string(),
    )
}

// ---- business units and services ----

pub static BUSINESS_UNIT_FILTER: FilterTable<business_unit::Column> = FilterTable(&[
    Field::new("owner", Kind::Text(business_unit::Column::Owner)),
    Field::new(
        "display_name",
        Kind::Text(business_unit::Column::DisplayName),
    ),
    Field::new("create_time", Kind::Time(business_unit::Column::CreateTime)),
    Field::new("update_time", Kind::Time(business_unit::Column::UpdateTime)),
]);
pub static BUSINESS_UNIT_SORTING: Sorting = sorting(
    &[
        ("display_name", KeyType::Text),
        ("create_time", KeyType::Int),
        ("update_time", KeyType::Int),
    ],
    KeyType::Text,
);

pub(super) fn business_unit_column(field: &str) -> Option<business_unit::Column> {
    match field {
        "display_name" => Some(business_unit::Column::DisplayName),
        "create_time" => Some(business_unit::Column::CreateTime),
        "update_time" => Some(business_unit::Column::UpdateTime),
        _ => None,
    }
}

pub fn business_unit_keys(q: &ListQuery, b: &business_unit::Model) -> Vec<Key> {
    keys_of(
        q,
        b,
        |f, b| match f {
            "display_name" => Key::Text(b.display_name.clone()),
            "update_time" => Key::Int(b.update_time),
            _ => Key::Int(b.create_time),
        },
        b.id.clone(),
    )
}

pub static SERVICE_FILTER: FilterTable<service::Column> = FilterTable(&[
    Field::new(
        "business_unit",
        Kind::Id(service::Column::BusinessUnitId, "businessUnits/"),
    ),
    Field::new("owner", Kind::Text(service::Column::Owner)),
    Field::new("display_name", Kind::Text(service::Column::DisplayName)),
    Field::new("create_time", Kind::Time(service::Column::CreateTime)),
    Field::new("update_time", Kind::Time(service::Column::UpdateTime)),
]);
pub static SERVICE_SORTING: Sorting = sorting(
    &[
        ("display_name", KeyType::Text),
        ("create_time", KeyType::Int),
        ("update_time", KeyType::Int),
    ],
    KeyType::Text,
);

pub(super) fn service_column(field: &str) -> Option<service::Column> {
    match field {
        "display_name" => Some(service::Column::DisplayName),
        "create_time" => Some(service::Column::CreateTime),
        "update_time" => Some(service::Column::UpdateTime),
        _ => None,
    }
}

pub fn service_keys(q: &ListQuery, s: &service::Model) -> Vec<Key> {
    keys_of(
        q,
        s,
        |f, s| match f {
            "display_name" => Key::Text(s.display_name.clone()),
            "update_time" => Key::Int(s.update_time),
            _ => Key::Int(s.create_time),
        },
        s.id.clone(),
    )
}
