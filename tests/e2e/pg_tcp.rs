//! PostgreSQL over TCP goes through the in-process relay of `assurance_runtime::pg_relay`
//! (issue #17): a service on a TCP URL writes, reads, survives the server dropping its
//! connections and a restart of its own; an unreachable server fails start-up at once with
//! the reason, not after a hang.

use std::time::{Duration, Instant};

use assurance_proto::risk::v1 as pb;
use assurance_runtime::pg_relay::{relay_target, relayed_connections};
use assurance_runtime::serve::Shutdown;
use risk_service::domain::scoring::Methodology;
use sea_orm::{ConnectionTrait, Database};

use crate::helpers::*;

/// The database name of a PostgreSQL URL (its path, without the query).
fn database_name(url: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    base.rsplit('/').next().unwrap_or_default().to_string()
}

/// Ends every connection of other sessions to `url`'s database, as a server restart or a
/// failover would.
async fn drop_server_connections(url: &str) -> u64 {
    let admin = Database::connect(url).await.expect("admin connection");
    let result = admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            database_name(url)
        ))
        .await
        .expect("terminate backends");
    admin.close().await.ok();
    result.rows_affected()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(assurance_postgres),
    ignore = "set ASSURANCE_TEST_POSTGRES_URL to run on PostgreSQL"
)]
async fn a_service_on_a_tcp_url_works_through_the_relay() {
    let db = TestDb::new(Backend::Postgres).await;
    assert!(
        relay_target(&db.url).is_some(),
        "this test needs ASSURANCE_TEST_POSTGRES_URL over TCP, not a Unix socket: {}",
        db.url
    );
    let before = relayed_connections();
    let app = risk_service(&db, Methodology::Standard).await;
    assert!(
        relayed_connections() > before,
        "the service's connections went through the relay"
    );
    org_fixture(&app).await;
    let first = create_risk(&app, new_risk("Relayed write", "exchange-online")).await;
    assert_eq!(get_risk(&app, &first.name).await, first);

    // The server ends every connection of the pool: the pool opens new ones through the
    // relay and the service keeps working (a request may see the broken connection once).
    assert!(drop_server_connections(&db.url).await > 0);
    let second = eventually("writes after the server dropped the connections", || {
        let mut risks = app.risks();
        async move {
            risks
                .create_risk(pb::CreateRiskRequest {
                    risk: Some(new_risk("After the drop", "exchange-online")),
                    request_id: "after-the-drop".into(),
                })
                .await
                .map(|r| r.into_inner())
                .map_err(|e| e.to_string())
        }
    })
    .await;
    let listed = app
        .risks()
        .list_risks(pb::ListRisksRequest {
            page_size: 10,
            ..Default::default()
        })
        .await
        .expect("list risks")
        .into_inner();
    let names: Vec<&str> = listed.risks.iter().map(|r| r.name.as_str()).collect();
    assert!(names.contains(&first.name.as_str()), "{names:?}");
    assert!(names.contains(&second.name.as_str()), "{names:?}");

    // A restart: the old relay goes with the old pool, the new one serves the new pool.
    app.stop().await;
    let before = relayed_connections();
    let app = risk_service(&db, Methodology::Standard).await;
    assert!(relayed_connections() > before);
    assert_eq!(get_risk(&app, &first.name).await, first);
    assert_eq!(get_risk(&app, &second.name).await, second);
    create_risk(&app, new_risk("After the restart", "exchange-online")).await;
    app.stop().await;
}

/// A risk-service configuration over `url`, with the test tokens of `db`.
fn config_over(db: &TestDb, url: &str) -> risk_service::config::Config {
    let mut config = risk_config(db);
    config.database_url = url.to_string();
    config
}

/// Starts a risk-service over `url`, which must fail; returns the error and how long it took.
async fn failed_start(url: &str) -> (String, Duration) {
    let db = TestDb::new(Backend::Sqlite).await;
    let config = config_over(&db, url);
    let started = Instant::now();
    let error = match risk_service::start(&config, Shutdown::new()).await {
        Ok(running) => {
            running.shutdown.trigger();
            panic!("risk-service started over the unreachable {url}");
        }
        Err(e) => e,
    };
    (error, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_fails_start_up_with_the_reason() {
    // Nothing listens: refused. sqlx retries a refused connection until its connect deadline
    // (10 s, for a database still starting), through the relay as without it.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let (error, took) = failed_start(&format!("postgres://app@127.0.0.1:{port}/risk")).await;
    assert!(
        error.contains(&format!("PostgreSQL at 127.0.0.1:{port} is unreachable")),
        "{error}"
    );
    assert!(error.contains("refused"), "{error}");
    assert!(took < Duration::from_secs(15), "took {took:?}");

    // A name that does not resolve fails at once (or after the relay's 5 s connect timeout
    // when the resolver itself does not answer), never after the pool's deadline.
    let (error, took) = failed_start("postgres://app@no-such-host.invalid:5432/risk").await;
    assert!(
        error.contains("PostgreSQL at no-such-host.invalid:5432 is unreachable"),
        "{error}"
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
}
