//! Configuration of incident-service: flags with `INCIDENT_*` environment fallbacks.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use assurance_runtime::{db::redact_url, telemetry::LogFormat};
use clap::Parser;

use crate::domain::{preparation::Preparation, priority::SeverityRule};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "incident-service",
    mut_args = assurance_runtime::security::hide_env_value,
    version,
    about = "Assurance incident-service: the NIST SP 800-61 incident life cycle"
)]
pub struct Config {
    /// gRPC listen address.
    #[arg(long, env = "INCIDENT_LISTEN", default_value = "127.0.0.1:50062")]
    pub listen: SocketAddr,
    /// HTTP listen address for /healthz and /readyz.
    #[arg(long, env = "INCIDENT_HTTP_LISTEN", default_value = "127.0.0.1:8082")]
    pub http_listen: SocketAddr,
    /// Database URL: `sqlite://path/to/incident.db` (created when missing) or `postgres://…`.
    #[arg(
        long,
        env = "INCIDENT_DATABASE_URL",
        default_value = "sqlite://./data/incident.db?mode=rwc"
    )]
    pub database_url: String,
    /// Connections in the database pool.
    #[arg(long, env = "INCIDENT_DB_POOL_SIZE", default_value_t = 8)]
    pub db_pool_size: u32,
    /// TOML file replacing the severity rule (see docs/api-incident.md, "Prioritisation").
    #[arg(long, env = "INCIDENT_SEVERITY_RULE")]
    pub severity_rule: Option<PathBuf>,
    /// TOML file of response templates, contacts, notification rules and the notification
    /// deadline (see docs/configuration.md, "Preparation");
    /// default: the built-in federated template.
    #[arg(long, env = "INCIDENT_PREPARATION")]
    pub preparation: Option<PathBuf>,
    /// How many days before now an incident's occur_time and detect_time may lie (1 to
    /// 3652425); default: the preparation's `time_horizon_days`, else 3650 (ten years).
    #[arg(long, env = "INCIDENT_TIME_HORIZON_DAYS", value_parser = clap::value_parser!(i64).range(1..=crate::domain::preparation::MAX_HORIZON_DAYS))]
    pub incident_time_horizon_days: Option<i64>,
    /// Log format.
    #[arg(
        long,
        env = "INCIDENT_LOG_FORMAT",
        value_enum,
        default_value = "pretty"
    )]
    pub log_format: LogFormat,
    /// risk-service's gRPC URL: the relay delivers identified risks and realisations there,
    /// and `affected_services` are checked against its org registry. Without it those events
    /// stay queued and services are not checked.
    #[arg(long, env = "INCIDENT_RISK_URL")]
    pub risk_url: Option<String>,
    /// File holding the `system` token incident-service presents to risk-service.
    #[arg(long, env = "INCIDENT_SERVICE_TOKEN_FILE")]
    pub service_token_file: Option<PathBuf>,
    /// PEM CA risk-service's certificate must chain to (for an `https://` --risk-url).
    #[arg(long, env = "INCIDENT_RISK_TLS_CA")]
    pub risk_tls_ca: Option<PathBuf>,
    /// PEM client certificate presented to risk-service (when it requires mTLS).
    #[arg(long, env = "INCIDENT_RISK_TLS_CERT")]
    pub risk_tls_cert: Option<PathBuf>,
    /// PEM private key of --risk-tls-cert.
    #[arg(long, env = "INCIDENT_RISK_TLS_KEY")]
    pub risk_tls_key: Option<PathBuf>,
    #[command(flatten)]
    pub relay: Relay,
    #[command(flatten)]
    pub security: Security,
    #[command(flatten)]
    pub limits: Limits,
    #[command(flatten)]
    pub otlp: assurance_runtime::telemetry::OtlpArgs,
}

assurance_runtime::security_args!(Security, "INCIDENT_");
assurance_runtime::limit_args!(Limits, "INCIDENT_");
assurance_runtime::relay_args!(Relay, "INCIDENT_");

/// What incident-service needs to run, whichever binary hosts it.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub db_pool_size: u32,
    pub severity_rule: SeverityRule,
    pub preparation: Preparation,
}

