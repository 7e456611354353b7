//! Listing risks: the AIP-160 filter fields of `ListRisks`, its sort orders and keyset
//! pagination over them.

use assurance_proto::risk::v1 as pb;
use assurance_runtime::{
    ApiError, ApiResult,
    filter::{FilterSchema, Op, compare, enum_value, equality_only},
    page::Key,
    time::parse_rfc3339,
};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, Value,
    sea_query::Query,
};
use uuid::Uuid;

use super::{
    Store,
    entities::{risk, risk_label},
};
use crate::domain::status::RiskStatus;

/// Sortable fields of a risk list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskOrder {
    CreateTime,
    UpdateTime,
    Score,
    Title,
}

impl RiskOrder {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "create_time" => RiskOrder::CreateTime,
            "update_time" => RiskOrder::UpdateTime,
            "score" => RiskOrder::Score,
            "title" => RiskOrder::Title,
            _ => return None,
        })
    }

    fn column(self) -> risk::Column {
        match self {
            RiskOrder::CreateTime => risk::Column::CreateTime,
            RiskOrder::UpdateTime => risk::Column::UpdateTime,
            RiskOrder::Score => risk::Column::Score,
            RiskOrder::Title => risk::Column::Title,
        }
    }

    fn key(self, r: &risk::Model) -> Key {
        match self {
            RiskOrder::CreateTime => Key::Int(r.create_time),
            RiskOrder::UpdateTime => Key::Int(r.update_time),
            RiskOrder::Score => Key::Int(i64::from(r.score)),
            RiskOrder::Title => Key::Text(r.title.clone()),
        }
    }
}

/// A page of a risk list: filter condition, sort fields (the id breaks ties), and the keys
/// of the last row of the previous page.
pub struct ListRisks {
    pub condition: Condition,
    pub order: Vec<(RiskOrder, Order)>,
    pub after: Option<Vec<Key>>,
    pub limit: u64,
}

impl ListRisks {
    /// The page-token keys of a row: one per sort field, then the id.
    pub fn keys_of(&self, r: &risk::Model) -> Vec<Key> {
        let mut keys: Vec<Key> = self.order.iter().map(|(f, _)| f.key(r)).collect();
        keys.push(Key::Text(r.id.to_string()));
        keys
    }

    fn tie_break(&self) -> Order {
        self.order.first().map_or(Order::Asc, |(_, o)| o.clone())
    }
}

impl Store {
    pub async fn list_risks(&self, q: &ListRisks) -> ApiResult<Vec<risk::Model>> {
        let mut select = risk::Entity::find().filter(q.condition.clone());
        for (field, order) in &q.order {
            select = select.order_by(field.column(), order.clone());
        }
        select = select.order_by(risk::Column::Id, q.tie_break());
        if let Some(after) = &q.after {
            select = select.filter(after_condition(q, after)?);
        }
        Ok(select.limit(q.limit).all(self.connection()).await?)
    }
}

/// Rows strictly after `after` in the list's order (keyset pagination).
fn after_condition(q: &ListRisks, after: &[Key]) -> ApiResult<Condition> {
    let malformed =
        || ApiError::invalid("page_token", "is not a page token issued by this service");
    let mut fields: Vec<(risk::Column, Order, Value)> = Vec::new();
    for ((field, order), key) in q.order.iter().zip(after) {
        let value = match (field, key) {
            (RiskOrder::Title, Key::Text(t)) => Value::from(t.clone()),
            (RiskOrder::Title, _) | (_, Key::Text(_)) => return Err(malformed()),
            (_, Key::Int(i)) => Value::from(*i),
        };
        fields.push((field.column(), order.clone(), value));
    }
    let id = match after.last() {
        Some(Key::Text(id)) => Uuid::parse_str(id).map_err(|_| malformed())?,
        _ => return Err(malformed()),
    };
    fields.push((risk::Column::Id, q.tie_break(), Value::from(id)));
    let mut any = Condition::any();
    for k in 0..fields.len() {
        let mut all = Condition::all();
        for (col, _, v) in &fields[..k] {
            all = all.add(col.eq(v.clone()));
        }
        let (col, order, v) = &fields[k];
        all = all.add(match order {
            Order::Desc => col.lt(v.clone()),
            _ => col.gt(v.clone()),
        });
        any = any.add(all);
    }
    Ok(any)
}

/// The AIP-160 fields of `ListRisks`.
pub struct RiskFilter {
    /// "Now" for `review_overdue`, in microseconds.
    pub now: i64,
}

