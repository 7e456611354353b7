//! A GitHub double for tests: an HTTP server on `127.0.0.1:0` speaking the documented REST
//! shapes of the endpoints the connector uses (a repository; an issue list with `Link` paging;
//! create, get and update of an issue), issues kept in memory, and failures on demand (5xx,
//! 429 with `Retry-After`, a primary or a secondary limit, a hang past the client's timeout).
//! [`deliver`] sends a signed webhook delivery the way GitHub does.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use assurance_runtime::time::{now_micros, parse_rfc3339, to_timestamp};
use axum::{body::Body, extract::State, response::Response};
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

/// One failure the double answers with, instead of doing the call.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 502 Bad Gateway.
    ServerError,
    /// 429 with `Retry-After: seconds`.
    TooManyRequests { retry_after: u64 },
    /// 403 with GitHub's secondary-limit message, and `Retry-After` when given.
    SecondaryLimit { retry_after: Option<u64> },
    /// 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` this far ahead.
    PrimaryLimit { reset_in: u64 },
    /// Wait this long before answering; a create makes its issue first, so the caller times out
    /// although the issue exists.
    Hang(Duration),
}

/// An issue as the double holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockIssue {
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    /// `open` or `closed`.
    pub state: String,
    pub state_reason: Option<String>,
    pub assignees: Vec<String>,
    /// Seconds since the epoch (GitHub's times are whole seconds).
    pub created_at: i64,
    pub updated_at: i64,
    /// A pull request, which the issue list shows too.
    pub pull_request: bool,
    pub deleted: bool,
    /// Moved to this repository under this number.
    pub transferred_to: Option<(String, u64)>,
}

/// A request the double saw.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    /// The path and the query string.
    pub target: String,
    pub at: Instant,
    /// When the double finished answering.
    pub answered: Instant,
}

#[derive(Default)]
struct Repository {
    full_name: String,
    id: u64,
    issues: Vec<MockIssue>,
}

#[derive(Default)]
struct Inner {
    token: String,
    repositories: HashMap<String, Repository>,
    /// Faults to answer with, each for any request or only a request of one method.
    faults: VecDeque<(Option<Method>, Fault)>,
    seen: Vec<SeenRequest>,
    write_latency: Duration,
    writes_in_flight: usize,
    most_writes_in_flight: usize,
}

