//! The list layer of every `List*` RPC (AIP-132, AIP-158, AIP-160): a list request's page
//! size, page token, filter and order are parsed once, here, against the resource's filter
//! table and sort keys; the store gets a [`ListQuery`] whose filter is a condition, whose page
//! token is checked keys, and whose keyset condition continues after the previous page.
//!
//! A resource's filter fields are data ([`FilterTable`]): a name and how it compares.

use sea_orm::{ColumnTrait, Condition, Order, Value};
use uuid::Uuid;

use crate::{
    filter::{self, Filter, FilterSchema, Op, compare, equality_only},
    page::{self, Key},
    time::parse_rfc3339,
    validate::Violations,
};

/// What a filter field compares with besides its value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilterContext {
    /// "Now" in microseconds, for fields such as `overdue`.
    pub now: i64,
}

/// How one filter field compares.
pub enum Kind<C: 'static> {
    /// Text equality on a column.
    Text(C),
    /// A resource id, given bare (`exchange-online`) or as a name with this prefix
    /// (`services/exchange-online`); equality.
    Id(C, &'static str),
    /// An enum by its name (`HIGH` or `SEVERITY_HIGH`, any case), stored as its number;
    /// equality only, or every comparison when `ordered`.
    Enum {
        column: C,
        values: &'static EnumValues,
        ordered: bool,
    },
    /// A whole number; every comparison.
    Int(C),
    /// An RFC 3339 time stored as microseconds; every comparison.
    Time(C),
    /// `true` or `false` stored in a boolean column; equality.
    Bool(C),
    /// `true` or `false` of a condition computed at the context's now (`overdue`, `open`);
    /// equality.
    Flag(fn(&FilterContext) -> Condition),
    /// Anything else: the field name, operator and raw value to a condition.
    Custom(fn(&str, Op, &str, &FilterContext) -> Result<Condition, String>),
}

/// Gives a domain enum whose discriminants are its wire numbers (the numbers the database
/// stores) `ALL`, `NAMES` — each value's name and number, for [`EnumValues`] — and `as_str`,
/// the wire name without its prefix (`ACTIVE` of `EXCEPTION_STATUS_ACTIVE`).
#[macro_export]
macro_rules! enum_names {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const NAMES: &'static [(&'static str, i32)] =
                &[$(($text, $name::$variant as i32)),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }
    };
}

/// The names and stored numbers of an enum's values, with the prefix its full names carry
/// (`SEVERITY_` of `SEVERITY_HIGH`).
pub struct EnumValues {
    pub prefix: &'static str,
    pub values: &'static [(&'static str, i32)],
}

impl EnumValues {
    /// The number of the value named `name` (short or full, any case), or what is allowed.
    pub fn number(&self, field: &str, name: &str) -> Result<i32, String> {
        let upper = name.to_ascii_uppercase();
        let short = upper.strip_prefix(self.prefix).unwrap_or(&upper);
        self.values
            .iter()
            .find(|(n, _)| *n == short)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let allowed: Vec<&str> = self.values.iter().map(|(n, _)| *n).collect();
                format!(
                    "`{name}` is not a valid {field}; one of {}",
                    allowed.join(", ")
                )
            })
    }
}

/// One filterable field. A name ending in `.` (`labels.`) matches every field under it.
pub struct Field<C: 'static> {
    pub name: &'static str,
    pub kind: Kind<C>,
}

impl<C: ColumnTrait> Field<C> {
    pub const fn new(name: &'static str, kind: Kind<C>) -> Self {
        Field { name, kind }
    }

    fn matches(&self, field: &str) -> bool {
        match self.name.strip_suffix('.') {
            Some(_) => field.starts_with(self.name) && field.len() > self.name.len(),
            None => field == self.name,
        }
    }

