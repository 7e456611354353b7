//! Turns a bearer token into a [`Principal`]: static tokens by the SHA-256 of the token, JWTs
//! by signature and claims. Each verified token is cached until it expires, so a request costs
//! one hash lookup; the tokens file is re-read when it changes (revocation takes effect within
//! the reload interval), which empties the cache.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, RwLock, Weak},
    time::{Duration, SystemTime},
};

use super::{Principal, Roles, jwt::JwtVerifier, tokens::TokenTable};
use crate::validate::is_slug;

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
    jwt: Option<JwtVerifier>,
    cache: RwLock<HashMap<Box<str>, Cached>>,
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
    /// An authenticator over an optional tokens file and optional JWT verifier; at least one
    /// is required.
    pub fn new(
        tokens_path: Option<PathBuf>,
        jwt: Option<JwtVerifier>,
    ) -> Result<Arc<Authenticator>, String> {
        if tokens_path.is_none() && jwt.is_none() {
            return Err("no credentials configured: give --tokens-file and/or --jwks-file".into());
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
        }))
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
        let verified = self.verify(token, now)?;
        let principal = verified.principal.clone();
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(token.into(), verified);
        }
        Ok(principal)
    }

    fn verify(&self, token: &str, now: i64) -> Result<Cached, String> {
        if token.is_empty() || token.len() > 16 * 1024 {
            return Err("the bearer token is malformed".into());
        }
        if token.bytes().filter(|b| *b == b'.').count() == 2 {
            let Some(jwt) = &self.jwt else {
                return Err("JWTs are not accepted by this server (no --jwks-file)".into());
            };
            let claims = jwt
                .verify(token, now)
                .map_err(|e| format!("the JWT is not valid: {e}"))?;
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
    /// emptied, so a removed or revoked token is refused from now on; a file that no longer
    /// parses keeps the previous tokens in force (and is reported).
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let Some(path) = &self.tokens_path else {
            return Ok(false);
        };
        let now_modified = modified(path);
        {
            let Ok(last) = self.tokens_modified.lock() else {
                return Ok(false);
            };
            if *last == now_modified {
                return Ok(false);
            }
        }
        // Mark the change seen first: a file that does not parse is reported once, not on
        // every check.
        if let Ok(mut last) = self.tokens_modified.lock() {
            *last = now_modified;
        }
        let table = TokenTable::load(path)?;
        tracing::info!(path = %path.display(), tokens = table.len(), revoked = table.revoked(), "tokens file reloaded");
        if let Ok(mut tokens) = self.tokens.write() {
            *tokens = Arc::new(table);
        }
        if let Ok(mut cache) = self.cache.write() {
            cache.clear();
        }
        Ok(true)
    }

    /// Checks the tokens file every `every` while this authenticator lives.
    pub fn spawn_reloader(self: &Arc<Self>, every: Duration) {
        if self.tokens_path.is_none() {
            return;
        }
        let weak: Weak<Authenticator> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(this) = weak.upgrade() else { return };
                if let Err(e) = this.reload_if_changed() {
                    tracing::error!(error = %e, "tokens file not reloaded; the previous tokens stay in force");
                }
            }
        });
    }
}

/// The file's modification time and length, as a change marker.
fn modified(path: &std::path::Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    // Add the length so that two writes within the clock's resolution still differ.
    Some(meta.modified().ok()? + Duration::from_nanos(meta.len()))
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

    #[test]
    fn needs_a_credential_source() {
        assert!(Authenticator::new(None, None).is_err());
    }
}
