//! Observability (issue #17): Prometheus metrics, rendered on `/metrics` of the HTTP (probe)
//! listener, and the access log (one `tracing` event per call, target `access`).
//!
//! - One recorder per process ([`metrics_exporter_prometheus`]), installed on first use; every
//!   server of the process (tests run many) records into it.
//! - Labels are bounded: a method label comes from the route table (the contract's methods,
//!   health and reflection; any other path is `unknown`), a code from the 17 gRPC codes, a
//!   database, outbox or tracker from the configuration. Never a principal or an id.
//! - Handles are resolved once (per method, per code, per reason) and cached, so a call records
//!   with a few atomic operations and no registry lookup.
//!
//! Every metric is listed in docs/operations.md#metrics.

pub mod layer;
pub mod sources;

use std::{
    collections::HashMap,
    sync::{LazyLock, OnceLock},
    time::Duration,
};

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use prost::Message;

pub use layer::{ObserveLayer, PrincipalSlot};
pub use sources::Sources;

/// Calls by method and gRPC code (counter).
pub const REQUESTS: &str = "assurance_grpc_requests_total";
/// Call duration in seconds until the gRPC status is sent (histogram).
pub const DURATION: &str = "assurance_grpc_request_duration_seconds";
/// Unary calls in flight (gauge).
pub const IN_FLIGHT: &str = "assurance_grpc_in_flight_calls";
/// Streaming calls open (gauge).
pub const OPEN_STREAMS: &str = "assurance_grpc_open_streams";
/// Calls refused by authentication or the role matrix, by reason (counter).
pub const AUTH_FAILURES: &str = "assurance_auth_failures_total";
/// Calls refused by the limits, by reason (counter).
pub const LIMITED: &str = "assurance_limit_refusals_total";
/// Connections of a database pool: open, idle, and the most it may open (gauges).
pub const POOL_SIZE: &str = "assurance_db_pool_connections";
pub const POOL_IDLE: &str = "assurance_db_pool_idle_connections";
pub const POOL_MAX: &str = "assurance_db_pool_max_connections";
/// Outbox events by service and state (`pending`: the backlog, `dead`: dead letters) (gauge).
pub const OUTBOX_EVENTS: &str = "assurance_outbox_events";
/// Age of the oldest pending outbox event, seconds (gauge; 0 when none).
pub const OUTBOX_OLDEST: &str = "assurance_outbox_oldest_pending_age_seconds";
/// Failed refreshes of the outbox gauges (counter).
pub const OUTBOX_REFRESH_ERRORS: &str = "assurance_outbox_gauge_refresh_errors_total";
/// risk-service's read cache: lookups that hit and missed (counters).
pub const CACHE_HITS: &str = "assurance_risk_cache_hits_total";
pub const CACHE_MISSES: &str = "assurance_risk_cache_misses_total";
/// risk-service's group commit: writes per committed batch (histogram).
pub const BATCH_SIZE: &str = "assurance_risk_write_batch_size";
/// Tracker sync: how long the oldest due link has waited, seconds (gauge).
pub const TRACKER_LAG: &str = "assurance_tracker_sync_lag_seconds";
/// Tracker sync: links by tracker and state (gauge).
pub const TRACKER_LINKS: &str = "assurance_tracker_links";
/// Tracker sync: failures by tracker and kind (counter).
pub const TRACKER_ERRORS: &str = "assurance_tracker_sync_errors_total";

/// Latency buckets (seconds): sub-millisecond reads up to the 30 s request timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Group-commit batch sizes (the writer takes at most a few hundred jobs at once).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// The process's recorder, installed on first use (`None` when another recorder was installed
/// first: its owner renders then).
static HANDLE: LazyLock<Option<PrometheusHandle>> = LazyLock::new(install);

