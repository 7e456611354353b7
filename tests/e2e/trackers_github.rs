//! The GitHub connector against the GitHub double (no database): the trait's round trip, a
//! create that timed out after GitHub made the issue (found, never repeated), rate limits with
//! GitHub's own delays, outages, deleted and transferred issues, paging past 100 issues, and
//! serial writes per repository with a gap between creations.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use assurance_runtime::time::now_micros;
use assurance_tests::github_mock::{Fault, GitHubMock, deliver};
use gateway::trackers::{
    CloseReason, IssueContent, Tracker, TrackerError,
    github::{GitHub, GitHubOptions, webhook},
    marker,
};

const TOKEN: &str = "ghp_test_token_never_in_urls";
const REPO: &str = "acme/web";

fn connector(mock: &GitHubMock, timeout: Duration, creation_gap: Duration) -> GitHub {
    GitHub::new(
        TOKEN.to_owned(),
        GitHubOptions {
            base_url: mock.base_url(),
            timeout,
            creation_gap,
        },
    )
    .expect("a GitHub connector")
}

fn content(item: &str, title: &str) -> IssueContent {
    IssueContent {
        title: title.to_owned(),
        body: format!(
            "Rotate the signing keys.\n\n[In Assurance](https://assurance.example/{item})\n{}",
            marker(item)
        ),
        due_time: Some(1_800_000_000_000_000),
        assignee: Some("octocat".to_owned()),
    }
}

const MINUTE_MICROS: i64 = 60_000_000;

#[tokio::test]
async fn the_trait_round_trips_through_the_double() {
    let mock = GitHubMock::start(TOKEN, &[REPO]).await;
    let github = connector(&mock, Duration::from_secs(5), Duration::ZERO);
    let statuses = ["open".to_owned(), "closed".to_owned()];
    github.check(REPO, &statuses).await.expect("check");
    assert!(matches!(
        github.check(REPO, &["In Progress".to_owned()]).await,
        Err(TrackerError::Refused(_))
    ));
    assert!(matches!(
        github.check("acme/missing", &statuses).await,
        Err(TrackerError::Refused(_))
    ));
    let wrong = GitHub::new(
        "ghp_wrong".to_owned(),
        GitHubOptions {
            base_url: mock.base_url(),
            ..GitHubOptions::default()
        },
    )
    .expect("a connector");
    match wrong.check(REPO, &statuses).await {
        Err(TrackerError::Refused(why)) => assert!(why.contains("Bad credentials"), "{why}"),
        other => panic!("a wrong token: {other:?}"),
    }

    let since = now_micros();
    let item = "risks/r1/actionPlan/items/a1";
    let created = github
        .create(REPO, &content(item, "Rotate keys"))
        .await
        .expect("create");
    assert_eq!(created.key, "acme/web#1");
    assert_eq!(created.url, "https://github.com/acme/web/issues/1");
    assert_eq!((created.status.as_str(), created.closed), ("open", false));
    assert_eq!(created.item.as_deref(), Some(item));
    let held = &mock.issues(REPO)[0];
    assert_eq!(held.assignees, ["octocat"]);
    let body = held.body.clone().unwrap_or_default();
    assert!(body.contains("**Due:** 2027-01-15T08:00:00Z"), "{body}");

    assert_eq!(github.get(REPO, &created.key).await.expect("get"), created);
    let found = github
        .find_created(REPO, item, since)
        .await
        .expect("find_created");
    assert_eq!(found, Some(created.clone()));
    assert_eq!(
        github
            .find_created(REPO, "risks/r1/actionPlan/items/other", since)
            .await
            .expect("find_created"),
        None
    );

    let updated = github
        .update(REPO, &created.key, &content(item, "Rotate all keys"))
        .await
        .expect("update");
    assert_eq!(mock.issues(REPO)[0].title, "Rotate all keys");
    assert_eq!(updated.item.as_deref(), Some(item));

    let closed = github
        .close(REPO, &created.key, CloseReason::NotPlanned)
        .await
        .expect("close");
    assert_eq!((closed.status.as_str(), closed.closed), ("closed", true));
    assert_eq!(
        mock.issues(REPO)[0].state_reason.as_deref(),
        Some("not_planned")
    );

    // Reopened in GitHub: the poll sees it.
    mock.set_state(REPO, 1, "open", Some("reopened"));
    let changed = github
        .changed_since(REPO, since - MINUTE_MICROS)
        .await
        .expect("changed_since");
    assert_eq!(changed.len(), 1);
    assert_eq!(
        (changed[0].status.as_str(), changed[0].closed),
        ("open", false)
    );

    // A pull request carrying a marker is not an issue of ours.
    let pr_item = "risks/r1/actionPlan/items/pr";
    mock.insert(REPO, "A PR", &marker(pr_item), Duration::ZERO, true);
    assert_eq!(
        github
            .find_created(REPO, pr_item, since)
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        github
            .changed_since(REPO, since - MINUTE_MICROS)
            .await
            .expect("changed_since")
            .len(),
        1
    );

    for seen in mock.requests() {
        assert!(!seen.target.contains(TOKEN), "{}", seen.target);
    }
    assert!(!format!("{github:?}").contains(TOKEN));
}

