//! Configuration of risk-service: flags with `RISK_*` environment fallbacks.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use assurance_runtime::{db::redact_url, telemetry::LogFormat, time::Clock};
use clap::Parser;
use serde::Deserialize;

use crate::{
    domain::scoring::{Band, Methodology, ScoringPolicy},
    store::StoreOptions,
};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "risk-service",
    mut_args = assurance_runtime::security::hide_env_value,
    version,
    about = "Assurance risk-service: org registry, risk register and scoring"
)]
pub struct Config {
    /// gRPC listen address.
    #[arg(long, env = "RISK_LISTEN", default_value = "127.0.0.1:50061")]
    pub listen: SocketAddr,
    /// HTTP listen address for /healthz and /readyz.
    #[arg(long, env = "RISK_HTTP_LISTEN", default_value = "127.0.0.1:8081")]
    pub http_listen: SocketAddr,
    /// Database URL: `sqlite://path/to/risk.db` (created when missing) or `postgres://…`.
    #[arg(
        long,
        env = "RISK_DATABASE_URL",
        default_value = "sqlite://./data/risk.db?mode=rwc"
    )]
    pub database_url: String,
    /// Connections in the database pool.
    #[arg(long, env = "RISK_DB_POOL_SIZE", default_value_t = 8)]
    pub db_pool_size: u32,
    /// Risks kept in the read cache (0 disables it).
    #[arg(long, env = "RISK_READ_CACHE_SIZE", default_value_t = 100_000)]
    pub read_cache_size: usize,
    /// Seconds a cached risk may be served before it is read again. Writes through this
    /// process refresh it at once; on PostgreSQL other replicas' writes evict it within
    /// milliseconds (at most 3 s if notifications stall).
    #[arg(long, env = "RISK_READ_CACHE_TTL_SECS", default_value_t = 300)]
    pub read_cache_ttl_secs: u64,
    /// Scoring methodology.
    #[arg(long, env = "RISK_SCORING", value_enum, default_value = "standard")]
    pub scoring: Methodology,
    /// TOML file overriding scoring thresholds and severity bands.
    #[arg(long, env = "RISK_SCORING_POLICY")]
    pub scoring_policy: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "RISK_LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
    /// Seconds between sweeps for expired acceptances.
    #[arg(long, env = "RISK_EXPIRY_INTERVAL_SECS", default_value_t = 60)]
    pub expiry_interval_secs: u64,
    /// The clock of expiries (tests move it forward).
    #[arg(skip)]
    pub clock: Clock,
    #[command(flatten)]
    pub security: Security,
    #[command(flatten)]
    pub limits: Limits,
    #[command(flatten)]
    pub otlp: assurance_runtime::telemetry::OtlpArgs,
}

assurance_runtime::security_args!(Security, "RISK_");
assurance_runtime::limit_args!(Limits, "RISK_");

// The `risk-service` command line: the server (`Config`, the default) or a subcommand.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "risk-service",
    mut_args = assurance_runtime::security::hide_env_value,
    version,
    about = "Assurance risk-service: org registry, risk register and scoring",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Upserts a controls catalogue (YAML or JSON) into the database, then exits.
    #[command(mut_args = assurance_runtime::security::hide_env_value)]
    ImportControls(crate::controls_import::ImportArgs),
}

/// What the risk services need to run, whichever binary hosts them.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub store: StoreOptions,
    pub policy: ScoringPolicy,
    pub clock: Clock,
    pub expiry_interval: Duration,
}

/// Store options from the flags shared by every binary that hosts risk-service.
pub fn store_options(pool: u32, cache_size: usize, cache_ttl_secs: u64) -> StoreOptions {
    StoreOptions {
        max_connections: pool,
        cache_size,
        cache_ttl: Duration::from_secs(cache_ttl_secs),
    }
}

impl Config {
    pub fn settings(&self) -> Result<Settings, String> {
        Ok(Settings {
            database_url: self.database_url.clone(),
            store: store_options(
                self.db_pool_size,
                self.read_cache_size,
                self.read_cache_ttl_secs,
            ),
            policy: load_policy(self.scoring, self.scoring_policy.as_deref())?,
            clock: self.clock.clone(),
            expiry_interval: Duration::from_secs(self.expiry_interval_secs.max(1)),
        })
    }
}

