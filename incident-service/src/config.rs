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
    /// Log format.
    #[arg(
        long,
        env = "INCIDENT_LOG_FORMAT",
        value_enum,
        default_value = "pretty"
    )]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub security: Security,
}

assurance_runtime::security_args!(Security, "INCIDENT_");

/// What incident-service needs to run, whichever binary hosts it.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub db_pool_size: u32,
    pub severity_rule: SeverityRule,
    pub preparation: Preparation,
}

impl Config {
    pub fn settings(&self) -> Result<Settings, String> {
        Ok(Settings {
            database_url: self.database_url.clone(),
            db_pool_size: self.db_pool_size,
            severity_rule: load_rule(self.severity_rule.as_deref())?,
            preparation: Preparation::load(self.preparation.as_deref())?,
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
    fn flags_parse_with_design_defaults() {
        Config::command().debug_assert();
        let c = Config::try_parse_from(["incident-service"]).expect("defaults parse");
        assert_eq!(c.listen.to_string(), "127.0.0.1:50062");
        assert_eq!(c.http_listen.to_string(), "127.0.0.1:8082");
        assert_eq!(
            c.settings().expect("settings").severity_rule,
            SeverityRule::default()
        );
    }
}