/// The running double; stopped when dropped.
pub struct GitHubMock {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for GitHubMock {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl GitHubMock {
    /// Starts a double that accepts `token` and holds the (empty) `repositories`
    /// (`owner/repo`).
    pub async fn start(token: &str, repositories: &[&str]) -> GitHubMock {
        let inner = Arc::new(Mutex::new(Inner {
            token: token.to_owned(),
            ..Inner::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the GitHub double");
        let addr = listener.local_addr().expect("the double's address");
        let mock = GitHubMock {
            addr,
            inner: inner.clone(),
            server: tokio::spawn(async move {
                let router = axum::Router::new()
                    .fallback(handle)
                    .with_state(Shared { inner, addr });
                let _ = axum::serve(listener, router).await;
            }),
        };
        for name in repositories {
            mock.add_repository(name);
        }
        mock
    }

    /// The API's base URL, for the connector's options.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an empty repository.
    pub fn add_repository(&self, full_name: &str) {
        let mut inner = self.lock();
        let id = inner.repositories.len() as u64 + 1;
        inner
            .repositories
            .entry(full_name.to_ascii_lowercase())
            .or_insert_with(|| Repository {
                full_name: full_name.to_owned(),
                id,
                issues: Vec::new(),
            });
    }

    /// Answers the next `count` calls with `fault`.
    pub fn fail_next(&self, count: usize, fault: Fault) {
        let mut inner = self.lock();
        inner
            .faults
            .extend(std::iter::repeat_n((None, fault), count));
    }

    /// Answers the next `count` calls of `method` (e.g. `POST`, a create) with `fault`; other
    /// calls pass.
    pub fn fail_next_on(&self, method: Method, count: usize, fault: Fault) {
        let mut inner = self.lock();
        inner
            .faults
            .extend(std::iter::repeat_n((Some(method), fault), count));
    }

    /// Forgets the faults not answered yet: the tracker is back.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Makes every write (POST, PATCH) take this long, to show overlapping writes.
    pub fn set_write_latency(&self, latency: Duration) {
        self.lock().write_latency = latency;
    }

    /// The most writes the double was handling at once.
    pub fn most_writes_in_flight(&self) -> usize {
        self.lock().most_writes_in_flight
    }

    /// Every request seen, oldest first.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.lock().seen.clone()
    }

    /// The issues (pull requests included) of a repository, deleted and moved ones too.
    pub fn issues(&self, repository: &str) -> Vec<MockIssue> {
        self.lock()
            .repositories
            .get(&repository.to_ascii_lowercase())
            .map(|r| r.issues.clone())
            .unwrap_or_default()
    }

    /// Adds an issue (or a pull request) made `age` ago, as someone else would; its number.
    pub fn insert(
        &self,
        repository: &str,
        title: &str,
        body: &str,
        age: Duration,
        pull_request: bool,
    ) -> u64 {
        let at = now_seconds() - age.as_secs() as i64;
        let mut inner = self.lock();
        let repo = inner
            .repositories
            .get_mut(&repository.to_ascii_lowercase())
            .expect("a repository of the double");
        let number = repo.issues.len() as u64 + 1;
        repo.issues.push(MockIssue {
            number,
            title: title.to_owned(),
            body: Some(body.to_owned()),
            state: "open".to_owned(),
            state_reason: None,
            assignees: Vec::new(),
            created_at: at,
            updated_at: at,
            pull_request,
            deleted: false,
            transferred_to: None,
        });
        number
    }

    /// Changes an issue as a person would in GitHub (`closed`/`open`, with a reason).
    pub fn set_state(&self, repository: &str, number: u64, state: &str, reason: Option<&str>) {
        self.change(repository, number, |issue| {
            issue.state = state.to_owned();
            issue.state_reason = reason.map(str::to_owned);
        });
    }

    /// Deletes an issue: it answers 404 from now on.
    pub fn delete(&self, repository: &str, number: u64) {
        self.change(repository, number, |issue| issue.deleted = true);
    }

    /// Transfers an issue to `target` (a repository of the double): the old address answers
    /// 301. The new number.
    pub fn transfer(&self, repository: &str, number: u64, target: &str) -> u64 {
        let mut inner = self.lock();
        let moved = inner
            .repositories
            .get(&repository.to_ascii_lowercase())
            .and_then(|r| r.issues.iter().find(|i| i.number == number))
            .cloned()
            .expect("an issue of the double");
        let to = inner
            .repositories
            .get_mut(&target.to_ascii_lowercase())
            .expect("a repository of the double");
        let new_number = to.issues.len() as u64 + 1;
        let target_name = to.full_name.clone();
        to.issues.push(MockIssue {
            number: new_number,
            updated_at: now_seconds(),
            ..moved
        });
        if let Some(issue) = find_issue(&mut inner, repository, number) {
            issue.transferred_to = Some((target_name, new_number));
        }
        new_number
    }

    fn change(&self, repository: &str, number: u64, f: impl FnOnce(&mut MockIssue)) {
        let mut inner = self.lock();
        let issue = find_issue(&mut inner, repository, number).expect("an issue of the double");
        f(issue);
        issue.updated_at = now_seconds();
    }

    /// The documented payload of an `issues` event about an issue of the double.
    pub fn issues_event(&self, action: &str, repository: &str, number: u64) -> Vec<u8> {
        let inner = self.lock();
        let repo = inner
            .repositories
            .get(&repository.to_ascii_lowercase())
            .expect("a repository of the double");
        let issue = repo
            .issues
            .iter()
            .find(|i| i.number == number)
            .expect("an issue of the double");
        let payload = json!({
            "action": action,
            "issue": issue_json(&self.base_url(), repo, issue),
            "repository": repository_json(&self.base_url(), repo),
            "sender": {"login": "octocat", "id": 1, "type": "User"},
        });
        serde_json::to_vec(&payload).expect("a JSON payload")
    }
}

/// Sends a webhook delivery the way GitHub does (`X-GitHub-Event`, `X-GitHub-Delivery`,
/// `X-Hub-Signature-256` over the raw body, `User-Agent: GitHub-Hookshot/…`); the answer's
/// status code. `secret: None` sends no signature.
pub async fn deliver(
    url: &str,
    event: &str,
    delivery: &str,
    secret: Option<&[u8]>,
    body: Vec<u8>,
) -> Result<u16, String> {
    let mut request = reqwest::Client::new()
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "GitHub-Hookshot/044aadd")
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", delivery)
        .header("X-GitHub-Hook-ID", "292430182");
    if let Some(secret) = secret {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let tag = ring::hmac::sign(&key, &body);
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        request = request.header("X-Hub-Signature-256", format!("sha256={hex}"));
    }
    let response = request.body(body).send().await.map_err(|e| e.to_string())?;
    Ok(response.status().as_u16())
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    addr: SocketAddr,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn now_seconds() -> i64 {
    now_micros() / 1_000_000
}

fn rfc3339(seconds: i64) -> String {
    to_timestamp(seconds * 1_000_000).to_string()
}

fn find_issue<'a>(
    inner: &'a mut Inner,
    repository: &str,
    number: u64,
) -> Option<&'a mut MockIssue> {
    inner
        .repositories
        .get_mut(&repository.to_ascii_lowercase())?
        .issues
        .iter_mut()
        .find(|i| i.number == number)
}

fn repository_json(base: &str, repo: &Repository) -> Value {
    let (owner, name) = repo.full_name.split_once('/').unwrap_or(("", ""));
    json!({
        "id": repo.id,
        "name": name,
        "full_name": repo.full_name,
        "owner": {"login": owner, "type": "Organization"},
        "private": true,
        "html_url": format!("https://github.com/{}", repo.full_name),
        "url": format!("{base}/repos/{}", repo.full_name),
        "has_issues": true,
        "permissions": {"admin": false, "maintain": false, "push": true, "triage": true, "pull": true},
    })
}

fn issue_json(base: &str, repo: &Repository, issue: &MockIssue) -> Value {
    let full = &repo.full_name;
    let n = issue.number;
    let mut json = json!({
        "id": repo.id * 1_000_000 + n,
        "url": format!("{base}/repos/{full}/issues/{n}"),
        "repository_url": format!("{base}/repos/{full}"),
        "html_url": format!("https://github.com/{full}/issues/{n}"),
        "number": n,
        "state": issue.state,
        "state_reason": issue.state_reason,
        "title": issue.title,
        "body": issue.body,
        "user": {"login": "assurance-bot", "id": 2, "type": "User"},
        "labels": [],
        "assignees": issue.assignees.iter().map(|a| json!({"login": a})).collect::<Vec<_>>(),
        "comments": 0,
        "locked": false,
        "created_at": rfc3339(issue.created_at),
        "updated_at": rfc3339(issue.updated_at),
        "closed_at": (issue.state == "closed").then(|| rfc3339(issue.updated_at)),
    });
    if issue.pull_request {
        json["pull_request"] = json!({
            "url": format!("{base}/repos/{full}/pulls/{n}"),
            "html_url": format!("https://github.com/{full}/pull/{n}"),
        });
    }
    json
}

fn reply(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header("x-ratelimit-limit", "5000")
        .header("x-ratelimit-remaining", "4999")
        .body(Body::from(body.to_string()))
        .expect("a response")
}

fn error(status: StatusCode, message: &str) -> Response {
    reply(
        status,
        &json!({"message": message, "documentation_url": "https://docs.github.com/rest", "status": status.as_str()}),
    )
}

/// The answer to a fault (a hang is handled by the caller).
fn fault_reply(fault: &Fault) -> Option<Response> {
    let mut response = match fault {
        Fault::ServerError => error(StatusCode::BAD_GATEWAY, "Server Error"),
        Fault::TooManyRequests { retry_after } => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
            r.headers_mut()
                .insert(header::RETRY_AFTER, (*retry_after).into());
            r
        }
        Fault::SecondaryLimit { retry_after } => {
            let mut r = error(
                StatusCode::FORBIDDEN,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
            if let Some(seconds) = retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, (*seconds).into());
            }
            r
        }
        Fault::PrimaryLimit { reset_in } => {
            let mut r = error(
                StatusCode::FORBIDDEN,
                "API rate limit exceeded for user ID 2.",
            );
            let reset = now_seconds() as u64 + reset_in;
            r.headers_mut().insert("x-ratelimit-remaining", 0.into());
            r.headers_mut().insert("x-ratelimit-reset", reset.into());
            r
        }
        Fault::Hang(_) => return None,
    };
    response.headers_mut().insert(
        "x-github-request-id",
        "0000:0000:0000".parse().expect("a header"),
    );
    Some(response)
}

