//! Server processes for benchmarks and process-level tests.

use std::{
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use assurance_runtime::auth::client::Bearer;
use clap::Parser;
use sea_orm::{ConnectionTrait, Database};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// A free loopback address (bound then released).
pub fn free_addr() -> Result<SocketAddr, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())
}

/// Starts a risk-service binary (or `assurance-bench serve`) on `addr` over `database_url`.
pub fn spawn_binary(
    bin: &Path,
    extra: &[String],
    database_url: &str,
    addr: SocketAddr,
) -> Result<Child, String> {
    let http = free_addr()?;
    let mut cmd = Command::new(bin);
    if bin
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("assurance-bench"))
    {
        cmd.arg("serve");
    }
    cmd.args([
        "--listen",
        &addr.to_string(),
        "--http-listen",
        &http.to_string(),
    ])
    .args(["--database-url", database_url, "--log-format", "json"])
    // The rate limit runs (its cost is measured) but never refuses a load generator.
    .args(["--rate-limit", "1000000000", "--rate-burst", "1000000000"])
    .args(extra)
    .env(
        "RUST_LOG",
        std::env::var("SERVER_LOG").unwrap_or_else(|_| "warn".into()),
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    if !extra
        .iter()
        .any(|a| a.starts_with("--insecure-dev") || a.starts_with("--tokens-file"))
    {
        cmd.arg("--tokens-file").arg(&crate::auth::SHARED.path);
    }
    cmd.spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))
}

/// A channel to `addr` that sends the shared admin token with every call.
pub type AuthChannel = Bearer<Channel>;

/// A channel to the server at `addr`, as the shared admin (see [`crate::auth::SHARED`]).
pub async fn connect(addr: SocketAddr) -> Result<AuthChannel, String> {
    Bearer::new(plain_channel(addr).await?, crate::auth::SHARED.admin())
}

/// A channel to the server at `addr` without credentials.
pub async fn plain_channel(addr: SocketAddr) -> Result<Channel, String> {
    Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| format!("connect {addr}: {e}"))
}

/// Waits until the server at `addr` reports SERVING.
pub async fn wait_serving(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(channel) = plain_channel(addr).await {
            let status = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|r| r.into_inner().status);
            if matches!(status, Ok(1)) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("server at {addr} did not become ready"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The flag of `assurance-bench serve` (not of the risk-service binary) that serves without
/// the resource limits: the baseline of `assurance-bench limits`.
pub const BASELINE_WITHOUT_LIMITS: &str = "--baseline-without-limits";

/// Hosts risk-service in this process, parsing `args` as the risk-service binary does (plus
/// [`BASELINE_WITHOUT_LIMITS`]).
pub async fn serve_in_process(mut args: Vec<String>) -> Result<(), String> {
    let baseline = args.iter().any(|a| a == BASELINE_WITHOUT_LIMITS);
    args.retain(|a| a != BASELINE_WITHOUT_LIMITS);
    let mut config = risk_service::config::Config::try_parse_from(
        std::iter::once("risk-service".to_string()).chain(args),
    )
    .map_err(|e| e.to_string())?;
    config.limits.baseline_without_limits = baseline;
    assurance_runtime::telemetry::init(config.log_format, config.otlp.exporter("risk-service"));
    let shutdown = assurance_runtime::serve::Shutdown::new();
    shutdown.trigger_on_signals();
    let result = risk_service::start(&config, shutdown).await?.wait().await;
    // As the binary's `run_binary`: queued spans leave before the process does.
    assurance_runtime::telemetry::shutdown().await;
    result
}

/// Hosts incident-service in this process, parsing `args` as the incident-service binary does.
pub async fn serve_incident_in_process(args: Vec<String>) -> Result<(), String> {
    let config = incident_service::config::Config::try_parse_from(
        std::iter::once("incident-service".to_string()).chain(args),
    )
    .map_err(|e| e.to_string())?;
    assurance_runtime::telemetry::init(config.log_format, config.otlp.exporter("incident-service"));
    let shutdown = assurance_runtime::serve::Shutdown::new();
    shutdown.trigger_on_signals();
    let result = incident_service::start(&config, shutdown)
        .await?
        .wait()
        .await;
    assurance_runtime::telemetry::shutdown().await;
    result
}

/// Hosts the gateway in this process, parsing `args` as the gateway binary does.
pub async fn serve_gateway_in_process(args: Vec<String>) -> Result<(), String> {
    let config =
        gateway::config::Config::try_parse_from(std::iter::once("gateway".to_string()).chain(args))
            .map_err(|e| e.to_string())?;
    assurance_runtime::telemetry::init(config.log_format, config.otlp.exporter("gateway"));
    let shutdown = assurance_runtime::serve::Shutdown::new();
    shutdown.trigger_on_signals();
    let result = gateway::start(&config, shutdown).await?.wait().await;
    assurance_runtime::telemetry::shutdown().await;
    result
}

/// A fresh PostgreSQL database on the server of `admin_url`.
pub struct PgDatabase {
    pub url: String,
    admin: String,
    name: String,
}

impl PgDatabase {
    pub async fn create(admin_url: &str) -> Result<Self, String> {
        let name = format!("assurance_b_{}", uuid::Uuid::now_v7().simple());
        let conn = Database::connect(admin_url)
            .await
            .map_err(|e| format!("{admin_url}: {e}"))?;
        conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .map_err(|e| e.to_string())?;
        conn.close().await.ok();
        Ok(PgDatabase {
            url: with_database(admin_url, &name),
            admin: admin_url.to_string(),
            name,
        })
    }

    pub async fn drop_now(self) {
        if let Ok(conn) = Database::connect(&self.admin).await {
            let _ = conn
                .execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.name
                ))
                .await;
            let _ = conn.close().await;
        }
    }
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Registers the business unit `bu` and its service `service` (display names from the ids) on
/// the risk-service at the other end of `channel`.
pub async fn register_org(channel: AuthChannel, bu: &str, service: &str) -> Result<(), String> {
    use assurance_proto::risk::v1::{
        self as pb, organization_service_client::OrganizationServiceClient,
    };
    let mut org = OrganizationServiceClient::new(channel);
    org.create_business_unit(pb::CreateBusinessUnitRequest {
        business_unit_id: bu.into(),
        business_unit: Some(pb::BusinessUnit {
            display_name: bu.into(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .map_err(|e| format!("business unit {bu}: {e}"))?;
    org.create_service(pb::CreateServiceRequest {
        service_id: service.into(),
        service: Some(pb::Service {
            business_unit: format!("businessUnits/{bu}"),
            display_name: service.into(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .map_err(|e| format!("service {service}: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_replacement() {
        assert_eq!(
            super::with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
