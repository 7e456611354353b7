//! Generated-input tests of what parses a request (issue #16): the AIP-160 filter parser and
//! compiler (over the real filter tables of risks and action items), page tokens, `order_by`,
//! FieldMask paths, resource-name parsers, timestamp conversions and the field validators.
//!
//! Every target feeds a mix of near-valid and arbitrary input (proptest strategies) to the
//! parser and requires: no panic, and every refusal a clean error — `INVALID_ARGUMENT` whose
//! message and violations stay short. `cargo test` runs each target briefly;
//! `assurance-bench fuzz --cases 1000000` runs the long version (docs/performance.md#fuzzing).

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use assurance_runtime::{
    ApiError,
    list::{FilterContext, ListQuery, ListRequest},
    time::{from_timestamp, parse_rfc3339, to_timestamp},
    validate::{TrackerLink, Violations, name_id, update_paths},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use tonic::Code;

/// The longest message a refusal may carry: the inputs are bounded, the echo of them too.
const MAX_MESSAGE: usize = 8 * 1024;

/// One target's run.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: &'static str,
    pub cases: u64,
    pub refused: u64,
    pub elapsed: Duration,
}

/// The targets, by name.
pub const TARGETS: &[&str] = &[
    "filter",
    "page_token",
    "order_by",
    "field_mask",
    "names",
    "timestamps",
    "validators",
];

/// A refusal is clean: INVALID_ARGUMENT, short, with a field violation.
fn clean(err: &ApiError) -> Result<(), TestCaseError> {
    if err.code() != Code::InvalidArgument {
        return Err(TestCaseError::fail(format!(
            "refused with {:?}, not INVALID_ARGUMENT: {err}",
            err.code()
        )));
    }
    let status = tonic::Status::from(err.clone());
    if status.message().len() > MAX_MESSAGE || status.details().len() > 4 * MAX_MESSAGE {
        return Err(TestCaseError::fail(format!(
            "a refusal of {} bytes of message and {} of details",
            status.message().len(),
            status.details().len()
        )));
    }
    Ok(())
}

/// Words a filter is made of, valid and not.
fn filter_word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "status",
            "score",
            "severity",
            "service",
            "owner",
            "labels.env",
            "labels.",
            "update_time",
            "create_time",
            "due_time",
            "overdue",
            "title",
            "name",
            "business_unit",
            "x",
            "-",
            "NOT",
            "AND",
            "OR",
            "(",
            ")",
            "=",
            "!=",
            "<",
            "<=",
            ">",
            ">=",
            ":",
            "~",
            "\"",
            "'",
            "ASSESSED",
            "HIGH",
            "true",
            "false",
            "42",
            "-1",
            "1e99",
            "99999999999999999999",
            "\"2026-11-29T10:00:00Z\"",
            "\"0000-01-01T00:00:00Z\"",
            "\"9999-12-31T23:59:59Z\"",
            "\"services/exchange-online\"",
            "\"\\\"\"",
            "\\",
            "*",
            "\u{0}",
            "é",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(16).collect()),
    ]
}

fn filter_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(filter_word(), 0..24).prop_map(|w| w.join(" ")),
        prop::collection::vec(filter_word(), 0..24).prop_map(|w| w.concat()),
        any::<String>(),
        // Deep nesting and long inputs.
        (1usize..400).prop_map(|n| format!("{}a = 1{}", "(".repeat(n), ")".repeat(n))),
        (1usize..5000).prop_map(|n| "a = 1 AND ".repeat(n)),
    ]
}

/// A list request over the risks' real filter table and order.
fn list_risks(filter: &str, order_by: &str, page_token: &str) -> Result<(), ApiError> {
    let mut v = Violations::new();
    let request = ListRequest {
        scope: &[],
        page_size: 50,
        page_token,
        filter,
        order_by,
    };
    let cx = FilterContext {
        now: 1_800_000_000_000_000,
    };
    ListQuery::parse(
        &mut v,
        &request,
        Some(&risk_service::store::RISK_FILTER.at(cx)),
        &risk_service::store::RISK_SORTING,
    );
    v.finish()
}