    fn compare(
        &self,
        field: &str,
        op: Op,
        value: &str,
        cx: &FilterContext,
    ) -> Result<Condition, String> {
        match &self.kind {
            Kind::Text(column) => {
                equality_only(field, op)?;
                Ok(compare(*column, op, value.into()))
            }
            Kind::Id(column, prefix) => {
                equality_only(field, op)?;
                Ok(compare(
                    *column,
                    op,
                    value.strip_prefix(prefix).unwrap_or(value).into(),
                ))
            }
            Kind::Enum {
                column,
                values,
                ordered,
            } => {
                if !ordered {
                    equality_only(field, op)?;
                }
                Ok(compare(*column, op, values.number(field, value)?.into()))
            }
            Kind::Int(column) => {
                let n: i64 = value.parse().map_err(|_| {
                    format!("`{field}` compares with a whole number (got `{value}`)")
                })?;
                Ok(compare(*column, op, n.into()))
            }
            Kind::Time(column) => Ok(compare(*column, op, time(field, value)?.into())),
            Kind::Bool(column) => {
                equality_only(field, op)?;
                Ok(compare(*column, op, boolean(field, value)?.into()))
            }
            Kind::Flag(condition) => {
                equality_only(field, op)?;
                let wanted = boolean(field, value)? == (op == Op::Eq);
                let cond = condition(cx);
                Ok(if wanted { cond } else { cond.not() })
            }
            Kind::Custom(compare) => compare(field, op, value, cx),
        }
    }
}

/// `true` or `false`.
pub fn boolean(field: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!(
            "`{field}` compares with true or false (got `{value}`)"
        )),
    }
}

/// An RFC 3339 time in microseconds.
pub fn time(field: &str, value: &str) -> Result<i64, String> {
    parse_rfc3339(value).ok_or_else(|| {
        format!(
            "`{field}` compares with an RFC 3339 time such as \"2026-01-31T00:00:00Z\" (got `{value}`)"
        )
    })
}

/// A resource's filter fields.
pub struct FilterTable<C: 'static>(pub &'static [Field<C>]);

impl<C: ColumnTrait> FilterTable<C> {
    /// The table with what its fields compare with, ready to compile a filter.
    pub fn at(&'static self, cx: FilterContext) -> impl FilterSchema {
        Bound { table: self, cx }
    }

    fn names(&self) -> String {
        self.0
            .iter()
            .map(|f| match f.name.strip_suffix('.') {
                Some(prefix) => format!("{prefix}.<key>"),
                None => f.name.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

struct Bound<C: 'static> {
    table: &'static FilterTable<C>,
    cx: FilterContext,
}

impl<C: ColumnTrait> FilterSchema for Bound<C> {
    fn compare(&self, field: &str, op: Op, value: &str) -> Result<Condition, String> {
        match self.table.0.iter().find(|f| f.matches(field)) {
            Some(f) => f.compare(field, op, value, &self.cx),
            None => Err(format!(
                "unknown field `{field}`; filterable: {}",
                self.table.names()
            )),
        }
    }
}

/// The type of one sort key in a page token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Int,
    Text,
    Uuid,
}

/// The direction of a sort field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

impl Direction {
    pub fn order(self) -> Order {
        match self {
            Direction::Asc => Order::Asc,
            Direction::Desc => Order::Desc,
        }
    }
}

/// How a list sorts: the `order_by` fields it accepts and their key types, the order when
/// none is asked for, and the type of the id that ends every order to break ties.
pub struct Sorting {
    pub fields: &'static [(&'static str, KeyType)],
    pub default: &'static [(&'static str, Direction)],
    /// At most this many `order_by` fields.
    pub max_fields: usize,
    pub id: KeyType,
}

impl Sorting {
    /// A list in id order only (no `order_by`), ids being UUIDs.
    pub const BY_UUID: Sorting = Sorting {
        fields: &[],
        default: &[],
        max_fields: 0,
        id: KeyType::Uuid,
    };

    /// A list in id order only, ids being text (slugs).
    pub const BY_TEXT_ID: Sorting = Sorting {
        fields: &[],
        default: &[],
        max_fields: 0,
        id: KeyType::Text,
    };

    /// A list in the order of a whole-number sequence (an append-only log).
    pub const BY_SEQUENCE: Sorting = Sorting {
        fields: &[],
        default: &[],
        max_fields: 0,
        id: KeyType::Int,
    };

