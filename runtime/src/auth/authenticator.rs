//! Turns a bearer token into a [`Principal`]: static tokens by the SHA-256 of the token, JWTs
//! by signature and claims. Each verified token is cached until it expires, so a request costs
//! one hash lookup. The tokens file and a JWKS file are re-read when they change (revocation
//! takes effect within the reload interval), a JWKS URL is fetched again periodically and on an
//! unknown `kid`; each change empties the cache.
//!
//! A deleted tokens file means no tokens from it; a file that no longer parses keeps the last
//! good set in force, logs an error and counts a reload failure ([`Authenticator::reload_failures`]).
//! A verification that started before a reload never puts its result into the cache after the
//! reload emptied it: every reload bumps a generation, and a result is cached only when the
//! generation it started under is still current.

pub mod jwks;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, RwLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use super::{Principal, Roles, jwt::JwtError, jwt::JwtVerifier, tokens::TokenTable};
use crate::validate::is_slug;
use jwks::{JwksConfig, JwtKeys};

/// Verified tokens kept at most; the cache is emptied when it would grow past this.
const CACHE_CAPACITY: usize = 65_536;

/// How often the tokens file is checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Clone)]
struct Cached {
    principal: Arc<Principal>,
    /// Unix seconds from which the token is refused.
    expires: Option<i64>,
}

pub struct Authenticator {
    tokens_path: Option<PathBuf>,
    tokens: RwLock<Arc<TokenTable>>,
    tokens_modified: Mutex<Option<SystemTime>>,
    jwt: Option<JwtKeys>,
    cache: RwLock<HashMap<Box<str>, Cached>>,
    /// Bumped (under the cache's write lock) by every change of the credentials.
    generation: AtomicU64,
    /// Reloads of the tokens or JWKS file, and JWKS fetches, that failed.
    reload_failures: AtomicU64,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("tokens_path", &self.tokens_path)
            .field("jwt", &self.jwt.is_some())
            .finish()
    }
}

impl Authenticator {
    /// An authenticator over an optional tokens file and optional fixed JWT verifier; at least
    /// one is required.
    pub fn new(
        tokens_path: Option<PathBuf>,
        jwt: Option<JwtVerifier>,
    ) -> Result<Arc<Authenticator>, String> {
        Authenticator::build(tokens_path, jwt.map(JwtKeys::fixed))
    }

    /// An authenticator over an optional tokens file and optional JWKS file or URL.
    pub fn with_jwks(
        tokens_path: Option<PathBuf>,
        jwks: Option<JwksConfig>,
    ) -> Result<Arc<Authenticator>, String> {
        Authenticator::build(tokens_path, jwks.map(JwtKeys::open).transpose()?)
    }

    fn build(
        tokens_path: Option<PathBuf>,
        jwt: Option<JwtKeys>,
    ) -> Result<Arc<Authenticator>, String> {
        if tokens_path.is_none() && jwt.is_none() {
            return Err(
                "no credentials configured: give --tokens-file and/or --jwks-file or --jwks-url"
                    .into(),
            );
        }
        let (table, modified) = match &tokens_path {
            Some(path) => (TokenTable::load(path)?, modified(path)),
            None => (TokenTable::default(), None),
        };
        if let Some(path) = &tokens_path {
            tracing::info!(path = %path.display(), tokens = table.len(), revoked = table.revoked(), "tokens file loaded");
        }
        Ok(Arc::new(Authenticator {
            tokens_path,
            tokens: RwLock::new(Arc::new(table)),
            tokens_modified: Mutex::new(modified),
            jwt,
            cache: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
        }))
    }

