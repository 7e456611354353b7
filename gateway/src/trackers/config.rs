//! `--trackers-file`: the bug trackers the gateway syncs work items with, the routing table
//! from service (or business unit) and item kind to a tracker's project, and each tracker's
//! status mapping. Credentials and webhook secrets are named (a file or an environment
//! variable), never written inline; they are read once at start and never logged.
//!
//! ```toml
//! item_url = "https://assurance.example.com/items"   # optional: the link back in each issue
//!
//! [[tracker]]
//! name = "github"                   # routes and /webhooks/github/{name} use it
//! kind = "github"                   # github | redmine
//! base_url = "https://api.github.com"
//! credential_file = "/run/secrets/github-token"
//! webhook_secret_env = "GITHUB_WEBHOOK_SECRET"
//!
//! [[tracker]]
//! name = "redmine"
//! kind = "redmine"
//! base_url = "https://redmine.example.com"
//! credential_env = "REDMINE_API_KEY"
//! issue_tracker = "Bug"
//! statuses = { "New" = "OPEN", "In Progress" = "IN_PROGRESS", "Resolved" = "DONE", "Closed" = "DONE", "Rejected" = "WONT_DO" }
//! close = { done = "Closed", wont_do = "Rejected" }
//! assignees = { "alice@example.com" = "5" }   # optional: owner → Redmine user id
//!
//! [[route]]
//! service = "exchange-online"       # or business_unit = "…"; neither: every other item
//! kinds = ["action_item", "follow_up"]
//! tracker = "github"
//! project = "contoso/exchange"
//! ```

use std::{collections::BTreeMap, path::Path, time::Duration};

use assurance_proto::r#type::v1::WorkItemStatus;
use serde::Deserialize;

/// A secret read from a file or an environment variable. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The kinds of tracker Assurance speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackerKind {
    Github,
    Redmine,
}

/// The kinds of work item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    ActionItem,
    FollowUp,
}

/// Which tracker status an item closed in Assurance gets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseStatuses {
    pub done: String,
    pub wont_do: String,
}

/// One tracker as configured.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    pub name: String,
    pub kind: TrackerKind,
    pub base_url: String,
    pub credential: Secret,
    /// GitHub: the webhook secret (required).
    pub webhook_secret: Option<Secret>,
    /// Redmine: the tracker (issue type) new issues get.
    pub issue_tracker: String,
    /// The tracker's status names and the item status each means (GitHub: fixed).
    pub statuses: BTreeMap<String, WorkItemStatus>,
    /// Redmine: the status an item closed in Assurance gets.
    pub close: Option<CloseStatuses>,
    /// GitHub: the gap between two creations in one repository (secondary limits).
    pub create_gap: Duration,
    /// Requests per minute this tracker may be sent.
    pub requests_per_minute: u32,
    /// Item owners (email or principal) and the tracker user each is assigned as: a Redmine
    /// user id, a GitHub login. An owner not listed is shown in the issue, not assigned.
    pub assignees: BTreeMap<String, String>,
}

/// Which items a route takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Service(String),
    BusinessUnit(String),
    Default,
}

/// One row of the routing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub selector: Selector,
    pub kinds: Vec<ItemKind>,
    pub tracker: String,
    pub project: String,
}

/// The whole file, checked.
#[derive(Debug, Clone, Default)]
pub struct TrackersConfig {
    pub trackers: Vec<TrackerConfig>,
    pub routes: Vec<Route>,
    /// The base URL of an item's page, for the link back in each issue (`item_url/{name}`).
    pub item_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    item_url: Option<String>,
    #[serde(default)]
    tracker: Vec<RawTracker>,
    #[serde(default)]
    route: Vec<RawRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTracker {
    name: String,
    kind: TrackerKind,
    base_url: String,
    credential_file: Option<String>,
    credential_env: Option<String>,
    webhook_secret_file: Option<String>,
    webhook_secret_env: Option<String>,
    issue_tracker: Option<String>,
    #[serde(default)]
    statuses: BTreeMap<String, String>,
    close: Option<CloseStatuses>,
    create_gap_ms: Option<u64>,
    requests_per_minute: Option<u32>,
    #[serde(default)]
    assignees: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    service: Option<String>,
    business_unit: Option<String>,
    kinds: Option<Vec<ItemKind>>,
    tracker: String,
    project: String,
}

/// Reads a secret named by a file or an environment variable (exactly one), for `what`.
fn secret(
    what: &str,
    file: Option<&str>,
    env: Option<&str>,
    read_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Secret>, String> {
    let value = match (file, env) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{what}: give a file or an environment variable, not both"
            ));
        }
        (None, None) => return Ok(None),
        (Some(path), None) => std::fs::read_to_string(path)
            .map_err(|e| format!("{what}: cannot read {path}: {}", e.kind()))?,
        (None, Some(var)) => {
            read_env(var).ok_or_else(|| format!("{what}: environment variable {var} is not set"))?
        }
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    Ok(Some(Secret(value.to_string())))
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn status(name: &str) -> Option<WorkItemStatus> {
    let upper = name.to_ascii_uppercase();
    WorkItemStatus::from_str_name(&format!("WORK_ITEM_STATUS_{upper}"))
        .filter(|s| *s != WorkItemStatus::Unspecified)
}

