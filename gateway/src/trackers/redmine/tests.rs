//! Unit tests of the Redmine connector: what it sends and how it reads answers, without a
//! Redmine (tests/e2e/trackers_redmine.rs drives a real one).

use super::*;

fn reply(status: u16, retry_after: Option<u64>, body: &str) -> Reply {
    Reply {
        status: StatusCode::from_u16(status).expect("a status"),
        retry_after: retry_after.map(Duration::from_secs),
        body: body.as_bytes().to_vec(),
    }
}

/// A server on 127.0.0.1 that answers each request with `answer(request head)` (a whole HTTP
/// response), and keeps the request heads it received.
async fn serve(
    answer: impl Fn(&str) -> String + Send + 'static,
) -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = vec![0u8; 8192];
            let n = stream.read(&mut request).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&request[..n]).into_owned();
            let response = answer(&head);
            lock(&log).push(head);
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    (format!("http://{addr}"), seen)
}

/// A 200 with a JSON body, closing the connection.
fn ok_json(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn times_become_redmine_dates_and_filters() {
    // 2026-11-29T23:59:59.999999Z
    let micros = 1_795_996_799_999_999;
    assert_eq!(due_date(micros).as_deref(), Some("2026-11-29"));
    assert_eq!(at_or_after(micros), ">=2026-11-29T23:59:59Z");
    assert_eq!(at_or_after(0), ">=1970-01-01T00:00:00Z");
}

#[test]
fn fields_carry_the_body_due_date_and_a_numeric_assignee_only() {
    let mut content = IssueContent {
        title: "Rotate keys".into(),
        body: format!(
            "Do it.\n{}",
            super::super::marker("risks/1/actionPlan/items/2")
        ),
        due_time: Some(1_795_996_799_999_999),
        assignee: Some("7".into()),
    };
    let fields = issue_fields(&content);
    assert_eq!(fields["subject"], "Rotate keys");
    assert_eq!(fields["due_date"], "2026-11-29");
    assert_eq!(fields["assigned_to_id"], 7);
    content.due_time = None;
    content.assignee = Some("alice".into());
    let fields = issue_fields(&content);
    assert_eq!(
        fields["due_date"],
        Value::Null,
        "no due time clears the date"
    );
    assert!(!fields.contains_key("assigned_to_id"));
}

#[test]
fn debug_never_prints_the_key() {
    let redmine = Redmine::new(
        "http://127.0.0.1:1/",
        "s3cr3t-key",
        RedmineNames::standard(),
    )
    .expect("a connector");
    let printed = format!("{redmine:?}");
    assert!(!printed.contains("s3cr3t-key"), "{printed}");
    assert!(printed.contains("<redacted>"), "{printed}");
    assert!(printed.contains("\"http://127.0.0.1:1\""), "{printed}");
}

#[test]
fn base_urls_with_credentials_or_other_schemes_are_refused() {
    for url in [
        "http://user:pw@redmine.example",
        "ftp://redmine.example",
        "http://redmine.example/?key=x",
        "not a url",
    ] {
        assert!(
            matches!(
                Redmine::new(url, "k", RedmineNames::standard()),
                Err(TrackerError::Refused(_))
            ),
            "{url}"
        );
    }
    assert!(matches!(
        Redmine::new("http://r.example", "bad\nkey", RedmineNames::standard()),
        Err(TrackerError::Refused(_))
    ));
}

#[test]
fn keys_and_identifiers_are_checked_before_any_request() {
    assert_eq!(issue_number("42"), Ok(42));
    assert!(matches!(
        issue_number("42/../x"),
        Err(TrackerError::Refused(_))
    ));
    assert!(check_identifier("ops-team_2").is_ok());
    for bad in ["", "a/b", "a?b", "ops team"] {
        assert!(check_identifier(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn statuses_say_what_to_do_next() {
    assert_eq!(
        reply(429, Some(7), "").success("x"),
        Err(TrackerError::RateLimited {
            retry_after: Duration::from_secs(7)
        })
    );
    assert_eq!(
        reply(429, None, "").success("x"),
        Err(TrackerError::RateLimited {
            retry_after: DEFAULT_RETRY_AFTER
        })
    );
    assert!(matches!(
        reply(503, None, "").success("x"),
        Err(TrackerError::Unavailable(_))
    ));
    assert_eq!(
        reply(422, None, r#"{"errors":["Subject cannot be blank"]}"#).success("creating"),
        Err(TrackerError::Refused(
            "creating: HTTP 422 Unprocessable Entity: Subject cannot be blank".into()
        ))
    );
    assert_eq!(
        reply(401, None, "").success("checking"),
        Err(TrackerError::Refused(
            "checking: HTTP 401 Unauthorized: the API key was refused".into()
        ))
    );
    assert_eq!(reply(204, None, "").success("x"), Ok(Vec::new()));
}

#[tokio::test]
async fn a_429_with_retry_after_is_rate_limited_and_a_dead_port_unavailable() {
    let (base, _) = serve(|_| {
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 12\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into()
    })
    .await;
    let redmine = Redmine::new(&base, "k", RedmineNames::standard()).expect("a connector");
    assert_eq!(
        redmine.get("ops", "1").await,
        Err(TrackerError::RateLimited {
            retry_after: Duration::from_secs(12)
        })
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let redmine = Redmine::new(
        &format!("http://127.0.0.1:{port}"),
        "s3cr3t-key",
        RedmineNames::standard(),
    )
    .expect("a connector");
    match redmine.check("ops", &[]).await {
        Err(TrackerError::Unavailable(why)) => assert!(!why.contains("s3cr3t-key"), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn lists_read_every_page_even_short_ones_and_keep_the_key_out_of_urls() {
    let issue = |id: u64| {
        format!(
            r#"{{"id":{id},"project":{{"id":3}},"status":{{"id":1,"name":"New","is_closed":false}},"description":"x\r\n<!-- assurance:items/{id} -->","updated_on":"2026-11-29T10:00:0{id}Z"}}"#
        )
    };
    let (base, seen) = serve(move |head| {
        let line = head.lines().next().unwrap_or_default();
        if line.starts_with("GET /projects/ops.json") {
            ok_json(r#"{"project":{"id":3,"trackers":[]}}"#)
        } else if line.contains("offset=0&") {
            // A server whose pages are shorter than asked for.
            ok_json(&format!(
                r#"{{"issues":[{},{}],"total_count":3}}"#,
                issue(1),
                issue(2)
            ))
        } else if line.contains("offset=2&") {
            ok_json(&format!(r#"{{"issues":[{}],"total_count":3}}"#, issue(3)))
        } else {
            "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                .into()
        }
    })
    .await;
    let redmine = Redmine::new(&base, "s3cr3t-key", RedmineNames::standard()).expect("a connector");
    let changed = redmine
        .changed_since("ops", 1_795_996_799_999_999)
        .await
        .expect("every page");
    let keys: Vec<&str> = changed.iter().map(|issue| issue.key.as_str()).collect();
    assert_eq!(keys, ["1", "2", "3"]);
    assert_eq!(changed[2].item.as_deref(), Some("items/3"));
    assert_eq!(changed[2].url, format!("{base}/issues/3"));
    assert_eq!(changed[2].update_time, 1_795_946_403_000_000);

    let heads = lock(&seen).clone();
    let list = heads
        .iter()
        .find(|head| head.contains("/issues.json"))
        .expect("a list request");
    assert!(
        list.starts_with(
            "GET /issues.json?project_id=3&subproject_id=%21*&status_id=*&updated_on=%3E%3D2026-11-29T23%3A59%3A59Z&sort=updated_on%2Cid&offset=0&limit=100 "
        ),
        "{list}"
    );
    for head in &heads {
        let (line, headers) = head.split_once("\r\n").unwrap_or_default();
        assert!(!line.contains("s3cr3t-key"), "the key in a URL: {line}");
        assert!(
            headers
                .to_ascii_lowercase()
                .contains("x-redmine-api-key: s3cr3t-key"),
            "{head}"
        );
    }
}