/// A list request over the action items' filter table.
fn list_items(filter: &str) -> Result<(), ApiError> {
    let mut v = Violations::new();
    let request = ListRequest {
        scope: &[],
        page_size: 10,
        page_token: "",
        filter,
        order_by: "",
    };
    let cx = FilterContext { now: 0 };
    ListQuery::parse(
        &mut v,
        &request,
        Some(&risk_service::store::ITEM_FILTER.at(cx)),
        &risk_service::store::listing::ITEM_SORTING,
    );
    v.finish()
}

fn page_token() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_-]{0,200}",
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        // JSON the right shape with wrong contents.
        ("[ -~]{0,20}", prop::collection::vec(any::<i64>(), 0..5))
            .prop_map(|(q, k)| URL_SAFE_NO_PAD.encode(format!("{{\"q\":{q:?},\"k\":{k:?}}}"))),
        (any::<String>(), any::<String>()).prop_map(|(q, k)| {
            URL_SAFE_NO_PAD.encode(format!("{{\"q\":{q:?},\"k\":[{k:?},{k:?},{k:?}]}}"))
        }),
    ]
}

fn order_by() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        prop::sample::select(vec![
            "score",
            "severity",
            "create_time",
            "update_time",
            "title",
            "name",
            "desc",
            "asc",
            "DESC",
            ",",
            " ",
            "score desc",
            "x",
            "score,score",
            ".",
            "labels.env",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,10}",
    ];
    prop_oneof![
        prop::collection::vec(word, 0..8).prop_map(|w| w.join(" ")),
        any::<String>(),
    ]
}

const UPDATABLE: &[&str] = &[
    "title",
    "description",
    "owner",
    "due_time",
    "status",
    "tracker",
];

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(UPDATABLE.to_vec()).prop_map(str::to_string),
        prop::sample::select(vec![
            "",
            "*",
            "name",
            "etag",
            "tracker.url",
            "title.x",
            "TITLE"
        ])
        .prop_map(str::to_string),
        any::<String>(),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "(risks|incidents|services|businessUnits)/[a-z0-9/-]{0,40}",
        "risks/[0-9a-f-]{0,36}/actionPlan/items/[0-9a-f-]{0,36}",
        "incidents/[ -~]{0,20}/followUps/[ -~]{0,20}",
        any::<String>(),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,80}",
        any::<String>(),
        (0usize..6000).prop_map(|n| "x".repeat(n)),
        prop::collection::vec(
            prop::sample::select(vec!["\u{0}", "\n", "\t", "\u{202e}", "é", " ", "a", "\r"]),
            0..40
        )
        .prop_map(|c| c.concat()),
    ]
}