async fn handle(State(shared): State<Shared>, request: Request<Body>) -> Response {
    let at = Instant::now();
    let method = request.method().clone();
    let uri = request.uri().clone();
    let authorized = {
        let inner = shared.lock();
        request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            == Some(format!("Bearer {}", inner.token).as_str())
    };
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let write = method == Method::POST || method == Method::PATCH;
    let (fault, latency) = {
        let mut inner = shared.lock();
        let fault = inner
            .faults
            .iter()
            .position(|(only, _)| only.as_ref().is_none_or(|m| *m == method))
            .and_then(|at| inner.faults.remove(at))
            .map(|(_, fault)| fault);
        if write {
            inner.writes_in_flight += 1;
            inner.most_writes_in_flight = inner.most_writes_in_flight.max(inner.writes_in_flight);
        }
        (fault, inner.write_latency)
    };
    // Counted down even when the client gives up and the server drops this answer.
    let _in_flight = write.then(|| InFlight(shared.inner.clone()));
    if write && !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match (&fault, authorized) {
        (_, false) => error(StatusCode::UNAUTHORIZED, "Bad credentials"),
        (Some(Fault::Hang(pause)), true) => {
            // A create is done before the hang: the caller times out, the issue exists.
            let response = route(&shared, &method, &uri, &body);
            tokio::time::sleep(*pause).await;
            response
        }
        (Some(fault), true) => {
            fault_reply(fault).unwrap_or_else(|| route(&shared, &method, &uri, &body))
        }
        (None, true) => route(&shared, &method, &uri, &body),
    };
    shared.lock().seen.push(SeenRequest {
        method: method.to_string(),
        target: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        at,
        answered: Instant::now(),
    });
    response
}