fn install() -> Option<PrometheusHandle> {
    let built = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(DURATION.into()), LATENCY_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(BATCH_SIZE.into()), BATCH_BUCKETS))
        .map_err(|e| e.to_string())
        .and_then(|b| b.install_recorder().map_err(|e| e.to_string()));
    let handle = match built {
        Ok(handle) => handle,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot install the Prometheus recorder; /metrics stays empty");
            return None;
        }
    };
    // Histograms buffer their samples until drained: drain them even when nobody scrapes.
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "metrics: no upkeep thread; histograms drain on scrape only");
    }
    describe();
    Some(handle)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(REQUESTS, "gRPC calls by method and status code");
    describe_histogram!(
        DURATION,
        metrics::Unit::Seconds,
        "gRPC call duration until its status is sent"
    );
    describe_gauge!(IN_FLIGHT, "unary gRPC calls in flight");
    describe_gauge!(OPEN_STREAMS, "streaming gRPC calls open");
    describe_counter!(
        AUTH_FAILURES,
        "calls refused by authentication or the role matrix, by reason"
    );
    describe_counter!(
        LIMITED,
        "calls refused by the resource limits (load shedding, rate limit, stream caps)"
    );
    describe_gauge!(POOL_SIZE, "open connections of a database pool");
    describe_gauge!(POOL_IDLE, "idle connections of a database pool");
    describe_gauge!(POOL_MAX, "the most connections a database pool may open");
    describe_gauge!(
        OUTBOX_EVENTS,
        "outbox events by state: pending (the backlog) and dead (dead letters)"
    );
    describe_gauge!(
        OUTBOX_OLDEST,
        metrics::Unit::Seconds,
        "age of the oldest pending outbox event"
    );
    describe_counter!(
        OUTBOX_REFRESH_ERRORS,
        "failed refreshes of the outbox gauges"
    );
    describe_counter!(CACHE_HITS, "risk reads answered by the read cache");
    describe_counter!(CACHE_MISSES, "risk reads the read cache could not answer");
    describe_histogram!(BATCH_SIZE, "writes committed together by the group commit");
    describe_gauge!(
        TRACKER_LAG,
        metrics::Unit::Seconds,
        "how long the oldest due tracker link has waited"
    );
    describe_gauge!(TRACKER_LINKS, "tracker links by state");
    describe_counter!(TRACKER_ERRORS, "tracker sync failures by kind");
}

/// Installs the recorder if it is not yet; every metric handle is taken after this.
pub fn init() {
    LazyLock::force(&HANDLE);
}

/// The metrics of the process in the Prometheus text exposition format.
pub fn render() -> String {
    HANDLE
        .as_ref()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// The gRPC status codes, by number, as Prometheus label values.
pub const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// One method of the route table and its metric handles (taken on its first call).
pub struct Method {
    /// `assurance.risk.v1.RiskService/GetRisk`: the label, and the access log's method.
    pub name: String,
    /// Whether either side streams: counted in the open-streams gauge, not in flight.
    pub streaming: bool,
    handles: OnceLock<Handles>,
}

struct Handles {
    duration: Histogram,
    in_flight: Gauge,
    open_streams: Gauge,
    codes: [OnceLock<Counter>; 17],
}

impl Method {
    fn new(name: String, streaming: bool) -> Method {
        Method {
            name,
            streaming,
            handles: OnceLock::new(),
        }
    }

    fn handles(&self) -> &Handles {
        self.handles.get_or_init(|| {
            init();
            let method = self.name.clone();
            Handles {
                duration: metrics::histogram!(DURATION, "method" => method.clone()),
                in_flight: metrics::gauge!(IN_FLIGHT, "method" => method.clone()),
                open_streams: metrics::gauge!(OPEN_STREAMS, "method" => method),
                codes: Default::default(),
            }
        })
    }

    /// A call started.
    pub(crate) fn started(&self) {
        let h = self.handles();
        if self.streaming {
            h.open_streams.increment(1.0);
        } else {
            h.in_flight.increment(1.0);
        }
    }

    /// A call started earlier ended with `code` after `elapsed`.
    pub(crate) fn finished(&self, code: usize, elapsed: Duration) {
        let h = self.handles();
        if self.streaming {
            h.open_streams.decrement(1.0);
        } else {
            h.in_flight.decrement(1.0);
        }
        h.duration.record(elapsed.as_secs_f64());
        let code = code.min(CODES.len() - 1);
        h.codes[code]
            .get_or_init(|| {
                metrics::counter!(REQUESTS, "method" => self.name.clone(), "code" => CODES[code])
            })
            .increment(1);
    }
}

/// The route table: every method of the contract, health and reflection, by path.
static METHODS: LazyLock<HashMap<Box<str>, Method>> = LazyLock::new(|| {
    let mut methods = HashMap::new();
    let mut add = |name: String, streaming: bool| {
        methods.insert(
            format!("/{name}").into_boxed_str(),
            Method::new(name, streaming),
        );
    };
    if let Ok(set) = prost_types::FileDescriptorSet::decode(assurance_proto::FILE_DESCRIPTOR_SET) {
        for file in set.file {
            for service in &file.service {
                for method in &service.method {
                    add(
                        format!("{}.{}/{}", file.package(), service.name(), method.name()),
                        method.server_streaming() || method.client_streaming(),
                    );
                }
            }
        }
    }
    add("grpc.health.v1.Health/Check".into(), false);
    add("grpc.health.v1.Health/Watch".into(), true);
    for version in ["v1", "v1alpha"] {
        add(
            format!("grpc.reflection.{version}.ServerReflection/ServerReflectionInfo"),
            true,
        );
    }
    methods
});

/// Where every path outside the route table is counted.
static UNKNOWN: LazyLock<Method> = LazyLock::new(|| Method::new("unknown".into(), false));

/// The method of `path` in the route table, or the one `unknown` method.
pub fn method(path: &str) -> &'static Method {
    METHODS.get(path).unwrap_or_else(|| &UNKNOWN)
}

