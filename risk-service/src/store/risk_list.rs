//! Listing risks: the AIP-160 filter fields of `ListRisks` (a table of data), its sort keys,
//! and the page query over them.

use assurance_runtime::{
    ApiError, ApiResult,
    filter::{Op, compare, equality_only},
    list::{
        Direction, EnumValues, Field, FilterContext, FilterTable, KeyType, Kind, ListQuery, Sorting,
    },
    page::Key,
};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Query,
};

use super::{
    Store,
    entities::{risk, risk_label},
};
use crate::domain::{
    register::{IdentificationSource, Threat},
    scoring::{Severity, Strategy},
    status::RiskStatus,
};

use risk::Column as C;

/// The names of a proto enum's values, `prefix` omitted.
const fn enum_values(prefix: &'static str, values: &'static [(&'static str, i32)]) -> EnumValues {
    EnumValues { prefix, values }
}

static STATUS: EnumValues = enum_values("RISK_STATUS_", RiskStatus::NAMES);
static SEVERITY: EnumValues = enum_values("SEVERITY_", Severity::NAMES);
static STRATEGY: EnumValues = enum_values("RESPONSE_STRATEGY_", Strategy::NAMES);
static SOURCE: EnumValues = enum_values("IDENTIFICATION_SOURCE_", IdentificationSource::NAMES);
static THREAT: EnumValues = enum_values("THREAT_", Threat::NAMES);

/// The filter fields of `ListRisks`. Unassessed risks have no severity, score or exposure:
/// ordered comparisons on those never match them.
pub static RISK_FILTER: FilterTable<C> = FilterTable(&[
    Field::new("service", Kind::Id(C::ServiceId, "services/")),
    Field::new(
        "business_unit",
        Kind::Id(C::BusinessUnitId, "businessUnits/"),
    ),
    Field::new(
        "status",
        Kind::Enum {
            column: C::Status,
            values: &STATUS,
            ordered: false,
        },
    ),
    Field::new("severity", Kind::Custom(severity)),
    Field::new(
        "strategy",
        Kind::Enum {
            column: C::Strategy,
            values: &STRATEGY,
            ordered: false,
        },
    ),
    Field::new("owner", Kind::Text(C::Owner)),
    Field::new(
        "identification_source",
        Kind::Enum {
            column: C::IdentificationSource,
            values: &SOURCE,
            ordered: false,
        },
    ),
    Field::new(
        "source",
        Kind::Enum {
            column: C::IdentificationSource,
            values: &SOURCE,
            ordered: false,
        },
    ),
    Field::new("category", Kind::Text(C::Category)),
    Field::new("source_reference", Kind::Text(C::SourceReference)),
    Field::new(
        "threat",
        Kind::Enum {
            column: C::Threat,
            values: &THREAT,
            ordered: false,
        },
    ),
    Field::new("score", Kind::Custom(assessed_number)),
    Field::new("exposure", Kind::Custom(assessed_number)),
    Field::new("create_time", Kind::Time(C::CreateTime)),
    Field::new("update_time", Kind::Time(C::UpdateTime)),
    Field::new("review_overdue", Kind::Flag(review_overdue)),
    Field::new("labels.", Kind::Custom(label)),
]);

/// `order_by` of `ListRisks`: oldest first unless asked otherwise.
pub const RISK_SORTING: Sorting = Sorting {
    fields: &[
        ("create_time", KeyType::Int),
        ("update_time", KeyType::Int),
        ("score", KeyType::Int),
        ("title", KeyType::Text),
    ],
    default: &[("create_time", Direction::Asc)],
    max_fields: 4,
    id: KeyType::Uuid,
};

fn severity(field: &str, op: Op, value: &str, _: &FilterContext) -> Result<Condition, String> {
    let cond = compare(C::Severity, op, SEVERITY.number(field, value)?.into());
    Ok(if op == Op::Ne {
        cond
    } else {
        cond.add(C::Severity.gt(0))
    })
}

fn assessed_number(
    field: &str,
    op: Op,
    value: &str,
    _: &FilterContext,
) -> Result<Condition, String> {
    let n: i32 = value
        .parse()
        .map_err(|_| format!("`{field}` compares with a whole number (got `{value}`)"))?;
    let column = if field == "score" {
        C::Score
    } else {
        C::Exposure
    };
    Ok(compare(column, op, n.into()).add(C::Score.gt(0)))
}

fn review_overdue(cx: &FilterContext) -> Condition {
    Condition::all()
        .add(C::NextReviewTime.lt(cx.now))
        .add(C::Status.ne(RiskStatus::Closed as i32))
}

/// `labels.env = prod`: the risk carries that label.
fn label(field: &str, op: Op, value: &str, _: &FilterContext) -> Result<Condition, String> {
    equality_only(field, op)?;
    let key = field.strip_prefix("labels.").unwrap_or(field);
    let matching = Query::select()
        .column(risk_label::Column::RiskId)
        .from(risk_label::Entity)
        .and_where(risk_label::Column::Key.eq(key))
        .and_where(risk_label::Column::Value.eq(value))
        .to_owned();
    let cond = Condition::all().add(C::Id.in_subquery(matching));
    Ok(if op == Op::Eq { cond } else { cond.not() })
}

fn sort_column(field: &str) -> ApiResult<C> {
    Ok(match field {
        "create_time" => C::CreateTime,
        "update_time" => C::UpdateTime,
        "score" => C::Score,
        "title" => C::Title,
        _ => {
            return Err(ApiError::Internal(format!(
                "no risk column to order by `{field}`"
            )));
        }
    })
}

/// The page-token keys of a risk in `q`'s order: one per sort field, then the id.
pub fn risk_keys(q: &ListQuery, r: &risk::Model) -> Vec<Key> {
    let mut keys: Vec<Key> = q
        .order
        .iter()
        .map(|(field, _)| match *field {
            "update_time" => Key::Int(r.update_time),
            "score" => Key::Int(i64::from(r.score)),
            "title" => Key::Text(r.title.clone()),
            _ => Key::Int(r.create_time),
        })
        .collect();
    keys.push(Key::Text(r.id.to_string()));
    keys
}

impl Store {
    /// A page of risks; closed risks only when `include_closed`.
    pub async fn list_risks(
        &self,
        q: &ListQuery,
        include_closed: bool,
    ) -> ApiResult<Vec<risk::Model>> {
        let mut select = risk::Entity::find().filter(q.condition.clone());
        if !include_closed {
            select = select.filter(C::Status.ne(RiskStatus::Closed as i32));
        }
        let mut columns = Vec::with_capacity(q.order.len());
        for (field, direction) in &q.order {
            let column = sort_column(field)?;
            columns.push(column);
            select = select.order_by(column, direction.order());
        }
        select = select.order_by(C::Id, q.tie_break().order());
        if let Some(after) = q.after_condition(&columns, C::Id) {
            select = select.filter(after);
        }
        Ok(select.limit(q.limit()).all(self.connection()).await?)
    }
}
