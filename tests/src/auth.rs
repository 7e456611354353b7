//! Credentials for tests and benchmarks: a tokens file with a token for every role, one
//! scoped to a service, one expired and one revoked.

use std::{collections::HashMap, path::PathBuf, sync::LazyLock};

use assurance_runtime::auth::{
    Role,
    tokens::{generate, sha256_hex},
};

/// The service the `scoped` token may change.
pub const SCOPED_SERVICE: &str = "exchange-online";

pub struct TestTokens {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    tokens: HashMap<String, String>,
}

impl Default for TestTokens {
    fn default() -> Self {
        Self::new()
    }
}

impl TestTokens {
    /// Tokens named by role (`admin`, `viewer`, …, principal `{role}@example.com`), plus
    /// `scoped` (service_manager of `exchange-online` only, principal
    /// `exchange-team@example.com`), `expired` and `revoked` (both admin), and `admin2` (a
    /// second administrator, `admin2@example.com`).
    pub fn new() -> TestTokens {
        let dir = tempfile::tempdir().expect("temp dir for tokens");
        let path = dir.path().join("tokens.toml");
        let mut tokens = HashMap::new();
        let mut text = String::new();
        let mut add = |name: &str, principal: &str, roles: &str, extra: &str| {
            let token = generate().expect("random token");
            text.push_str(&format!(
                "[[tokens]]\nsha256 = \"{}\"\nprincipal = \"{principal}\"\nroles = [{roles}]\n{extra}\n",
                sha256_hex(&token)
            ));
            tokens.insert(name.to_string(), token);
        };
        for role in Role::ALL {
            let r = role.as_str();
            add(r, &format!("{r}@example.com"), &format!("\"{r}\""), "");
        }
        add("admin2", "admin2@example.com", "\"admin\"", "");
        add(
            "scoped",
            "exchange-team@example.com",
            "\"service_manager\", \"responder\"",
            &format!("services = [\"{SCOPED_SERVICE}\"]\n"),
        );
        add(
            "expired",
            "expired@example.com",
            "\"admin\"",
            "expires = \"2001-01-01T00:00:00Z\"\n",
        );
        add(
            "revoked",
            "revoked@example.com",
            "\"admin\"",
            "revoked = true\n",
        );
        std::fs::write(&path, text).expect("write tokens file");
        TestTokens {
            _dir: dir,
            path,
            tokens,
        }
    }

    /// The token named `name` (see [`TestTokens::new`]).
    pub fn token(&self, name: &str) -> &str {
        self.tokens
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no test token {name}"))
    }

    pub fn admin(&self) -> &str {
        self.token("admin")
    }
}

/// One set of tokens per process, for server binaries started by tests and benchmarks.
pub static SHARED: LazyLock<TestTokens> = LazyLock::new(TestTokens::new);