    /// How many reloads of the tokens or JWKS file, and fetches of the JWKS URL, failed since
    /// start (the last good credentials stayed in force each time).
    pub fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }

    /// How many times the JWKS URL was fetched.
    pub fn jwks_fetches(&self) -> u64 {
        self.jwt.as_ref().map_or(0, JwtKeys::fetches)
    }

    /// The principal of `token` at `now` (unix seconds), or why it is refused. The reason is
    /// for the caller; it never contains the token.
    pub fn authenticate(&self, token: &str, now: i64) -> Result<Arc<Principal>, String> {
        if let Some(hit) = self.cache.read().ok().and_then(|c| c.get(token).cloned()) {
            return match hit.expires {
                Some(at) if now >= at => Err("the token has expired".into()),
                _ => Ok(hit.principal),
            };
        }
        // Read before the credentials are: a reload after this point makes the result stale.
        let generation = self.generation.load(Ordering::Acquire);
        let verified = self.verify(token, now)?;
        let principal = verified.principal.clone();
        self.cache_if_current(token, verified, generation);
        Ok(principal)
    }

    /// Caches `verified` unless the credentials changed since `generation` was read.
    fn cache_if_current(&self, token: &str, verified: Cached, generation: u64) -> bool {
        let Ok(mut cache) = self.cache.write() else {
            return false;
        };
        if self.generation.load(Ordering::Acquire) != generation {
            return false;
        }
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(token.into(), verified);
        true
    }

    /// Empties the cache and makes every verification in flight uncacheable.
    fn invalidate(&self) {
        if let Ok(mut cache) = self.cache.write() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            cache.clear();
        }
    }

    fn verify(&self, token: &str, now: i64) -> Result<Cached, String> {
        if token.is_empty() || token.len() > 16 * 1024 {
            return Err("the bearer token is malformed".into());
        }
        if token.bytes().filter(|b| *b == b'.').count() == 2 {
            let Some(keys) = &self.jwt else {
                return Err(
                    "JWTs are not accepted by this server (no --jwks-file or --jwks-url)".into(),
                );
            };
            let Some(jwt) = keys.current() else {
                keys.kid_miss();
                return Err("the JWT is not valid: the server has no signing keys yet".into());
            };
            let claims = jwt.verify(token, now).map_err(|e| {
                if e == JwtError::UnknownKey && keys.kid_miss() {
                    format!("the JWT is not valid: {e} (the key set is being fetched again)")
                } else {
                    format!("the JWT is not valid: {e}")
                }
            })?;
            let roles = claims
                .roles
                .iter()
                .filter_map(|r| super::Role::parse(r))
                .fold(Roles::NONE, |acc, r| acc.union(Roles::of(&[r])));
            if let Some(bad) = claims.services.iter().flatten().find(|s| !is_slug(s)) {
                return Err(format!(
                    "the JWT's services claim holds {bad:?}, which is not a service id"
                ));
            }
            let subject = super::normalize_principal(&claims.subject);
            if subject.is_empty() || subject.chars().any(char::is_control) {
                return Err("the JWT's sub is empty or holds control characters".into());
            }
            return Ok(Cached {
                principal: Arc::new(Principal {
                    subject,
                    roles,
                    services: claims.services,
                }),
                expires: Some(claims.expires.saturating_add(super::jwt::LEEWAY_SECS)),
            });
        }
        let table = self
            .tokens
            .read()
            .map(|t| t.clone())
            .map_err(|_| "token table unavailable".to_string())?;
        let grant = table
            .find(token)
            .ok_or_else(|| "unknown or revoked token".to_string())?;
        if grant.expires.is_some_and(|at| now >= at) {
            return Err("the token has expired".into());
        }
        Ok(Cached {
            principal: grant.principal.clone(),
            expires: grant.expires,
        })
    }

    /// Re-reads the tokens file if it changed since it was last read. On success the cache is
    /// emptied, so a removed or revoked token is refused from now on; a deleted file leaves no
    /// tokens in force; a file that no longer parses keeps the previous tokens in force (and is
    /// reported, and counted in [`Authenticator::reload_failures`]).
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let Some(path) = &self.tokens_path else {
            return Ok(false);
        };
        let now_modified = modified(path);
        {
            let Ok(mut last) = self.tokens_modified.lock() else {
                return Ok(false);
            };
            if *last == now_modified {
                return Ok(false);
            }
            // Mark the change seen first: a file that does not parse is reported once, not on
            // every check.
            *last = now_modified;
        }
        let table = if is_missing(path) {
            tracing::warn!(path = %path.display(), "tokens file deleted: none of its tokens is accepted any more");
            TokenTable::default()
        } else {
            let table = TokenTable::load(path).inspect_err(|_| {
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
            })?;
            tracing::info!(path = %path.display(), tokens = table.len(), revoked = table.revoked(), "tokens file reloaded");
            table
        };
        if let Ok(mut tokens) = self.tokens.write() {
            *tokens = Arc::new(table);
        }
        self.invalidate();
        Ok(true)
    }

    /// Re-reads the JWKS file if it changed (see [`Authenticator::reload_if_changed`]).
    pub fn reload_jwks_if_changed(&self) -> Result<bool, String> {
        let Some(keys) = &self.jwt else {
            return Ok(false);
        };
        let changed = keys.reload_file_if_changed().inspect_err(|_| {
            self.reload_failures.fetch_add(1, Ordering::Relaxed);
        })?;
        if changed {
            self.invalidate();
        }
        Ok(changed)
    }

    /// Fetches the JWKS URL now (no-op without one).
    pub async fn fetch_jwks(&self, client: &reqwest::Client) -> Result<bool, String> {
        let Some(keys) = &self.jwt else {
            return Ok(false);
        };
        let changed = keys.fetch(client).await.inspect_err(|_| {
            self.reload_failures.fetch_add(1, Ordering::Relaxed);
        })?;
        if changed {
            self.invalidate();
        }
        Ok(changed)
    }

    /// Checks the tokens and JWKS files every `every`, and fetches the JWKS URL (at once, every
    /// [`jwks::REFRESH_INTERVAL`], and when a token names an unknown key), while this
    /// authenticator lives. Must run inside a tokio runtime.
    pub fn spawn_reloader(self: &Arc<Self>, every: Duration) {
        let has_file = self.jwt.as_ref().is_some_and(JwtKeys::is_file);
        if self.tokens_path.is_some() || has_file {
            let weak: Weak<Authenticator> = Arc::downgrade(self);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(this) = weak.upgrade() else { return };
                    if let Err(e) = this.reload_if_changed() {
                        tracing::error!(error = %e, failures = this.reload_failures(), "tokens file not reloaded; the previous tokens stay in force");
                    }
                    if let Err(e) = this.reload_jwks_if_changed() {
                        tracing::error!(error = %e, failures = this.reload_failures(), "JWKS file not reloaded; the previous keys stay in force");
                    }
                }
            });
        }
        if self.jwt.as_ref().and_then(JwtKeys::url).is_some() {
            self.spawn_fetcher();
        }
    }

    fn spawn_fetcher(self: &Arc<Self>) {
        let Some(wake) = self.jwt.as_ref().map(|k| k.wake.clone()) else {
            return;
        };
        let weak: Weak<Authenticator> = Arc::downgrade(self);
        tokio::spawn(async move {
            let client = match jwks::client() {
                Ok(client) => client,
                Err(e) => {
                    tracing::error!(error = %e, "JWKS URL not fetched; JWTs are refused");
                    return;
                }
            };
            loop {
                let wait = {
                    let Some(this) = weak.upgrade() else { return };
                    match this.fetch_jwks(&client).await {
                        Ok(_) => jwks::REFRESH_INTERVAL,
                        Err(e) => {
                            tracing::error!(error = %e, failures = this.reload_failures(), "JWKS URL not fetched; the previous keys (if any) stay in force");
                            if this.jwt.as_ref().and_then(JwtKeys::current).is_some() {
                                jwks::REFRESH_INTERVAL
                            } else {
                                jwks::RETRY_INTERVAL
                            }
                        }
                    }
                };
                // Waits without keeping the authenticator alive; ends soon after it is gone.
                let deadline = tokio::time::Instant::now() + wait;
                loop {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => break,
                        () = wake.notified() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {
                            if weak.strong_count() == 0 {
                                return;
                            }
                        }
                    }
                }
            }
        });
    }
}

