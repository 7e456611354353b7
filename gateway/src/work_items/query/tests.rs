//! The work-item filter's checks and its translation for each service; page tokens.

use super::*;

fn query(filter: &str, token: &str) -> ApiResult<WorkItemQuery> {
    WorkItemQuery::parse(0, token, filter, "")
}

fn for_each_source(filter: &str) -> [Option<String>; 2] {
    let q = query(filter, "").unwrap_or_else(|e| panic!("{filter}: {e:?}"));
    Source::ALL.map(|s| q.source_filter(s).expect("translates"))
}

fn fields(err: ApiError) -> Vec<String> {
    match err {
        ApiError::InvalidArgument(v) => v
            .into_iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect(),
        other => vec![other.to_string()],
    }
}

#[test]
fn kind_decides_which_services_are_asked() {
    assert_eq!(
        for_each_source(""),
        [Some(String::new()), Some(String::new())]
    );
    assert_eq!(
        for_each_source("kind = FOLLOW_UP"),
        [Some(String::new()), None]
    );
    assert_eq!(
        for_each_source("kind != work_item_kind_follow_up AND owner = ann"),
        [None, Some(r#"owner = "ann""#.into())]
    );
    assert_eq!(
        for_each_source("kind = ACTION_ITEM OR status = DONE"),
        [Some(r#"status = "DONE""#.into()), Some(String::new())]
    );
    assert_eq!(
        for_each_source("NOT kind = ACTION_ITEM"),
        [Some(String::new()), None]
    );
}

#[test]
fn the_rest_reaches_the_services_as_the_same_filter() {
    let filter = r#"(owner = "a \"b\"" OR overdue = true) AND -service = teams AND update_time > "2026-01-01T00:00:00Z""#;
    let [sent, _] = for_each_source(filter);
    let sent = sent.expect("asked");
    assert_eq!(
        filter::parse("filter", &sent),
        filter::parse("filter", filter),
        "{sent}"
    );
    let nested = "a = 1 OR (b = 2 AND c = 3)";
    assert_eq!(
        render(
            &filter::parse("filter", nested)
                .ok()
                .flatten()
                .expect("parses")
        ),
        r#"a = "1" OR (b = "2" AND c = "3")"#
    );
}

#[test]
fn bad_filters_name_the_filter_field() {
    for (bad, says) in [
        ("title = x", "unknown field `title`"),
        ("kind = RISK", "one of ACTION_ITEM, FOLLOW_UP"),
        ("kind > FOLLOW_UP", "supports only = and !="),
        ("status = LATE", "not a valid status"),
        ("owner < b", "supports only = and !="),
        ("overdue = maybe", "true or false"),
        ("update_time > yesterday", "RFC 3339"),
        ("owner = ", "expected a value"),
    ] {
        let errors = fields(query(bad, "").expect_err(bad));
        assert!(
            errors.len() == 1 && errors[0].starts_with("filter: ") && errors[0].contains(says),
            "{bad}: {errors:?}"
        );
    }
    let errors = fields(WorkItemQuery::parse(-1, "junk", "", "title").expect_err("bad"));
    let named: Vec<&str> = errors.iter().filter_map(|e| e.split(':').next()).collect();
    assert_eq!(named, ["page_size", "order_by", "page_token"], "{errors:?}");
}

#[test]
fn a_token_carries_each_services_cursor_for_the_same_filter_only() {
    let q = query("owner = ann", "").expect("valid");
    let cursors = [
        None,
        Some(Cursor {
            update_time: 1_700_000_000_123_456,
            name: "risks/r/actionPlan/items/i".into(),
        }),
    ];
    let token = q.token(&cursors);
    let next = query("owner = ann", &token).expect("same filter");
    assert_eq!(next.cursors, cursors);
    assert_eq!(
        next.source_filter(Source::FollowUps).expect("ok"),
        Some(r#"owner = "ann""#.into())
    );
    assert_eq!(
        next.source_filter(Source::ActionItems).expect("ok"),
        Some(
            r#"(owner = "ann") AND (update_time > "2023-11-14T22:13:20.123456Z" OR (update_time = "2023-11-14T22:13:20.123456Z" AND name > "risks/r/actionPlan/items/i"))"#
                .into()
        )
    );
    let errors = fields(query("owner = bob", &token).expect_err("another filter"));
    assert!(
        errors[0].contains("belongs to a different query"),
        "{errors:?}"
    );
}

#[test]
fn cursors_order_by_time_then_name() {
    let at = |t, n: &str| Cursor {
        update_time: t,
        name: n.into(),
    };
    assert!(at(1, "risks/b") < at(2, "incidents/a"));
    assert!(at(2, "incidents/a") < at(2, "risks/a"));
}
