//! The JWT signing keys of an [`super::Authenticator`]: a fixed set, a JWKS file re-read when it
//! changes, or a JWKS URL fetched into a cache, refreshed periodically and when a token names an
//! unknown `kid` (at most one such refetch every [`KID_REFETCH_MIN_INTERVAL`]).

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use sha2::{Digest, Sha256};

use crate::auth::jwt::JwtVerifier;

/// How often a JWKS URL is fetched again.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// The shortest time between two refetches caused by unknown `kid`s.
pub const KID_REFETCH_MIN_INTERVAL: Duration = Duration::from_secs(30);
/// How soon a failed fetch is retried while no key set has been fetched yet.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// The limit of one fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// Where the keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksLocation {
    File(PathBuf),
    Url(String),
}

/// The JWT settings of a server.
#[derive(Debug, Clone)]
pub struct JwksConfig {
    pub location: JwksLocation,
    pub issuer: String,
    pub audience: String,
    /// Longest token lifetime accepted, in seconds.
    pub max_lifetime: i64,
}

/// What was last loaded: a file's change marker, or the digest of a fetched document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    File(Option<SystemTime>),
    Digest([u8; 32]),
}

pub(super) struct JwtKeys {
    config: Option<JwksConfig>,
    verifier: RwLock<Option<Arc<JwtVerifier>>>,
    marker: Mutex<Option<Marker>>,
    last_kid_fetch: Mutex<Option<Instant>>,
    /// Woken to fetch the URL now.
    pub(super) wake: Arc<tokio::sync::Notify>,
    fetches: AtomicU64,
}

impl JwtKeys {
    /// A fixed key set.
    pub(super) fn fixed(verifier: JwtVerifier) -> JwtKeys {
        JwtKeys::with(None, Some(verifier), None)
    }

    fn with(config: Option<JwksConfig>, v: Option<JwtVerifier>, m: Option<Marker>) -> JwtKeys {
        JwtKeys {
            config,
            verifier: RwLock::new(v.map(Arc::new)),
            marker: Mutex::new(m),
            last_kid_fetch: Mutex::new(None),
            wake: Arc::new(tokio::sync::Notify::new()),
            fetches: AtomicU64::new(0),
        }
    }

    /// Keys of `config`: a file is read now (an unreadable one is an error); a URL is checked
    /// here and fetched by the authenticator's refresher.
    pub(super) fn open(config: JwksConfig) -> Result<JwtKeys, String> {
        match &config.location {
            JwksLocation::File(path) => {
                let marker = super::modified(path);
                let verifier = JwtVerifier::load(path, &config.issuer, &config.audience)?
                    .with_max_lifetime(config.max_lifetime);
                tracing::info!(path = %path.display(), keys = verifier.key_count(), issuer = %config.issuer, audience = %config.audience, "JWT keys loaded");
                Ok(JwtKeys::with(
                    Some(config),
                    Some(verifier),
                    Some(Marker::File(marker)),
                ))
            }
            JwksLocation::Url(url) => {
                check_url(url)?;
                // Checked now, not at the first fetch.
                if config.issuer.is_empty() || config.audience.is_empty() {
                    return Err("JWT issuer and audience must not be empty".into());
                }
                tracing::info!(url = %crate::db::redact_url(url), issuer = %config.issuer, audience = %config.audience, "JWT keys will be fetched from the JWKS URL");
                Ok(JwtKeys::with(Some(config), None, None))
            }
        }
    }

    /// The key set in force, if any.
    pub(super) fn current(&self) -> Option<Arc<JwtVerifier>> {
        self.verifier.read().ok().and_then(|v| v.clone())
    }

    /// The URL of the keys, when they are fetched.
    pub(super) fn url(&self) -> Option<&str> {
        match &self.config.as_ref()?.location {
            JwksLocation::Url(url) => Some(url),
            JwksLocation::File(_) => None,
        }
    }

    pub(super) fn is_file(&self) -> bool {
        matches!(
            self.config.as_ref().map(|c| &c.location),
            Some(JwksLocation::File(_))
        )
    }

