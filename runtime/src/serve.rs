//! Serving: the gRPC server with health and reflection, the HTTP probe listener, and
//! graceful shutdown on SIGINT/SIGTERM (health turns NOT_SERVING first, in-flight calls
//! finish, long streams are cut after a grace period).

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use axum::{Router, http::StatusCode, routing::get};
use tokio::{net::TcpListener, sync::watch};
use tokio_stream::StreamExt;
use tonic::{service::Routes, transport::server::TcpIncoming};
use tonic_health::{ServingStatus, server::HealthReporter};

mod starting;
pub use starting::{STARTING, Starting};

use crate::{
    auth::layer::AuthLayer,
    limits::{IdleTimeout, LimitLayer, LimitSettings, Limits},
    tls::ServerTls,
};

/// How a server's listeners check their callers: the auth layer every gRPC call passes, and
/// TLS (or mTLS) on the gRPC and HTTP listeners.
#[derive(Clone)]
pub struct Security {
    pub auth: AuthLayer,
    pub tls: Option<ServerTls>,
}

/// How long in-flight calls and streams get to finish once shutdown starts.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A shutdown switch shared by every listener of a process.
#[derive(Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(false).0),
        }
    }

    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once shutdown has been triggered.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Triggers this switch on SIGINT or SIGTERM.
    pub fn trigger_on_signals(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            signal().await;
            tracing::info!("shutdown signal received");
            this.trigger();
        });
    }
}

async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Serves `routes` plus gRPC health (the empty name and every entry of `services`) and
/// reflection of the Assurance descriptors on `listener` until `shutdown`.
pub async fn serve_grpc(
    listener: TcpListener,
    routes: Routes,
    services: &[&'static str],
    security: Security,
    limits: LimitSettings,
    shutdown: Shutdown,
) -> Result<(), tonic::transport::Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    set_all(&reporter, services, ServingStatus::Serving).await;
    let routes = routes
        .add_service(health)
        .add_service(reflection_v1())
        .add_service(reflection_v1alpha())
        .prepare();

    let signal = {
        let shutdown = shutdown.clone();
        let services = services.to_vec();
        async move {
            shutdown.wait().await;
            set_all(&reporter, &services, ServingStatus::NotServing).await;
        }
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &security.tls {
        builder = builder.tls_config(tls.grpc())?;
    }
    // The benchmark's baseline serves without the limits (`LimitSettings::enabled`).
    let enabled = limits.enabled;
    let idle = enabled.then_some(limits.idle_timeout);
    let layers = tower::ServiceBuilder::new()
        // Outermost: the request id, metrics and access log see every call as answered.
        .layer(crate::observe::ObserveLayer)
        // A body tonic cannot decode is the caller's error, not an internal one.
        .layer(crate::decode_errors::DecodeErrorLayer)
        .layer(security.auth.clone())
        .option_layer(
            enabled.then(|| LimitLayer::new(Limits::new(limits.clone()), security.auth.clone())),
        );
    if enabled {
        // Unary calls: a shorter grpc-timeout wins; streams are timed by their own guard.
        builder = builder.timeout(limits.request_timeout);
    }
    let server = builder
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .max_concurrent_streams(limits.max_streams_per_connection)
        // The call's span, a child of its `traceparent`; its status is recorded at the end.
        .trace_fn(crate::trace_context::server_span)
        .layer(crate::trace_context::GrpcStatusLayer)
        .layer(layers)
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            // The builder's tcp_nodelay applies only to listeners it binds itself.
            TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .map(move |tcp| {
                    tcp.map(|tcp| IdleTimeout::new(tcp, idle.unwrap_or(Duration::MAX)))
                }),
            signal,
        );
    tokio::pin!(server);
    let deadline = async {
        shutdown.wait().await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        res = &mut server => res,
        _ = deadline => {
            tracing::warn!("drain timeout: closing remaining connections");
            Ok(())
        }
    }
}

async fn set_all(reporter: &HealthReporter, services: &[&'static str], status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for name in services {
        reporter.set_service_status(*name, status).await;
    }
}

fn reflection_v1() -> tonic_reflection::server::v1::ServerReflectionServer<
    impl tonic_reflection::server::v1::ServerReflection,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(assurance_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the compiled-in descriptor sets are valid")
}

