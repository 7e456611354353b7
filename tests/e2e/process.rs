//! Separate server processes: cache coherence across replicas, and crash safety.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::Child,
    time::{Duration, Instant},
};

use assurance_proto::risk::v1 as pb;
use assurance_tests::{
    crash,
    server::{connect, free_addr, spawn_binary, wait_serving},
};
use prost_types::FieldMask;

use crate::helpers::*;

/// `assurance-bench serve` hosts risk-service exactly as its binary does.
fn server_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_assurance-bench"))
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

crate::on_both_backends!(acknowledged_creates_survive_sigkill_exactly_once);

async fn acknowledged_creates_survive_sigkill_exactly_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let bin = server_bin();
    let report = crash::check(
        |addr| spawn_binary(&bin, &[], &db.url, addr),
        Duration::from_millis(1500),
        16,
    )
    .await
    .expect("crash check");
    eprintln!("{report}");
}

/// Deadline of events that take milliseconds (a notification, a heartbeat): generous, so it
/// fails only when the event never comes, never because the machine is slow.
const EVENT_DEADLINE: Duration = Duration::from_secs(60);
/// The replicas' cache TTL: far beyond [`EVENT_DEADLINE`], so only the change notification can
/// make B drop a cached version within the test.
const LONG_TTL_SECS: &str = "3600";

async fn start_replica(db: &TestDb) -> (Process, SocketAddr) {
    let addr = free_addr().expect("free port");
    let extra = [
        "--read-cache-ttl-secs".to_string(),
        LONG_TTL_SECS.to_string(),
    ];
    let child = spawn_binary(&server_bin(), &extra, &db.url, addr).expect("spawn server");
    let process = Process(child);
    wait_serving(addr, EVENT_DEADLINE)
        .await
        .expect("server ready");
    (process, addr)
}

/// Changes a risk's description in the database behind the services' back: no NOTIFY, so a
/// replica serving from its cache does not see it.
async fn change_behind_the_services(db: &sea_orm::DatabaseConnection, id: uuid::Uuid, text: &str) {
    use sea_orm::ConnectionTrait;
    let changed = db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "UPDATE risks SET description = $1 WHERE id = $2",
            [text.into(), id.into()],
        ))
        .await
        .expect("update the row directly");
    assert_eq!(changed.rows_affected(), 1, "the risk's row");
}

/// Waits until B demonstrably serves `name` from its read cache: a change made in the
/// database without a notification stays invisible to it. Until B's invalidation listener
/// has heard its first heartbeat B reads through, and the test would prove nothing.
async fn until_served_from_cache(
    b: &mut RiskClient,
    db: &sea_orm::DatabaseConnection,
    name: &str,
    round: usize,
) {
    let id = name
        .strip_prefix("risks/")
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .expect("a risk name holds its id");
    let deadline = Instant::now() + EVENT_DEADLINE;
    for attempt in 0.. {
        let cached = get(b, name).await;
        let behind = format!("changed behind the services {round}.{attempt}");
        change_behind_the_services(db, id, &behind).await;
        let seen = get(b, name).await;
        if seen.description == cached.description {
            assert_eq!(seen.etag, cached.etag);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "round {round}: B never served from its cache (no heartbeat on the channel?)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two risk-service processes on one PostgreSQL database. B caches a risk; A changes it. B
/// must drop its cached copy because of A's change notification (its TTL is an hour), then
/// never serve the old version again. No wall-clock bound: B is polled until it shows the
/// new version, with a deadline that only a missing notification can exceed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(assurance_postgres),
    ignore = "set ASSURANCE_TEST_POSTGRES_URL to run on PostgreSQL"
)]
async fn a_replica_drops_a_risk_changed_elsewhere_on_notification() {
    let db = TestDb::new(Backend::Postgres).await;
    let (_a, addr_a) = start_replica(&db).await;
    let (_b, addr_b) = start_replica(&db).await;
    let mut a = risk_client(addr_a).await;
    let mut b = risk_client(addr_b).await;
    assurance_tests::server::register_org(
        connect(addr_a).await.expect("connect"),
        "productivity",
        "exchange-online",
    )
    .await
    .expect("org");
    let risk = a
        .create_risk(pb::CreateRiskRequest {
            risk: Some(new_risk("Replicated", "exchange-online")),
            request_id: String::new(),
        })
        .await
        .expect("create")
        .into_inner();
    let direct = sea_orm::Database::connect(&db.url)
        .await
        .expect("connect to the test database");

    for round in 0..10 {
        // B serves the current version from its cache: proven, not assumed.
        until_served_from_cache(&mut b, &direct, &risk.name, round).await;
        let before = get(&mut b, &risk.name).await;
        let title = format!("title {round}");
        let updated = a
            .update_risk(pb::UpdateRiskRequest {
                risk: Some(pb::Risk {
                    name: risk.name.clone(),
                    title: title.clone(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["title".into()],
                }),
            })
            .await
            .expect("update through A")
            .into_inner();
        assert_ne!(before.etag, updated.etag);
        // A acknowledged the change: B shows it once the notification arrives — only the
        // notification can evict the cached copy before its hour is up.
        let deadline = Instant::now() + EVENT_DEADLINE;
        loop {
            let seen = get(&mut b, &risk.name).await;
            if seen.etag == updated.etag {
                assert_eq!(seen.title, title);
                break;
            }
            assert_eq!(
                seen.etag, before.etag,
                "round {round}: B served neither the old nor the new version"
            );
            assert!(
                Instant::now() < deadline,
                "round {round}: B still serves {} — A's change notification never evicted it",
                seen.etag
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Once B served the new version it never goes back to the old one.
        for _ in 0..5 {
            let seen = get(&mut b, &risk.name).await;
            assert_eq!(
                seen.etag, updated.etag,
                "round {round}: went back to a stale version"
            );
        }
    }
    direct.close().await.ok();
}

type RiskClient = pb::risk_service_client::RiskServiceClient<assurance_tests::server::AuthChannel>;

async fn get(client: &mut RiskClient, name: &str) -> pb::Risk {
    client
        .get_risk(pb::GetRiskRequest { name: name.into() })
        .await
        .expect("get")
        .into_inner()
}

async fn risk_client(addr: SocketAddr) -> RiskClient {
    pb::risk_service_client::RiskServiceClient::new(connect(addr).await.expect("connect"))
}
