//! The Redmine connector: [`Redmine`] keeps issues in one Redmine server through its REST API
//! (JSON, the key in the `X-Redmine-API-Key` header).
//!
//! - The item's [`marker`](super::marker) travels in the issue's description (the body), so
//!   [`Tracker::find_created`] lists the project's issues created since a time and reads it back.
//! - The tracker new issues get and the statuses an item's close maps to are configured by name
//!   and resolved to Redmine's ids on first use, then cached (a name missing from the cache is
//!   looked up once more, for a status an administrator just added).
//! - An issue deleted, or moved to another project, is [`TrackerError::Gone`]; the connector
//!   never writes to it.
//! - The API key is never in a URL, an error or a log line, and `Debug` does not print it;
//!   redirects are not followed, so the key never reaches another host.

use std::{
    collections::HashMap,
    error::Error as _,
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use assurance_runtime::time::{parse_rfc3339, to_timestamp};
use prost_types::Timestamp;
use reqwest::{
    Client, Method, StatusCode,
    header::{HeaderValue, RETRY_AFTER},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Map, Value, json};

use super::{
    BoxFuture, CloseReason, IssueContent, RemoteIssue, Tracker, TrackerError, marked_item,
};

/// The longest any request may take: a Redmine that does not answer in time is unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Issues per page of a list (Redmine's default maximum).
const PAGE_SIZE: u64 = 100;
/// The wait after a 429 whose `Retry-After` is missing or not a number of seconds.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Redmine's API key header.
const KEY_HEADER: &str = "X-Redmine-API-Key";

/// The Redmine names the connector writes with, resolved to ids on first use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedmineNames {
    /// The tracker new issues get, e.g. `Bug`.
    pub tracker: String,
    /// The status an issue gets when its item is DONE ([`CloseReason::Completed`]), e.g. `Closed`.
    pub completed_status: String,
    /// The status an issue gets when its item is WONT_DO ([`CloseReason::NotPlanned`]), e.g.
    /// `Rejected`.
    pub not_planned_status: String,
}

impl RedmineNames {
    /// The names of a Redmine installed with its default data: `Bug`, `Closed`, `Rejected`.
    pub fn standard() -> Self {
        RedmineNames {
            tracker: "Bug".into(),
            completed_status: "Closed".into(),
            not_planned_status: "Rejected".into(),
        }
    }
}

/// One Redmine server reached with one API key (see the module documentation).
pub struct Redmine {
    /// The base URL, without a trailing slash.
    base: String,
    /// The API key, marked sensitive.
    key: HeaderValue,
    names: RedmineNames,
    client: Client,
    catalog: Mutex<Option<Arc<Catalog>>>,
    /// Project identifier → Redmine's numeric project id (identifiers never change).
    projects: Mutex<HashMap<String, u64>>,
}

