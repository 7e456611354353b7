//! Static API tokens: a TOML file of SHA-256 hashes, each with its principal, roles, optional
//! service scope, expiry and revocation. The tokens themselves are never stored.
//!
//! ```toml
//! [[tokens]]
//! sha256 = "3f1c…"                    # hex SHA-256 of the token
//! principal = "scanner@example.com"    # recorded in the audit trail
//! roles = ["service_manager"]
//! services = ["exchange-online"]       # optional: may change only these services' records
//! expires = "2027-06-30T00:00:00Z"     # optional
//! revoked = false                      # optional; a revoked token is refused
//! ```

use std::{collections::HashMap, io::Write, path::Path, str::FromStr, sync::Arc};

use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Principal, Roles};
use crate::validate::is_slug;

/// The prefix of tokens this product mints, so that a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "asr_";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tokens: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    sha256: String,
    principal: String,
    roles: Vec<String>,
    services: Option<Vec<String>>,
    expires: Option<String>,
    #[serde(default)]
    revoked: bool,
    /// Free text for the operator (what the token is for); accepted, not used.
    #[serde(default, rename = "note")]
    _note: String,
}

/// One accepted token.
#[derive(Debug, Clone)]
pub struct Grant {
    pub principal: Arc<Principal>,
    /// Unix seconds after which the token is refused.
    pub expires: Option<i64>,
}

/// The tokens of a tokens file, by the SHA-256 of the token.
#[derive(Debug, Default)]
pub struct TokenTable {
    grants: HashMap<[u8; 32], Grant>,
    revoked: usize,
}

