//! The list layer over the audit table's columns (any entity would do).

use proptest::prelude::*;
use sea_orm::{DbBackend, EntityTrait, QueryFilter, QueryTrait};

use super::*;
use crate::audit::audit_event::{self, Column as C};

static SEVERITY: EnumValues = EnumValues {
    prefix: "SEVERITY_",
    values: &[("LOW", 1), ("MEDIUM", 2), ("HIGH", 3), ("CRITICAL", 4)],
};

fn recent(cx: &FilterContext) -> Condition {
    Condition::all().add(C::Time.gt(cx.now - 10))
}

static TABLE: FilterTable<C> = FilterTable(&[
    Field::new("principal", Kind::Text(C::Principal)),
    Field::new("service", Kind::Id(C::Service, "services/")),
    Field::new(
        "severity",
        Kind::Enum {
            column: C::Rpc,
            values: &SEVERITY,
            ordered: true,
        },
    ),
    Field::new(
        "kind",
        Kind::Enum {
            column: C::Rpc,
            values: &SEVERITY,
            ordered: false,
        },
    ),
    Field::new("count", Kind::Int(C::Time)),
    Field::new("time", Kind::Time(C::Time)),
    Field::new("recent", Kind::Flag(recent)),
    Field::new(
        "labels.",
        Kind::Custom(|field, _, value, _| {
            Ok(Condition::all().add(C::Resource.eq(format!("{field}={value}"))))
        }),
    ),
]);

const SORTING: Sorting = Sorting {
    fields: &[("time", KeyType::Int), ("principal", KeyType::Text)],
    default: &[("time", Direction::Desc)],
    max_fields: 2,
    id: KeyType::Uuid,
};

fn request<'a>(filter: &'a str, order_by: &'a str, page_token: &'a str) -> ListRequest<'a> {
    ListRequest {
        scope: &["events", "parent/1"],
        page_size: 0,
        page_token,
        filter,
        order_by,
    }
}

fn parse(req: &ListRequest<'_>) -> Result<ListQuery, Vec<String>> {
    let mut v = Violations::new();
    let cx = FilterContext { now: 1_000 };
    let q = ListQuery::parse(&mut v, req, Some(&TABLE.at(cx)), &SORTING);
    match v.finish() {
        Ok(()) => Ok(q),
        Err(crate::ApiError::InvalidArgument(list)) => Err(list
            .into_iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect()),
        Err(other) => Err(vec![other.to_string()]),
    }
}

fn sql(q: &ListQuery) -> String {
    let mut select = audit_event::Entity::find().filter(q.condition.clone());
    if let Some(after) = q.after_condition(&[C::Time, C::Principal], C::Id) {
        select = select.filter(after);
    }
    select.build(DbBackend::Sqlite).to_string()
}

fn paged_one(q: &ListQuery) -> ListQuery {
    ListQuery {
        size: 1,
        ..q.clone()
    }
}

#[test]
fn defaults_when_nothing_is_asked() {
    let q = parse(&request("", "", "")).expect("valid");
    assert_eq!(q.size, page::DEFAULT_PAGE_SIZE);
    assert_eq!(q.limit(), page::DEFAULT_PAGE_SIZE + 1);
    assert_eq!(q.order, [("time", Direction::Desc)]);
    assert_eq!(q.tie_break(), Direction::Desc);
    assert!(!q.mentions("principal"));
    assert!(q.after_condition(&[C::Time], C::Id).is_none());
}

#[test]
fn every_bad_part_is_reported_at_once_with_its_field() {
    let mut req = request("nope = 1", "sideways", "garbage");
    req.page_size = -1;
    let errors = parse(&req).expect_err("invalid");
    let fields: Vec<&str> = errors
        .iter()
        .map(|e| e.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        fields,
        ["page_size", "filter", "order_by", "page_token"],
        "{errors:?}"
    );
    assert!(errors[1].contains(
        "filterable: principal, service, severity, kind, count, time, recent, labels.<key>"
    ));
    assert!(errors[2].contains("cannot order by `sideways`; one of time, principal"));
}