impl fmt::Debug for Redmine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redmine")
            .field("base", &self.base)
            .field("api_key", &"<redacted>")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl Redmine {
    /// A connector for the Redmine at `base_url` (e.g. `https://redmine.example.com`), acting
    /// with `api_key`. Refused when the URL is not an http(s) URL without credentials or query,
    /// or the key cannot be sent as a header.
    pub fn new(base_url: &str, api_key: &str, names: RedmineNames) -> Result<Self, TrackerError> {
        let base = base_url.trim().trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&base)
            .map_err(|e| TrackerError::Refused(format!("the Redmine base URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(TrackerError::Refused(
                "the Redmine base URL must be http(s), with no credentials, query or fragment"
                    .into(),
            ));
        }
        let mut key = HeaderValue::from_str(api_key.trim()).map_err(|_| {
            TrackerError::Refused("the Redmine API key is not a valid header value".into())
        })?;
        key.set_sensitive(true);
        let client = super::http_client(REQUEST_TIMEOUT)?;
        Ok(Redmine {
            base,
            key,
            names,
            client,
            catalog: Mutex::new(None),
            projects: Mutex::new(HashMap::new()),
        })
    }

    /// One request. Only a reply that never came is an error here; the caller reads the status.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Reply, TrackerError> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .header(KEY_HEADER, self.key.clone())
            .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let unavailable = |e: reqwest::Error| {
            TrackerError::Unavailable(format!("{method} {path}: {}", describe(e)))
        };
        let response = request.send().await.map_err(unavailable)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.bytes().await.map_err(unavailable)?.to_vec();
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }

    /// A GET whose success is `T`.
    async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        what: &str,
    ) -> Result<T, TrackerError> {
        let reply = self.send(Method::GET, path, query, None).await?;
        parse(&reply.success(what)?, what)
    }

    /// The statuses and trackers, cached; `refresh` reads them again.
    async fn catalog(&self, refresh: bool) -> Result<Arc<Catalog>, TrackerError> {
        if !refresh && let Some(catalog) = lock(&self.catalog).clone() {
            return Ok(catalog);
        }
        let statuses: StatusList = self
            .get_json("/issue_statuses.json", &[], "listing issue statuses")
            .await?;
        let trackers: TrackerList = self
            .get_json("/trackers.json", &[], "listing trackers")
            .await?;
        let catalog = Arc::new(Catalog {
            statuses: statuses.issue_statuses,
            trackers: trackers.trackers,
        });
        *lock(&self.catalog) = Some(Arc::clone(&catalog));
        Ok(catalog)
    }

    /// `find` in the cached catalog, then, when it finds nothing, in a fresh one.
    async fn lookup<T>(
        &self,
        find: impl Fn(&Catalog) -> Option<T>,
    ) -> Result<Option<T>, TrackerError> {
        if let Some(found) = find(&*self.catalog(false).await?) {
            return Ok(Some(found));
        }
        Ok(find(&*self.catalog(true).await?))
    }

    /// The id of the status named `name`.
    async fn status_id(&self, name: &str) -> Result<u64, TrackerError> {
        self.lookup(|catalog| catalog.status(name).map(|status| status.id))
            .await?
            .ok_or_else(|| TrackerError::Refused(format!("Redmine has no issue status {name:?}")))
    }

    /// The id of the tracker new issues get.
    async fn tracker_id(&self) -> Result<u64, TrackerError> {
        let name = &self.names.tracker;
        self.lookup(|catalog| catalog.tracker(name).map(|tracker| tracker.id))
            .await?
            .ok_or_else(|| TrackerError::Refused(format!("Redmine has no tracker {name:?}")))
    }

    /// The project `identifier` as Redmine describes it, with its enabled trackers.
    async fn project(&self, identifier: &str) -> Result<ProjectJson, TrackerError> {
        check_identifier(identifier)?;
        let what = format!("reading Redmine project {identifier:?}");
        let project: ProjectEnvelope = self
            .get_json(
                &format!("/projects/{identifier}.json"),
                &[("include", "trackers".into())],
                &what,
            )
            .await?;
        lock(&self.projects).insert(identifier.to_owned(), project.project.id);
        Ok(project.project)
    }

    /// Redmine's numeric id of the project `identifier`, cached.
    async fn project_id(&self, identifier: &str) -> Result<u64, TrackerError> {
        if let Some(id) = lock(&self.projects).get(identifier) {
            return Ok(*id);
        }
        Ok(self.project(identifier).await?.id)
    }

    /// The issue `key` as stored, [`TrackerError::Gone`] when deleted or moved out of `project`.
    async fn fetch(&self, project: &str, key: &str) -> Result<IssueJson, TrackerError> {
        let number = issue_number(key)?;
        let project_id = self.project_id(project).await?;
        let reply = self
            .send(Method::GET, &format!("/issues/{number}.json"), &[], None)
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Err(TrackerError::Gone);
        }
        let what = format!("reading Redmine issue {number}");
        let issue: IssueEnvelope = parse(&reply.success(&what)?, &what)?;
        if issue.issue.project.id != project_id {
            return Err(TrackerError::Gone);
        }
        Ok(issue.issue)
    }

    /// Writes `fields` to the issue `number` (Redmine answers 204, no body).
    async fn put(&self, number: u64, fields: Map<String, Value>) -> Result<(), TrackerError> {
        let body = json!({ "issue": fields });
        let reply = self
            .send(
                Method::PUT,
                &format!("/issues/{number}.json"),
                &[],
                Some(&body),
            )
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Err(TrackerError::Gone);
        }
        reply.success(&format!("updating Redmine issue {number}"))?;
        Ok(())
    }

    /// The project's issues (not its subprojects'), all statuses, matching `filter`, in
    /// `sort` order, every page.
    async fn list(
        &self,
        project: &str,
        filter: (&str, String),
        sort: &str,
    ) -> Result<Vec<IssueJson>, TrackerError> {
        let project_id = self.project_id(project).await?;
        let what = format!("listing the issues of Redmine project {project:?}");
        let mut issues = Vec::new();
        loop {
            let offset = issues.len().to_string();
            let query = [
                ("project_id", project_id.to_string()),
                ("subproject_id", "!*".into()),
                ("status_id", "*".into()),
                (filter.0, filter.1.clone()),
                ("sort", sort.into()),
                ("offset", offset),
                ("limit", PAGE_SIZE.to_string()),
            ];
            let page: IssuePage = self.get_json("/issues.json", &query, &what).await?;
            let empty = page.issues.is_empty();
            issues.extend(page.issues);
            if empty || issues.len() as u64 >= page.total_count {
                return Ok(issues);
            }
        }
    }

    /// The issue as the sync sees it.
    async fn remote(&self, issue: IssueJson) -> Result<RemoteIssue, TrackerError> {
        let closed = match issue.status.is_closed {
            Some(closed) => closed,
            // Redmine before 5.1 does not say; its status list does.
            None => self
                .lookup(|catalog| {
                    catalog
                        .statuses
                        .iter()
                        .find(|s| s.id == issue.status.id)
                        .map(|s| s.is_closed)
                })
                .await?
                .unwrap_or(false),
        };
        let update_time = parse_rfc3339(&issue.updated_on).ok_or_else(|| {
            TrackerError::Unavailable(format!(
                "Redmine issue {}: unreadable updated_on {:?}",
                issue.id, issue.updated_on
            ))
        })?;
        Ok(RemoteIssue {
            key: issue.id.to_string(),
            url: format!("{}/issues/{}", self.base, issue.id),
            status: issue.status.name,
            closed,
            update_time,
            item: issue
                .description
                .as_deref()
                .and_then(marked_item)
                .map(str::to_owned),
        })
    }

    async fn check_setup(&self, project: &str, statuses: &[String]) -> Result<(), TrackerError> {
        // The credential first: every other answer depends on it. The body (which carries the
        // key itself) is not read.
        self.send(Method::GET, "/users/current.json", &[], None)
            .await?
            .success("checking the Redmine API key")?;
        let project_json = self.project(project).await?;
        let catalog = self.catalog(true).await?;
        let mut problems = Vec::new();
        for name in statuses {
            if catalog.status(name).is_none() {
                problems.push(format!("no issue status {name:?}"));
            }
        }
        for name in [&self.names.completed_status, &self.names.not_planned_status] {
            match catalog.status(name) {
                None => problems.push(format!("no issue status {name:?} (to close issues)")),
                Some(status) if !status.is_closed => {
                    problems.push(format!("issue status {name:?} is not a closed status"));
                }
                Some(_) => {}
            }
        }
        let tracker = &self.names.tracker;
        if catalog.tracker(tracker).is_none() {
            problems.push(format!("no tracker {tracker:?}"));
        } else if !project_json.trackers.iter().any(|t| &t.name == tracker) {
            problems.push(format!("tracker {tracker:?} is not enabled in the project"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(TrackerError::Refused(format!(
                "Redmine project {project:?}: {}",
                problems.join("; ")
            )))
        }
    }

    async fn create_issue(
        &self,
        project: &str,
        content: &IssueContent,
    ) -> Result<RemoteIssue, TrackerError> {
        check_identifier(project)?;
        let mut fields = issue_fields(content);
        fields.insert("project_id".into(), json!(project));
        fields.insert("tracker_id".into(), json!(self.tracker_id().await?));
        let body = json!({ "issue": fields });
        let what = format!("creating an issue in Redmine project {project:?}");
        let reply = self
            .send(Method::POST, "/issues.json", &[], Some(&body))
            .await?;
        let created: IssueEnvelope = parse(&reply.success(&what)?, &what)?;
        self.remote(created.issue).await
    }

    async fn find(
        &self,
        project: &str,
        item: &str,
        since: i64,
    ) -> Result<Option<RemoteIssue>, TrackerError> {
        let issues = self
            .list(project, ("created_on", at_or_after(since)), "created_on,id")
            .await?;
        match issues
            .into_iter()
            .find(|issue| issue.description.as_deref().and_then(marked_item) == Some(item))
        {
            Some(issue) => Ok(Some(self.remote(issue).await?)),
            None => Ok(None),
        }
    }

    async fn update_issue(
        &self,
        project: &str,
        key: &str,
        content: &IssueContent,
    ) -> Result<RemoteIssue, TrackerError> {
        // Read first: an issue moved to another project is no longer ours to write.
        let number = self.fetch(project, key).await?.id;
        self.put(number, issue_fields(content)).await?;
        self.remote(self.fetch(project, key).await?).await
    }

    async fn close_issue(
        &self,
        project: &str,
        key: &str,
        reason: CloseReason,
    ) -> Result<RemoteIssue, TrackerError> {
        let name = match reason {
            CloseReason::Completed => &self.names.completed_status,
            CloseReason::NotPlanned => &self.names.not_planned_status,
        };
        let status_id = self.status_id(name).await?;
        let issue = self.fetch(project, key).await?;
        if issue.status.id == status_id {
            return self.remote(issue).await;
        }
        let mut fields = Map::new();
        fields.insert("status_id".into(), json!(status_id));
        self.put(issue.id, fields).await?;
        self.remote(self.fetch(project, key).await?).await
    }

    async fn changed(&self, project: &str, since: i64) -> Result<Vec<RemoteIssue>, TrackerError> {
        let issues = self
            .list(project, ("updated_on", at_or_after(since)), "updated_on,id")
            .await?;
        let mut changed = Vec::with_capacity(issues.len());
        for issue in issues {
            changed.push(self.remote(issue).await?);
        }
        Ok(changed)
    }
}

impl Tracker for Redmine {
    fn kind(&self) -> &'static str {
        "redmine"
    }

    fn check(&self, project: &str, statuses: &[String]) -> BoxFuture<'_, Result<(), TrackerError>> {
        let (project, statuses) = (project.to_owned(), statuses.to_vec());
        Box::pin(async move { self.check_setup(&project, &statuses).await })
    }

    fn create(
        &self,
        project: &str,
        content: &IssueContent,
    ) -> BoxFuture<'_, Result<RemoteIssue, TrackerError>> {
        let (project, content) = (project.to_owned(), content.clone());
        Box::pin(async move { self.create_issue(&project, &content).await })
    }

    fn find_created(
        &self,
        project: &str,
        item: &str,
        since: i64,
    ) -> BoxFuture<'_, Result<Option<RemoteIssue>, TrackerError>> {
        let (project, item) = (project.to_owned(), item.to_owned());
        Box::pin(async move { self.find(&project, &item, since).await })
    }

    fn get(&self, project: &str, key: &str) -> BoxFuture<'_, Result<RemoteIssue, TrackerError>> {
        let (project, key) = (project.to_owned(), key.to_owned());
        Box::pin(async move { self.remote(self.fetch(&project, &key).await?).await })
    }

    fn update(
        &self,
        project: &str,
        key: &str,
        content: &IssueContent,
    ) -> BoxFuture<'_, Result<RemoteIssue, TrackerError>> {
        let (project, key, content) = (project.to_owned(), key.to_owned(), content.clone());
        Box::pin(async move { self.update_issue(&project, &key, &content).await })
    }

    fn close(
        &self,
        project: &str,
        key: &str,
        reason: CloseReason,
    ) -> BoxFuture<'_, Result<RemoteIssue, TrackerError>> {
        let (project, key) = (project.to_owned(), key.to_owned());
        Box::pin(async move { self.close_issue(&project, &key, reason).await })
    }

    fn changed_since(
        &self,
        project: &str,
        since: i64,
    ) -> BoxFuture<'_, Result<Vec<RemoteIssue>, TrackerError>> {
        let project = project.to_owned();
        Box::pin(async move { self.changed(&project, since).await })
    }
}