impl TrackersConfig {
    /// Reads and checks `path`; every problem at once, none naming a secret's value.
    pub fn load(path: &Path) -> Result<TrackersConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--trackers-file {}: {e}", path.display()))?;
        Self::parse(&text, &|var| std::env::var(var).ok())
            .map_err(|e| format!("--trackers-file {}: {e}", path.display()))
    }

    /// Checks the text of a trackers file, reading environment variables with `read_env`.
    pub fn parse(
        text: &str,
        read_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<TrackersConfig, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            // Field names only: toml's message quotes the offending line, which could be
            // an inline secret.
            let message = e.message().to_string();
            if message.contains("unknown field") {
                format!(
                    "{message} (credentials and secrets are named by credential_file / \
                     credential_env and webhook_secret_file / webhook_secret_env, never inline)"
                )
            } else {
                message
            }
        })?;
        let mut problems = Vec::new();
        let mut trackers: Vec<TrackerConfig> = Vec::new();
        for t in raw.tracker {
            let at = format!("tracker {:?}", t.name);
            if !is_name(&t.name) {
                problems.push(format!("{at}: name must be 1–63 of a-z, 0-9 and -"));
            }
            if trackers.iter().any(|o| o.name == t.name) {
                problems.push(format!("{at}: named twice"));
            }
            if !(t.base_url.starts_with("https://") || t.base_url.starts_with("http://"))
                || t.base_url.contains('?')
            {
                problems.push(format!(
                    "{at}: base_url must be an http(s) URL without a query"
                ));
            }
            if reqwest::Url::parse(&t.base_url)
                .is_ok_and(|url| !url.username().is_empty() || url.password().is_some())
            {
                problems.push(format!(
                    "{at}: base_url must not carry credentials (name them with credential_file or credential_env)"
                ));
            }
            let credential = match secret(
                &format!("{at}: credential"),
                t.credential_file.as_deref(),
                t.credential_env.as_deref(),
                read_env,
            ) {
                Ok(Some(s)) => Some(s),
                Ok(None) => {
                    problems.push(format!(
                        "{at}: credential_file or credential_env is required"
                    ));
                    None
                }
                Err(e) => {
                    problems.push(e);
                    None
                }
            };
            let webhook_secret = secret(
                &format!("{at}: webhook secret"),
                t.webhook_secret_file.as_deref(),
                t.webhook_secret_env.as_deref(),
                read_env,
            )
            .unwrap_or_else(|e| {
                problems.push(e);
                None
            });
            let mut statuses = BTreeMap::new();
            match t.kind {
                TrackerKind::Github => {
                    if webhook_secret.is_none() {
                        problems.push(format!(
                            "{at}: webhook_secret_file or webhook_secret_env is required for GitHub"
                        ));
                    }
                    if !t.statuses.is_empty() || t.close.is_some() || t.issue_tracker.is_some() {
                        problems.push(format!(
                            "{at}: GitHub's statuses are fixed (open, closed): no statuses, close or issue_tracker"
                        ));
                    }
                    statuses.insert("open".to_string(), WorkItemStatus::InProgress);
                    statuses.insert("closed".to_string(), WorkItemStatus::Done);
                }
                TrackerKind::Redmine => {
                    for (name, value) in &t.statuses {
                        match status(value) {
                            Some(s) => {
                                statuses.insert(name.clone(), s);
                            }
                            None => problems.push(format!(
                                "{at}: status {name:?} maps to {value:?}, not one of OPEN, IN_PROGRESS, BLOCKED, DONE, WONT_DO"
                            )),
                        }
                    }
                    if statuses.is_empty() {
                        problems.push(format!("{at}: statuses must map the tracker's statuses"));
                    }
                    match &t.close {
                        None => problems.push(format!(
                            "{at}: close = {{ done = \"…\", wont_do = \"…\" }} is required"
                        )),
                        Some(c) => {
                            for (field, name, want) in [
                                ("done", &c.done, WorkItemStatus::Done),
                                ("wont_do", &c.wont_do, WorkItemStatus::WontDo),
                            ] {
                                if t.statuses.contains_key(name)
                                    && statuses.get(name.as_str()) != Some(&want)
                                {
                                    problems.push(format!(
                                        "{at}: close.{field} is {name:?}, which statuses map to another item status"
                                    ));
                                } else if !t.statuses.contains_key(name) {
                                    problems.push(format!(
                                        "{at}: close.{field} is {name:?}, which statuses does not map"
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            let Some(credential) = credential else {
                continue;
            };
            trackers.push(TrackerConfig {
                name: t.name,
                kind: t.kind,
                base_url: t.base_url.trim_end_matches('/').to_string(),
                credential,
                webhook_secret,
                issue_tracker: t.issue_tracker.unwrap_or_else(|| "Bug".into()),
                statuses,
                close: t.close,
                create_gap: Duration::from_millis(t.create_gap_ms.unwrap_or(1000)),
                requests_per_minute: t.requests_per_minute.unwrap_or(300).max(1),
                assignees: t.assignees,
            });
        }
        let mut routes: Vec<Route> = Vec::new();
        for (n, r) in raw.route.into_iter().enumerate() {
            let at = format!("route {}", n + 1);
            let selector = match (r.service, r.business_unit) {
                (Some(_), Some(_)) => {
                    problems.push(format!("{at}: service or business_unit, not both"));
                    continue;
                }
                (Some(s), None) => Selector::Service(s),
                (None, Some(b)) => Selector::BusinessUnit(b),
                (None, None) => Selector::Default,
            };
            let mut kinds = r
                .kinds
                .unwrap_or_else(|| vec![ItemKind::ActionItem, ItemKind::FollowUp]);
            kinds.sort();
            kinds.dedup();
            if kinds.is_empty() {
                problems.push(format!("{at}: kinds is empty"));
            }
            if !trackers.iter().any(|t| t.name == r.tracker) {
                problems.push(format!("{at}: no tracker named {:?}", r.tracker));
            }
            if r.project.trim().is_empty() {
                problems.push(format!("{at}: project is required"));
            }
            if routes
                .iter()
                .any(|o| o.selector == selector && o.kinds.iter().any(|k| kinds.contains(k)))
            {
                problems.push(format!("{at}: another route already takes these items"));
            }
            routes.push(Route {
                selector,
                kinds,
                tracker: r.tracker,
                project: r.project,
            });
        }
        if let Some(url) = &raw.item_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            problems.push("item_url must be an http(s) URL".into());
        }
        if problems.is_empty() {
            Ok(TrackersConfig {
                trackers,
                routes,
                item_url: raw.item_url,
            })
        } else {
            Err(problems.join("; "))
        }
    }

    /// The route of an item of `kind` in `service` (of `business_unit`): the service's own,
    /// else its business unit's, else the default; `None` when no route takes it.
    pub fn route(&self, service: &str, business_unit: &str, kind: ItemKind) -> Option<&Route> {
        let of = |selector: &Selector| {
            self.routes
                .iter()
                .find(|r| &r.selector == selector && r.kinds.contains(&kind))
        };
        of(&Selector::Service(service.to_string()))
            .or_else(|| of(&Selector::BusinessUnit(business_unit.to_string())))
            .or_else(|| of(&Selector::Default))
    }

    pub fn tracker(&self, name: &str) -> Option<&TrackerConfig> {
        self.trackers.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[tracker]]
name = "github"
kind = "github"
base_url = "https://api.github.com/"
credential_env = "GH_TOKEN"
webhook_secret_env = "GH_HOOK"

[[tracker]]
name = "redmine"
kind = "redmine"
base_url = "http://127.0.0.1:3999"
credential_env = "REDMINE_KEY"
statuses = { "New" = "OPEN", "In Progress" = "in_progress", "Closed" = "DONE", "Rejected" = "WONT_DO" }
close = { done = "Closed", wont_do = "Rejected" }

[[route]]
service = "exchange-online"
tracker = "github"
project = "contoso/exchange"

[[route]]
business_unit = "productivity"
kinds = ["follow_up"]
tracker = "redmine"
project = "productivity"

[[route]]
tracker = "redmine"
project = "security"
"#;

    fn env(var: &str) -> Option<String> {
        ["GH_TOKEN", "GH_HOOK", "REDMINE_KEY"]
            .contains(&var)
            .then(|| format!("secret-of-{var}\n"))
    }

    #[test]
    fn a_whole_file_parses_and_routes_by_service_then_unit_then_default() {
        let c = TrackersConfig::parse(FILE, &env).expect("valid");
        let gh = c.tracker("github").expect("github");
        assert_eq!(gh.base_url, "https://api.github.com");
        assert_eq!(gh.credential.expose(), "secret-of-GH_TOKEN");
        assert_eq!(format!("{:?}", gh.credential), "Secret(…)");
        let redmine = c.tracker("redmine").expect("redmine");
        assert_eq!(redmine.statuses["In Progress"], WorkItemStatus::InProgress);
        assert_eq!(redmine.issue_tracker, "Bug");
        let route = |s, b, k| c.route(s, b, k).map(|r| r.project.as_str());
        assert_eq!(
            route("exchange-online", "productivity", ItemKind::FollowUp),
            Some("contoso/exchange")
        );
        assert_eq!(
            route("teams", "productivity", ItemKind::FollowUp),
            Some("productivity")
        );
        assert_eq!(
            route("teams", "productivity", ItemKind::ActionItem),
            Some("security")
        );
    }

    #[test]
    fn secrets_are_never_inline_and_never_echoed() {
        let inline = FILE.replace(
            "credential_env = \"GH_TOKEN\"",
            "token = \"ghp_SUPERSECRET\"",
        );
        let err = TrackersConfig::parse(&inline, &env).expect_err("inline token");
        assert!(err.contains("never inline"), "{err}");
        assert!(!err.contains("SUPERSECRET"), "{err}");
        let in_url = FILE.replace(
            "http://127.0.0.1:3999",
            "http://admin:hunter2@127.0.0.1:3999",
        );
        let err = TrackersConfig::parse(&in_url, &env).expect_err("a password in the URL");
        assert!(err.contains("must not carry credentials"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let unset = TrackersConfig::parse(FILE, &|_| None).expect_err("unset variables");
        assert!(unset.contains("GH_TOKEN is not set"), "{unset}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let bad = r#"
[[tracker]]
name = "Bad Name"
kind = "github"
base_url = "ftp://x"
credential_env = "GH_TOKEN"

[[tracker]]
name = "redmine"
kind = "redmine"
base_url = "http://r"
credential_env = "REDMINE_KEY"
statuses = { "New" = "OPENED" }
close = { done = "Closed", wont_do = "New" }

[[route]]
service = "a"
business_unit = "b"
tracker = "x"
project = "p"

[[route]]
tracker = "nope"
project = ""
"#;
        let err = TrackersConfig::parse(bad, &env).expect_err("invalid");
        for expected in [
            "name must be",
            "base_url must be",
            "webhook_secret_file or webhook_secret_env is required",
            "not one of OPEN",
            "close.done is \"Closed\", which statuses does not map",
            "service or business_unit, not both",
            "no tracker named \"nope\"",
            "project is required",
        ] {
            assert!(err.contains(expected), "{expected} missing from: {err}");
        }
    }

    #[test]
    fn two_routes_may_not_take_the_same_items() {
        let twice = format!(
            "{FILE}\n[[route]]\nservice = \"exchange-online\"\nkinds = [\"action_item\"]\ntracker = \"redmine\"\nproject = \"x\"\n"
        );
        let err = TrackersConfig::parse(&twice, &env).expect_err("overlap");
        assert!(
            err.contains("route 4: another route already takes these items"),
            "{err}"
        );
    }
}
