//! Configuration of the gateway: flags with `GATEWAY_*` environment fallbacks.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use assurance_runtime::{
    auth::{Role, Roles},
    db,
    security::SecuritySettings,
    telemetry::LogFormat,
    tls::ClientTlsFiles,
};
use clap::Parser;
use risk_service::{
    config::{Settings, load_policy, store_options},
    domain::scoring::Methodology,
};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "gateway",
    mut_args = assurance_runtime::security::hide_env_value,
    version,
    about = "Assurance gateway: one entry point for the Assurance APIs"
)]
pub struct Config {
    /// gRPC listen address.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// HTTP listen address for /healthz and /readyz.
    #[arg(long, env = "GATEWAY_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
    pub http_listen: SocketAddr,
    /// Run every component in this process, on SQLite files in --data-dir.
    #[arg(long, env = "GATEWAY_EMBEDDED")]
    pub embedded: bool,
    /// Directory of the embedded databases and the gateway's own state.
    #[arg(long, env = "GATEWAY_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// risk-service to forward to when not embedded: repeat the flag or separate URLs with
    /// commas for several replicas (calls are balanced across the healthy ones).
    #[arg(
        long,
        env = "GATEWAY_RISK_URL",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:50061"
    )]
    pub risk_url: Vec<String>,
    /// incident-service to forward to when not embedded: repeat the flag or separate URLs with
    /// commas for several replicas.
    #[arg(
        long,
        env = "GATEWAY_INCIDENT_URL",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:50062"
    )]
    pub incident_url: Vec<String>,
    /// The gateway's own store (risk appetite; later snapshots, reports, tracker sync), in both
    /// modes; default `DATA_DIR/gateway.db`.
    #[arg(long, env = "GATEWAY_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Forwarding only: file holding the gateway's own bearer token (a `system` principal) for
    /// the services' aggregate RPCs; without it the gateway presents each caller's credential.
    #[arg(long, env = "GATEWAY_SERVICE_TOKEN_FILE")]
    pub service_token_file: Option<PathBuf>,
    /// Top risks per posture node when a request does not say (at most 100).
    #[arg(long, env = "GATEWAY_POSTURE_TOP_N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub posture_top_n: u32,
    /// Milliseconds GetPosture waits for the services before answering without a half.
    #[arg(long, env = "GATEWAY_POSTURE_DEADLINE_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    pub posture_deadline_ms: u64,
    /// Time between scheduled posture snapshots: a number and a unit (`ms`, `s`, `m`, `h`,
    /// `d`), e.g. `24h`, `30m`; `0` or `off` turns the schedule off (CreateSnapshot still works).
    #[arg(long, env = "GATEWAY_SNAPSHOT_INTERVAL", default_value = "24h", value_parser = parse_interval)]
    pub snapshot_interval: Duration,
    /// WatchPosture sends at most one message per this interval (same format, above 0), e.g.
    /// `5s`, `500ms`.
    #[arg(long, env = "GATEWAY_WATCH_INTERVAL", default_value = "5s", value_parser = parse_positive_interval)]
    pub watch_interval: Duration,
    /// Embedded only: the incident database URL instead of `DATA_DIR/incident.db`.
    #[arg(long, env = "GATEWAY_INCIDENT_DATABASE_URL")]
    pub incident_database_url: Option<String>,
    /// Embedded only: TOML file replacing the incident severity rule.
    #[arg(long, env = "GATEWAY_SEVERITY_RULE")]
    pub severity_rule: Option<PathBuf>,
    /// Embedded only: how many days in the past an incident's occurred and detected times may
    /// be (default 3650, or the preparation file's `time_horizon_days`).
    #[arg(long, env = "GATEWAY_INCIDENT_TIME_HORIZON_DAYS", value_parser = clap::value_parser!(i64).range(1..=incident_service::domain::preparation::MAX_HORIZON_DAYS))]
    pub incident_time_horizon_days: Option<i64>,
    /// Embedded only: TOML file of incident response templates, contacts and notification rules.
    #[arg(long, env = "GATEWAY_PREPARATION")]
    pub preparation: Option<PathBuf>,
    /// Embedded only: the risk database URL instead of `DATA_DIR/risk.db` (e.g. PostgreSQL).
    #[arg(long, env = "GATEWAY_RISK_DATABASE_URL")]
    pub risk_database_url: Option<String>,
    /// Embedded only: connections in each database pool.
    #[arg(long, env = "GATEWAY_DB_POOL_SIZE", default_value_t = 8)]
    pub db_pool_size: u32,
    /// Embedded only: risks kept in the read cache (0 disables it).
    #[arg(long, env = "GATEWAY_READ_CACHE_SIZE", default_value_t = 100_000)]
    pub read_cache_size: usize,
    /// Embedded only: seconds a cached risk may be served before it is read again.
    #[arg(long, env = "GATEWAY_READ_CACHE_TTL_SECS", default_value_t = 300)]
    pub read_cache_ttl_secs: u64,
    /// Embedded only: scoring methodology.
    #[arg(long, env = "GATEWAY_SCORING", value_enum, default_value = "standard")]
    pub scoring: Methodology,
    /// Embedded only: TOML file overriding scoring thresholds and severity bands.
    #[arg(long, env = "GATEWAY_SCORING_POLICY")]
    pub scoring_policy: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "GATEWAY_LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
    /// Forwarding only: PEM CA the services' certificates must chain to (for `https://` URLs).
    #[arg(long, env = "GATEWAY_UPSTREAM_TLS_CA")]
    pub upstream_tls_ca: Option<PathBuf>,
    /// Forwarding only: PEM client certificate the gateway presents to the services (mTLS).
    #[arg(long, env = "GATEWAY_UPSTREAM_TLS_CERT")]
    pub upstream_tls_cert: Option<PathBuf>,
    /// Forwarding only: PEM private key of --upstream-tls-cert.
    #[arg(long, env = "GATEWAY_UPSTREAM_TLS_KEY")]
    pub upstream_tls_key: Option<PathBuf>,
    /// Embedded only: seconds between sweeps for expired risk acceptances.
    #[arg(long, env = "GATEWAY_EXPIRY_INTERVAL_SECS", default_value_t = 60)]
    pub expiry_interval_secs: u64,
    /// TOML file of the bug trackers to sync work items with: trackers (credentials named by
    /// file or environment variable), routing table and status mapping (docs/trackers.md).
    #[arg(long, env = "GATEWAY_TRACKERS_FILE")]
    pub trackers_file: Option<PathBuf>,
    /// Time between two scans of the work items for changes to push (e.g. `2s`).
    #[arg(long, env = "GATEWAY_TRACKER_SCAN_INTERVAL", default_value = "2s", value_parser = parse_positive_interval)]
    pub tracker_scan_interval: Duration,
    /// Time between two reconciliation polls of each tracker (Redmine's only inbound path,
    /// GitHub's safety net), e.g. `60s`.
    #[arg(long, env = "GATEWAY_TRACKER_POLL_INTERVAL", default_value = "60s", value_parser = parse_positive_interval)]
    pub tracker_poll_interval: Duration,
    /// The longest wait between two attempts of an item whose tracker is unavailable.
    #[arg(long, env = "GATEWAY_TRACKER_MAX_BACKOFF", default_value = "5m", value_parser = parse_positive_interval)]
    pub tracker_max_backoff: Duration,
    /// The limit of one request to a tracker.
    #[arg(long, env = "GATEWAY_TRACKER_TIMEOUT", default_value = "30s", value_parser = parse_positive_interval)]
    pub tracker_timeout: Duration,
    /// The clock of expiries (tests move it forward).
    #[arg(skip)]
    pub clock: assurance_runtime::time::Clock,
    #[command(flatten)]
    pub relay: Relay,
    #[command(flatten)]
    pub security: Security,
    #[command(flatten)]
    pub limits: Limits,
    #[command(flatten)]
    pub otlp: assurance_runtime::telemetry::OtlpArgs,
}