#[tokio::test]
async fn a_create_that_timed_out_after_github_made_it_is_found_not_repeated() {
    let mock = GitHubMock::start(TOKEN, &[REPO]).await;
    let github = connector(&mock, Duration::from_millis(500), Duration::ZERO);
    let item = "incidents/i1/followUps/f1";
    let since = now_micros();
    mock.fail_next(1, Fault::Hang(Duration::from_secs(3)));
    match github.create(REPO, &content(item, "Follow up")).await {
        Err(TrackerError::Unavailable(why)) => assert!(why.contains("timed out"), "{why}"),
        other => panic!("a hung create: {other:?}"),
    }
    // What the sync does after a timeout: look for the marker before creating again.
    let found = github
        .find_created(REPO, item, since)
        .await
        .expect("find_created");
    let found = match found {
        Some(found) => found,
        None => panic!("the issue made before the timeout was not found"),
    };
    assert_eq!(found.key, "acme/web#1");
    assert_eq!(found.item.as_deref(), Some(item));
    assert_eq!(mock.issues(REPO).len(), 1, "exactly one issue");
}

#[tokio::test]
async fn rate_limits_carry_githubs_delay() {
    let mock = GitHubMock::start(TOKEN, &[REPO]).await;
    let github = connector(&mock, Duration::from_secs(5), Duration::ZERO);
    let item = "risks/r1/actionPlan/items/a1";

    mock.fail_next(1, Fault::TooManyRequests { retry_after: 7 });
    assert_eq!(
        github.create(REPO, &content(item, "t")).await,
        Err(TrackerError::RateLimited {
            retry_after: Duration::from_secs(7)
        })
    );
    assert!(mock.issues(REPO).is_empty(), "a limited call does nothing");

    mock.fail_next(1, Fault::PrimaryLimit { reset_in: 120 });
    match github.changed_since(REPO, 0).await {
        Err(TrackerError::RateLimited { retry_after }) => assert!(
            (Duration::from_secs(100)..=Duration::from_secs(121)).contains(&retry_after),
            "{retry_after:?}"
        ),
        other => panic!("a primary limit: {other:?}"),
    }

    let created = github
        .create(REPO, &content(item, "t"))
        .await
        .expect("then it works");
    assert_eq!(created.key, "acme/web#1");
}

#[tokio::test]
async fn secondary_limits_wait_as_github_asks() {
    let mock = GitHubMock::start(TOKEN, &[REPO]).await;
    let github = connector(&mock, Duration::from_secs(5), Duration::ZERO);
    let item = "risks/r1/actionPlan/items/a1";
    mock.fail_next(1, Fault::SecondaryLimit { retry_after: None });
    assert_eq!(
        github.create(REPO, &content(item, "t")).await,
        Err(TrackerError::RateLimited {
            retry_after: Duration::from_secs(60)
        })
    );
    mock.fail_next(
        1,
        Fault::SecondaryLimit {
            retry_after: Some(30),
        },
    );
    assert_eq!(
        github.create(REPO, &content(item, "t")).await,
        Err(TrackerError::RateLimited {
            retry_after: Duration::from_secs(30)
        })
    );
    assert!(mock.issues(REPO).is_empty());
}

