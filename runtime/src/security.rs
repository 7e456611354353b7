//! The security flags every binary shares (`--tokens-file`, `--jwks-file`, `--jwt-issuer`,
//! `--jwt-audience`, `--tls-cert`, `--tls-key`, `--tls-client-ca`, `--insecure-dev`), each
//! with the binary's environment prefix, and what they build: the auth layer and TLS of the
//! listeners.

use std::path::PathBuf;

use crate::{
    auth::{
        authenticator::{Authenticator, RELOAD_INTERVAL},
        jwt::JwtVerifier,
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
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
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
        self.tokens_file.is_some() || self.jwks_file.is_some()
    }

    /// Loads the credentials and TLS files. Must run inside a tokio runtime (the tokens file
    /// is watched for changes). Refuses to build an open server unless `insecure_dev`.
    pub fn build(&self) -> Result<Security, String> {
        crate::tls::install_crypto_provider();
        let tls = self.tls.server()?;
        let auth = if self.insecure_dev {
            if self.has_credentials() {
                return Err("--insecure-dev turns authentication off; it cannot be combined with --tokens-file or --jwks-file".into());
            }
            tracing::warn!(
                "--insecure-dev: AUTHENTICATION IS OFF. Every caller is an administrator. Never use this outside a developer's machine."
            );
            AuthLayer::insecure_dev()
        } else {
            let jwt = match &self.jwks_file {
                None => {
                    if self.jwt_issuer.is_some() || self.jwt_audience.is_some() {
                        return Err("--jwt-issuer and --jwt-audience need --jwks-file".into());
                    }
                    None
                }
                Some(path) => {
                    let (Some(issuer), Some(audience)) = (&self.jwt_issuer, &self.jwt_audience)
                    else {
                        return Err("--jwks-file needs --jwt-issuer and --jwt-audience".into());
                    };
                    let verifier = JwtVerifier::load(path, issuer, audience)?;
                    tracing::info!(path = %path.display(), keys = verifier.key_count(), %issuer, %audience, "JWT keys loaded");
                    Some(verifier)
                }
            };
            let authenticator = Authenticator::new(self.tokens_file.clone(), jwt).map_err(|e| {
                if self.has_credentials() {
                    e
                } else {
                    "no credentials configured: give --tokens-file and/or --jwks-file (or, on a developer's machine only, --insecure-dev)".to_string()
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
            /// Required `iss` of JWTs.
            #[arg(long, env = concat!($prefix, "JWT_ISSUER"))]
            pub jwt_issuer: Option<String>,
            /// Required `aud` of JWTs.
            #[arg(long, env = concat!($prefix, "JWT_AUDIENCE"))]
            pub jwt_audience: Option<String>,
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
