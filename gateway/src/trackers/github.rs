//! The GitHub Issues connector: [`Tracker`] over GitHub's REST API (v3, version 2022-11-28).
//!
//! - The token travels only in the `Authorization` header: never in a URL, a log line, an
//!   error or `Debug` output. Paging follows `Link: rel="next"` only on the configured origin,
//!   so the token is never sent elsewhere.
//! - GitHub's search API indexes with a delay, so [`Tracker::find_created`] lists the
//!   repository's newest issues instead and matches the [`marker`](super::marker).
//! - Rate limits (429, a 403 with `x-ratelimit-remaining: 0`, a secondary limit) become
//!   [`TrackerError::RateLimited`] with GitHub's own delay. Writes to one repository are
//!   serial, and creations are spaced by a gap, as GitHub's secondary limits ask.
//! - A deleted (404, 410) or transferred (301, or an answer from another repository) issue is
//!   [`TrackerError::Gone`].
//!
//! [`webhook`] verifies and reads GitHub's webhook deliveries.

pub mod webhook;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use assurance_runtime::time::{parse_rfc3339, to_timestamp};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    BoxFuture, CloseReason, IssueContent, RemoteIssue, Tracker, TrackerError, marked_item,
};

/// GitHub's public API.
pub const DEFAULT_BASE_URL: &str = "https://api.github.com";

/// How long to wait on a secondary limit that names no delay (GitHub: "at least one minute").
const DEFAULT_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// GitHub's largest page.
const PAGE_SIZE: &str = "100";

/// How far before the CREATING time [`Tracker::find_created`] still looks: GitHub reports
/// whole seconds, and its clock is not ours. The marker match keeps this exact.
const CREATED_MARGIN_MICROS: i64 = 60_000_000;

/// At most this many pages per listing (10,000 issues), a bound on a runaway walk.
const MAX_PAGES: usize = 100;

/// How a [`GitHub`] connector talks to its API.
#[derive(Debug, Clone)]
pub struct GitHubOptions {
    /// The API's base URL, without a trailing slash (GitHub Enterprise: `https://host/api/v3`).
    pub base_url: String,
    /// The limit of one request, connection included.
    pub timeout: Duration,
    /// The least time between two creations in one repository.
    pub creation_gap: Duration,
}

impl Default for GitHubOptions {
    fn default() -> Self {
        GitHubOptions {
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: Duration::from_secs(30),
            creation_gap: Duration::from_secs(1),
        }
    }
}

/// The serial write gate of one repository: when its last creation ended.
type WriteGate = Arc<tokio::sync::Mutex<Option<Instant>>>;

/// One GitHub (or GitHub Enterprise) account: a base URL and a token.
pub struct GitHub {
    http: reqwest::Client,
    base_url: String,
    token: String,
    creation_gap: Duration,
    gates: Mutex<HashMap<String, WriteGate>>,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("base_url", &self.base_url)
            .field("token", &"<redacted>")
            .field("creation_gap", &self.creation_gap)
            .finish()
    }
}

/// The fields of an issue that the connector reads.
#[derive(Debug, Deserialize)]
struct Issue {
    number: u64,
    html_url: String,
    state: String,
    #[serde(default)]
    body: Option<String>,
    created_at: String,
    updated_at: String,
    #[serde(default)]
    repository_url: Option<String>,
    /// Present on pull requests, which the issues endpoints list too.
    #[serde(default)]
    pull_request: Option<Value>,
}

/// A successful answer: its headers (for paging) and its JSON.
struct Reply {
    headers: HeaderMap,
    json: Value,
}

impl GitHub {
    /// A connector with `token` (a fine-grained or classic token, or an app installation
    /// token).
    pub fn new(token: String, options: GitHubOptions) -> Result<Self, TrackerError> {
        // No redirects: a transferred issue answers 301, which is Gone, not a page to follow.
        let http = super::http_client(options.timeout)?;
        Ok(GitHub {
            http,
            base_url: options.base_url.trim_end_matches('/').to_owned(),
            token,
            creation_gap: options.creation_gap,
            gates: Mutex::new(HashMap::new()),
        })
    }

