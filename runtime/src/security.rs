//! The security flags every binary shares (`--tokens-file`, `--jwks-file`, `--jwks-url`,
//! `--jwt-issuer`, `--jwt-audience`, `--max-token-lifetime`, `--request-retention`,
//! `--tls-cert`, `--tls-key`, `--tls-client-ca`, `--insecure-dev`), each with the binary's
//! environment prefix, and what they build: the auth layer and TLS of the listeners.

use std::{path::PathBuf, time::Duration};

use crate::{
    auth::{
        authenticator::{
            Authenticator, RELOAD_INTERVAL,
            jwks::{JwksConfig, JwksLocation},
        },
        jwt::DEFAULT_MAX_LIFETIME_SECS,
        layer::AuthLayer,
    },
    serve::Security,
    tls::TlsFiles,
};

/// The security settings of one server.
#[derive(Debug, Clone, Default)]
pub struct SecuritySettings {
    pub tokens_file: Option<PathBuf>,
    pub jwks_file: Option<PathBuf>,
    pub jwks_url: Option<String>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    /// Longest JWT lifetime accepted; `None` is [`DEFAULT_MAX_LIFETIME_SECS`].
    pub max_token_lifetime: Option<Duration>,
    /// How long request records (`request_id`s) are kept; `None` is
    /// [`crate::idempotency::DEFAULT_RETENTION`].
    pub request_retention: Option<Duration>,
    pub insecure_dev: bool,
    pub tls: TlsFiles,
}

impl SecuritySettings {
    /// Settings that accept the tokens of `tokens_file` only, over plaintext.
    pub fn tokens(tokens_file: PathBuf) -> SecuritySettings {
        SecuritySettings {
            tokens_file: Some(tokens_file),
            ..Default::default()
        }
    }

    /// Whether any credential source is configured.
    pub fn has_credentials(&self) -> bool {
        self.tokens_file.is_some() || self.jwks_file.is_some() || self.jwks_url.is_some()
    }

    /// How long request records are kept.
    pub fn request_retention(&self) -> Duration {
        self.request_retention
            .unwrap_or(crate::idempotency::DEFAULT_RETENTION)
    }