impl std::fmt::Display for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "database={} pool={} read_cache={}x{}s scoring={}",
            redact_url(&self.database_url),
            self.store.max_connections,
            self.store.cache_size,
            self.store.cache_ttl.as_secs(),
            self.policy.id()
        )
    }
}

/// Thresholds and bands a scoring-policy file may override.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    high_exposure_threshold: Option<u8>,
    adequate_control_deficiency: Option<u8>,
    bands: Option<Vec<Band>>,
}

/// The scoring policy: the methodology's defaults, overridden by `file`, then validated
/// (bands must cover 1–125 without gap or overlap).
pub fn load_policy(methodology: Methodology, file: Option<&Path>) -> Result<ScoringPolicy, String> {
    let mut policy = ScoringPolicy::defaults(methodology);
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read scoring policy {}: {e}", path.display()))?;
        let overrides: PolicyFile = toml::from_str(&text)
            .map_err(|e| format!("invalid scoring policy {}: {e}", path.display()))?;
        if let Some(v) = overrides.high_exposure_threshold {
            policy.high_exposure_threshold = v;
        }
        if let Some(v) = overrides.adequate_control_deficiency {
            policy.adequate_control_deficiency = v;
        }
        if let Some(bands) = overrides.bands {
            policy.bands = bands;
        }
    }
    policy
        .validate()
        .map_err(|e| format!("invalid scoring policy: {e}"))?;
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scoring::Severity;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut f, text.as_bytes()).expect("write");
        f
    }

    #[test]
    fn defaults_without_file() {
        let p = load_policy(Methodology::Standard, None).expect("valid");
        assert_eq!(p, ScoringPolicy::defaults(Methodology::Standard));
    }

    #[test]
    fn file_overrides_thresholds_and_bands() {
        let f = write(
            r#"
high_exposure_threshold = 10
bands = [
  { severity = "LOW", min = 1, max = 20 },
  { severity = "MEDIUM", min = 21, max = 50 },
  { severity = "HIGH", min = 51, max = 90 },
  { severity = "CRITICAL", min = 91, max = 125 },
]
"#,
        );
        let p = load_policy(Methodology::Standard, Some(f.path())).expect("valid");
        assert_eq!(p.high_exposure_threshold, 10);
        assert_eq!(p.adequate_control_deficiency, 2);
        assert_eq!(p.severity_of_score(20), Severity::Low);
    }

    #[test]
    fn gaps_and_unknown_keys_fail_at_start_up() {
        let gap = write(
            r#"bands = [
  { severity = "LOW", min = 1, max = 20 },
  { severity = "CRITICAL", min = 22, max = 125 },
]"#,
        );
        let err = load_policy(Methodology::Standard, Some(gap.path())).expect_err("gap");
        assert!(err.contains("21–21"), "{err}");
        let unknown = write("treshold = 3");
        assert!(load_policy(Methodology::Standard, Some(unknown.path())).is_err());
    }
}

#[cfg(test)]
mod flag_tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn flags_parse_with_design_defaults() {
        Config::command().debug_assert();
        let c = Config::try_parse_from(["risk-service"]).expect("defaults parse");
        assert_eq!(c.listen.to_string(), "127.0.0.1:50061");
        assert_eq!(c.http_listen.to_string(), "127.0.0.1:8081");
        assert_eq!(c.scoring, Methodology::Standard);
        let c = Config::try_parse_from([
            "risk-service",
            "--scoring",
            "nist-800-30",
            "--log-format",
            "json",
            "--database-url",
            "postgres://u:p@db/risk",
        ])
        .expect("flags parse");
        assert_eq!(c.scoring, Methodology::Nist80030);
        assert_eq!(c.log_format, LogFormat::Json);
        let settings = c.settings().expect("settings");
        assert!(settings.to_string().contains("postgres://u:***@db/risk"));
        assert!(Config::try_parse_from(["risk-service", "--scoring", "fancy"]).is_err());
    }

    #[test]
    fn help_never_prints_environment_values() {
        use assurance_runtime::security::env_values_shown;
        assert_eq!(env_values_shown(&Cli::command()), Vec::<String>::new());
        assert_eq!(env_values_shown(&Config::command()), Vec::<String>::new());
    }
}