#[tokio::test]
async fn outages_are_unavailable() {
    let mock = GitHubMock::start(TOKEN, &[REPO]).await;
    let github = connector(&mock, Duration::from_secs(5), Duration::ZERO);
    mock.fail_next(2, Fault::ServerError);
    for _ in 0..2 {
        assert!(matches!(
            github.check(REPO, &[]).await,
            Err(TrackerError::Unavailable(_))
        ));
    }
    github.check(REPO, &[]).await.expect("back");

    let base = mock.base_url();
    drop(mock);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let gone = GitHub::new(
        TOKEN.to_owned(),
        GitHubOptions {
            base_url: base,
            timeout: Duration::from_secs(2),
            creation_gap: Duration::ZERO,
        },
    )
    .expect("a connector");
    match gone.check(REPO, &[]).await {
        Err(TrackerError::Unavailable(why)) => assert!(!why.contains(TOKEN)),
        other => panic!("a stopped GitHub: {other:?}"),
    }
}

#[tokio::test]
async fn deleted_and_transferred_issues_are_gone() {
    let mock = GitHubMock::start(TOKEN, &[REPO, "acme/elsewhere"]).await;
    let github = connector(&mock, Duration::from_secs(5), Duration::ZERO);
    let first = github
        .create(REPO, &content("risks/r/actionPlan/items/1", "one"))
        .await
        .expect("create");
    let second = github
        .create(REPO, &content("risks/r/actionPlan/items/2", "two"))
        .await
        .expect("create");

    mock.delete(REPO, 1);
    assert_eq!(github.get(REPO, &first.key).await, Err(TrackerError::Gone));
    assert_eq!(
        github.close(REPO, &first.key, CloseReason::Completed).await,
        Err(TrackerError::Gone)
    );

    mock.transfer(REPO, 2, "acme/elsewhere");
    assert_eq!(github.get(REPO, &second.key).await, Err(TrackerError::Gone));
    assert_eq!(
        github
            .update(
                REPO,
                &second.key,
                &content("risks/r/actionPlan/items/2", "x")
            )
            .await,
        Err(TrackerError::Gone)
    );
    // Asking for it by its new repository's key from the old project is refused, not followed.
    assert!(matches!(
        github.get(REPO, "acme/elsewhere#1").await,
        Err(TrackerError::Refused(_))
    ));
    assert_eq!(mock.issues("acme/elsewhere")[0].title, "two");
}

#[tokio::test]
async fn listings_page_past_one_hundred_issues() {
    let mock = GitHubMock::start(TOKEN, &[REPO]).await;
    let github = connector(&mock, Duration::from_secs(5), Duration::ZERO);
    let old_item = "risks/r/actionPlan/items/old";
    let new_item = "risks/r/actionPlan/items/new";
    mock.insert(
        REPO,
        "old",
        &marker(old_item),
        Duration::from_secs(7200),
        false,
    );
    mock.insert(REPO, "new", &marker(new_item), Duration::ZERO, false);
    for n in 0..250 {
        mock.insert(
            REPO,
            &format!("other {n}"),
            "no marker",
            Duration::ZERO,
            false,
        );
    }
    let since = now_micros() - 10 * MINUTE_MICROS;

    let found = github
        .find_created(REPO, new_item, since)
        .await
        .expect("find_created");
    assert_eq!(found.map(|f| f.key), Some("acme/web#2".to_owned()));
    let pages = mock
        .requests()
        .iter()
        .filter(|r| r.target.contains("/issues?"))
        .count();
    assert_eq!(pages, 3, "251 recent issues are three pages of 100");

    // Older than the CREATING time: the walk stops there and does not find it.
    assert_eq!(
        github
            .find_created(REPO, old_item, since)
            .await
            .expect("find_created"),
        None
    );

    let changed = github
        .changed_since(REPO, since)
        .await
        .expect("changed_since");
    assert_eq!(changed.len(), 251);
    assert!(
        changed
            .windows(2)
            .all(|w| w[0].update_time <= w[1].update_time)
    );
    assert!(changed.iter().all(|c| c.item.as_deref() != Some(old_item)));
}

