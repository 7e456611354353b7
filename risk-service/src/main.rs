//! `risk-service`: serves `assurance.risk.v1` on its own port.

use std::process::ExitCode;

use assurance_runtime::{serve, telemetry};
use clap::Parser;
use risk_service::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    telemetry::init(config.log_format);
    serve::run_binary("risk-service", |shutdown| {
        risk_service::start(&config, shutdown)
    })
    .await
}