/// A reply that came, whatever its status.
struct Reply {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

impl Reply {
    /// The body of a 2xx reply; otherwise the error that tells the sync what to do next.
    fn success(self, what: &str) -> Result<Vec<u8>, TrackerError> {
        let status = self.status;
        if status.is_success() {
            return Ok(self.body);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(TrackerError::RateLimited {
                retry_after: self.retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            });
        }
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            return Err(TrackerError::Unavailable(format!("{what}: HTTP {status}")));
        }
        // Redmine's own validation messages ({"errors": [...]}), never the request.
        let messages = serde_json::from_slice::<ErrorList>(&self.body)
            .map(|list| list.errors.join("; "))
            .unwrap_or_default();
        let hint = match status {
            StatusCode::UNAUTHORIZED => "the API key was refused",
            StatusCode::FORBIDDEN => {
                "not allowed for the API key's user (is the REST API enabled?)"
            }
            StatusCode::NOT_FOUND => "not found",
            _ => "",
        };
        let detail = [hint, &messages]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(": ");
        Err(TrackerError::Refused(if detail.is_empty() {
            format!("{what}: HTTP {status}")
        } else {
            format!("{what}: HTTP {status}: {detail}")
        }))
    }
}

/// The statuses and trackers of the server.
struct Catalog {
    statuses: Vec<StatusJson>,
    trackers: Vec<Named>,
}