#[tokio::test]
async fn writes_to_one_repository_are_serial_and_creations_spaced() {
    let mock = GitHubMock::start(TOKEN, &[REPO]).await;
    mock.set_write_latency(Duration::from_millis(100));
    let gap = Duration::from_millis(300);
    let github = Arc::new(connector(&mock, Duration::from_secs(5), gap));
    let first = github
        .create(REPO, &content("risks/r/actionPlan/items/0", "zero"))
        .await
        .expect("create");

    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 1..=3 {
        let github = github.clone();
        tasks.push(tokio::spawn(async move {
            let item = format!("risks/r/actionPlan/items/{n}");
            github
                .create(REPO, &content(&item, "more"))
                .await
                .map(|_| ())
        }));
    }
    for _ in 0..2 {
        let github = github.clone();
        let key = first.key.clone();
        tasks.push(tokio::spawn(async move {
            github
                .update(REPO, &key, &content("risks/r/actionPlan/items/0", "edited"))
                .await
                .map(|_| ())
        }));
    }
    for task in tasks {
        task.await.expect("a write task").expect("a write");
    }
    assert_eq!(mock.most_writes_in_flight(), 1, "writes overlapped");
    assert_eq!(mock.issues(REPO).len(), 4);
    let creations: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    for pair in creations.windows(2) {
        assert!(
            pair[1].at.duration_since(pair[0].answered) >= gap,
            "creations closer than the gap"
        );
    }
    assert!(started.elapsed() >= gap * 3);
}

/// The deliveries the stand-in endpoint accepted: (delivery id, `action key`).
type Deliveries = Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// A stand-in for the gateway's webhook endpoint: verifies the signature, reads the hint.
async fn receive(
    axum::extract::State(seen): axum::extract::State<Deliveries>,
    headers: http::HeaderMap,
    body: axum::body::Bytes,
) -> http::StatusCode {
    let signature = headers
        .get(webhook::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    if !webhook::verify_signature(WEBHOOK_SECRET, &body, signature) {
        return http::StatusCode::UNAUTHORIZED;
    }
    let (Some(delivery), Ok(hint)) = (
        webhook::delivery_id(&headers),
        webhook::parse_issues_event(&body),
    ) else {
        return http::StatusCode::BAD_REQUEST;
    };
    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    seen.push((
        delivery.to_owned(),
        format!("{} {}", hint.action, hint.key()),
    ));
    http::StatusCode::NO_CONTENT
}

const WEBHOOK_SECRET: &[u8] = b"a webhook secret of the tracker";

#[tokio::test]
async fn the_doubles_signed_deliveries_verify_and_read_as_hints() {
    let mock = GitHubMock::start(TOKEN, &[REPO]).await;
    mock.insert(REPO, "an issue", "body", Duration::ZERO, false);
    mock.set_state(REPO, 1, "closed", Some("completed"));

    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/webhooks/github/main",
        listener.local_addr().expect("address")
    );
    let router = axum::Router::new()
        .route("/webhooks/github/main", axum::routing::post(receive))
        .with_state(seen.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    let delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let body = mock.issues_event("closed", REPO, 1);
    let send = |secret: Option<&'static [u8]>| {
        let (url, body) = (url.clone(), body.clone());
        async move {
            deliver(&url, "issues", delivery, secret, body)
                .await
                .expect("a delivery")
        }
    };
    assert_eq!(send(Some(WEBHOOK_SECRET)).await, 204);
    assert_eq!(send(Some(b"another secret")).await, 401);
    assert_eq!(send(None).await, 401);
    assert_eq!(
        *seen.lock().unwrap_or_else(|e| e.into_inner()),
        [(delivery.to_owned(), "closed acme/web#1".to_owned())]
    );
    server.abort();
}
