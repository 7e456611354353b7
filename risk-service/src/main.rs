//! `risk-service`: serves `assurance.risk.v1` on its own port;
//! `risk-service import-controls FILE` loads a controls catalogue and exits.

use std::process::ExitCode;

use assurance_runtime::{serve, telemetry};
use clap::Parser;
use risk_service::config::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::ImportControls(args)) = &cli.command {
        return risk_service::controls_import::main(args).await;
    }
    let config = cli.config;
    telemetry::init(config.log_format, config.otlp.exporter("risk-service"));
    serve::run_binary("risk-service", |shutdown| {
        risk_service::start(&config, shutdown)
    })
    .await
}