impl TokenTable {
    pub fn load(path: &Path) -> Result<TokenTable, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("tokens file {}: {e}", path.display()))?;
        TokenTable::parse(&text).map_err(|e| format!("tokens file {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<TokenTable, String> {
        let file: File = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let mut table = TokenTable::default();
        for (n, entry) in file.tokens.into_iter().enumerate() {
            let at = |m: String| format!("tokens[{n}]: {m}");
            let hash = parse_hash(&entry.sha256).map_err(at)?;
            let subject = super::normalize_principal(&entry.principal);
            if subject.is_empty() || subject.len() > 256 || subject.chars().any(char::is_control) {
                return Err(at(
                    "principal must be 1 to 256 characters, none of them control characters".into(),
                ));
            }
            let roles = Roles::parse(entry.roles.iter().map(String::as_str)).map_err(at)?;
            if roles.is_empty() {
                return Err(at("roles must name at least one role".into()));
            }
            if let Some(services) = &entry.services {
                if services.is_empty() {
                    return Err(at(
                        "services, when given, must name at least one service id".into(),
                    ));
                }
                if let Some(bad) = services.iter().find(|s| !is_slug(s)) {
                    return Err(at(format!(
                        "services: {bad:?} is not a service id (a lowercase slug like exchange-online)"
                    )));
                }
            }
            let expires = entry
                .expires
                .as_deref()
                .map(|t| {
                    prost_types::Timestamp::from_str(t)
                        .map(|ts| ts.seconds)
                        .map_err(|_| at(format!("expires {t:?} is not an RFC 3339 time")))
                })
                .transpose()?;
            if table.grants.contains_key(&hash) {
                return Err(at("the same token hash appears twice".into()));
            }
            if entry.revoked {
                table.revoked += 1;
                continue;
            }
            table.grants.insert(
                hash,
                Grant {
                    principal: Arc::new(Principal {
                        subject,
                        roles,
                        services: entry.services,
                    }),
                    expires,
                },
            );
        }
        Ok(table)
    }

    /// The grant of `token`, if the file holds its hash and it is not revoked.
    pub fn find(&self, token: &str) -> Option<&Grant> {
        self.grants.get(&sha256(token))
    }

    pub fn len(&self) -> usize {
        self.grants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    pub fn revoked(&self) -> usize {
        self.revoked
    }
}

fn parse_hash(hex: &str) -> Result<[u8; 32], String> {
    let hex = hex.trim();
    let bad = || "sha256 must be 64 hexadecimal characters".to_string();
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

pub fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub fn sha256_hex(token: &str) -> String {
    sha256(token).iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random token: the prefix and 32 random bytes, base64url.
pub fn generate() -> Result<String, String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "no system randomness".to_string())?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// What to grant a new token.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub principal: &'a str,
    pub roles: Roles,
    pub services: Option<&'a [String]>,
    pub expires: Option<&'a str>,
    pub note: &'a str,
}

/// Mints a token, appends its hash to the tokens file at `path` (created with mode 0600 when
/// missing) and returns the token — the only time it exists outside its holder.
pub fn append(path: &Path, new: &NewToken<'_>) -> Result<String, String> {
    let token = generate()?;
    // A JSON string is a valid TOML basic string (the result is parsed back below).
    let quote = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let mut entry = format!(
        "\n[[tokens]]\nsha256 = \"{}\"\nprincipal = {}\nroles = [{}]\n",
        sha256_hex(&token),
        quote(new.principal),
        new.roles
            .iter()
            .map(|r| quote(r.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(services) = new.services {
        let list: Vec<_> = services.iter().map(|s| quote(s)).collect();
        entry.push_str(&format!("services = [{}]\n", list.join(", ")));
    }
    if let Some(expires) = new.expires {
        entry.push_str(&format!("expires = {}\n", quote(expires)));
    }
    if !new.note.is_empty() {
        entry.push_str(&format!("note = {}\n", quote(new.note)));
    }
    // Check the result parses before writing it.
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("tokens file {}: {e}", path.display())),
    };
    TokenTable::parse(&format!("{existing}{entry}"))?;
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("tokens file {}: {e}", path.display()))?;
    file.write_all(entry.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("tokens file {}: {e}", path.display()))?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    #[test]
    fn parses_and_finds_by_hash() {
        let text = format!(
            r#"
[[tokens]]
sha256 = "{}"
principal = "scanner@example.com"
roles = ["service_manager"]
services = ["exchange-online"]
expires = "2027-06-30T00:00:00Z"

[[tokens]]
sha256 = "{}"
principal = "old"
roles = ["admin"]
revoked = true
"#,
            sha256_hex("asr_good"),
            sha256_hex("asr_revoked")
        );
        let table = TokenTable::parse(&text).expect("valid file");
        let grant = table.find("asr_good").expect("known token");
        assert_eq!(grant.principal.subject, "scanner@example.com");
        assert!(grant.principal.roles.contains(Role::ServiceManager));
        assert_eq!(
            grant.principal.services.as_deref(),
            Some(&["exchange-online".to_string()][..])
        );
        assert_eq!(grant.expires, Some(1_814_313_600));
        assert!(table.find("asr_revoked").is_none());
        assert!(table.find("asr_unknown").is_none());
        assert_eq!((table.len(), table.revoked()), (1, 1));
    }

    #[test]
    fn rejects_bad_entries_with_their_position() {
        let hash = sha256_hex("x");
        for (body, expect) in [
            (
                "sha256 = \"abc\"\nprincipal = \"p\"\nroles = [\"admin\"]".to_string(),
                "64 hexadecimal",
            ),
            (
                format!("sha256 = \"{hash}\"\nprincipal = \"p\"\nroles = [\"root\"]"),
                "unknown role",
            ),
            (
                format!("sha256 = \"{hash}\"\nprincipal = \"p\"\nroles = []"),
                "at least one role",
            ),
            (
                format!("sha256 = \"{hash}\"\nprincipal = \"\"\nroles = [\"admin\"]"),
                "principal",
            ),
            (
                format!(
                    "sha256 = \"{hash}\"\nprincipal = \"p\"\nroles = [\"admin\"]\nservices = [\"Bad Id\"]"
                ),
                "not a service id",
            ),
            (
                format!(
                    "sha256 = \"{hash}\"\nprincipal = \"p\"\nroles = [\"admin\"]\nexpires = \"soon\""
                ),
                "RFC 3339",
            ),
            (
                format!(
                    "sha256 = \"{hash}\"\nprincipal = \"p\"\nroles = [\"admin\"]\nrole = \"x\""
                ),
                "unknown field",
            ),
        ] {
            let err = TokenTable::parse(&format!("[[tokens]]\n{body}\n")).expect_err(expect);
            assert!(err.contains(expect), "{err} should mention {expect}");
            assert!(
                err.starts_with("tokens[0]") || expect == "unknown field",
                "{err}"
            );
        }
    }

    #[test]
    fn appended_tokens_are_found_and_only_their_hash_is_stored() {
        let dir = std::env::temp_dir().join(format!("assurance-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("tokens.toml");
        let _ = std::fs::remove_file(&path);
        let services = vec!["exchange-online".to_string()];
        let token = append(
            &path,
            &NewToken {
                principal: "ci \"bot\"",
                roles: Roles::of(&[Role::Responder]),
                services: Some(&services),
                expires: None,
                note: "CI",
            },
        )
        .expect("append");
        assert!(token.starts_with(TOKEN_PREFIX));
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains(&token));
        let table = TokenTable::load(&path).expect("load");
        assert_eq!(
            table.find(&token).expect("found").principal.subject,
            "ci \"bot\""
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