/// A cached counter with fixed labels.
macro_rules! cached_counter {
    ($cell:ident, $name:expr $(, $k:literal => $v:expr)*) => {{
        static $cell: OnceLock<Counter> = OnceLock::new();
        $cell.get_or_init(|| {
            init();
            metrics::counter!($name $(, $k => $v)*)
        })
    }};
}

/// Why a call was refused at the edge (the `reason` label of [`AUTH_FAILURES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `authorization` metadata.
    MissingCredentials,
    /// Not `Bearer <token>`, not ASCII, or an impossible token.
    MalformedCredentials,
    /// A token no tokens file grants (or revoked).
    UnknownToken,
    /// A token or JWT past its expiry.
    Expired,
    /// A JWT that does not verify (signature, key, claims, issuer, audience).
    InvalidJwt,
    /// Authenticated, but the role matrix refuses the method (or an unknown method).
    PermissionDenied,
    /// `x-on-behalf-of` sent by a non-system principal, or unusable.
    OnBehalfOf,
}

impl AuthFailure {
    pub const ALL: [AuthFailure; 7] = [
        AuthFailure::MissingCredentials,
        AuthFailure::MalformedCredentials,
        AuthFailure::UnknownToken,
        AuthFailure::Expired,
        AuthFailure::InvalidJwt,
        AuthFailure::PermissionDenied,
        AuthFailure::OnBehalfOf,
    ];

    pub fn label(self) -> &'static str {
        match self {
            AuthFailure::MissingCredentials => "missing_credentials",
            AuthFailure::MalformedCredentials => "malformed_credentials",
            AuthFailure::UnknownToken => "unknown_token",
            AuthFailure::Expired => "expired",
            AuthFailure::InvalidJwt => "invalid_jwt",
            AuthFailure::PermissionDenied => "permission_denied",
            AuthFailure::OnBehalfOf => "on_behalf_of",
        }
    }

    /// Counts one refusal.
    pub fn count(self) {
        static COUNTERS: OnceLock<Vec<Counter>> = OnceLock::new();
        let counters = COUNTERS.get_or_init(|| {
            init();
            AuthFailure::ALL
                .iter()
                .map(|r| metrics::counter!(AUTH_FAILURES, "reason" => r.label()))
                .collect()
        });
        if let Some(c) = counters.get(self as usize) {
            c.increment(1);
        }
    }
}

/// Why the limits refused a call (the `reason` label of [`LIMITED`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitRefusal {
    /// Load shed: the process had `max_in_flight` unary calls already.
    Overloaded,
    /// The principal's rate limit.
    RateLimited,
    /// The principal holds as many streams as it may.
    StreamsPerPrincipal,
    /// The process holds as many streams as it may.
    StreamsPerProcess,
}