assurance_runtime::relay_args!(Relay, "GATEWAY_");
assurance_runtime::security_args!(Security, "GATEWAY_");
assurance_runtime::limit_args!(Limits, "GATEWAY_");

impl Config {
    /// The security settings; `gateway --embedded` with no credentials configured creates
    /// `DATA_DIR/tokens.toml` with an admin token on first start (the token itself goes to
    /// `DATA_DIR/admin-token`, readable by the owner only, and is never logged).
    pub fn security_settings(&self) -> Result<SecuritySettings, String> {
        let mut settings = self.security.settings();
        if self.embedded && !settings.insecure_dev && !settings.has_credentials() {
            let tokens = self.data_dir.join("tokens.toml");
            if !tokens.exists() {
                db::create_private_dir(&self.data_dir).map_err(|e| format!("data dir: {e}"))?;
                let token = assurance_runtime::auth::tokens::append(
                    &tokens,
                    &assurance_runtime::auth::tokens::NewToken {
                        principal: "admin",
                        roles: Roles::of(&[Role::Admin]),
                        services: None,
                        expires: None,
                        note: "created by the gateway on first start",
                    },
                )?;
                let token_file = self.data_dir.join("admin-token");
                write_private(&token_file, &format!("{token}\n"))?;
                tracing::warn!(
                    tokens_file = %tokens.display(),
                    token_file = %token_file.display(),
                    "no credentials were configured: created a tokens file with an admin token; \
                     the token is in the token file (readable by you only). Create tokens for \
                     people and systems and delete it"
                );
            }
            settings.tokens_file = Some(tokens);
        }
        Ok(settings)
    }