    fn key_type(&self, field: &str) -> Option<KeyType> {
        self.fields
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, t)| *t)
    }

    /// `order_by`: comma-separated fields, each optionally followed by `asc` or `desc`.
    fn parse(&self, order_by: &str) -> Result<Vec<(&'static str, Direction)>, String> {
        if order_by.trim().is_empty() {
            return Ok(self.default.to_vec());
        }
        let names = || {
            self.fields
                .iter()
                .map(|(f, _)| *f)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.fields.is_empty() {
            return Err("this list has a fixed order".into());
        }
        let mut out: Vec<(&'static str, Direction)> = Vec::new();
        for part in order_by.split(',') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let (name, direction) = match words.as_slice() {
                [f] | [f, "asc"] => (*f, Direction::Asc),
                [f, "desc"] => (*f, Direction::Desc),
                _ => {
                    return Err(format!("`{}` is not `field` or `field desc`", part.trim()));
                }
            };
            let Some((field, _)) = self.fields.iter().find(|(f, _)| *f == name) else {
                return Err(format!("cannot order by `{name}`; one of {}", names()));
            };
            if out.iter().any(|(f, _)| f == field) {
                return Err("names a field twice".into());
            }
            out.push((field, direction));
        }
        if out.len() > self.max_fields {
            return Err(format!(
                "orders by at most {} field(s) of {}",
                self.max_fields,
                names()
            ));
        }
        Ok(out)
    }
}

/// The common fields of a list request. `scope` is what the list is of besides its filter
/// and order (collection, parent, flags such as `show_deleted`): a page token is valid only
/// for the same scope, filter and order.
pub struct ListRequest<'a> {
    pub scope: &'a [&'a str],
    pub page_size: i32,
    pub page_token: &'a str,
    pub filter: &'a str,
    pub order_by: &'a str,
}

impl<'a> ListRequest<'a> {
    /// A list with neither filter nor order: only pages.
    pub fn paged(scope: &'a [&'a str], page_size: i32, page_token: &'a str) -> Self {
        ListRequest {
            scope,
            page_size,
            page_token,
            filter: "",
            order_by: "",
        }
    }
}

/// A parsed list request, valid when the [`Violations`] it was parsed with are empty.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// The page size asked for (0 is the default; above the maximum is lowered to it).
    pub size: u64,
    /// The filter as a condition (every row when there is no filter).
    pub condition: Condition,
    /// The sort fields; the id follows them, in the first field's direction.
    pub order: Vec<(&'static str, Direction)>,
    filter: Option<Filter>,
    after: Option<Vec<Key>>,
    /// The key types of the sort fields, in order.
    types: Vec<KeyType>,
    id: KeyType,
    fingerprint: String,
}

impl ListQuery {
    /// Parses `request`, recording every violation in `v` (fields `page_size`, `filter`,
    /// `order_by`, `page_token`). `filters` is the resource's filter table at its context
    /// (`None`: the list has no filter).
    pub fn parse(
        v: &mut Violations,
        request: &ListRequest<'_>,
        filters: Option<&dyn FilterSchema>,
        sorting: &Sorting,
    ) -> ListQuery {
        let size = v
            .absorb("page_size", page::page_size("page_size", request.page_size))
            .unwrap_or(page::DEFAULT_PAGE_SIZE);
        let mut condition = Condition::all();
        let mut parsed = None;
        match (
            filters,
            v.absorb("filter", filter::parse("filter", request.filter))
                .flatten(),
        ) {
            (_, None) => {}
            (None, Some(_)) => v.add("filter", "this list has no filter"),
            (Some(schema), Some(f)) => {
                if let Some(c) = v.absorb("filter", filter::compile("filter", &f, schema)) {
                    condition = condition.add(c);
                }
                parsed = Some(f);
            }
        }
        let order = sorting.parse(request.order_by).unwrap_or_else(|e| {
            v.add("order_by", e);
            sorting.default.to_vec()
        });
        let mut parts: Vec<&str> = request.scope.to_vec();
        parts.push(request.filter);
        parts.push(request.order_by);
        let fingerprint = page::query_fingerprint(&parts);
        let order_types: Vec<KeyType> = order
            .iter()
            .filter_map(|(f, _)| sorting.key_type(f))
            .collect();
        let types: Vec<KeyType> = order_types.iter().copied().chain([sorting.id]).collect();
        let after = v
            .absorb(
                "page_token",
                page::decode("page_token", request.page_token, &fingerprint, types.len()),
            )
            .flatten()
            .filter(|keys| {
                let fits = keys.iter().zip(&types).all(|(k, t)| match (k, t) {
                    (Key::Int(_), KeyType::Int) | (Key::Text(_), KeyType::Text) => true,
                    (Key::Text(id), KeyType::Uuid) => Uuid::parse_str(id).is_ok(),
                    _ => false,
                });
                if !fits {
                    v.add("page_token", "is not a page token issued by this service");
                }
                fits
            });
        ListQuery {
            size,
            condition,
            order,
            filter: parsed,
            after,
            types: order_types,
            id: sorting.id,
            fingerprint,
        }
    }

    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn limit(&self) -> u64 {
        self.size + 1
    }