    /// How many times the URL was fetched (successfully or not).
    pub(super) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// A token named a key the set does not hold: asks for a refetch of the URL unless one was
    /// asked for within [`KID_REFETCH_MIN_INTERVAL`]. Returns whether one was asked for.
    pub(super) fn kid_miss(&self) -> bool {
        if self.url().is_none() {
            return false;
        }
        let Ok(mut last) = self.last_kid_fetch.lock() else {
            return false;
        };
        if last.is_some_and(|at| at.elapsed() < KID_REFETCH_MIN_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        self.wake.notify_one();
        true
    }

    fn install(&self, verifier: Option<JwtVerifier>, marker: Marker) {
        if let Ok(mut v) = self.verifier.write() {
            *v = verifier.map(Arc::new);
        }
        if let Ok(mut m) = self.marker.lock() {
            *m = Some(marker);
        }
    }

    fn parse(&self, config: &JwksConfig, json: &str) -> Result<JwtVerifier, String> {
        Ok(
            JwtVerifier::from_jwks(json, &config.issuer, &config.audience)?
                .with_max_lifetime(config.max_lifetime),
        )
    }

    /// Re-reads the JWKS file if it changed: `Ok(true)` when another key set (or, the file
    /// deleted, none) is now in force; an unparsable file keeps the previous keys (`Err`).
    pub(super) fn reload_file_if_changed(&self) -> Result<bool, String> {
        let Some(config) = &self.config else {
            return Ok(false);
        };
        let JwksLocation::File(path) = &config.location else {
            return Ok(false);
        };
        let now = Marker::File(super::modified(path));
        {
            let Ok(mut last) = self.marker.lock() else {
                return Ok(false);
            };
            if *last == Some(now) {
                return Ok(false);
            }
            // Seen: a broken file is reported once, not at every check.
            *last = Some(now);
        }
        if super::is_missing(path) {
            tracing::warn!(path = %path.display(), "JWKS file deleted: JWTs are refused until it is back");
            self.install(None, now);
            return Ok(true);
        }
        let verifier = JwtVerifier::load(path, &config.issuer, &config.audience)?
            .with_max_lifetime(config.max_lifetime);
        tracing::info!(path = %path.display(), keys = verifier.key_count(), "JWKS file reloaded");
        self.install(Some(verifier), now);
        Ok(true)
    }

    /// Fetches the JWKS URL: `Ok(true)` when another key set is now in force; a failed fetch or
    /// an unusable document keeps the previous keys (`Err`).
    pub(super) async fn fetch(&self, client: &reqwest::Client) -> Result<bool, String> {
        let (Some(config), Some(url)) = (&self.config, self.url()) else {
            return Ok(false);
        };
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let shown = crate::db::redact_url(url);
        let body = get(client, url)
            .await
            .map_err(|e| format!("JWKS URL {shown}: {e}"))?;
        let digest = Marker::Digest(Sha256::digest(&body).into());
        if self.marker.lock().is_ok_and(|m| *m == Some(digest)) {
            return Ok(false);
        }
        let json = String::from_utf8(body).map_err(|_| format!("JWKS URL {shown}: not UTF-8"))?;
        let verifier = self
            .parse(config, &json)
            .map_err(|e| format!("JWKS URL {shown}: {e}"))?;
        tracing::info!(url = %shown, keys = verifier.key_count(), "JWT keys fetched");
        self.install(Some(verifier), digest);
        Ok(true)
    }
}

/// An HTTP client for JWKS fetches: a timeout, no redirects.
pub(super) fn client() -> Result<reqwest::Client, String> {
    crate::tls::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("JWKS HTTP client: {e}"))
}

/// A JWKS URL must be `https://`, or `http://` to a loopback host.
pub fn check_url(url: &str) -> Result<(), String> {
    let shown = crate::db::redact_url(url);
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("--jwks-url {shown}: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let host = parsed.host_str().unwrap_or_default();
            let ip = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || ip
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "--jwks-url {shown}: must be https:// (plain http:// only to a loopback address)"
                ))
            }
        }
        other => Err(format!("--jwks-url {shown}: unsupported scheme {other:?}")),
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if !response.status().is_success() {
        return Err(format!("answered HTTP {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(format!("the document is over {MAX_JWKS_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