    /// The URL of the gateway's own store.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| db::sqlite_url(&self.data_dir.join("gateway.db")))
    }

    /// The gateway's own token for the services, read from `--service-token-file`.
    pub fn service_token(&self) -> Result<Option<String>, String> {
        self.service_token_file
            .as_deref()
            .map(assurance_runtime::auth::client::read_token_file)
            .transpose()
    }

    /// The trackers file, read and checked (`None` without `--trackers-file`).
    pub fn trackers(&self) -> Result<Option<crate::trackers::config::TrackersConfig>, String> {
        self.trackers_file
            .as_deref()
            .map(crate::trackers::config::TrackersConfig::load)
            .transpose()
    }

    /// Settings of the tracker sync.
    pub fn sync_settings(&self) -> crate::trackers::sync::SyncSettings {
        crate::trackers::sync::SyncSettings {
            scan_interval: self.tracker_scan_interval,
            poll_interval: self.tracker_poll_interval,
            max_backoff: self.tracker_max_backoff,
            request_timeout: self.tracker_timeout,
        }
    }

    /// Settings of GetPosture.
    pub fn posture_settings(&self) -> crate::posture::PostureSettings {
        crate::posture::PostureSettings {
            top_n: self.posture_top_n,
            deadline: Duration::from_millis(self.posture_deadline_ms),
            watch_interval: self.watch_interval,
        }
    }

    /// TLS of the links to the services.
    pub fn upstream_tls(&self) -> ClientTlsFiles {
        ClientTlsFiles {
            ca: self.upstream_tls_ca.clone(),
            cert: self.upstream_tls_cert.clone(),
            key: self.upstream_tls_key.clone(),
        }
    }

    /// Settings of the embedded incident-service.
    pub fn incident_settings(&self) -> Result<incident_service::config::Settings, String> {
        Ok(incident_service::config::Settings {
            database_url: self
                .incident_database_url
                .clone()
                .unwrap_or_else(|| db::sqlite_url(&self.data_dir.join("incident.db"))),
            db_pool_size: self.db_pool_size,
            severity_rule: incident_service::config::load_rule(self.severity_rule.as_deref())?,
            preparation: incident_service::config::with_horizon(
                incident_service::domain::preparation::Preparation::load(
                    self.preparation.as_deref(),
                )?,
                self.incident_time_horizon_days,
            ),
        })
    }

    /// Settings of the embedded risk-service.
    pub fn risk_settings(&self) -> Result<Settings, String> {
        Ok(Settings {
            database_url: self
                .risk_database_url
                .clone()
                .unwrap_or_else(|| db::sqlite_url(&self.data_dir.join("risk.db"))),
            store: store_options(
                self.db_pool_size,
                self.read_cache_size,
                self.read_cache_ttl_secs,
            ),
            policy: load_policy(self.scoring, self.scoring_policy.as_deref())?,
            clock: self.clock.clone(),
            expiry_interval: std::time::Duration::from_secs(self.expiry_interval_secs.max(1)),
        })
    }
}

