//! Resource limits of every listener (#16): a principal over its rate is told when to retry
//! (`RetryInfo`), the `system` principal is not limited, an overloaded server sheds calls at
//! once, an oversized message is refused with a clear status, and connections that move no byte
//! — on the gRPC and the HTTP listener — or an HTTP body that never arrives give their
//! resources back (a body that trickles in: tests/e2e/tracker_webhooks.rs).

use std::time::{Duration, Instant};

use assurance_proto::risk::v1 as pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;

crate::on_both_backends!(
    a_principal_over_its_rate_is_told_when_to_retry,
    an_overloaded_server_sheds_calls_at_once,
    an_oversized_message_is_refused_clearly,
    silent_connections_and_slow_bodies_are_ended,
);

async fn limited(db: &TestDb, f: impl FnOnce(&mut risk_service::config::Config)) -> App {
    let mut config = risk_config(db);
    f(&mut config);
    let running = risk_service::start(&config, assurance_runtime::serve::Shutdown::new())
        .await
        .expect("risk-service starts");
    App::connect(running, db.tokens.clone()).await
}

async fn list(app: &App, who: &str) -> Result<pb::ListRisksResponse, tonic::Status> {
    app.risks_as(who)
        .list_risks(pb::ListRisksRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

async fn a_principal_over_its_rate_is_told_when_to_retry(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = limited(&db, |c| {
        c.limits.rate_limit = 2.0;
        c.limits.rate_burst = 5.0;
    })
    .await;
    for _ in 0..5 {
        list(&app, "viewer").await.expect("within the burst");
    }
    let err = list(&app, "viewer").await.expect_err("over the rate");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let retry = err
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo with a delay");
    assert!(retry <= Duration::from_secs(1), "{retry:?}");
    assert!(err.message().contains("viewer@example.com"), "{err:?}");
    // Others have their own budget; the system principal has none.
    list(&app, "reporter").await.expect("another principal");
    for _ in 0..20 {
        list(&app, "system").await.expect("system is exempt");
    }
    // After the delay, the viewer may call again.
    tokio::time::sleep(retry + Duration::from_millis(50)).await;
    list(&app, "viewer").await.expect("refilled");
}

async fn an_overloaded_server_sheds_calls_at_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = limited(&db, |c| c.limits.max_in_flight = 1).await;
    org_fixture(&app).await;
    for n in 0..40 {
        create_risk(&app, new_risk(&format!("Risk {n}"), "exchange-online")).await;
    }
    let calls = (0..40).map(|_| list(&app, "viewer"));
    let started = Instant::now();
    let results = futures::future::join_all(calls).await;
    let shed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let served = results.iter().filter(|r| r.is_ok()).count();
    assert!(served >= 1, "someone is served");
    assert!(
        !shed.is_empty(),
        "forty calls at once, one at a time allowed"
    );
    for err in &shed {
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
        assert!(err.get_details_retry_info().is_some(), "{err:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    // The load gone, calls are served again.
    list(&app, "viewer").await.expect("served after the burst");
}

async fn an_oversized_message_is_refused_clearly(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = limited(&db, |_| {}).await;
    org_fixture(&app).await;
    let mut risk = new_risk("Huge", "exchange-online");
    risk.description = "x".repeat(5 << 20);
    let err = app
        .risks()
        .create_risk(pb::CreateRiskRequest {
            risk: Some(risk),
            request_id: String::new(),
        })
        .await
        .expect_err("a 5 MiB message");
    assert!(
        matches!(err.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{err:?}"
    );
    assert!(
        err.message().contains("4194304"),
        "names the limit: {err:?}"
    );
    list(&app, "viewer").await.expect("the server is fine");

    // The limit is configurable both ways: 64 KiB refuses a 100 KB message; 8 MiB decodes
    // the 5 MiB one, which validation then refuses for its over-long description.
    let create = |app: &App, len: usize| {
        let mut risk = new_risk("Sized", "exchange-online");
        risk.description = "x".repeat(len);
        let mut client = app.risks();
        async move {
            client
                .create_risk(pb::CreateRiskRequest {
                    risk: Some(risk),
                    request_id: String::new(),
                })
                .await
        }
    };
    let small = limited(&db, |c| c.limits.max_message_bytes = 64 << 10).await;
    let err = create(&small, 100_000).await.expect_err("over 64 KiB");
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    assert!(err.message().contains("65536"), "names the limit: {err:?}");
    let large = limited(&db, |c| c.limits.max_message_bytes = 8 << 20).await;
    let err = create(&large, 5 << 20)
        .await
        .expect_err("too long a description");
    assert_eq!(
        err.code(),
        Code::InvalidArgument,
        "decoded, then validated: {err:?}"
    );
}

/// Whether the server closed `stream` within `within` (a read ends or fails).
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

async fn silent_connections_and_slow_bodies_are_ended(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = limited(&db, |c| {
        c.limits.idle_timeout_secs = 1;
        c.limits.request_timeout_secs = 2;
    })
    .await;
    // A hundred slow-loris connections on each listener: opened, then silent.
    let mut silent = Vec::new();
    for addr in [app.grpc_addr, app.http_addr] {
        for _ in 0..50 {
            silent.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
        }
    }
    // One sends half a request head, one a head whose body never comes.
    let mut half = tokio::net::TcpStream::connect(app.http_addr)
        .await
        .expect("connect");
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let mut bodiless = tokio::net::TcpStream::connect(app.http_addr)
        .await
        .expect("connect");
    bodiless
        .write_all(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        .await
        .expect("write");
    for stream in silent.iter_mut().chain([&mut half, &mut bodiless]) {
        assert!(
            closed_within(stream, Duration::from_secs(10)).await,
            "a silent connection is still open"
        );
    }
    // Meanwhile, well-behaved clients are served.
    let (code, _) = http_get(app.http_addr, "/healthz").await;
    assert_eq!(code, 200);
    // The test's own client connection sat idle past the (one-second) idle timeout too; a new
    // connection is served.
    eventually("gRPC still served", || async {
        list(&app, "viewer")
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .await;
}
