//! `gateway`: the Assurance entry point (`--embedded` runs every component in one process).

use std::process::ExitCode;

use assurance_runtime::{serve, telemetry};
use clap::Parser;
use gateway::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    telemetry::init(config.log_format, config.otlp.exporter("gateway"));
    serve::run_binary("gateway", |shutdown| gateway::start(&config, shutdown)).await
}