    /// The write gate of `project`, made on first use.
    fn gate(&self, project: &str) -> WriteGate {
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        gates
            .entry(project.to_ascii_lowercase())
            .or_default()
            .clone()
    }

    /// One request to `url` (absolute); 2xx answers are parsed as JSON. With `issue`, a
    /// 301, 404 or 410 means the issue is gone; otherwise it is a refusal.
    async fn send(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        issue: bool,
    ) -> Result<Reply, TrackerError> {
        let mut request = self
            .http
            .request(method, url)
            .query(query)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.map_err(transport_error)?;
        if status.is_success() {
            let json = serde_json::from_str(&text).map_err(|e| {
                TrackerError::Unavailable(format!("GitHub sent an unreadable answer: {e}"))
            })?;
            return Ok(Reply { headers, json });
        }
        Err(classify(status, &headers, &text, issue))
    }

    /// `path` under the base URL.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The issue `key` (`owner/repo#N`) of `project`, as an API path.
    fn issue_path(project: &str, key: &str) -> Result<String, TrackerError> {
        let (repo, number) = key
            .rsplit_once('#')
            .ok_or_else(|| TrackerError::Refused(format!("not a GitHub issue key: {key}")))?;
        let number: u64 = number
            .parse()
            .map_err(|_| TrackerError::Refused(format!("not a GitHub issue key: {key}")))?;
        if !repo.eq_ignore_ascii_case(project) {
            return Err(TrackerError::Refused(format!(
                "issue {key} is not in repository {project}"
            )));
        }
        Ok(format!("/repos/{project}/issues/{number}"))
    }

    /// Walks the listing of `project`'s issues with `query`, page by page, handing each issue
    /// (pull requests left out) to `visit` until it answers false.
    async fn walk(
        &self,
        project: &str,
        query: Vec<(&str, String)>,
        mut visit: impl FnMut(Issue) -> bool,
    ) -> Result<(), TrackerError> {
        let mut url = self.url(&format!("/repos/{project}/issues"));
        let mut query = query;
        for _ in 0..MAX_PAGES {
            let reply = self.send(Method::GET, &url, &query, None, false).await?;
            let issues: Vec<Issue> = serde_json::from_value(reply.json).map_err(|e| {
                TrackerError::Unavailable(format!("GitHub sent an unreadable issue list: {e}"))
            })?;
            for issue in issues {
                if issue.pull_request.is_some() {
                    continue;
                }
                if !visit(issue) {
                    return Ok(());
                }
            }
            let Some(next) = next_link(&reply.headers) else {
                return Ok(());
            };
            // The next link carries its own query; never send the token to another origin.
            if !next.starts_with(&format!("{}/", self.base_url)) {
                return Err(TrackerError::Refused(format!(
                    "GitHub's next page is outside {}",
                    self.base_url
                )));
            }
            url = next;
            query = Vec::new();
        }
        Err(TrackerError::Unavailable(format!(
            "more than {MAX_PAGES} pages of issues in {project}"
        )))
    }

    /// A write (create, update, close) through `project`'s gate; a creation also waits for the
    /// gap after the previous one.
    async fn write(
        &self,
        project: &str,
        method: Method,
        path: &str,
        body: Value,
        creation: bool,
    ) -> Result<RemoteIssue, TrackerError> {
        let gate = self.gate(project);
        let mut last_creation = gate.lock().await;
        if creation && let Some(last) = *last_creation {
            let ready = last + self.creation_gap;
            tokio::time::sleep_until(ready.into()).await;
        }
        let result = self
            .send(method, &self.url(path), &[], Some(&body), !creation)
            .await;
        if creation {
            // Even a failed create may have made the issue: the gap holds either way.
            *last_creation = Some(Instant::now());
        }
        remote_issue(project, result?.json)
    }
}