/// An interval flag: `off`, `0`, or a whole number with a unit (`ms`, `s`, `m`, `h`, `d`).
fn parse_interval(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "off" || text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} needs a unit: ms, s, m, h or d (e.g. 24h)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} must start with a whole number (e.g. 24h)"))?;
    let millis_per = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?}; use ms, s, m, h or d"
            ));
        }
    };
    n.checked_mul(millis_per)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// An interval flag that may not be off.
fn parse_positive_interval(text: &str) -> Result<Duration, String> {
    match parse_interval(text)? {
        d if d.is_zero() => Err(format!("{text:?} must be above 0 (e.g. 5s)")),
        d => Ok(d),
    }
}

/// Writes `text` to a new file only its owner can read.
fn write_private(path: &std::path::Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn flags_parse_with_design_defaults() {
        Config::command().debug_assert();
        let c = Config::try_parse_from(["gateway"]).expect("defaults parse");
        assert_eq!(c.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(c.http_listen.to_string(), "127.0.0.1:8080");
        assert!(!c.embedded);
        let c = Config::try_parse_from(["gateway", "--embedded", "--data-dir", "/tmp/a"])
            .expect("parse");
        assert!(c.embedded);
        let settings = c.risk_settings().expect("settings");
        assert_eq!(settings.database_url, "sqlite:///tmp/a/risk.db?mode=rwc");
    }

    #[test]
    fn upstream_urls_repeat_or_split_on_commas() {
        let c = Config::try_parse_from(["gateway"]).expect("defaults parse");
        assert_eq!(c.risk_url, ["http://127.0.0.1:50061"]);
        assert_eq!(c.incident_url, ["http://127.0.0.1:50062"]);
        let c = Config::try_parse_from([
            "gateway",
            "--risk-url",
            "http://a:1,http://b:2",
            "--risk-url",
            "http://c:3",
            "--incident-url",
            "http://d:4",
        ])
        .expect("parse");
        assert_eq!(c.risk_url, ["http://a:1", "http://b:2", "http://c:3"]);
        assert_eq!(c.incident_url, ["http://d:4"]);
    }

    #[test]
    fn intervals_parse_with_units_and_off() {
        let c = Config::try_parse_from(["gateway"]).expect("defaults parse");
        assert_eq!(c.snapshot_interval, Duration::from_secs(86_400));
        assert_eq!(c.watch_interval, Duration::from_secs(5));
        assert_eq!(parse_interval("off"), Ok(Duration::ZERO));
        assert_eq!(parse_interval("0"), Ok(Duration::ZERO));
        assert_eq!(parse_interval("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_interval("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_interval("24").is_err());
        assert!(parse_interval("h").is_err());
        assert!(parse_interval("3w").is_err());
        assert!(parse_positive_interval("off").is_err());
    }

    #[test]
    fn help_never_prints_environment_values() {
        let shown = assurance_runtime::security::env_values_shown(&Config::command());
        assert_eq!(shown, Vec::<String>::new());
    }
}
