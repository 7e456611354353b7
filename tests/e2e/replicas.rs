//! Several replicas of each service on one PostgreSQL database: migrations run once under the
//! advisory lock while the probes answer, a forwarding gateway balances across risk-service
//! replicas (no lost or duplicated create, the read cache invalidated across replicas, calls
//! spread over both) and ejects a stopped one, and two incident-service relays deliver each
//! event once. PostgreSQL only: on SQLite a database is one file of one process.

mod relays;
mod taps;

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use assurance_proto::risk::v1 as pb;
use assurance_runtime::serve::Shutdown;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use tonic::Code;

use crate::helpers::*;

macro_rules! postgres_only {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(
                    not(assurance_postgres),
                    ignore = "set ASSURANCE_TEST_POSTGRES_URL to run on PostgreSQL"
                )]
                async fn $name() {
                    super::$name().await
                }
            )*
        }
    };
}
pub(crate) use postgres_only;

postgres_only!(
    replicas_started_at_once_migrate_once,
    probes_answer_while_another_replica_migrates,
    a_gateway_balances_two_risk_replicas_without_losing_or_duplicating,
    a_stopped_replica_is_ejected_and_a_restarted_one_comes_back,
);

/// A risk-service replica over `db` (in this process: a store, cache and listeners of its own).
async fn risk_replica(db: &TestDb) -> App {
    let running = risk_service::start(&risk_config(db), Shutdown::new())
        .await
        .expect("risk-service replica starts");
    App::connect(running, db.tokens.clone()).await
}

/// A forwarding gateway over `db`'s PostgreSQL database, balancing over `risks`.
async fn balancing_gateway(db: &TestDb, risks: &[SocketAddr], incident: SocketAddr) -> App {
    let mut config = gateway_config(db);
    config.risk_url = risks.iter().map(|a| format!("http://{a}")).collect();
    config.incident_url = vec![format!("http://{incident}")];
    config.database_url = Some(db.url.clone());
    start_gateway(db, config).await
}

/// `(rows, distinct versions)` of a migrations table.
async fn migration_rows(conn: &sea_orm::DatabaseConnection, table: &str) -> (i64, i64) {
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT count(*), count(DISTINCT version) FROM {table}"),
        ))
        .await
        .expect("count migrations")
        .expect("a row");
    (
        row.try_get_by_index(0).expect("count"),
        row.try_get_by_index(1).expect("distinct"),
    )
}

/// Three replicas of each service and two gateways start at the same time on one fresh
/// database (whose tables they partly share): every one starts, and each migration is
/// recorded once.
async fn replicas_started_at_once_migrate_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let risk = risk_config(&db);
    let incident = incident_config(&db);
    let mut gateway = gateway_config(&db);
    gateway.database_url = Some(db.url.clone());
    let risks = (0..3).map(|_| risk_service::start(&risk, Shutdown::new()));
    let incidents = (0..3).map(|_| incident_service::start(&incident, Shutdown::new()));
    let gateways = (0..2).map(|_| gateway::start(&gateway, Shutdown::new()));
    let (risks, incidents, gateways) = tokio::join!(
        futures::future::join_all(risks),
        futures::future::join_all(incidents),
        futures::future::join_all(gateways),
    );
    let mut running = Vec::new();
    for started in risks.into_iter().chain(incidents).chain(gateways) {
        running.push(started.expect("every replica starts"));
    }
    let conn = Database::connect(&db.url).await.expect("connect");
    for table in [
        "risk_migrations",
        "incident_migrations",
        "gateway_migrations",
    ] {
        let (rows, distinct) = migration_rows(&conn, table).await;
        assert!(
            rows > 0 && rows == distinct,
            "{table}: {rows} rows, {distinct} versions"
        );
    }
    for r in running {
        r.stop().await.expect("clean stop");
    }
    conn.close().await.ok();
}

