//! Observability (#17): `/metrics` on every server's HTTP listener, in the Prometheus text
//! format — per-RPC calls by code, latency histograms, in-flight calls and open streams,
//! authentication failures by reason, pool and outbox gauges — and the request id every call
//! gets back. One recorder serves the whole test process, so these tests assert on presence
//! and increases, never on totals.

use std::collections::HashMap;

use assurance_proto::risk::v1 as pb;
use risk_service::domain::scoring::Methodology;
use tonic::{Code, Request};
use tonic_health::pb::HealthCheckRequest;

use crate::{helpers::*, sync_fixture::SyncApp};

crate::on_both_backends!(
    an_embedded_gateway_counts_calls_refusals_and_its_databases,
    a_forwarding_gateway_and_its_services_expose_metrics,
    the_tracker_sync_reports_its_lag_links_and_errors,
);

/// A parsed exposition: `name{labels}` (as written) → value.
type Samples = HashMap<String, f64>;

/// Parses the Prometheus text format strictly: every line is a comment (`# HELP`, `# TYPE`)
/// or `name{label="value",...} value`.
fn parse(text: &str) -> Samples {
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(
                comment.starts_with("HELP ") || comment.starts_with("TYPE "),
                "comment {line:?}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let parsed = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("value {v:?} in {line:?}")),
        };
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "metric name {name:?} in {line:?}"
        );
        if name_end < series.len() {
            let labels = series[name_end..]
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or_else(|| panic!("labels of {line:?}"));
            check_labels(labels, line);
        }
        samples.insert(series.to_string(), parsed);
    }
    samples
}

/// `k="v",k2="v2"` with `\"`, `\\` and `\n` escapes in values.
fn check_labels(labels: &str, line: &str) {
    let mut rest = labels;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("label in {line:?}"));
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "label name {key:?} in {line:?}"
        );
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.unwrap_or_else(|| panic!("unterminated label value in {line:?}"));
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

async fn scrape(addr: std::net::SocketAddr) -> Samples {
    let (code, body) = http_get(addr, "/metrics").await;
    assert_eq!(code, 200, "{body}");
    parse(&body)
}