    /// True when the filter compares `field` anywhere.
    pub fn mentions(&self, field: &str) -> bool {
        self.filter.as_ref().is_some_and(|f| f.mentions(field))
    }

    /// The direction of the id that breaks ties: the first sort field's.
    pub fn tie_break(&self) -> Direction {
        self.order.first().map_or(Direction::Asc, |(_, d)| *d)
    }

    /// The id the previous page ended at, for lists in id order.
    pub fn after_id(&self) -> Option<Uuid> {
        match self.after.as_deref()?.last()? {
            Key::Text(id) => Uuid::parse_str(id).ok(),
            Key::Int(_) => None,
        }
    }

    /// The sequence number the previous page ended at, for lists in sequence order.
    pub fn after_sequence(&self) -> Option<i64> {
        match self.after.as_deref()?.last()? {
            Key::Int(n) => Some(*n),
            Key::Text(_) => None,
        }
    }

    /// The text id the previous page ended at, for lists in text-id order.
    pub fn after_text(&self) -> Option<&str> {
        match self.after.as_deref()?.last()? {
            Key::Text(id) => Some(id),
            Key::Int(_) => None,
        }
    }

    /// Rows strictly after the previous page's last row in this order: `columns` are the
    /// sort fields' columns (in order) and `id` the tie-breaking id column. `None` on the
    /// first page.
    pub fn after_condition<C: ColumnTrait>(&self, columns: &[C], id: C) -> Option<Condition> {
        let keys = self.after.as_deref()?;
        let tie = self.tie_break();
        let mut fields: Vec<(C, Direction, Value)> = Vec::new();
        for ((((_, direction), column), key), ty) in
            self.order.iter().zip(columns).zip(keys).zip(&self.types)
        {
            fields.push((*column, *direction, value(key, *ty)));
        }
        fields.push((id, tie, value(keys.last()?, self.id)));
        let mut any = Condition::any();
        for k in 0..fields.len() {
            let mut all = Condition::all();
            for (column, _, value) in &fields[..k] {
                all = all.add(column.eq(value.clone()));
            }
            let (column, direction, value) = &fields[k];
            all = all.add(match direction {
                Direction::Desc => column.lt(value.clone()),
                Direction::Asc => column.gt(value.clone()),
            });
            any = any.add(all);
        }
        Some(any)
    }

    /// Ends a page fetched with [`Self::limit`]: drops the extra row and returns the next
    /// page's token (empty after the last page). `keys` are a row's sort-field keys, then
    /// its id.
    pub fn next_page<T>(&self, rows: &mut Vec<T>, keys: impl Fn(&T) -> Vec<Key>) -> String {
        page::finish(rows, self.size, &self.fingerprint, keys)
    }

    /// [`Self::next_page`] of a list in id order.
    pub fn next_page_by_id<T, I: ToString>(
        &self,
        rows: &mut Vec<T>,
        id: impl Fn(&T) -> I,
    ) -> String {
        self.next_page(rows, |row| vec![Key::Text(id(row).to_string())])
    }
}

/// One page of a list in id order (no filter, no order_by): parses the paging of `request`
/// into `v` (which may already hold the request's other violations) and fails with all of them;
/// else loads the rows after the cursor with `load` and returns them with the next page's token.
pub async fn page_by_id<T, I: ToString>(
    mut v: Violations,
    request: &ListRequest<'_>,
    sorting: &Sorting,
    load: impl AsyncFnOnce(&ListQuery) -> crate::ApiResult<Vec<T>>,
    id: impl Fn(&T) -> I,
) -> crate::ApiResult<(Vec<T>, String)> {
    let list = ListQuery::parse(&mut v, request, None, sorting);
    v.finish()?;
    let mut rows = load(&list).await?;
    let next_page_token = list.next_page_by_id(&mut rows, id);
    Ok((rows, next_page_token))
}

/// A key as the value its column holds (parsing checked UUID keys already).
fn value(key: &Key, id: KeyType) -> Value {
    match (key, id) {
        (Key::Text(t), KeyType::Uuid) => {
            Uuid::parse_str(t).map_or_else(|_| Value::from(t.clone()), Value::from)
        }
        (Key::Text(t), _) => Value::from(t.clone()),
        (Key::Int(n), _) => Value::from(*n),
    }
}

#[cfg(test)]
mod tests;