impl Tracker for GitHub {
    fn kind(&self) -> &'static str {
        "github"
    }

    fn check(&self, project: &str, statuses: &[String]) -> BoxFuture<'_, Result<(), TrackerError>> {
        let project = project.to_owned();
        let statuses = statuses.to_vec();
        Box::pin(async move {
            check_project(&project)?;
            if let Some(unknown) = statuses.iter().find(|s| *s != "open" && *s != "closed") {
                return Err(TrackerError::Refused(format!(
                    "GitHub has no status {unknown:?}: only \"open\" and \"closed\""
                )));
            }
            self.send(
                Method::GET,
                &self.url(&format!("/repos/{project}")),
                &[],
                None,
                false,
            )
            .await
            .map(|_| ())
        })
    }

    fn create(
        &self,
        project: &str,
        content: &IssueContent,
    ) -> BoxFuture<'_, Result<RemoteIssue, TrackerError>> {
        let project = project.to_owned();
        let body = issue_fields(content);
        Box::pin(async move {
            check_project(&project)?;
            self.write(
                &project,
                Method::POST,
                &format!("/repos/{project}/issues"),
                body,
                true,
            )
            .await
        })
    }

    fn find_created(
        &self,
        project: &str,
        item: &str,
        since: i64,
    ) -> BoxFuture<'_, Result<Option<RemoteIssue>, TrackerError>> {
        let project = project.to_owned();
        let item = item.to_owned();
        Box::pin(async move {
            check_project(&project)?;
            let from = since.saturating_sub(CREATED_MARGIN_MICROS);
            let mut found = None;
            let mut bad_time = None;
            let query = vec![
                ("state", "all".to_owned()),
                ("sort", "created".to_owned()),
                ("direction", "desc".to_owned()),
                ("per_page", PAGE_SIZE.to_owned()),
            ];
            self.walk(&project, query, |issue| {
                let Some(created) = parse_rfc3339(&issue.created_at) else {
                    bad_time = Some(issue.created_at.clone());
                    return false;
                };
                if created < from {
                    return false;
                }
                if issue.body.as_deref().and_then(marked_item) == Some(item.as_str()) {
                    found = Some(issue);
                    return false;
                }
                true
            })
            .await?;
            if let Some(bad) = bad_time {
                return Err(TrackerError::Unavailable(format!(
                    "GitHub sent an unreadable created_at: {bad}"
                )));
            }
            found.map(|issue| to_remote(&project, issue)).transpose()
        })
    }

    fn get(&self, project: &str, key: &str) -> BoxFuture<'_, Result<RemoteIssue, TrackerError>> {
        let project = project.to_owned();
        let key = key.to_owned();
        Box::pin(async move {
            check_project(&project)?;
            let path = Self::issue_path(&project, &key)?;
            let reply = self
                .send(Method::GET, &self.url(&path), &[], None, true)
                .await?;
            remote_issue(&project, reply.json)
        })
    }

    fn update(
        &self,
        project: &str,
        key: &str,
        content: &IssueContent,
    ) -> BoxFuture<'_, Result<RemoteIssue, TrackerError>> {
        let project = project.to_owned();
        let key = key.to_owned();
        let body = issue_fields(content);
        Box::pin(async move {
            check_project(&project)?;
            let path = Self::issue_path(&project, &key)?;
            self.write(&project, Method::PATCH, &path, body, false)
                .await
        })
    }

    fn close(
        &self,
        project: &str,
        key: &str,
        reason: CloseReason,
    ) -> BoxFuture<'_, Result<RemoteIssue, TrackerError>> {
        let project = project.to_owned();
        let key = key.to_owned();
        let state_reason = match reason {
            CloseReason::Completed => "completed",
            CloseReason::NotPlanned => "not_planned",
        };
        Box::pin(async move {
            check_project(&project)?;
            let path = Self::issue_path(&project, &key)?;
            let body = json!({"state": "closed", "state_reason": state_reason});
            self.write(&project, Method::PATCH, &path, body, false)
                .await
        })
    }

    fn changed_since(
        &self,
        project: &str,
        since: i64,
    ) -> BoxFuture<'_, Result<Vec<RemoteIssue>, TrackerError>> {
        let project = project.to_owned();
        Box::pin(async move {
            check_project(&project)?;
            // Whole seconds, rounded down: `since` is inclusive on GitHub too.
            let seconds = since.div_euclid(1_000_000) * 1_000_000;
            let query = vec![
                ("state", "all".to_owned()),
                ("sort", "updated".to_owned()),
                ("direction", "asc".to_owned()),
                ("since", to_timestamp(seconds).to_string()),
                ("per_page", PAGE_SIZE.to_owned()),
            ];
            let mut issues = Vec::new();
            self.walk(&project, query, |issue| {
                issues.push(issue);
                true
            })
            .await?;
            issues
                .into_iter()
                .map(|issue| to_remote(&project, issue))
                .collect()
        })
    }
}