#[test]
fn filter_fields_compare_by_their_kind() {
    for ok in [
        "principal = alice",
        "service = services/exchange-online",
        "severity >= HIGH",
        "severity = severity_low",
        "kind != MEDIUM",
        "count > 3",
        "time < \"2026-01-31T00:00:00Z\"",
        "recent = false",
        "labels.env = prod",
    ] {
        let q = parse(&request(ok, "", "")).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
        assert!(q.mentions(ok.split(' ').next().unwrap_or_default()), "{ok}");
    }
    for (bad, says) in [
        ("principal > a", "supports only = and !="),
        ("kind < HIGH", "supports only = and !="),
        ("severity = EXTREME", "one of LOW, MEDIUM, HIGH, CRITICAL"),
        ("count = many", "whole number"),
        ("time > yesterday", "RFC 3339"),
        ("recent = maybe", "true or false"),
        ("labels. = x", "unknown field"),
    ] {
        let errors = parse(&request(bad, "", "")).expect_err(bad);
        assert!(
            errors[0].starts_with("filter: ") && errors[0].contains(says),
            "{bad}: {errors:?}"
        );
    }
    let q = parse(&request("service = services/x AND recent = true", "", "")).expect("valid");
    let sql = sql(&q);
    assert!(sql.contains(r#""service" = 'x'"#), "{sql}");
    assert!(sql.contains(r#""time" > 990"#), "{sql}");
}

#[test]
fn order_by_fields_directions_and_limits() {
    let q = parse(&request("", "principal, time desc", "")).expect("valid");
    assert_eq!(
        q.order,
        [("principal", Direction::Asc), ("time", Direction::Desc)]
    );
    assert_eq!(q.tie_break(), Direction::Asc);
    for (bad, says) in [
        ("time time", "is not `field` or `field desc`"),
        ("time, time desc", "names a field twice"),
        ("title", "cannot order by `title`"),
    ] {
        let errors = parse(&request("", bad, "")).expect_err(bad);
        assert!(
            errors[0].starts_with("order_by: ") && errors[0].contains(says),
            "{bad}: {errors:?}"
        );
    }
    let mut v = Violations::new();
    ListQuery::parse(&mut v, &request("", "time", ""), None, &Sorting::BY_UUID);
    assert!(v.finish().is_err(), "a list in id order takes no order_by");
    let mut v = Violations::new();
    let paged = ListQuery::parse(
        &mut v,
        &ListRequest::paged(&["x"], 7, ""),
        None,
        &Sorting::BY_UUID,
    );
    assert!(v.finish().is_ok());
    assert_eq!((paged.size, paged.after_id()), (7, None));
    let mut seqs = vec![1_i64, 2];
    let token = paged_one(&paged).next_page(&mut seqs, |n| vec![Key::Int(*n)]);
    let mut v = Violations::new();
    let log = ListQuery::parse(
        &mut v,
        &ListRequest::paged(&["x"], 7, &token),
        None,
        &Sorting::BY_SEQUENCE,
    );
    assert!(v.finish().is_ok());
    assert_eq!(log.after_sequence(), Some(1));
}

#[test]
fn a_page_token_continues_after_the_last_row_of_the_same_query_only() {
    let q = parse(&request("principal = a", "time desc", "")).expect("valid");
    let id = Uuid::now_v7();
    let mut rows = vec![(5_i64, id), (4, Uuid::now_v7())];
    let mut one = q.clone();
    one.size = 1;
    let token = one.next_page(&mut rows, |(t, id)| {
        vec![Key::Int(*t), Key::Text(id.to_string())]
    });
    assert_eq!(rows.len(), 1);
    let next = parse(&request("principal = a", "time desc", &token)).expect("same query");
    assert_eq!(next.after_id(), Some(id));
    let sql = sql(&next);
    assert!(sql.contains(r#"("audit_events"."time" < 5 OR ("audit_events"."time" = 5 AND "audit_events"."id" < '"#), "{sql}");
    for other in [
        request("principal = b", "time desc", &token),
        request("principal = a", "time", &token),
        ListRequest {
            scope: &["events", "parent/2"],
            ..request("principal = a", "time desc", &token)
        },
    ] {
        let errors = parse(&other).expect_err("another query");
        assert!(
            errors[0].starts_with("page_token: belongs to a different query"),
            "{errors:?}"
        );
    }
}

#[test]
fn a_token_with_keys_of_the_wrong_type_is_refused() {
    let q = parse(&request("", "", "")).expect("valid");
    let mut rows = vec![1, 2];
    let mut one = q.clone();
    one.size = 1;
    let forged = one.next_page(&mut rows, |_| {
        vec![Key::Int(1), Key::Text("not-a-uuid".into())]
    });
    let errors = parse(&request("", "", &forged)).expect_err("forged");
    assert_eq!(
        errors,
        ["page_token: is not a page token issued by this service"]
    );
}

#[test]
fn a_uuid_sort_field_continues_after_its_key_and_compares_as_a_pair() {
    // `name` of a child resource: its parent's id (here in `principal`) then its own id.
    const BY_NAME: Sorting = Sorting {
        fields: &[("time", KeyType::Int), ("name", KeyType::Uuid)],
        default: &[],
        max_fields: 2,
        id: KeyType::Uuid,
    };
    let parse = |token: &str| {
        let mut v = Violations::new();
        let q = ListQuery::parse(
            &mut v,
            &ListRequest::paged(&["x"], 1, token),
            None,
            &BY_NAME,
        );
        (q, v.finish())
    };
    let (q, ok) = parse("");
    assert!(ok.is_ok());
    let mut v = Violations::new();
    let ordered = ListQuery::parse(
        &mut v,
        &ListRequest {
            order_by: "time, name",
            ..ListRequest::paged(&["x"], 1, "")
        },
        None,
        &BY_NAME,
    );
    assert!(v.finish().is_ok());
    let (parent, id) = (Uuid::now_v7(), Uuid::now_v7());
    let mut rows = vec![(7_i64, parent, id), (8, parent, Uuid::now_v7())];
    let token = ordered.next_page(&mut rows, |(t, p, i)| {
        vec![
            Key::Int(*t),
            Key::Text(p.to_string()),
            Key::Text(i.to_string()),
        ]
    });
    let mut v = Violations::new();
    let next = ListQuery::parse(
        &mut v,
        &ListRequest {
            order_by: "time, name",
            ..ListRequest::paged(&["x"], 1, &token)
        },
        None,
        &BY_NAME,
    );
    assert!(v.finish().is_ok());
    let after = next
        .after_condition(&[C::Time, C::Principal], C::Id)
        .expect("a next page");
    let sql = audit_event::Entity::find()
        .filter(after)
        .build(DbBackend::Postgres)
        .to_string();
    assert!(
        sql.contains(&format!("\"principal\" > '{parent}'")),
        "{sql}"
    );
    assert!(sql.contains(&format!("\"id\" > '{id}'")), "{sql}");
    assert_eq!(q.after_id(), None);
    let pair = crate::filter::compare_pair(
        (C::Principal, parent.into()),
        (C::Id, id.into()),
        crate::filter::Op::Ge,
    );
    let sql = audit_event::Entity::find()
        .filter(pair)
        .build(DbBackend::Postgres)
        .to_string();
    assert!(
        sql.contains(&format!(
            "\"principal\" > '{parent}' OR (\"audit_events\".\"principal\" = '{parent}' AND \"audit_events\".\"id\" >= '{id}')"
        )),
        "{sql}"
    );
}

proptest! {
    #[test]
    fn garbage_requests_are_refused_not_panics(
        filter in "\\PC{0,60}",
        order_by in "[a-z ,]{0,30}",
        token in "\\PC{0,80}",
    ) {
        let _ = parse(&request(&filter, &order_by, &token));
    }
}
