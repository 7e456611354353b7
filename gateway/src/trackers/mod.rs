//! Bug trackers: one [`Tracker`] trait, one module per tracker kind. The sync (what to push,
//! when, and the link state in the gateway's store) is built on this trait and never speaks a
//! tracker's protocol itself.
//!
//! The contract every implementation keeps:
//! - **Markers.** Every issue Assurance creates carries the work item's name as a marker the
//!   implementation can find again ([`marker`]): a hidden comment in a GitHub body, the same
//!   line in a Redmine description. [`Tracker::find_created`] looks for it among the issues
//!   created since a time, so a create that timed out or was cut off by a crash is found, not
//!   repeated.
//! - **Errors say what to do next** ([`TrackerError`]): wait (rate limits, with the tracker's
//!   own delay), retry later (unavailable, timeouts), or stop (refused, gone).
//! - **Secrets** (tokens, webhook secrets) never appear in URLs, logs or errors.

pub mod config;
pub mod github;
pub mod redmine;
pub mod sync;

use std::{pin::Pin, time::Duration};

/// A boxed future, for the object-safe [`Tracker`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The marker of the work item `name` (e.g. `risks/…/actionPlan/items/…`), as it appears in an
/// issue created for it.
pub fn marker(name: &str) -> String {
    format!("<!-- assurance:{name} -->")
}

/// The work item named in `text` by its [`marker`], if any.
pub fn marked_item(text: &str) -> Option<&str> {
    let start = text.find("<!-- assurance:")? + "<!-- assurance:".len();
    let end = text[start..].find(" -->")?;
    Some(&text[start..start + end])
}

/// What Assurance owns of a tracker issue: written on create and on every change of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueContent {
    pub title: String,
    /// The description, ending with a link back to the item and its [`marker`].
    pub body: String,
    /// Microseconds since the epoch; shown in the body on GitHub, Redmine's due date.
    pub due_time: Option<i64>,
    /// The tracker's user id or login of the owner, when the routing maps one.
    pub assignee: Option<String>,
}

/// How an issue stands in its tracker, as fetched (payloads are hints; this is the truth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteIssue {
    /// The tracker's key, e.g. `org/repo#17` or `42`.
    pub key: String,
    pub url: String,
    /// The tracker's own status name (GitHub: `open`/`closed`; Redmine: the status name).
    pub status: String,
    pub closed: bool,
    /// When it last changed in the tracker, in microseconds since the epoch.
    pub update_time: i64,
    /// The work item its body names, when it carries a [`marker`].
    pub item: Option<String>,
}

/// A close of ours, with why (GitHub's `state_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The item was DONE.
    Completed,
    /// The item was WONT_DO.
    NotPlanned,
}

/// Why a call failed, and so what the sync does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerError {
    /// 429, a secondary limit or an exhausted budget: wait this long, then try again.
    RateLimited { retry_after: Duration },
    /// Down, 5xx, a timeout, a reset connection: retry with backoff.
    Unavailable(String),
    /// The issue was deleted, or transferred out of the project: the link is BROKEN.
    Gone,
    /// Refused for good (bad credentials, a validation error, a missing project or status):
    /// reported in the sync state, not retried until the configuration changes.
    Refused(String),
}

impl std::fmt::Display for TrackerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrackerError::RateLimited { retry_after } => {
                write!(f, "rate limited: retry after {retry_after:?}")
            }
            TrackerError::Unavailable(why) => write!(f, "unavailable: {why}"),
            TrackerError::Gone => f.write_str("the issue was deleted or moved"),
            TrackerError::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

/// The HTTP client of a connector: every request bounded by `timeout`, and no redirect followed
/// (a credential never follows one to another host; a moved issue is the connector's to
/// judge).
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, TrackerError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("assurance-gateway/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| TrackerError::Refused(format!("cannot build the HTTP client: {e}")))
}

/// One configured tracker (one base URL and credential). `project` is the routed project or
/// repository (`org/repo` on GitHub, the project identifier on Redmine).
pub trait Tracker: Send + Sync {
    /// `github`, `redmine`, …: the `system` of the items' tracker links.
    fn kind(&self) -> &'static str;

    /// At start: the tracker answers with this credential, and every status name in
    /// `statuses` exists there.
    fn check(&self, project: &str, statuses: &[String]) -> BoxFuture<'_, Result<(), TrackerError>>;

    /// Creates an issue. The caller saved the link as CREATING before.
    fn create(
        &self,
        project: &str,
        content: &IssueContent,
    ) -> BoxFuture<'_, Result<RemoteIssue, TrackerError>>;

    /// The issue carrying `item`'s marker among those created in `project` since `since`
    /// (microseconds), without relying on a search index.
    fn find_created(
        &self,
        project: &str,
        item: &str,
        since: i64,
    ) -> BoxFuture<'_, Result<Option<RemoteIssue>, TrackerError>>;

    /// The issue as it is now; [`TrackerError::Gone`] when deleted or transferred.
    fn get(&self, project: &str, key: &str) -> BoxFuture<'_, Result<RemoteIssue, TrackerError>>;

    /// Writes what Assurance owns of the issue.
    fn update(
        &self,
        project: &str,
        key: &str,
        content: &IssueContent,
    ) -> BoxFuture<'_, Result<RemoteIssue, TrackerError>>;

    /// Closes the issue (an item finished in Assurance by a person).
    fn close(
        &self,
        project: &str,
        key: &str,
        reason: CloseReason,
    ) -> BoxFuture<'_, Result<RemoteIssue, TrackerError>>;

    /// The project's issues changed at or after `since` (microseconds), for the reconciliation
    /// poll, oldest change first.
    fn changed_since(
        &self,
        project: &str,
        since: i64,
    ) -> BoxFuture<'_, Result<Vec<RemoteIssue>, TrackerError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_inside_a_body() {
        let name = "risks/0190/actionPlan/items/0191";
        let body = format!(
            "Rotate the keys.\n\n[In Assurance](https://x/y)\n{}\n",
            marker(name)
        );
        assert_eq!(marked_item(&body), Some(name));
        assert_eq!(marked_item("no marker here"), None);
    }
}