/// A repository is `owner/repo` of GitHub's name characters: nothing else reaches a URL path.
fn check_project(project: &str) -> Result<(), TrackerError> {
    let valid = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match project.split_once('/') {
        Some((owner, repo)) if valid(owner) && valid(repo) => Ok(()),
        _ => Err(TrackerError::Refused(format!(
            "not a GitHub repository (owner/repo): {project:?}"
        ))),
    }
}

/// The JSON of a create or an update: title, the body with the due time and owner shown (GitHub
/// has no due date), and the assignee when it is a GitHub login.
fn issue_fields(content: &IssueContent) -> Value {
    let mut lines = Vec::new();
    if let Some(due) = content.due_time {
        lines.push(format!("**Due:** {}", to_timestamp(due)));
    }
    if let Some(owner) = &content.assignee {
        lines.push(format!("**Owner:** {owner}"));
    }
    let body = if lines.is_empty() {
        content.body.clone()
    } else {
        format!("{}\n\n{}", lines.join("  \n"), content.body)
    };
    let mut fields = json!({"title": content.title, "body": body});
    if let Some(login) = content.assignee.as_deref().filter(|a| is_login(a)) {
        fields["assignees"] = json!([login]);
    }
    fields
}

/// A GitHub login: 1 to 39 letters, digits or inner single hyphens.
fn is_login(name: &str) -> bool {
    (1..=39).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// An issue answer of `project` as a [`RemoteIssue`].
fn remote_issue(project: &str, json: Value) -> Result<RemoteIssue, TrackerError> {
    let issue: Issue = serde_json::from_value(json)
        .map_err(|e| TrackerError::Unavailable(format!("GitHub sent an unreadable issue: {e}")))?;
    to_remote(project, issue)
}

fn to_remote(project: &str, issue: Issue) -> Result<RemoteIssue, TrackerError> {
    // A transferred issue may be answered from its new repository.
    if let Some(repository) = &issue.repository_url {
        let suffix = format!("/repos/{project}").to_ascii_lowercase();
        if !repository.to_ascii_lowercase().ends_with(&suffix) {
            return Err(TrackerError::Gone);
        }
    }
    let update_time = parse_rfc3339(&issue.updated_at).ok_or_else(|| {
        TrackerError::Unavailable(format!(
            "GitHub sent an unreadable updated_at: {}",
            issue.updated_at
        ))
    })?;
    Ok(RemoteIssue {
        key: format!("{project}#{}", issue.number),
        url: issue.html_url,
        closed: issue.state == "closed",
        status: issue.state,
        update_time,
        item: issue
            .body
            .as_deref()
            .and_then(marked_item)
            .map(str::to_owned),
    })
}

/// A failed request (no answer) is worth retrying.
fn transport_error(error: reqwest::Error) -> TrackerError {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "the connection failed"
    };
    // reqwest's message names the URL, which carries no secret.
    TrackerError::Unavailable(format!("GitHub {what}: {error}"))
}

/// What a non-2xx answer means.
fn classify(status: StatusCode, headers: &HeaderMap, text: &str, issue: bool) -> TrackerError {
    let message = error_message(text);
    if issue && matches!(status.as_u16(), 301 | 404 | 410) {
        return TrackerError::Gone;
    }
    if let Some(retry_after) = rate_limit_wait(status, headers, &message) {
        return TrackerError::RateLimited { retry_after };
    }
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        return TrackerError::Unavailable(format!("GitHub answered {status}: {message}"));
    }
    TrackerError::Refused(format!("GitHub answered {status}: {message}"))
}