impl Catalog {
    fn status(&self, name: &str) -> Option<&StatusJson> {
        self.statuses.iter().find(|status| status.name == name)
    }

    fn tracker(&self, name: &str) -> Option<&Named> {
        self.trackers.iter().find(|tracker| tracker.name == name)
    }
}

#[derive(Deserialize)]
struct Named {
    id: u64,
    name: String,
}

#[derive(Deserialize)]
struct StatusJson {
    id: u64,
    name: String,
    #[serde(default)]
    is_closed: bool,
}

#[derive(Deserialize)]
struct StatusList {
    issue_statuses: Vec<StatusJson>,
}

#[derive(Deserialize)]
struct TrackerList {
    trackers: Vec<Named>,
}

#[derive(Deserialize)]
struct ProjectEnvelope {
    project: ProjectJson,
}

#[derive(Deserialize)]
struct ProjectJson {
    id: u64,
    #[serde(default)]
    trackers: Vec<Named>,
}

#[derive(Deserialize)]
struct IssueStatusRef {
    id: u64,
    name: String,
    /// Present from Redmine 5.1 on.
    is_closed: Option<bool>,
}

#[derive(Deserialize)]
struct ProjectRef {
    id: u64,
}

#[derive(Deserialize)]
struct IssueJson {
    id: u64,
    project: ProjectRef,
    status: IssueStatusRef,
    description: Option<String>,
    updated_on: String,
}