impl Config {
    /// risk-service over gRPC, when `--risk-url` is set (with `--service-token-file`).
    pub fn remote_risks(
        &self,
    ) -> Result<Option<std::sync::Arc<dyn crate::relay::RiskRegister>>, String> {
        let Some(url) = &self.risk_url else {
            return Ok(None);
        };
        let path = self
            .service_token_file
            .as_deref()
            .ok_or("--risk-url needs --service-token-file (the system token for risk-service)")?;
        let token = assurance_runtime::auth::client::read_token_file(path)?;
        let mut endpoint = tonic::transport::Endpoint::from_shared(url.clone())
            .map_err(|e| format!("--risk-url {}: {e}", redact_url(url)))?
            .connect_timeout(std::time::Duration::from_secs(5))
            .tcp_nodelay(true);
        let tls = assurance_runtime::tls::ClientTlsFiles {
            ca: self.risk_tls_ca.clone(),
            cert: self.risk_tls_cert.clone(),
            key: self.risk_tls_key.clone(),
        }
        .grpc("")?;
        match tls {
            Some(tls) if url.starts_with("https://") => {
                endpoint = endpoint
                    .tls_config(tls)
                    .map_err(|e| format!("--risk-url TLS: {e}"))?;
            }
            Some(_) => return Err("--risk-tls-* need an https:// --risk-url".into()),
            None if url.starts_with("https://") => {
                return Err(format!(
                    "--risk-url {} is https: give --risk-tls-ca to trust its certificate",
                    redact_url(url)
                ));
            }
            None => {}
        }
        let channel = endpoint.connect_lazy();
        Ok(Some(std::sync::Arc::new(crate::relay::RemoteRisks::new(
            channel, &token,
        )?)))
    }

    pub fn settings(&self) -> Result<Settings, String> {
        Ok(Settings {
            database_url: self.database_url.clone(),
            db_pool_size: self.db_pool_size,
            severity_rule: load_rule(self.severity_rule.as_deref())?,
            preparation: with_horizon(
                Preparation::load(self.preparation.as_deref())?,
                self.incident_time_horizon_days,
            ),
        })
    }
}

impl std::fmt::Display for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "database={} pool={}",
            redact_url(&self.database_url),
            self.db_pool_size
        )
    }
}

/// `preparation` with its time horizon replaced by `days` (the flag), when given.
pub fn with_horizon(mut preparation: Preparation, days: Option<i64>) -> Preparation {
    if let Some(days) = days {
        preparation.time_horizon_days = days;
    }
    preparation
}

/// The default severity rule, or the one in `file`.
pub fn load_rule(file: Option<&Path>) -> Result<SeverityRule, String> {
    let Some(path) = file else {
        return Ok(SeverityRule::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read severity rule {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("invalid severity rule {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn help_never_prints_environment_values() {
        let shown = assurance_runtime::security::env_values_shown(&Config::command());
        assert_eq!(shown, Vec::<String>::new());
    }

    #[test]
    fn flags_parse_with_design_defaults() {
        Config::command().debug_assert();
        let c = Config::try_parse_from(["incident-service"]).expect("defaults parse");
        assert_eq!(c.listen.to_string(), "127.0.0.1:50062");
        assert_eq!(c.http_listen.to_string(), "127.0.0.1:8082");
        assert_eq!(
            c.settings().expect("settings").severity_rule,
            SeverityRule::default()
        );
        assert_eq!(
            c.settings()
                .expect("settings")
                .preparation
                .time_horizon_days,
            crate::domain::preparation::DEFAULT_HORIZON_DAYS
        );
    }

    #[test]
    fn the_time_horizon_flag_overrides_the_preparation() {
        let c = Config::try_parse_from(["incident-service", "--incident-time-horizon-days", "30"])
            .expect("parse");
        assert_eq!(
            c.settings()
                .expect("settings")
                .preparation
                .time_horizon_days,
            30
        );
        assert!(
            Config::try_parse_from(["incident-service", "--incident-time-horizon-days", "0"])
                .is_err()
        );
    }
}
