//! Incident lists: AIP-160 filter fields, order and keyset pages; and the "affects this service"
//! clause the metrics scope shares with the `service` filter.

use assurance_proto::incident::v1 as pb;
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
    entities::{incident, incident_service},
};
use crate::domain::phase::Phase;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentOrder {
    DeclareTime,
    UpdateTime,
}

impl IncidentOrder {
    fn column(self) -> incident::Column {
        match self {
            IncidentOrder::DeclareTime => incident::Column::DeclareTime,
            IncidentOrder::UpdateTime => incident::Column::UpdateTime,
        }
    }
}

/// A page of an incident list, after the keys of the previous page's last row.
pub struct ListIncidents {
    pub condition: Condition,
    pub order: IncidentOrder,
    pub direction: Order,
    pub after: Option<Vec<Key>>,
    pub limit: u64,
}

impl ListIncidents {
    pub fn keys_of(&self, i: &incident::Model) -> Vec<Key> {
        let t = match self.order {
            IncidentOrder::DeclareTime => i.declare_time,
            IncidentOrder::UpdateTime => i.update_time,
        };
        vec![Key::Int(t), Key::Text(i.id.to_string())]
    }
}

impl Store {
    pub async fn list(&self, q: &ListIncidents) -> ApiResult<Vec<incident::Model>> {
        let col = q.order.column();
        let mut select = incident::Entity::find()
            .filter(q.condition.clone())
            .order_by(col, q.direction.clone())
            .order_by(incident::Column::Id, q.direction.clone());
        if let Some(keys) = &q.after {
            let malformed =
                || ApiError::invalid("page_token", "is not a page token issued by this service");
            let (Some(Key::Int(t)), Some(Key::Text(id))) = (keys.first(), keys.get(1)) else {
                return Err(malformed());
            };
            let id = Uuid::parse_str(id).map_err(|_| malformed())?;
            let (t, id) = (Value::from(*t), Value::from(id));
            let after = match q.direction {
                Order::Desc => Condition::any().add(col.lt(t.clone())).add(
                    Condition::all()
                        .add(col.eq(t))
                        .add(incident::Column::Id.lt(id)),
                ),
                _ => Condition::any().add(col.gt(t.clone())).add(
                    Condition::all()
                        .add(col.eq(t))
                        .add(incident::Column::Id.gt(id)),
                ),
            };
            select = select.filter(after);
        }
        Ok(select.limit(q.limit).all(self.connection()).await?)
    }
}

/// The AIP-160 fields of `ListIncidents`.
pub struct IncidentFilter;

fn boolean(field: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!(
            "`{field}` compares with true or false (got `{value}`)"
        )),
    }
}

impl FilterSchema for IncidentFilter {
    fn compare(&self, field: &str, op: Op, value: &str) -> Result<Condition, String> {
        let bad = |allowed: &str| format!("`{value}` is not a valid {field}; one of {allowed}");
        match field {
            "phase" => {
                let v = enum_value(value, "PHASE_", |s| pb::Phase::from_str_name(s).map(|e| e as i32))
                    .ok_or_else(|| bad("DETECTION_ANALYSIS, CONTAINMENT, ERADICATION, RECOVERY, POST_INCIDENT, CLOSED"))?;
                Ok(compare(incident::Column::Phase, op, v.into()))
            }
            "severity" => {
                let v = enum_value(value, "SEVERITY_", |s| {
                    pb::Severity::from_str_name(s).map(|e| e as i32)
                })
                .ok_or_else(|| bad("LOW, MEDIUM, HIGH, CRITICAL"))?;
                Ok(compare(incident::Column::Severity, op, v.into()))
            }
            "classification" => {
                equality_only(field, op)?;
                let v = enum_value(value, "CLASSIFICATION_", |s| {
                    pb::Classification::from_str_name(s).map(|e| e as i32)
                })
                .ok_or_else(|| bad("EVENT, SECURITY_INCIDENT, NOT_AN_INCIDENT"))?;
                Ok(compare(incident::Column::Classification, op, v.into()))
            }
            "incident_type" => {
                equality_only(field, op)?;
                Ok(compare(incident::Column::IncidentType, op, value.into()))
            }
            "customer_data_affected" => {
                equality_only(field, op)?;
                Ok(compare(
                    incident::Column::CustomerDataAffected,
                    op,
                    boolean(field, value)?.into(),
                ))
            }
            "open" => {
                equality_only(field, op)?;
                let open = boolean(field, value)? == (op == Op::Eq);
                let closed = Phase::Closed as i32;
                Ok(Condition::all().add(if open {
                    incident::Column::Phase.ne(closed)
                } else {
                    incident::Column::Phase.eq(closed)
                }))
            }
            "service" => {
                equality_only(field, op)?;
                let cond = affecting_service(value.strip_prefix("services/").unwrap_or(value));
                Ok(if op == Op::Eq { cond } else { cond.not() })
            }
            "declare_time" | "detect_time" | "close_time" | "update_time" => {
                let micros = parse_rfc3339(value).ok_or_else(|| {
                    format!("`{field}` compares with an RFC 3339 time such as \"2026-01-31T00:00:00Z\" (got `{value}`)")
                })?;
                let col = match field {
                    "declare_time" => incident::Column::DeclareTime,
                    "detect_time" => incident::Column::DetectTime,
                    "close_time" => incident::Column::CloseTime,
                    _ => incident::Column::UpdateTime,
                };
                Ok(compare(col, op, micros.into()))
            }
            _ => Err(format!(
                "unknown field `{field}`; filterable: phase, severity, classification, service, incident_type, \
                 customer_data_affected, open, declare_time, detect_time, close_time, update_time"
            )),
        }
    }
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