impl LimitRefusal {
    const ALL: [LimitRefusal; 4] = [
        LimitRefusal::Overloaded,
        LimitRefusal::RateLimited,
        LimitRefusal::StreamsPerPrincipal,
        LimitRefusal::StreamsPerProcess,
    ];

    pub fn label(self) -> &'static str {
        match self {
            LimitRefusal::Overloaded => "overloaded",
            LimitRefusal::RateLimited => "rate_limited",
            LimitRefusal::StreamsPerPrincipal => "streams_per_principal",
            LimitRefusal::StreamsPerProcess => "streams_per_process",
        }
    }

    /// Counts one refusal.
    pub fn count(self) {
        static COUNTERS: OnceLock<Vec<Counter>> = OnceLock::new();
        let counters = COUNTERS.get_or_init(|| {
            init();
            LimitRefusal::ALL
                .iter()
                .map(|r| metrics::counter!(LIMITED, "reason" => r.label()))
                .collect()
        });
        if let Some(c) = counters.get(self as usize) {
            c.increment(1);
        }
    }
}

/// risk-service's read cache answered a lookup (`hit`) or could not.
pub fn risk_cache_lookup(hit: bool) {
    if hit {
        cached_counter!(HITS, CACHE_HITS).increment(1);
    } else {
        cached_counter!(MISSES, CACHE_MISSES).increment(1);
    }
}

/// risk-service's group commit committed `size` writes together.
pub fn write_batch(size: usize) {
    static HISTOGRAM: OnceLock<Histogram> = OnceLock::new();
    HISTOGRAM
        .get_or_init(|| {
            init();
            metrics::histogram!(BATCH_SIZE)
        })
        .record(size as f64);
}

/// The tracker sync of `tracker` failed (`kind`: a bounded word, e.g. `unavailable`).
pub fn tracker_error(tracker: &str, kind: &'static str) {
    init();
    metrics::counter!(TRACKER_ERRORS, "tracker" => tracker.to_string(), "kind" => kind)
        .increment(1);
}

/// How long `tracker`'s oldest due link has waited.
pub fn tracker_lag(tracker: &str, lag: Duration) {
    init();
    metrics::gauge!(TRACKER_LAG, "tracker" => tracker.to_string()).set(lag.as_secs_f64());
}

/// How many links of `tracker` are in `state`.
pub fn tracker_links(tracker: &str, state: &'static str, count: i64) {
    init();
    metrics::gauge!(TRACKER_LINKS, "tracker" => tracker.to_string(), "state" => state)
        .set(count as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_table_knows_the_contract_and_collapses_the_rest() {
        let get = method("/assurance.risk.v1.RiskService/GetRisk");
        assert_eq!(get.name, "assurance.risk.v1.RiskService/GetRisk");
        assert!(!get.streaming);
        assert!(method("/assurance.incident.v1.IncidentService/WatchIncident").streaming);
        assert!(method("/grpc.health.v1.Health/Watch").streaming);
        assert_eq!(method("/x.Y/Z").name, "unknown");
        assert_eq!(
            method("/assurance.risk.v1.RiskService/GetRisk/x").name,
            "unknown"
        );
    }

    #[test]
    fn recorded_calls_render_as_counters_and_histograms() {
        let m = method("/assurance.risk.v1.RiskService/ListRisks");
        m.started();
        m.finished(5, Duration::from_millis(3));
        AuthFailure::Expired.count();
        let text = render();
        assert!(
            text.contains(
                "assurance_grpc_requests_total{method=\"assurance.risk.v1.RiskService/ListRisks\",code=\"NOT_FOUND\"}"
            ),
            "{text}"
        );
        assert!(
            text.contains("assurance_grpc_request_duration_seconds_bucket{method=\"assurance.risk.v1.RiskService/ListRisks\",le=\"0.005\"}"),
            "{text}"
        );
        assert!(
            text.contains("assurance_auth_failures_total{reason=\"expired\"}"),
            "{text}"
        );
    }
}