/// One write being answered.
struct InFlight(Arc<Mutex<Inner>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        inner.writes_in_flight = inner.writes_in_flight.saturating_sub(1);
    }
}

fn route(shared: &Shared, method: &Method, uri: &http::Uri, body: &[u8]) -> Response {
    let base = format!("http://{}", shared.addr);
    let parts: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let query = parse_query(uri.query().unwrap_or(""));
    let mut inner = shared.lock();
    let (repository, rest) = match parts.as_slice() {
        ["repos", owner, name, rest @ ..] => (format!("{owner}/{name}"), rest),
        _ => return error(StatusCode::NOT_FOUND, "Not Found"),
    };
    let Some(repo) = inner.repositories.get_mut(&repository.to_ascii_lowercase()) else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match (method.as_str(), rest) {
        ("GET", []) => reply(StatusCode::OK, &repository_json(&base, repo)),
        ("GET", ["issues"]) => list(&base, repo, &query),
        ("POST", ["issues"]) => create(&base, repo, &input),
        (verb @ ("GET" | "PATCH"), ["issues", number]) => {
            let Ok(number) = number.parse::<u64>() else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            issue(&base, repo, number, (verb == "PATCH").then_some(&input))
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%3A", ":").replace("%3a", ":")))
        .collect()
}

/// `GET /repos/{o}/{r}/issues`: state, sort, direction, since, per_page (≤ 100), page; a
/// `Link` header to the next and last pages.
fn list(base: &str, repo: &Repository, query: &HashMap<String, String>) -> Response {
    let get = |k: &str, default: &str| query.get(k).cloned().unwrap_or_else(|| default.to_owned());
    let state = get("state", "open");
    let since = query
        .get("since")
        .map(|s| parse_rfc3339(s).map(|m| m / 1_000_000));
    if let Some(None) = since {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
    }
    let per_page = get("per_page", "30")
        .parse::<usize>()
        .unwrap_or(30)
        .clamp(1, 100);
    let page = get("page", "1").parse::<usize>().unwrap_or(1).max(1);
    let mut issues: Vec<&MockIssue> = repo
        .issues
        .iter()
        .filter(|i| !i.deleted && i.transferred_to.is_none())
        .filter(|i| state == "all" || i.state == state)
        .filter(|i| since.flatten().is_none_or(|s| i.updated_at >= s))
        .collect();
    match get("sort", "created").as_str() {
        "updated" => issues.sort_by_key(|i| (i.updated_at, i.number)),
        _ => issues.sort_by_key(|i| (i.created_at, i.number)),
    }
    if get("direction", "desc") == "desc" {
        issues.reverse();
    }
    let pages = issues.len().div_ceil(per_page).max(1);
    let shown: Vec<Value> = issues
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|i| issue_json(base, repo, i))
        .collect();
    let mut response = reply(StatusCode::OK, &Value::Array(shown));
    if page < pages {
        let link_to = |n: usize| {
            let mut pairs: Vec<String> = query
                .iter()
                .filter(|(k, _)| k.as_str() != "page")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            pairs.sort();
            pairs.push(format!("page={n}"));
            format!(
                "<{base}/repos/{}/issues?{}>",
                repo.full_name,
                pairs.join("&")
            )
        };
        let link = format!(
            "{}; rel=\"next\", {}; rel=\"last\"",
            link_to(page + 1),
            link_to(pages)
        );
        response
            .headers_mut()
            .insert(header::LINK, link.parse().expect("a Link header"));
    }
    response
}

/// `POST /repos/{o}/{r}/issues`: 201 with the issue, 422 without a title.
fn create(base: &str, repo: &mut Repository, input: &Value) -> Response {
    let Some(title) = input["title"].as_str().filter(|t| !t.is_empty()) else {
        return reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"message": "Validation Failed", "errors": [{"resource": "Issue", "code": "missing_field", "field": "title"}]}),
        );
    };
    let now = now_seconds();
    let issue = MockIssue {
        number: repo.issues.len() as u64 + 1,
        title: title.to_owned(),
        body: input["body"].as_str().map(str::to_owned),
        state: "open".to_owned(),
        state_reason: None,
        assignees: logins(&input["assignees"]),
        created_at: now,
        updated_at: now,
        pull_request: false,
        deleted: false,
        transferred_to: None,
    };
    let json = issue_json(base, repo, &issue);
    repo.issues.push(issue);
    reply(StatusCode::CREATED, &json)
}

