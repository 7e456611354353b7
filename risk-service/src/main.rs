//! `risk-service`: serves `assurance.risk.v1` on its own port.

use std::process::ExitCode;

use assurance_runtime::{serve::Shutdown, telemetry};
use clap::Parser;
use risk_service::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    telemetry::init(config.log_format);
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    let result = match risk_service::start(&config, shutdown).await {
        Ok(running) => {
            tracing::info!(grpc = %running.grpc_addr, http = %running.http_addr, "risk-service ready");
            running.wait().await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            tracing::info!("risk-service stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "risk-service failed");
            ExitCode::FAILURE
        }
    }
}