/// The file's modification time and length, as a change marker.
fn modified(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    // Add the length so that two writes within the clock's resolution still differ.
    Some(meta.modified().ok()? + Duration::from_nanos(meta.len()))
}

/// Whether `path` is gone (not merely unreadable).
fn is_missing(path: &Path) -> bool {
    matches!(std::fs::metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// The metrics reason of a refusal [`Authenticator::authenticate`] gave (its messages are for
/// the caller; this keeps the label set bounded).
pub fn refusal_reason(message: &str) -> crate::observe::AuthFailure {
    use crate::observe::AuthFailure;
    if message.contains("expired") {
        AuthFailure::Expired
    } else if message.starts_with("unknown or revoked") {
        AuthFailure::UnknownToken
    } else if message.contains("JWT") {
        AuthFailure::InvalidJwt
    } else {
        AuthFailure::MalformedCredentials
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tokens::sha256_hex;

    fn write(path: &std::path::Path, entries: &[(&str, &str, bool)]) {
        let text: String = entries
            .iter()
            .map(|(token, expires, revoked)| {
                format!(
                    "[[tokens]]\nsha256 = \"{}\"\nprincipal = \"p-{token}\"\nroles = [\"viewer\"]\n{}revoked = {revoked}\n",
                    sha256_hex(token),
                    if expires.is_empty() { String::new() } else { format!("expires = \"{expires}\"\n") },
                )
            })
            .collect();
        std::fs::write(path, text).expect("write tokens");
    }

    #[test]
    fn static_tokens_expiry_and_revocation_by_reload() {
        let dir = std::env::temp_dir().join(format!("assurance-authn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("tokens.toml");
        write(
            &path,
            &[("a", "", false), ("b", "2001-01-01T00:00:00Z", false)],
        );
        let auth = Authenticator::new(Some(path.clone()), None).expect("loads");
        let now = 1_900_000_000;
        assert_eq!(auth.authenticate("a", now).expect("valid").subject, "p-a");
        // Cached: still the same answer.
        assert_eq!(auth.authenticate("a", now).expect("valid").subject, "p-a");
        assert!(
            auth.authenticate("b", now)
                .expect_err("expired")
                .contains("expired")
        );
        assert!(auth.authenticate("c", now).is_err());
        assert!(
            auth.authenticate("x.y.z", now)
                .expect_err("no jwks")
                .contains("JWT")
        );
        assert_eq!(auth.reload_if_changed(), Ok(false));
        write(&path, &[("a", "", true), ("b", "", false)]);
        assert_eq!(auth.reload_if_changed(), Ok(true));
        assert!(
            auth.authenticate("a", now)
                .expect_err("revoked")
                .contains("revoked")
        );
        assert!(auth.authenticate("b", now).is_ok());
        // A broken file keeps the tokens in force.
        std::fs::write(&path, "not toml [[").expect("write");
        assert!(auth.reload_if_changed().is_err());
        assert!(auth.authenticate("b", now).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("assurance-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn a_deleted_tokens_file_leaves_no_tokens_and_a_broken_one_keeps_the_last_good_set() {
        let dir = temp_dir("authn-delete");
        let path = dir.join("tokens.toml");
        write(&path, &[("a", "", false)]);
        let auth = Authenticator::new(Some(path.clone()), None).expect("loads");
        let now = 1_900_000_000;
        assert!(auth.authenticate("a", now).is_ok());
        // A typo: the last good set stays, the failure is counted once.
        std::fs::write(&path, "[[tokens]\nsha256 = ").expect("write");
        assert!(auth.reload_if_changed().is_err());
        assert_eq!(auth.reload_failures(), 1);
        assert_eq!(auth.reload_if_changed(), Ok(false), "reported once");
        assert_eq!(auth.reload_failures(), 1);
        assert!(auth.authenticate("a", now).is_ok());
        // Deleted: no token of it is accepted, cached or not.
        std::fs::remove_file(&path).expect("delete");
        assert_eq!(auth.reload_if_changed(), Ok(true));
        assert!(auth.authenticate("a", now).is_err());
        assert_eq!(auth.reload_failures(), 1, "a deletion is not a failure");
        // Back: its tokens are accepted again.
        write(&path, &[("a", "", false)]);
        assert_eq!(auth.reload_if_changed(), Ok(true));
        assert!(auth.authenticate("a", now).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_verification_that_straddles_a_reload_is_not_cached() {
        let dir = temp_dir("authn-race");
        let path = dir.join("tokens.toml");
        write(&path, &[("a", "", false)]);
        let auth = Authenticator::new(Some(path.clone()), None).expect("loads");
        let now = 1_900_000_000;
        // A request reads the generation and verifies against the old table...
        let generation = auth.generation.load(Ordering::Acquire);
        let verified = auth.verify("a", now).expect("valid before the reload");
        // ...the token is revoked and the file reloaded meanwhile...
        write(&path, &[("a", "", true)]);
        assert_eq!(auth.reload_if_changed(), Ok(true));
        // ...so its result is not cached, and the token is refused from now on.
        assert!(!auth.cache_if_current("a", verified, generation));
        assert!(
            auth.authenticate("a", now)
                .expect_err("revoked")
                .contains("revoked")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_jwks_file_is_reloaded_when_it_changes() {
        use crate::auth::authenticator::jwks::{JwksConfig, JwksLocation};
        let dir = temp_dir("authn-jwks");
        let path = dir.join("jwks.json");
        let rsa = |kid: &str| {
            // The modulus of the test-only RSA key is not needed to load a set: any 2048-bit
            // odd modulus parses.
            let n = base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                [0xc5u8; 256],
            );
            format!(r#"{{"keys":[{{"kty":"RSA","kid":"{kid}","n":"{n}","e":"AQAB"}}]}}"#)
        };
        std::fs::write(&path, rsa("one")).expect("write");
        let auth = Authenticator::with_jwks(
            None,
            Some(JwksConfig {
                location: JwksLocation::File(path.clone()),
                issuer: "https://idp".into(),
                audience: "assurance".into(),
                max_lifetime: 3600,
            }),
        )
        .expect("loads");
        let keys = auth.jwt.as_ref().expect("jwt");
        let first = keys.current().expect("keys");
        assert_eq!(auth.reload_jwks_if_changed(), Ok(false));
        std::fs::write(&path, rsa("second")).expect("write");
        assert_eq!(auth.reload_jwks_if_changed(), Ok(true));
        let second = keys.current().expect("keys");
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(second.max_lifetime(), 3600);
        // Broken: the keys stay, the failure is counted.
        std::fs::write(&path, "{").expect("write");
        assert!(auth.reload_jwks_if_changed().is_err());
        assert_eq!(auth.reload_failures(), 1);
        assert!(Arc::ptr_eq(&second, &keys.current().expect("kept")));
        // Deleted: no keys.
        std::fs::remove_file(&path).expect("delete");
        assert_eq!(auth.reload_jwks_if_changed(), Ok(true));
        assert!(keys.current().is_none());
        assert!(
            auth.authenticate("x.y.z", 1)
                .expect_err("no keys")
                .contains("no signing keys")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn jwks_urls_must_be_https_or_loopback() {
        use jwks::check_url;
        assert!(check_url("https://idp.example/.well-known/jwks.json").is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_url("http://[::1]:8080/jwks").is_ok());
        assert!(check_url("http://localhost/jwks").is_ok());
        let err = check_url("http://user:s3cret@idp.example/jwks").expect_err("plain http");
        assert!(err.contains("https") && !err.contains("s3cret"), "{err}");
        assert!(check_url("ftp://idp.example/jwks").is_err());
        assert!(check_url("not a url").is_err());
    }

    #[test]
    fn needs_a_credential_source() {
        assert!(Authenticator::new(None, None).is_err());
    }
}
