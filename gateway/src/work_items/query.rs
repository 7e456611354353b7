//! The request side of `ListWorkItems`: its filter, checked once here and translated for each
//! service (a comparison on `kind` is decided here, the others are the services' own fields),
//! its one order, and its page token — a keyset cursor per service, so that each service's
//! items continue after the last one returned from it whatever the other's clock says.

use assurance_proto::{gateway::v1::WorkItemKind, r#type::v1::WorkItemStatus};
use assurance_runtime::{
    ApiError, ApiResult,
    filter::{self, Filter, Op, equality_only},
    list::{boolean, time},
    page::{self, Key},
    time::to_timestamp,
    validate::Violations,
};

/// A service's list of work items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// incident-service's `ListFollowUps` over `incidents/-`.
    FollowUps,
    /// risk-service's `ListActionItems` over `risks/-/actionPlan`.
    ActionItems,
}

impl Source {
    /// Both sources, in the order of their cursors in a page token.
    pub const ALL: [Source; 2] = [Source::FollowUps, Source::ActionItems];

    /// Its place in [`Source::ALL`] and among a page token's cursors.
    pub fn index(self) -> usize {
        match self {
            Source::FollowUps => 0,
            Source::ActionItems => 1,
        }
    }

    /// The kind of its items.
    pub fn kind(self) -> WorkItemKind {
        match self {
            Source::FollowUps => WorkItemKind::FollowUp,
            Source::ActionItems => WorkItemKind::ActionItem,
        }
    }
}

/// The filter fields, as the error of an unknown one lists them.
const FIELDS: &str = "kind, service, status, owner, overdue, tracker_system, external_key, \
                      update_time, due_time, create_time";

/// The order the services are asked for: the gateway's, `update_time` then name.
pub const SOURCE_ORDER: &str = "update_time, name";

/// Where a source's items continue: after the item with this update time (microseconds) and
/// name, in (update time, name) order (the order of the fields).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub update_time: i64,
    pub name: String,
}

/// A checked `ListWorkItems` request.
#[derive(Debug, Clone)]
pub struct WorkItemQuery {
    /// Items per page.
    pub size: u64,
    filter: Option<Filter>,
    /// The cursor of each source (in [`Source::ALL`] order); `None` before its first item.
    pub cursors: [Option<Cursor>; 2],
    fingerprint: String,
}

impl WorkItemQuery {
    /// Checks a request's page size, filter, order and page token, reporting every bad field.
    pub fn parse(page_size: i32, page_token: &str, text: &str, order_by: &str) -> ApiResult<Self> {
        let mut v = Violations::new();
        let size = v
            .absorb("page_size", page::page_size("page_size", page_size))
            .unwrap_or(page::DEFAULT_PAGE_SIZE);
        let parsed = v.absorb("filter", filter::parse("filter", text)).flatten();
        if let Some(Err(e)) = parsed.as_ref().map(check) {
            v.add("filter", e);
        }
        if !matches!(order_by.trim(), "" | "update_time" | "update_time asc") {
            v.add(
                "order_by",
                "only `update_time` is supported (ascending, then by name)",
            );
        }
        let fingerprint = page::query_fingerprint(&["workItems", text, order_by]);
        let cursors = v
            .absorb("page_token", decode(page_token, &fingerprint))
            .unwrap_or_default();
        v.finish()?;
        Ok(WorkItemQuery {
            size,
            filter: parsed,
            cursors,
            fingerprint,
        })
    }

    /// The filter to send `source` — the request's, without `kind`, and after the source's
    /// cursor — or `None` when the filter excludes the source's kind.
    pub fn source_filter(&self, source: Source) -> ApiResult<Option<String>> {
        let own = match self.filter.as_ref().map(|f| fold(f, source.kind())) {
            None | Some(Folded::Always(true)) => None,
            Some(Folded::Always(false)) => return Ok(None),
            Some(Folded::When(f)) => Some(f),
        };
        let after = self.cursors[source.index()].as_ref().map(|c| {
            let at = quote(&to_timestamp(c.update_time).to_string());
            format!(
                "update_time > {at} OR (update_time = {at} AND name > {})",
                quote(&c.name)
            )
        });
        let text = match (own, after) {
            (None, None) => String::new(),
            (Some(f), None) => render(&f),
            (None, Some(after)) => after,
            (Some(f), Some(after)) => format!("({}) AND ({after})", render(&f)),
        };
        // What the services will parse: a filter near the limits may not fit once translated.
        filter::parse("filter", &text).map_err(|_| {
            ApiError::invalid(
                "filter",
                "is too long or too deeply nested to translate for the services",
            )
        })?;
        Ok(Some(text))
    }

    /// The next page's token with these cursors.
    pub fn token(&self, cursors: &[Option<Cursor>; 2]) -> String {
        let keys = cursors
            .iter()
            .flat_map(|c| match c {
                Some(c) => [Key::Int(c.update_time), Key::Text(c.name.clone())],
                None => [Key::Int(0), Key::Text(String::new())],
            })
            .collect();
        page::encode(&self.fingerprint, keys)
    }
}