/// Runs `target` on `cases` generated inputs; an error names the failing input.
pub fn run(target: &str, cases: u32) -> Result<Report, String> {
    let refused = AtomicU64::new(0);
    let refuse = |r: Result<(), ApiError>| -> Result<(), TestCaseError> {
        if let Err(e) = r {
            refused.fetch_add(1, Ordering::Relaxed);
            clean(&e)?;
        }
        Ok(())
    };
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..Config::default()
    });
    let started = Instant::now();
    let (name, outcome) = match target {
        "filter" => (
            "filter",
            runner
                .run(&filter_text(), |f| {
                    refuse(list_risks(&f, "", ""))?;
                    refuse(list_items(&f))
                })
                .map_err(|e| e.to_string()),
        ),
        "page_token" => (
            "page_token",
            runner
                .run(&page_token(), |t| refuse(list_risks("score > 10", "", &t)))
                .map_err(|e| e.to_string()),
        ),
        "order_by" => (
            "order_by",
            runner
                .run(&order_by(), |o| refuse(list_risks("", &o, "")))
                .map_err(|e| e.to_string()),
        ),
        "field_mask" => (
            "field_mask",
            runner
                .run(&prop::collection::vec(path(), 0..10), |paths| {
                    let mask = prost_types::FieldMask { paths };
                    match update_paths(Some(&mask), UPDATABLE, |_| true) {
                        Ok(out) => {
                            // Only updatable paths, each once.
                            let mut seen = std::collections::HashSet::new();
                            prop_assert!(
                                out.iter().all(|p| UPDATABLE.contains(p) && seen.insert(*p))
                            );
                            Ok(())
                        }
                        Err(e) => refuse(Err(e)),
                    }
                })
                .map_err(|e| e.to_string()),
        ),
        "names" => (
            "names",
            runner
                .run(
                    &(
                        name(),
                        prop::sample::select(vec!["risks", "incidents", "services"]),
                    ),
                    |(n, c)| {
                        if let Some(id) = name_id(&n, c) {
                            prop_assert!(!id.is_empty() && !id.contains('/'));
                            prop_assert_eq!(format!("{c}/{id}"), n.clone());
                        }
                        let mut v = Violations::new();
                        let _ = assurance_runtime::validate::slug_name(&mut v, "name", &n, c);
                        refuse(v.finish())?;
                        if let Some(kind) = gateway::trackers::sync::items::kind_of(&n) {
                            prop_assert!(
                                n.starts_with("risks/") || n.starts_with("incidents/"),
                                "{kind:?}"
                            );
                        }
                        Ok(())
                    },
                )
                .map_err(|e| e.to_string()),
        ),
        "timestamps" => (
            "timestamps",
            runner
                .run(
                    &(
                        any::<i64>(),
                        any::<i32>(),
                        any::<String>(),
                        -62_135_596_800_000_000i64..253_402_300_799_999_999,
                    ),
                    |(seconds, nanos, text, micros)| {
                        if let Some(m) = from_timestamp(&prost_types::Timestamp { seconds, nanos })
                        {
                            prop_assert_eq!(from_timestamp(&to_timestamp(m)), Some(m));
                        }
                        let _ = parse_rfc3339(&text);
                        // Every time of years 1..9999 prints and parses back.
                        let printed = to_timestamp(micros).to_string();
                        prop_assert_eq!(parse_rfc3339(&printed), Some(micros), "{}", printed);
                        Ok(())
                    },
                )
                .map_err(|e| e.to_string()),
        ),
        "validators" => (
            "validators",
            runner
                .run(&(text(), text(), text(), any::<i32>()), |(a, b, c, n)| {
                    let mut v = Violations::new();
                    v.line("title", &a, true, 200);
                    v.paragraph("description", &b, false, 4000);
                    let mut owner = c.clone();
                    v.principal("owner", &mut owner, true);
                    v.request_id("request_id", &c);
                    v.in_range("impact", n, 1, 5);
                    let at = prost_types::Timestamp {
                        seconds: i64::from(n),
                        nanos: n,
                    };
                    v.tracker_link(
                        "tracker",
                        &TrackerLink {
                            system: &a,
                            external_key: &b,
                            url: &c,
                            sync_state: n,
                            sync_time: Some(&at),
                        },
                    );
                    refuse(v.finish())
                })
                .map_err(|e| e.to_string()),
        ),
        other => {
            return Err(format!(
                "no target {other:?}; targets: {}",
                TARGETS.join(", ")
            ));
        }
    };
    outcome.map_err(|e| format!("{name}: {e}"))?;
    Ok(Report {
        target: name,
        cases: u64::from(cases),
        refused: refused.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    /// The short version CI runs: every target, a few thousand inputs each.
    #[test]
    fn every_parser_takes_generated_input_without_a_panic_or_an_unclean_refusal() {
        for target in super::TARGETS {
            let report = super::run(target, 2_000).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(report.cases, 2_000);
        }
    }
}
