//! The start-up phase of a server: both listeners are bound and the HTTP probes answer
//! (`/healthz` 200, `/readyz` 503 [`STARTING`]) while the server opens and migrates its
//! databases — which can take a while when another replica holds the migration lock — then
//! [`Starting::serve`] serves gRPC and turns `/readyz` to the server's own check.

use std::sync::{Arc, OnceLock};

use axum::{Router, extract::Request, response::IntoResponse};
use tokio::{net::TcpListener, task::JoinHandle};
use tonic::service::Routes;
use tower::ServiceExt;

use super::{
    DRAIN_TIMEOUT, Extras, ReadyCheck, ReadyNotes, Running, Security, Shutdown, serve_grpc,
    serve_http,
};
use crate::{limits::LimitSettings, observe::Sources};

/// Why `/readyz` answers 503 until [`Starting::serve`].
pub const STARTING: &str = "starting: migrating the database";

type ReadyFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

/// What the HTTP listener serves once the server is up.
struct Serving {
    ready: ReadyCheck,
    notes: Option<ReadyNotes>,
    routes: Router,
}

/// A server between binding its listeners and serving gRPC: the probes already answer, gRPC
/// connections wait in the listen backlog.
pub struct Starting {
    grpc: TcpListener,
    grpc_addr: std::net::SocketAddr,
    http_addr: std::net::SocketAddr,
    security: Security,
    shutdown: Shutdown,
    serving: Arc<OnceLock<Serving>>,
    /// What `/metrics` reads of the databases, once they are open.
    observe: Arc<OnceLock<Sources>>,
    http_task: JoinHandle<std::io::Result<()>>,
}

impl Starting {
    /// Binds `listen` (gRPC) and `http_listen` (probes) — port 0 picks a free one — and serves
    /// the probes at once, with `security`'s TLS and `limits`' HTTP timeouts.
    pub async fn bind(
        listen: std::net::SocketAddr,
        http_listen: std::net::SocketAddr,
        security: Security,
        limits: LimitSettings,
        shutdown: Shutdown,
    ) -> Result<Starting, String> {
        let grpc = TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let http = TcpListener::bind(http_listen)
            .await
            .map_err(|e| format!("cannot listen on {http_listen}: {e}"))?;
        let grpc_addr = grpc.local_addr().map_err(|e| e.to_string())?;
        let http_addr = http.local_addr().map_err(|e| e.to_string())?;
        let serving: Arc<OnceLock<Serving>> = Arc::default();
        let ready: ReadyCheck = {
            let serving = serving.clone();
            Arc::new(move || match serving.get() {
                Some(s) => (s.ready)(),
                None => {
                    let starting: ReadyFuture = Box::pin(async { Err(STARTING.to_string()) });
                    starting
                }
            })
        };
        let notes: ReadyNotes = {
            let serving = serving.clone();
            Arc::new(move || {
                serving
                    .get()
                    .and_then(|s| s.notes.as_ref())
                    .map(|n| n())
                    .unwrap_or_default()
            })
        };
        // The server's own HTTP routes (the gateway's webhooks) exist once it is up.
        let routes = {
            let serving = serving.clone();
            Router::new().fallback(move |request: Request| {
                let routes = serving.get().map(|s| s.routes.clone());
                async move {
                    match routes {
                        Some(routes) => match routes.oneshot(request).await {
                            Ok(response) => response,
                            Err(never) => match never {},
                        },
                        None => (axum::http::StatusCode::NOT_FOUND, "starting\n").into_response(),
                    }
                }
            })
        };
        let observe: Arc<OnceLock<Sources>> = Arc::default();
        let http_task = tokio::spawn(serve_http(
            http,
            ready,
            Extras {
                routes,
                notes: Some(notes),
                limits,
                observe: Sources::later(observe.clone()),
            },
            security.tls.clone(),
            shutdown.clone(),
        ));
        tracing::info!(grpc = %grpc_addr, http = %http_addr, "listening; starting up");
        Ok(Starting {
            grpc,
            grpc_addr,
            http_addr,
            security,
            shutdown,
            serving,
            observe,
            http_task,
        })
    }

    pub fn grpc_addr(&self) -> std::net::SocketAddr {
        self.grpc_addr
    }

    pub fn http_addr(&self) -> std::net::SocketAddr {
        self.http_addr
    }

    /// The listeners' security (the gateway's long streams check callers with its auth layer).
    pub fn security(&self) -> &Security {
        &self.security
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Runs a start-up `step` (opening and migrating the databases), given up when shutdown is
    /// triggered meanwhile: a signal while waiting for the migration lock ends the process.
    pub async fn step<T>(
        &self,
        step: impl std::future::Future<Output = Result<T, String>>,
    ) -> Result<T, String> {
        tokio::select! {
            done = step => done,
            _ = self.shutdown.wait() => Err("shut down while starting".to_string()),
        }
    }

    /// Serves gRPC (`routes` plus health and reflection, with `extras.limits`) in the
    /// background; `/readyz` now answers `ready` with `extras.notes`, and the HTTP listener
    /// serves `extras.routes`.
    pub fn serve(
        self,
        routes: Routes,
        extras: Extras,
        services: &'static [&'static str],
        ready: ReadyCheck,
    ) -> Running {
        let Starting {
            grpc,
            grpc_addr,
            http_addr,
            security,
            shutdown,
            serving,
            observe,
            http_task,
        } = self;
        let limits = extras.limits.clone();
        extras.observe.spawn_outbox_refresh(shutdown.clone());
        let _ = observe.set(extras.observe);
        // Set once, here: `self` is consumed.
        let _ = serving.set(Serving {
            ready,
            notes: extras.notes,
            routes: extras.routes,
        });
        let task = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let grpc_result =
                    serve_grpc(grpc, routes, services, security, limits, shutdown.clone()).await;
                // Whatever ended the gRPC server ends the probes too.
                shutdown.trigger();
                let http_result = http_task.await;
                grpc_result.map_err(|e| format!("gRPC server: {e}"))?;
                http_result
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("HTTP server: {e}"))
            })
        };
        Running {
            grpc_addr,
            http_addr,
            shutdown,
            task,
        }
    }

    /// Start-up failed with `error`: stops the probes (and everything else on this shutdown
    /// switch) and returns `error`, for the process to end with.
    pub async fn fail(self, error: String) -> String {
        self.shutdown.trigger();
        drop(self.grpc);
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, self.http_task).await;
        error
    }
}