/// The cursors of a page token (none for the first page).
fn decode(page_token: &str, fingerprint: &str) -> ApiResult<[Option<Cursor>; 2]> {
    let Some(keys) = page::decode("page_token", page_token, fingerprint, 4)? else {
        return Ok([None, None]);
    };
    let cursor = |pair: &[Key]| match pair {
        [Key::Int(_), Key::Text(name)] if name.is_empty() => Ok(None),
        [Key::Int(t), Key::Text(name)] => Ok(Some(Cursor {
            update_time: *t,
            name: name.clone(),
        })),
        _ => Err(ApiError::invalid(
            "page_token",
            "is not a page token issued by this service",
        )),
    };
    Ok([cursor(&keys[..2])?, cursor(&keys[2..])?])
}

/// Checks every comparison of the filter: a known field, an operator it supports, a value of
/// its type.
fn check(f: &Filter) -> Result<(), String> {
    match f {
        Filter::And(parts) | Filter::Or(parts) => parts.iter().try_for_each(check),
        Filter::Not(inner) => check(inner),
        Filter::Compare { field, op, value } => compare(field, *op, value),
    }
}

fn compare(field: &str, op: Op, value: &str) -> Result<(), String> {
    match field {
        "kind" => {
            equality_only(field, op)?;
            kind(value).map(|_| ())
        }
        "status" => {
            equality_only(field, op)?;
            status(value)
        }
        "overdue" => {
            equality_only(field, op)?;
            boolean(field, value).map(|_| ())
        }
        "service" | "owner" | "tracker_system" | "external_key" => equality_only(field, op),
        "update_time" | "due_time" | "create_time" => time(field, value).map(|_| ()),
        _ => Err(format!("unknown field `{field}`; filterable: {FIELDS}")),
    }
}

/// A work item kind by its name (`FOLLOW_UP` or `WORK_ITEM_KIND_FOLLOW_UP`, any case).
fn kind(value: &str) -> Result<WorkItemKind, String> {
    let upper = value.to_ascii_uppercase();
    let short = upper.strip_prefix("WORK_ITEM_KIND_").unwrap_or(&upper);
    WorkItemKind::from_str_name(&format!("WORK_ITEM_KIND_{short}"))
        .filter(|k| *k != WorkItemKind::Unspecified)
        .ok_or_else(|| format!("`{value}` is not a valid kind; one of ACTION_ITEM, FOLLOW_UP"))
}

/// A work item status by its name (`OPEN` or `WORK_ITEM_STATUS_OPEN`, any case).
fn status(value: &str) -> Result<(), String> {
    let upper = value.to_ascii_uppercase();
    let short = upper.strip_prefix("WORK_ITEM_STATUS_").unwrap_or(&upper);
    WorkItemStatus::from_str_name(&format!("WORK_ITEM_STATUS_{short}"))
        .filter(|s| *s != WorkItemStatus::Unspecified)
        .map(|_| ())
        .ok_or_else(|| {
            format!(
                "`{value}` is not a valid status; one of OPEN, IN_PROGRESS, BLOCKED, DONE, WONT_DO"
            )
        })
}

/// A filter for one kind of item: decided (`kind` comparisons only) or still a filter.
#[derive(Debug, PartialEq)]
enum Folded {
    Always(bool),
    When(Filter),
}

/// `f` for items of `kind`: every `kind` comparison replaced by its truth.
fn fold(f: &Filter, of: WorkItemKind) -> Folded {
    match f {
        Filter::Compare { field, op, value } if field == "kind" => {
            Folded::Always((kind(value).ok() == Some(of)) == (*op == Op::Eq))
        }
        Filter::Compare { .. } => Folded::When(f.clone()),
        Filter::Not(inner) => match fold(inner, of) {
            Folded::Always(b) => Folded::Always(!b),
            Folded::When(g) => Folded::When(Filter::Not(Box::new(g))),
        },
        Filter::And(parts) => combine(parts, of, false, Filter::And),
        Filter::Or(parts) => combine(parts, of, true, Filter::Or),
    }
}

/// An AND (`decisive` false: one false part decides it) or an OR (`decisive` true).
fn combine(
    parts: &[Filter],
    of: WorkItemKind,
    decisive: bool,
    make: fn(Vec<Filter>) -> Filter,
) -> Folded {
    let mut rest = Vec::new();
    for part in parts {
        match fold(part, of) {
            Folded::Always(b) if b == decisive => return Folded::Always(decisive),
            Folded::Always(_) => {}
            Folded::When(g) => rest.push(g),
        }
    }
    match rest.len() {
        0 => Folded::Always(!decisive),
        1 => Folded::When(rest.remove(0)),
        _ => Folded::When(make(rest)),
    }
}

/// A filter as AIP-160 text the services parse back to the same filter.
fn render(f: &Filter) -> String {
    match f {
        Filter::Compare { field, op, value } => format!("{field} {} {}", op.symbol(), quote(value)),
        // OR binds tighter than AND: only an AND inside an OR needs parentheses.
        Filter::And(parts) => parts.iter().map(render).collect::<Vec<_>>().join(" AND "),
        Filter::Or(parts) => parts
            .iter()
            .map(|p| match p {
                Filter::And(_) => format!("({})", render(p)),
                _ => render(p),
            })
            .collect::<Vec<_>>()
            .join(" OR "),
        Filter::Not(inner) => match inner.as_ref() {
            Filter::Compare { .. } => format!("NOT {}", render(inner)),
            _ => format!("NOT ({})", render(inner)),
        },
    }
}

/// A quoted filter value.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
