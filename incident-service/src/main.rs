//! `incident-service`: serves `assurance.incident.v1` on its own port.

use std::process::ExitCode;

use assurance_runtime::{serve, telemetry};
use clap::Parser;
use incident_service::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    telemetry::init(config.log_format, config.otlp.exporter("incident-service"));
    serve::run_binary("incident-service", |shutdown| {
        incident_service::start(&config, shutdown)
    })
    .await
}