/// The wait a rate-limited answer asks for, following GitHub's documented order: `retry-after`,
/// else `x-ratelimit-reset` when `x-ratelimit-remaining` is 0, else a minute.
fn rate_limit_wait(status: StatusCode, headers: &HeaderMap, message: &str) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let exhausted = header("x-ratelimit-remaining") == Some("0");
    let secondary = message
        .to_ascii_lowercase()
        .contains("secondary rate limit");
    let limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN && (exhausted || secondary));
    if !limited {
        return None;
    }
    if let Some(seconds) = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(seconds));
    }
    if exhausted && let Some(reset) = header("x-ratelimit-reset").and_then(|v| v.parse().ok()) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        return Some(Duration::from_secs(u64::saturating_sub(reset, now).max(1)));
    }
    Some(DEFAULT_LIMIT_WAIT)
}

/// GitHub's `message` (and validation `errors`) of an error answer, bounded.
fn error_message(text: &str) -> String {
    let Ok(json) = serde_json::from_str::<Value>(text) else {
        return text.chars().take(200).collect();
    };
    let mut message = json["message"].as_str().unwrap_or("no message").to_owned();
    if let Some(errors) = json["errors"].as_array() {
        let details: Vec<String> = errors
            .iter()
            .map(|e| match e {
                Value::String(s) => s.clone(),
                other => other["message"]
                    .as_str()
                    .or(other["code"].as_str())
                    .unwrap_or("invalid")
                    .to_owned(),
            })
            .collect();
        if !details.is_empty() {
            message = format!("{message} ({})", details.join("; "));
        }
    }
    message.chars().take(500).collect()
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn the_token_stays_out_of_debug() {
        let github = GitHub::new("ghp_secret".into(), GitHubOptions::default()).expect("client");
        assert!(!format!("{github:?}").contains("ghp_secret"));
    }

    #[test]
    fn next_links_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(
                "<https://api.github.com/repositories/1/issues?page=2>; rel=\"next\", \
                 <https://api.github.com/repositories/1/issues?page=5>; rel=\"last\"",
            ),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://api.github.com/repositories/1/issues?page=2")
        );
        headers.insert(
            reqwest::header::LINK,
            HeaderValue::from_static("<https://x/issues?page=1>; rel=\"prev\""),
        );
        assert_eq!(next_link(&headers), None);
    }

    #[test]
    fn rate_limits_follow_githubs_order() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &headers, "Resource not accessible"),
            None
        );
        assert_eq!(
            rate_limit_wait(
                StatusCode::FORBIDDEN,
                &headers,
                "You have exceeded a secondary rate limit"
            ),
            Some(DEFAULT_LIMIT_WAIT)
        );
        headers.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(
            rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &headers, ""),
            Some(Duration::from_secs(7))
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        headers.insert("x-ratelimit-reset", HeaderValue::from_static("1"));
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &headers, "API rate limit exceeded"),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn projects_and_keys_are_checked() {
        assert!(check_project("octo/hello-world.rs").is_ok());
        for bad in ["octo", "octo/", "/x", "a/b/c", "a/..", "a/b?x=1"] {
            assert!(check_project(bad).is_err(), "{bad}");
        }
        assert_eq!(
            GitHub::issue_path("octo/hw", "Octo/HW#12").ok().as_deref(),
            Some("/repos/octo/hw/issues/12")
        );
        assert!(GitHub::issue_path("octo/hw", "other/hw#12").is_err());
        assert!(GitHub::issue_path("octo/hw", "octo/hw#x").is_err());
    }

    #[test]
    fn the_body_shows_due_time_and_owner_and_keeps_the_marker_last() {
        let fields = issue_fields(&IssueContent {
            title: "Rotate keys".into(),
            body: format!(
                "Rotate.\n{}",
                super::super::marker("risks/1/actionPlan/items/2")
            ),
            due_time: Some(1_000_000),
            assignee: Some("octocat".into()),
        });
        let body = fields["body"].as_str().unwrap_or_default();
        assert!(body.contains("1970-01-01T00:00:01Z"), "{body}");
        assert!(body.contains("octocat"));
        assert_eq!(marked_item(body), Some("risks/1/actionPlan/items/2"));
        assert_eq!(fields["assignees"], json!(["octocat"]));
        assert!(!is_login("not a login"));
    }
}
