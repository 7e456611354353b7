//! `gateway`: the Assurance entry point (`--embedded` runs every component in one process).

use std::process::ExitCode;

use assurance_runtime::{serve::Shutdown, telemetry};
use clap::Parser;
use gateway::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    telemetry::init(config.log_format);
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    let result = match gateway::start(&config, shutdown).await {
        Ok(running) => {
            tracing::info!(grpc = %running.grpc_addr, http = %running.http_addr, "gateway ready");
            running.wait().await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            tracing::info!("gateway stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "gateway failed");
            ExitCode::FAILURE
        }
    }
}
