//! Logging and tracing set-up: pretty or JSON lines through `tracing`, filtered by
//! `RUST_LOG`; with `--otlp-endpoint`, spans (INFO and above, whatever `RUST_LOG` says) are
//! also exported as OpenTelemetry traces over OTLP/gRPC in batches. See
//! [`crate::trace_context`] for the spans and the W3C `traceparent` propagation.

use std::sync::{
    Mutex,
    atomic::{AtomicBool, Ordering},
};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing_subscriber::{
    EnvFilter, Layer, filter::LevelFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The trace export flags, shared by every binary (`#[command(flatten)]` in its `Config`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OtlpArgs {
    /// OTLP/gRPC collector to export traces to, e.g. `http://127.0.0.1:4317`. Unset: no
    /// traces are exported (an incoming `traceparent` is still passed on by the gateway).
    #[arg(long, env = "ASSURANCE_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
}

impl OtlpArgs {
    /// The exporter of the binary `service` (its `service.name`), when an endpoint is set.
    pub fn exporter(&self, service: &'static str) -> Option<Otlp> {
        self.otlp_endpoint
            .as_ref()
            .filter(|e| !e.trim().is_empty())
            .map(|endpoint| Otlp {
                endpoint: endpoint.trim().to_string(),
                service,
            })
    }
}

/// Where traces go, and the `service.name` they carry.
#[derive(Debug, Clone)]
pub struct Otlp {
    pub endpoint: String,
    pub service: &'static str,
}

/// Whether spans are exported: the propagation and the database and delivery spans are
/// skipped (no cost) when not.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// The exporting provider, kept for the flush at shutdown.
static PROVIDER: Mutex<Option<SdkTracerProvider>> = Mutex::new(None);

/// Whether this process exports traces.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Installs the global subscriber once; later calls (tests) are no-ops. With `otlp`, spans
/// are also exported (call it inside the Tokio runtime: the exporter's channel runs there).
pub fn init(format: LogFormat, otlp: Option<Otlp>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let Some(otlp) = otlp else {
        // Logs only: the subscriber of old, with its global filter and no per-layer state.
        let builder = fmt().with_env_filter(filter).with_target(false);
        let _ = match format {
            LogFormat::Pretty => builder.try_init(),
            LogFormat::Json => builder.json().flatten_event(true).try_init(),
        };
        return;
    };
    let provider = match provider(&otlp) {
        Ok(provider) => provider,
        Err(e) => {
            // Traces are an aid, not a reason to refuse to serve: log and go on.
            init(format, None);
            tracing::error!(endpoint = %crate::db::redact_url(&otlp.endpoint), error = %e, "OTLP exporter not started; no traces are exported");
            return;
        }
    };
    let logs = match format {
        LogFormat::Pretty => fmt::layer().with_target(false).boxed(),
        LogFormat::Json => fmt::layer()
            .with_target(false)
            .json()
            .flatten_event(true)
            .boxed(),
    };
    let traces = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("assurance"))
        .with_threads(false)
        // The span macros' own file and module say nothing (they are all in trace_context);
        // the transaction span names its caller's file and line itself.
        .with_location(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        // Spans at INFO and above (RPCs, transactions, deliveries); never the transport's
        // own DEBUG/TRACE spans, which would include the exporter's calls.
        .with_filter(LevelFilter::INFO);
    let installed = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(traces)
        .try_init()
        .is_ok();
    if installed {
        if let Ok(mut slot) = PROVIDER.lock() {
            *slot = Some(provider);
        }
        ENABLED.store(true, Ordering::Relaxed);
        tracing::info!(endpoint = %crate::db::redact_url(&otlp.endpoint), service = otlp.service, "exporting traces over OTLP");
    }
}

fn provider(otlp: &Otlp) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(otlp.endpoint.clone())
        .build()
        .map_err(|e| e.to_string())?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(otlp.service).build())
        .build())
}

/// Exports the spans still queued and stops the exporter (the end of `main`). No-op when
/// traces are not exported.
pub async fn shutdown() {
    let provider = PROVIDER.lock().ok().and_then(|mut slot| slot.take());
    let Some(provider) = provider else {
        return;
    };
    ENABLED.store(false, Ordering::Relaxed);
    // The SDK's shutdown blocks until the last batch is sent (through this runtime).
    let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    if let Ok(Err(e)) = done {
        eprintln!("OTLP exporter shutdown: {e}");
    }
}
