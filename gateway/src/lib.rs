//! The Assurance gateway: one authenticated entry point for the Assurance APIs.
//!
//! `--embedded` hosts risk-service in this process (SQLite files in `--data-dir`), for a
//! laptop, a demo or a small team; otherwise the gateway forwards each API to its service
//! (`--risk-url`). Either way the same gRPC services, health and reflection are served on the
//! gateway's port.

pub mod config;
mod forward;

use std::{sync::Arc, time::Duration};

use assurance_runtime::serve::{self, ReadyCheck, Running, Shutdown};
use risk_service::RiskServer;
use tokio::net::TcpListener;
use tonic::{service::Routes, transport::Endpoint};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::config::Config;

/// The APIs served on the gateway's port.
pub const SERVICE_NAMES: &[&str] = risk_service::SERVICE_NAMES;

/// Builds the routes and readiness check of the configured mode.
pub async fn routes(config: &Config) -> Result<(Routes, ReadyCheck), String> {
    if config.embedded {
        let settings = config.risk_settings()?;
        tracing::info!(data_dir = %config.data_dir.display(), risk = %settings, "embedded mode");
        let risk = RiskServer::open(&settings)
            .await
            .map_err(|e| format!("risk database: {e}"))?;
        Ok((risk.add_to(Routes::default()), risk.ready_check()))
    } else {
        tracing::info!(risk_url = %config.risk_url, "forwarding mode");
        let channel = Endpoint::from_shared(config.risk_url.clone())
            .map_err(|e| format!("--risk-url {}: {e}", config.risk_url))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .connect_lazy();
        let upstream = forward::Upstream::new("risk-service", channel.clone());
        let routes = Routes::from(forward::routes(risk_service::SERVICE_NAMES, upstream));
        let ready: ReadyCheck = Arc::new(move || {
            let mut health = HealthClient::new(channel.clone());
            Box::pin(async move {
                let request = tonic::Request::new(HealthCheckRequest {
                    service: String::new(),
                });
                match health.check(request).await {
                    Ok(r) if r.get_ref().status == 1 => Ok(()),
                    Ok(_) => Err("risk-service is not serving".into()),
                    Err(e) => Err(format!("risk-service unreachable: {}", e.code())),
                }
            })
        });
        Ok((routes, ready))
    }
}

/// Serves the gateway on the configured addresses (port 0 picks a free one) until `shutdown`.
pub async fn start(config: &Config, shutdown: Shutdown) -> Result<Running, String> {
    let (routes, ready) = routes(config).await?;
    let grpc = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let http = TcpListener::bind(config.http_listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.http_listen))?;
    serve::spawn(grpc, http, routes, SERVICE_NAMES, ready, shutdown).map_err(|e| e.to_string())
}