fn reflection_v1alpha() -> tonic_reflection::server::v1alpha::ServerReflectionServer<
    impl tonic_reflection::server::v1alpha::ServerReflection,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(assurance_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("the compiled-in descriptor sets are valid")
}

/// A readiness check: resolves to `Ok` when the process can serve.
pub type ReadyCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// Problems that leave the process serving but degraded (a tracker that failed its check):
/// listed in `/readyz`'s body, which stays 200.
pub type ReadyNotes = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// What a server adds to the defaults: routes of its own on the HTTP listener (the gateway's
/// webhooks), readiness notes, its resource limits, and what its `/metrics` reads (database
/// pools, outboxes).
#[derive(Default)]
pub struct Extras {
    pub routes: Router,
    pub notes: Option<ReadyNotes>,
    pub limits: LimitSettings,
    pub observe: crate::observe::Sources,
}

/// Serves the HTTP probes: `GET /healthz` (the process is up) and `GET /readyz` (it can
/// serve: `ready` passes and shutdown has not begun; its body lists the `extras` notes), the
/// Prometheus metrics on `GET /metrics` (unauthenticated: expose the listener only to the
/// monitoring network), with the `extras` routes.
pub async fn serve_http(
    listener: TcpListener,
    ready: ReadyCheck,
    extras: Extras,
    tls: Option<ServerTls>,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let probe_shutdown = shutdown.clone();
    let notes = extras.notes;
    let sources = extras.observe;
    let request_timeout = extras.limits.request_timeout;
    let connections = crate::tls::ConnectionLimits {
        header_timeout: extras.limits.header_timeout,
        idle_timeout: extras.limits.idle_timeout,
    };
    let app = extras
        .routes
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(move || {
                sources.refresh_pools();
                let text = crate::observe::render();
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        text,
                    )
                }
            }),
        )
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                let shutdown = probe_shutdown.clone();
                let notes = notes.as_ref().map(|n| n()).unwrap_or_default();
                async move {
                    if shutdown.is_triggered() {
                        return (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "shutting down\n".to_string(),
                        );
                    }
                    match ready().await {
                        Ok(()) if notes.is_empty() => (StatusCode::OK, "ready\n".to_string()),
                        Ok(()) => (
                            StatusCode::OK,
                            format!("ready, degraded:\n{}\n", notes.join("\n")),
                        ),
                        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")),
                    }
                }
            }),
        );
    // A request, its body included, gets the request timeout: a body that never arrives
    // does not hold its connection.
    let app = app.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| async move {
            match tokio::time::timeout(request_timeout, next.run(request)).await {
                Ok(response) => response,
                Err(_) => axum::response::IntoResponse::into_response((
                    StatusCode::REQUEST_TIMEOUT,
                    "the request took longer than the request timeout\n",
                )),
            }
        },
    ));
    crate::tls::serve_router(listener, app, tls.as_ref(), connections, async move {
        shutdown.wait().await
    })
    .await
}

/// A server running in the background: its bound addresses and a handle to stop it.
pub struct Running {
    pub grpc_addr: std::net::SocketAddr,
    pub http_addr: std::net::SocketAddr,
    pub shutdown: Shutdown,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Running {
    /// Waits until the server stops (after a signal or [`Running::stop`]).
    pub async fn wait(self) -> Result<(), String> {
        self.task.await.map_err(|e| e.to_string())?
    }

    /// Triggers shutdown and waits for it to finish.
    pub async fn stop(self) -> Result<(), String> {
        self.shutdown.trigger();
        self.wait().await
    }
}

/// The body of a server binary's `main`: starts it, waits for SIGINT/SIGTERM and the drain,
/// and turns the outcome into an exit code.
pub async fn run_binary<F>(name: &str, start: impl FnOnce(Shutdown) -> F) -> std::process::ExitCode
where
    F: Future<Output = Result<Running, String>>,
{
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    let result = match start(shutdown).await {
        Ok(running) => {
            tracing::info!(grpc = %running.grpc_addr, http = %running.http_addr, "{name} ready");
            running.wait().await
        }
        Err(e) => Err(e),
    };
    // Spans still queued for export leave before the process does.
    crate::telemetry::shutdown().await;
    match result {
        Ok(()) => {
            tracing::info!("{name} stopped");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "{name} failed");
            std::process::ExitCode::FAILURE
        }
    }
}