fn value(samples: &Samples, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

fn calls(method: &str, code: &str) -> String {
    format!("assurance_grpc_requests_total{{method=\"{method}\",code=\"{code}\"}}")
}

const GET_RISK: &str = "assurance.risk.v1.RiskService/GetRisk";
const LIST_RISKS: &str = "assurance.risk.v1.RiskService/ListRisks";

fn missing_risk() -> pb::GetRiskRequest {
    pb::GetRiskRequest {
        name: format!("risks/{}", uuid::Uuid::now_v7()),
    }
}

async fn an_embedded_gateway_counts_calls_refusals_and_its_databases(backend: Backend) {
    let db = TestDb::new(backend).await;
    let gw = embedded_gateway(&db, backend).await;
    let before = scrape(gw.http_addr).await;

    // One OK, one NOT_FOUND, and refusals: no credentials, an expired token.
    gw.risks()
        .list_risks(pb::ListRisksRequest::default())
        .await
        .expect("list");
    let missing = gw
        .risks()
        .get_risk(missing_risk())
        .await
        .expect_err("no such risk");
    assert_eq!(missing.code(), Code::NotFound);
    let anonymous = pb::risk_service_client::RiskServiceClient::new(gw.channel.clone())
        .get_risk(missing_risk())
        .await
        .expect_err("no credentials");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let expired = gw
        .risks_as("expired")
        .get_risk(missing_risk())
        .await
        .expect_err("expired token");
    assert_eq!(expired.code(), Code::Unauthenticated);

    // Every answer carries a request id, errors and refusals included: the caller's, else a
    // new UUIDv7.
    for status in [&missing, &anonymous, &expired] {
        let id = status
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no request id on {status:?}"));
        let uuid = uuid::Uuid::parse_str(id).expect("a UUID");
        assert_eq!(uuid.get_version_num(), 7, "{id}");
    }
    let mut mine = Request::new(pb::ListRisksRequest::default());
    mine.metadata_mut()
        .insert("x-request-id", "metrics-test-1".parse().expect("ascii"));
    let answer = gw.risks().list_risks(mine).await.expect("list");
    assert_eq!(
        answer.metadata().get("x-request-id").expect("echoed"),
        "metrics-test-1"
    );
    let mut theirs = Request::new(missing_risk());
    theirs
        .metadata_mut()
        .insert("x-request-id", "mine-on-an-error".parse().expect("ascii"));
    let refused = gw.risks().get_risk(theirs).await.expect_err("not found");
    assert_eq!(
        refused.metadata().get("x-request-id").expect("echoed"),
        "mine-on-an-error"
    );
    let mut unusable = Request::new(pb::ListRisksRequest::default());
    unusable
        .metadata_mut()
        .insert("x-request-id", "x".repeat(129).parse().expect("ascii"));
    let replaced = gw.risks().list_risks(unusable).await.expect("list");
    let id = replaced.metadata().get("x-request-id").expect("replaced");
    assert_eq!(id.len(), 36, "an over-long id is replaced by a UUID");

    // A create goes through the group commit; reads of it through the read cache.
    org_fixture(&gw).await;
    let risk = create_risk(&gw, new_risk("Counted", "exchange-online")).await;
    get_risk(&gw, &risk.name).await;
    get_risk(&gw, &risk.name).await;

    // A stream stays counted in the open-streams gauge while it is open.
    let watch = gw
        .health()
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health watch");
    let mut watch = watch.into_inner();
    watch
        .message()
        .await
        .expect("first status")
        .expect("status");

    let after = eventually("the outbox gauges are refreshed", || async {
        let s = scrape(gw.http_addr).await;
        let outbox = "assurance_outbox_events{service=\"incident-service\",state=\"dead\"}";
        if s.contains_key(outbox) {
            Ok(s)
        } else {
            Err(format!("no {outbox}"))
        }
    })
    .await;
    for (series, by) in [
        (calls(LIST_RISKS, "OK"), 2.0),
        (calls(GET_RISK, "NOT_FOUND"), 2.0),
        (calls(GET_RISK, "UNAUTHENTICATED"), 2.0),
        (
            "assurance_auth_failures_total{reason=\"missing_credentials\"}".to_string(),
            1.0,
        ),
        (
            "assurance_auth_failures_total{reason=\"expired\"}".to_string(),
            1.0,
        ),
        (
            format!("assurance_grpc_request_duration_seconds_count{{method=\"{GET_RISK}\"}}"),
            3.0,
        ),
        (
            format!(
                "assurance_grpc_request_duration_seconds_bucket{{method=\"{GET_RISK}\",le=\"+Inf\"}}"
            ),
            3.0,
        ),
    ] {
        assert!(
            value(&after, &series) >= value(&before, &series) + by,
            "{series}: {} then {}",
            value(&before, &series),
            value(&after, &series)
        );
    }
    let lookups = |s: &Samples| {
        value(s, "assurance_risk_cache_hits_total") + value(s, "assurance_risk_cache_misses_total")
    };
    assert!(lookups(&after) >= lookups(&before) + 2.0);
    let batches = "assurance_risk_write_batch_size_count";
    assert!(value(&after, batches) >= value(&before, batches) + 1.0);
    assert!(after.contains_key("assurance_risk_write_batch_size_bucket{le=\"1\"}"));
    // Real buckets: p99 per RPC with histogram_quantile.
    let buckets = after
        .keys()
        .filter(|k| {
            k.starts_with(&format!(
                "assurance_grpc_request_duration_seconds_bucket{{method=\"{GET_RISK}\",le="
            ))
        })
        .count();
    assert!(buckets >= 10, "{buckets} buckets");
    assert!(after.contains_key(&format!(
        "assurance_grpc_in_flight_calls{{method=\"{GET_RISK}\"}}"
    )));
    assert!(
        value(
            &after,
            "assurance_grpc_open_streams{method=\"grpc.health.v1.Health/Watch\"}"
        ) >= 1.0
    );
    for database in ["gateway", "risk-service", "incident-service"] {
        for gauge in [
            "assurance_db_pool_connections",
            "assurance_db_pool_idle_connections",
            "assurance_db_pool_max_connections",
        ] {
            let series = format!("{gauge}{{database=\"{database}\"}}");
            assert!(after.contains_key(&series), "{series}");
        }
        assert!(
            value(
                &after,
                &format!("assurance_db_pool_max_connections{{database=\"{database}\"}}")
            ) >= 1.0
        );
    }
    for service in ["risk-service", "incident-service"] {
        for state in ["pending", "dead"] {
            let series =
                format!("assurance_outbox_events{{service=\"{service}\",state=\"{state}\"}}");
            assert!(after.contains_key(&series), "{series}");
        }
        let series =
            format!("assurance_outbox_oldest_pending_age_seconds{{service=\"{service}\"}}");
        assert!(after.contains_key(&series), "{series}");
    }
    // No principal, id or raw path ever becomes a label.
    for series in after.keys() {
        assert!(
            !series.contains("@example.com") && !series.contains("risks/"),
            "{series}"
        );
    }
    drop(watch);
    gw.stop().await;
}

async fn a_forwarding_gateway_and_its_services_expose_metrics(backend: Backend) {
    let db = TestDb::new(backend).await;
    let risk = risk_service(&db, Methodology::Standard).await;
    let incidents = incident_service(&db).await;
    let gw = forwarding_gateway(&db, risk.grpc_addr, incidents.grpc_addr).await;
    let before = scrape(gw.http_addr).await;

    let mut request = Request::new(pb::ListRisksRequest::default());
    request
        .metadata_mut()
        .insert("x-request-id", "forwarded-1".parse().expect("ascii"));
    let answer = gw.risks().list_risks(request).await.expect("list");
    assert_eq!(
        answer.metadata().get("x-request-id").expect("echoed"),
        "forwarded-1"
    );
    let missing = gw
        .risks()
        .get_risk(missing_risk())
        .await
        .expect_err("no such risk");
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.metadata().get("x-request-id").is_some());

    // The id the gateway made for a call without one reaches the service's handler (its
    // audit record carries it) and comes back to the caller.
    let created = gw
        .org()
        .create_business_unit(pb::CreateBusinessUnitRequest {
            business_unit_id: "observed".into(),
            business_unit: Some(pb::BusinessUnit {
                display_name: "Observed".into(),
                owner: "cio@example.com".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create through the gateway");
    let id = created
        .metadata()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("a request id")
        .to_string();
    assert_eq!(
        uuid::Uuid::parse_str(&id)
            .expect("a UUID")
            .get_version_num(),
        7
    );
    let audited = audit_trail(&risk, &format!("request_id = \"{id}\"")).await;
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0].request_id, id);

    // The call went through the gateway and risk-service: each counts it.
    let after = scrape(gw.http_addr).await;
    let ok = calls(LIST_RISKS, "OK");
    assert!(
        value(&after, &ok) >= value(&before, &ok) + 2.0,
        "{ok}: {} then {}",
        value(&before, &ok),
        value(&after, &ok)
    );
    assert!(after.contains_key("assurance_db_pool_connections{database=\"gateway\"}"));
    for (app, database) in [(&risk, "risk-service"), (&incidents, "incident-service")] {
        let samples = eventually("the service's outbox gauges", || async {
            let s = scrape(app.http_addr).await;
            let series =
                format!("assurance_outbox_events{{service=\"{database}\",state=\"pending\"}}");
            if s.contains_key(&series) {
                Ok(s)
            } else {
                Err(format!("no {series}"))
            }
        })
        .await;
        let pool = format!("assurance_db_pool_connections{{database=\"{database}\"}}");
        assert!(samples.contains_key(&pool), "{pool}");
        assert!(samples.contains_key(&calls(GET_RISK, "NOT_FOUND")));
    }
    gw.stop().await;
    risk.stop().await;
    incidents.stop().await;
}

async fn the_tracker_sync_reports_its_lag_links_and_errors(backend: Backend) {
    use assurance_proto::gateway::v1::TrackerLinkState as S;
    use assurance_tests::github_mock::Fault;

    let s = SyncApp::start(backend).await;
    let unavailable =
        "assurance_tracker_sync_errors_total{tracker=\"github\",kind=\"unavailable\"}";
    let before = scrape(s.app.http_addr).await;
    let first = s.item("exchange-online", "Synced before the outage").await;
    s.link_in(&first.name, S::Synced).await;
    s.github.fail_next(100_000, Fault::ServerError);
    s.item("exchange-online", "Queued during the outage").await;
    let after = eventually("the outage counted", || async {
        let now = scrape(s.app.http_addr).await;
        // Gauges only for presence: other tests' gateways name a tracker `github` too.
        if value(&now, unavailable) > value(&before, unavailable)
            && now.contains_key("assurance_tracker_links{tracker=\"github\",state=\"synced\"}")
        {
            Ok(now)
        } else {
            Err(format!("{} unavailable", value(&now, unavailable)))
        }
    })
    .await;
    assert!(after.contains_key("assurance_tracker_sync_lag_seconds{tracker=\"github\"}"));
    for state in ["pending", "creating", "synced", "failed", "broken"] {
        let series = format!("assurance_tracker_links{{tracker=\"github\",state=\"{state}\"}}");
        assert!(after.contains_key(&series), "{series}");
    }
    s.github.clear_faults();
}