impl FilterSchema for RiskFilter {
    fn compare(&self, field: &str, op: Op, value: &str) -> Result<Condition, String> {
        let bad_enum =
            |allowed: &str| format!("`{value}` is not a valid {field}; one of {allowed}");
        match field {
            "service" => {
                equality_only(field, op)?;
                let id = value.strip_prefix("services/").unwrap_or(value);
                Ok(compare(risk::Column::ServiceId, op, id.into()))
            }
            "business_unit" => {
                equality_only(field, op)?;
                let id = value.strip_prefix("businessUnits/").unwrap_or(value);
                Ok(compare(risk::Column::BusinessUnitId, op, id.into()))
            }
            "owner" | "category" => {
                equality_only(field, op)?;
                let col = if field == "owner" {
                    risk::Column::Owner
                } else {
                    risk::Column::Category
                };
                Ok(compare(col, op, value.into()))
            }
            "review_overdue" => {
                equality_only(field, op)?;
                let wanted = match value {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(format!(
                            "`review_overdue` compares with true or false (got `{value}`)"
                        ));
                    }
                } == (op == Op::Eq);
                let overdue = Condition::all()
                    .add(risk::Column::NextReviewTime.lt(self.now))
                    .add(risk::Column::Status.ne(RiskStatus::Closed as i32));
                Ok(if wanted { overdue } else { overdue.not() })
            }
            "status" => {
                equality_only(field, op)?;
                let v = enum_value(value, "RISK_STATUS_", |s| {
                    pb::RiskStatus::from_str_name(s).map(|e| e as i32)
                })
                .ok_or_else(|| {
                    bad_enum(
                        "IDENTIFIED, ASSESSED, RESPONSE_PLANNED, IN_TREATMENT, MONITORING, CLOSED",
                    )
                })?;
                Ok(compare(risk::Column::Status, op, v.into()))
            }
            "severity" => {
                let v = enum_value(value, "SEVERITY_", |s| {
                    pb::Severity::from_str_name(s).map(|e| e as i32)
                })
                .ok_or_else(|| bad_enum("LOW, MEDIUM, HIGH, CRITICAL"))?;
                // Unassessed risks have no severity: ordered comparisons never match them.
                let cond = compare(risk::Column::Severity, op, v.into());
                Ok(if op == Op::Ne {
                    cond
                } else {
                    cond.add(risk::Column::Severity.gt(0))
                })
            }
            "strategy" => {
                equality_only(field, op)?;
                let v = enum_value(value, "RESPONSE_STRATEGY_", |s| {
                    pb::ResponseStrategy::from_str_name(s).map(|e| e as i32)
                })
                .ok_or_else(|| bad_enum("TOLERATE, OPERATE, MONITOR, IMPROVE"))?;
                Ok(compare(risk::Column::Strategy, op, v.into()))
            }
            "identification_source" | "source" => {
                equality_only(field, op)?;
                let v = enum_value(value, "IDENTIFICATION_SOURCE_", |s| pb::IdentificationSource::from_str_name(s).map(|e| e as i32))
                    .ok_or_else(|| bad_enum("INTERVIEW, VULNERABILITY_SCAN, ATTACK_SIMULATION, AUDIT_FINDING, INCIDENT, CONTINUOUS_MONITORING, OTHER"))?;
                Ok(compare(risk::Column::IdentificationSource, op, v.into()))
            }
            "threat" => {
                equality_only(field, op)?;
                let v = enum_value(value, "THREAT_", |s| {
                    pb::Threat::from_str_name(s).map(|e| e as i32)
                })
                .ok_or_else(|| bad_enum("INTERNAL, EXTERNAL"))?;
                Ok(compare(risk::Column::Threat, op, v.into()))
            }
            "score" | "exposure" => {
                let n: i32 = value.parse().map_err(|_| {
                    format!("`{field}` compares with a whole number (got `{value}`)")
                })?;
                let col = if field == "score" {
                    risk::Column::Score
                } else {
                    risk::Column::Exposure
                };
                Ok(compare(col, op, n.into()).add(risk::Column::Score.gt(0)))
            }
            "create_time" | "update_time" => {
                let micros = parse_rfc3339(value).ok_or_else(|| {
                    format!("`{field}` compares with an RFC 3339 time such as \"2026-01-31T00:00:00Z\" (got `{value}`)")
                })?;
                let col = if field == "create_time" {
                    risk::Column::CreateTime
                } else {
                    risk::Column::UpdateTime
                };
                Ok(compare(col, op, micros.into()))
            }
            _ => {
                if let Some(key) = field.strip_prefix("labels.") {
                    equality_only(field, op)?;
                    let matching = Query::select()
                        .column(risk_label::Column::RiskId)
                        .from(risk_label::Entity)
                        .and_where(risk_label::Column::Key.eq(key))
                        .and_where(risk_label::Column::Value.eq(value))
                        .to_owned();
                    let cond = Condition::all().add(risk::Column::Id.in_subquery(matching));
                    return Ok(if op == Op::Eq { cond } else { cond.not() });
                }
                Err(format!(
                    "unknown field `{field}`; filterable: service, business_unit, status, severity, strategy, owner, \
                     identification_source, category, threat, score, exposure, create_time, update_time, review_overdue, labels.<key>"
                ))
            }
        }
    }
}