/// While a session holds the migration lock, a starting replica answers its probes
/// (`/healthz` 200, `/readyz` 503 "starting") and does not serve gRPC; once the lock is
/// released it migrates and becomes ready.
async fn probes_answer_while_another_replica_migrates() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut options = sea_orm::ConnectOptions::new(db.url.clone());
    options.max_connections(1).min_connections(1);
    let holder = Database::connect(options).await.expect("connect");
    let key = assurance_runtime::migrate::LOCK_KEY;
    holder
        .execute_unprepared(&format!("SELECT pg_advisory_lock({key})"))
        .await
        .expect("take the lock");

    let config = risk_config(&db);
    let starting = risk_service::bind(&config, Shutdown::new())
        .await
        .expect("bind");
    let (http, grpc) = (starting.http_addr(), starting.grpc_addr());
    let serving = tokio::spawn(async move { risk_service::serve(starting, &config).await });

    for _ in 0..5 {
        assert_eq!(http_get(http, "/healthz").await.0, 200);
        let (code, body) = http_get(http, "/readyz").await;
        assert_eq!(code, 503, "{body}");
        assert!(body.contains("starting: migrating the database"), "{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!serving.is_finished(), "started while the lock was held");
    // gRPC waits: the listener is bound but not served.
    let health = tokio::time::timeout(Duration::from_millis(500), async {
        let channel = channel(grpc).await;
        tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
    })
    .await;
    assert!(
        health.is_err(),
        "gRPC answered before the migrations: {health:?}"
    );

    // A replica told to stop while it waits for the lock gives up at once.
    let waiting_config = risk_config(&db);
    let stop = Shutdown::new();
    let waiting = risk_service::bind(&waiting_config, stop.clone())
        .await
        .expect("bind");
    let waiting_http = waiting.http_addr();
    let given_up = tokio::spawn(async move { risk_service::serve(waiting, &waiting_config).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.trigger();
    let err = tokio::time::timeout(Duration::from_secs(5), given_up)
        .await
        .expect("stops while waiting for the lock")
        .expect("task")
        .err()
        .expect("no server");
    assert!(err.contains("shut down while starting"), "{err}");
    assert!(tokio::net::TcpStream::connect(waiting_http).await.is_err());

    holder
        .execute_unprepared(&format!("SELECT pg_advisory_unlock({key})"))
        .await
        .expect("release the lock");
    let running = tokio::time::timeout(Duration::from_secs(60), serving)
        .await
        .expect("starts once the lock is free")
        .expect("task")
        .expect("risk-service starts");
    let (code, body) = http_get(http, "/readyz").await;
    assert_eq!(code, 200, "{body}");
    let app = App::connect(running, db.tokens.clone()).await;
    org_fixture(&app).await;
    create_risk(&app, new_risk("After the lock", "exchange-online")).await;
    app.stop().await;
    holder.close().await.ok();
}

/// Retries `call` while it fails UNAVAILABLE (a replica going away), as clients should.
async fn retrying<T, Fut>(mut call: impl FnMut() -> Fut) -> Result<T, tonic::Status>
where
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(e) if e.code() == Code::Unavailable && attempt < 20 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// Every risk of the register, through `app`.
async fn all_risks(app: &App) -> Vec<pb::Risk> {
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .risks()
            .list_risks(pb::ListRisksRequest {
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await
            .expect("list risks")
            .into_inner();
        out.extend(page.risks);
        if page.next_page_token.is_empty() {
            return out;
        }
        page_token = page.next_page_token;
    }
}

/// Two risk-service replicas behind a forwarding gateway given both URLs, under concurrent
/// creates (a quarter of the request ids sent twice, at once) and reads: every create exists
/// exactly once, a retried id gets the same risk, the calls were spread over both replicas,
/// and a change through one replica is seen on the other within the cache's bound.
async fn a_gateway_balances_two_risk_replicas_without_losing_or_duplicating() {
    let db = TestDb::new(Backend::Postgres).await;
    let (a, b) = (risk_replica(&db).await, risk_replica(&db).await);
    let incident = incident_service(&db).await;
    let (tap_a, tap_b) = (taps::tap(a.grpc_addr).await, taps::tap(b.grpc_addr).await);
    let gw = balancing_gateway(&db, &[tap_a.addr, tap_b.addr], incident.grpc_addr).await;
    eventually("the gateway is ready", || async {
        match http_get(gw.http_addr, "/readyz").await {
            (200, body) if body == "ready\n" => Ok(()),
            (code, body) => Err(format!("{code} {body}")),
        }
    })
    .await;
    org_fixture(&gw).await;

    const WORKERS: usize = 8;
    const CREATES: usize = 160;
    // Each id once, and every fourth id a second time from another worker.
    let mut calls: Vec<Vec<usize>> = vec![Vec::new(); WORKERS];
    for i in 0..CREATES {
        calls[i % WORKERS].push(i);
        if i.is_multiple_of(4) {
            calls[(i + 1) % WORKERS].push(i);
        }
    }
    let (sent_a, sent_b) = (tap_a.sent(), tap_b.sent());
    let gw = Arc::new(gw);
    let mut tasks = Vec::new();
    for ids in calls {
        let gw = gw.clone();
        tasks.push(tokio::spawn(async move {
            let mut made = Vec::new();
            for i in ids {
                let risk = retrying(|| {
                    let mut risks = gw.risks();
                    async move {
                        risks
                            .create_risk(pb::CreateRiskRequest {
                                risk: Some(new_risk(&format!("Replicated {i}"), "exchange-online")),
                                request_id: format!("replicas-{i}"),
                            })
                            .await
                    }
                })
                .await
                .expect("create")
                .into_inner();
                assert_eq!(risk.title, format!("Replicated {i}"));
                // Read it back at once, through whichever replica the gateway picks.
                let read = retrying(|| {
                    let mut risks = gw.risks();
                    let name = risk.name.clone();
                    async move { risks.get_risk(pb::GetRiskRequest { name }).await }
                })
                .await
                .expect("get")
                .into_inner();
                assert_eq!(read.name, risk.name);
                made.push((i, risk.name));
            }
            made
        }));
    }
    let mut by_id: HashMap<usize, HashSet<String>> = HashMap::new();
    for task in tasks {
        for (i, name) in task.await.expect("worker") {
            by_id.entry(i).or_default().insert(name);
        }
    }
    assert_eq!(by_id.len(), CREATES);
    let retried: Vec<_> = by_id.iter().filter(|(_, names)| names.len() != 1).collect();
    assert!(
        retried.is_empty(),
        "a request id made two risks: {retried:?}"
    );
    let made: HashSet<String> = by_id.into_values().flatten().collect();
    let stored: Vec<String> = all_risks(&gw).await.into_iter().map(|r| r.name).collect();
    let unique: HashSet<String> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), unique.len(), "a risk listed twice");
    assert_eq!(
        unique, made,
        "the register holds exactly the acknowledged creates"
    );

    // Both replicas carried a fair part of the calls (the checker's probes are a few bytes).
    let (to_a, to_b) = (tap_a.sent() - sent_a, tap_b.sent() - sent_b);
    eprintln!("bytes sent to replica A: {to_a}, to B: {to_b}");
    let total = (to_a + to_b) as f64;
    assert!(
        to_a as f64 > total * 0.2 && to_b as f64 > total * 0.2,
        "calls not spread: A {to_a} bytes, B {to_b} bytes"
    );

    // A change through A is seen on B within the cache's bound (the notification, or the
    // heartbeat grace when a notification is lost).
    let name = made.iter().next().expect("a risk").clone();
    for round in 0..5 {
        // B holds the risk in its read cache.
        let before = get_risk(&b, &name).await;
        assert_eq!(get_risk(&b, &name).await.etag, before.etag);
        let updated = update_title(&a, &name, &format!("Changed on A {round}")).await;
        let started = Instant::now();
        let bound = risk_service::store::cache::HEARTBEAT_GRACE + Duration::from_secs(2);
        loop {
            let seen = get_risk(&b, &name).await;
            if seen.etag == updated.etag {
                eprintln!(
                    "round {round}: B saw A's change after {:?}",
                    started.elapsed()
                );
                break;
            }
            assert_eq!(
                seen.etag, before.etag,
                "neither the old nor the new version"
            );
            assert!(
                started.elapsed() < bound,
                "B still serves the old version after {:?}",
                started.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    drop(gw);
    a.stop().await;
    b.stop().await;
}

async fn update_title(app: &App, name: &str, title: &str) -> pb::Risk {
    app.risks()
        .update_risk(pb::UpdateRiskRequest {
            risk: Some(pb::Risk {
                name: name.into(),
                title: title.into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["title".into()],
            }),
        })
        .await
        .expect("update")
        .into_inner()
}

/// One replica of two stops: after the checker's window the gateway serves every call from
/// the other and `/readyz` says ready, degraded, naming the ejected endpoint; a replica
/// started again on that address is put back.
async fn a_stopped_replica_is_ejected_and_a_restarted_one_comes_back() {
    let db = TestDb::new(Backend::Postgres).await;
    let (a, b) = (risk_replica(&db).await, risk_replica(&db).await);
    let b_addr = b.grpc_addr;
    let incident = incident_service(&db).await;
    let gw = balancing_gateway(&db, &[a.grpc_addr, b_addr], incident.grpc_addr).await;
    org_fixture(&gw).await;
    let risk = create_risk(&gw, new_risk("Survives a replica", "exchange-online")).await;

    b.stop().await;
    // Calls in the window may fail UNAVAILABLE (the client's to retry); none other.
    let stopped = Instant::now();
    let mut unavailable = 0;
    while stopped.elapsed() < gateway_check_window() + Duration::from_millis(500) {
        match gw
            .risks()
            .get_risk(pb::GetRiskRequest {
                name: risk.name.clone(),
            })
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Code::Unavailable => unavailable += 1,
            Err(e) => panic!("during the window: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("UNAVAILABLE during the ejection window: {unavailable}");
    // Ejected: every call succeeds.
    for i in 0..100 {
        gw.risks()
            .get_risk(pb::GetRiskRequest {
                name: risk.name.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("get {i} after the window: {e}"));
    }
    for i in 0..10 {
        create_risk(
            &gw,
            new_risk(&format!("After ejection {i}"), "exchange-online"),
        )
        .await;
    }
    let (code, body) = http_get(gw.http_addr, "/readyz").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.starts_with("ready, degraded"), "{body}");
    assert!(
        body.contains(&format!("risk-service http://{b_addr} ejected")),
        "{body}"
    );

    // Back on its address, the replica is put back in.
    let mut config = risk_config(&db);
    config.listen = b_addr;
    let b = App::connect(
        risk_service::start(&config, Shutdown::new())
            .await
            .expect("restart"),
        db.tokens.clone(),
    )
    .await;
    eventually("the restarted replica is back", || async {
        match http_get(gw.http_addr, "/readyz").await {
            (200, body) if body == "ready\n" => Ok(()),
            (code, body) => Err(format!("{code} {body}")),
        }
    })
    .await;
    b.stop().await;
    a.stop().await;
}

/// How long the gateway may take to eject an endpoint that stopped answering: one interval
/// to the next Check, and that Check's limit.
fn gateway_check_window() -> Duration {
    gateway::balance::CHECK_EVERY + gateway::balance::CHECK_TIMEOUT
}

/// A server whose database cannot be opened ends with the error, and its probes stop with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_returns_the_error_and_stops_the_probes() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut config = risk_config(&db);
    // A file under a regular file: SQLite cannot create it.
    let blocker = db.data_dir().join("not-a-directory");
    std::fs::write(&blocker, "").expect("file");
    config.database_url =
        assurance_runtime::db::sqlite_url(&blocker.join("risk.db")).replace("?mode=rwc", "");
    let starting = risk_service::bind(&config, Shutdown::new())
        .await
        .expect("bind");
    let http = starting.http_addr();
    assert_eq!(http_get(http, "/healthz").await.0, 200);
    let err = risk_service::serve(starting, &config)
        .await
        .err()
        .expect("the start fails");
    assert!(err.starts_with("database:"), "{err}");
    assert!(
        tokio::net::TcpStream::connect(http).await.is_err(),
        "the probes still answer after a failed start"
    );
}