/// `GET` or `PATCH /repos/{o}/{r}/issues/{n}`: 404 when deleted, 301 when transferred.
fn issue(base: &str, repo: &mut Repository, number: u64, patch: Option<&Value>) -> Response {
    let Some(index) = repo.issues.iter().position(|i| i.number == number) else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let found = &repo.issues[index];
    if found.deleted {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    if let Some((target, new_number)) = &found.transferred_to {
        let location = format!("{base}/repos/{target}/issues/{new_number}");
        let mut response = reply(
            StatusCode::MOVED_PERMANENTLY,
            &json!({"message": "Moved Permanently", "url": location, "documentation_url": "https://docs.github.com/rest"}),
        );
        response
            .headers_mut()
            .insert(header::LOCATION, location.parse().expect("a Location"));
        return response;
    }
    if let Some(input) = patch {
        let issue = &mut repo.issues[index];
        if let Some(title) = input["title"].as_str() {
            issue.title = title.to_owned();
        }
        if let Some(body) = input["body"].as_str() {
            issue.body = Some(body.to_owned());
        }
        if input.get("assignees").is_some() {
            issue.assignees = logins(&input["assignees"]);
        }
        match input["state"].as_str() {
            Some("closed") => {
                issue.state = "closed".to_owned();
                issue.state_reason = Some(
                    input["state_reason"]
                        .as_str()
                        .unwrap_or("completed")
                        .to_owned(),
                );
            }
            Some("open") if issue.state == "closed" => {
                issue.state = "open".to_owned();
                issue.state_reason = Some("reopened".to_owned());
            }
            _ => {}
        }
        issue.updated_at = now_seconds();
    }
    reply(StatusCode::OK, &issue_json(base, repo, &repo.issues[index]))
}

fn logins(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