#[derive(Deserialize)]
struct IssueEnvelope {
    issue: IssueJson,
}

#[derive(Deserialize)]
struct IssuePage {
    issues: Vec<IssueJson>,
    total_count: u64,
}

#[derive(Deserialize)]
struct ErrorList {
    errors: Vec<String>,
}

/// The fields of an issue Assurance owns: subject, description (with the marker), due date,
/// and the assignee when the owner maps to a Redmine user id. An item already overdue also
/// gets its due date as start date: Redmine starts an issue today by default and refuses a due
/// date before the start (an issue's start is never after the day it was made, so a due date
/// from today on needs nothing).
fn issue_fields(content: &IssueContent) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("subject".into(), json!(content.title));
    fields.insert("description".into(), json!(content.body));
    let due = content.due_time.and_then(due_date);
    if let (Some(due), Some(today)) = (&due, due_date(assurance_runtime::time::now_micros()))
        && *due < today
    {
        fields.insert("start_date".into(), json!(due));
    }
    fields.insert("due_date".into(), json!(due));
    if let Some(user) = content
        .assignee
        .as_deref()
        .and_then(|assignee| assignee.trim().parse::<u64>().ok())
    {
        fields.insert("assigned_to_id".into(), json!(user));
    }
    fields
}

/// The UTC date of `micros`, as Redmine's `YYYY-MM-DD`.
fn due_date(micros: i64) -> Option<String> {
    let text = to_timestamp(micros).to_string();
    let date = text.get(..10)?;
    (date.as_bytes().get(4) == Some(&b'-')).then(|| date.to_owned())
}

/// A `>=` filter value for `micros`: Redmine takes whole seconds, so round down (nothing at
/// the boundary is missed).
fn at_or_after(micros: i64) -> String {
    let time = Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: 0,
    };
    format!(">={time}")
}

/// A project identifier safe in a path: Redmine's letters, digits, `-` and `_`.
fn check_identifier(identifier: &str) -> Result<(), TrackerError> {
    let valid = !identifier.is_empty()
        && identifier
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(TrackerError::Refused(format!(
            "{identifier:?} is not a Redmine project identifier"
        )))
    }
}

/// The issue number of a key.
fn issue_number(key: &str) -> Result<u64, TrackerError> {
    key.trim()
        .parse()
        .map_err(|_| TrackerError::Refused(format!("{key:?} is not a Redmine issue number")))
}

fn parse<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, TrackerError> {
    serde_json::from_slice(body)
        .map_err(|e| TrackerError::Unavailable(format!("{what}: unexpected answer: {e}")))
}

/// A transport error with its causes (reqwest's own message is only "error sending request"),
/// without the URL.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