    /// The JWT settings, when JWTs are accepted.
    fn jwks(&self) -> Result<Option<JwksConfig>, String> {
        let location = match (&self.jwks_file, &self.jwks_url) {
            (Some(_), Some(_)) => return Err("give --jwks-file or --jwks-url, not both".into()),
            (Some(path), None) => JwksLocation::File(path.clone()),
            (None, Some(url)) => JwksLocation::Url(url.clone()),
            (None, None) => {
                if self.jwt_issuer.is_some() || self.jwt_audience.is_some() {
                    return Err(
                        "--jwt-issuer and --jwt-audience need --jwks-file or --jwks-url".into(),
                    );
                }
                return Ok(None);
            }
        };
        let (Some(issuer), Some(audience)) = (&self.jwt_issuer, &self.jwt_audience) else {
            return Err("--jwks-file and --jwks-url need --jwt-issuer and --jwt-audience".into());
        };
        let max_lifetime = match self.max_token_lifetime {
            None => DEFAULT_MAX_LIFETIME_SECS,
            Some(d) if d.as_secs() == 0 => {
                return Err("--max-token-lifetime must be at least 1s".into());
            }
            Some(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        };
        Ok(Some(JwksConfig {
            location,
            issuer: issuer.clone(),
            audience: audience.clone(),
            max_lifetime,
        }))
    }

    /// Loads the credentials and TLS files. Must run inside a tokio runtime (the tokens file
    /// is watched for changes). Refuses to build an open server unless `insecure_dev`.
    pub fn build(&self) -> Result<Security, String> {
        crate::tls::install_crypto_provider();
        let tls = self.tls.server()?;
        let auth = if self.insecure_dev {
            if self.has_credentials() {
                return Err("--insecure-dev turns authentication off; it cannot be combined with --tokens-file, --jwks-file or --jwks-url".into());
            }
            tracing::warn!(
                "--insecure-dev: AUTHENTICATION IS OFF. Every caller is an administrator. Never use this outside a developer's machine."
            );
            AuthLayer::insecure_dev()
        } else {
            let authenticator = Authenticator::with_jwks(self.tokens_file.clone(), self.jwks()?)
                .map_err(|e| {
                    if self.has_credentials() {
                        e
                    } else {
                        "no credentials configured: give --tokens-file and/or --jwks-file or --jwks-url (or, on a developer's machine only, --insecure-dev)".to_string()
                    }
                })?;
            authenticator.spawn_reloader(RELOAD_INTERVAL);
            AuthLayer::verify(authenticator)
        };
        Ok(Security { auth, tls })
    }
}

/// Defines a clap `Args` struct `$name` with the shared security flags, their environment
/// variables prefixed with `$prefix` (e.g. `"RISK_"` gives `RISK_TOKENS_FILE`).
#[macro_export]
macro_rules! security_args {
    ($name:ident, $prefix:literal) => {
        /// Authentication and TLS.
        #[derive(Debug, Clone, Default, clap::Args)]
        pub struct $name {
            /// TOML file of API tokens (SHA-256 hashes, principals, roles, optional service
            /// scope); re-read when it changes.
            #[arg(long, env = concat!($prefix, "TOKENS_FILE"))]
            pub tokens_file: Option<std::path::PathBuf>,
            /// JWKS file of the OIDC provider's signing keys (RS256, ES256).
            #[arg(long, env = concat!($prefix, "JWKS_FILE"))]
            pub jwks_file: Option<std::path::PathBuf>,
            /// HTTPS URL of the OIDC provider's JWKS (instead of --jwks-file): fetched at start,
            /// every 5 minutes, and when a token names an unknown key (at most every 30 s).
            #[arg(long, env = concat!($prefix, "JWKS_URL"))]
            pub jwks_url: Option<String>,
            /// Required `iss` of JWTs.
            #[arg(long, env = concat!($prefix, "JWT_ISSUER"))]
            pub jwt_issuer: Option<String>,
            /// Required `aud` of JWTs.
            #[arg(long, env = concat!($prefix, "JWT_AUDIENCE"))]
            pub jwt_audience: Option<String>,
            /// Longest JWT lifetime accepted (`exp` after `iat`, or after now), e.g. `1h`,
            /// `24h`; longer-lived tokens are refused. Default 24h.
            #[arg(long, env = concat!($prefix, "MAX_TOKEN_LIFETIME"), value_parser = $crate::security::parse_duration)]
            pub max_token_lifetime: Option<std::time::Duration>,
            /// How long request records (the `request_id`s of retried creates) are kept, e.g.
            /// `7d`, `12h`; older ones are deleted periodically. Default 7d.
            #[arg(long, env = concat!($prefix, "REQUEST_RETENTION"), value_parser = $crate::security::parse_duration)]
            pub request_retention: Option<std::time::Duration>,
            /// PEM certificate chain of the listeners (enables TLS).
            #[arg(long, env = concat!($prefix, "TLS_CERT"))]
            pub tls_cert: Option<std::path::PathBuf>,
            /// PEM private key of the listeners.
            #[arg(long, env = concat!($prefix, "TLS_KEY"))]
            pub tls_key: Option<std::path::PathBuf>,
            /// PEM CA certificates; clients must present a certificate they signed (mTLS).
            #[arg(long, env = concat!($prefix, "TLS_CLIENT_CA"))]
            pub tls_client_ca: Option<std::path::PathBuf>,
            /// Turns authentication OFF: every caller is an administrator. Developer machines
            /// only; a warning is logged.
            #[arg(long, env = concat!($prefix, "INSECURE_DEV"))]
            pub insecure_dev: bool,
        }

        impl $name {
            pub fn settings(&self) -> $crate::security::SecuritySettings {
                $crate::security::SecuritySettings {
                    tokens_file: self.tokens_file.clone(),
                    jwks_file: self.jwks_file.clone(),
                    jwks_url: self.jwks_url.clone(),
                    max_token_lifetime: self.max_token_lifetime,
                    request_retention: self.request_retention,
                    jwt_issuer: self.jwt_issuer.clone(),
                    jwt_audience: self.jwt_audience.clone(),
                    insecure_dev: self.insecure_dev,
                    tls: $crate::tls::TlsFiles {
                        cert: self.tls_cert.clone(),
                        key: self.tls_key.clone(),
                        client_ca: self.tls_client_ca.clone(),
                    },
                }
            }
        }
    };
}

/// Hides the value an argument takes from the environment in `--help` (clap prints
/// `[env: NAME=value]` otherwise, and environment values hold database URLs with passwords).
/// Every binary applies it to all its arguments: `#[command(mut_args = hide_env_value)]`.
pub fn hide_env_value(arg: clap::Arg) -> clap::Arg {
    arg.hide_env_values(true)
}

/// The arguments of `command` (and its subcommands) whose environment value `--help` would
/// print: none, once [`hide_env_value`] is applied everywhere.
pub fn env_values_shown(command: &clap::Command) -> Vec<String> {
    let mut shown: Vec<String> = command
        .get_arguments()
        .filter(|a| a.get_env().is_some() && !a.is_hide_env_values_set())
        .map(|a| format!("{} --{}", command.get_name(), a.get_id()))
        .collect();
    for sub in command.get_subcommands() {
        shown.extend(env_values_shown(sub));
    }
    shown
}

/// A duration flag: a whole number and a unit (`ms`, `s`, `m`, `h`, `d`), above zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} needs a unit: ms, s, m, h or d (e.g. 24h)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} must start with a whole number (e.g. 24h)"))?;
    let millis_per: u64 = match unit {
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
    match n.checked_mul(millis_per) {
        None => Err(format!("{text:?} is too long")),
        Some(0) => Err(format!("{text:?} must be above 0")),
        Some(ms) => Ok(Duration::from_millis(ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        for bad in ["0s", "24", "h", "3w", "99999999999999999999d", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn jwt_settings_are_checked() {
        let base = SecuritySettings {
            jwt_issuer: Some("https://idp".into()),
            jwt_audience: Some("assurance".into()),
            ..Default::default()
        };
        assert!(base.jwks().is_err(), "issuer without keys");
        let both = SecuritySettings {
            jwks_file: Some("k.json".into()),
            jwks_url: Some("https://idp/keys".into()),
            ..base.clone()
        };
        assert!(both.jwks().expect_err("both").contains("not both"));
        let url = SecuritySettings {
            jwks_url: Some("https://idp/keys".into()),
            ..base.clone()
        };
        let config = url.jwks().expect("valid").expect("some");
        assert_eq!(config.max_lifetime, DEFAULT_MAX_LIFETIME_SECS);
        let short = SecuritySettings {
            max_token_lifetime: Some(Duration::from_secs(600)),
            ..url.clone()
        };
        assert_eq!(
            short.jwks().expect("valid").expect("some").max_lifetime,
            600
        );
        assert_eq!(
            url.request_retention(),
            Duration::from_secs(7 * 86_400),
            "request records are kept 7 days by default"
        );
    }
}
