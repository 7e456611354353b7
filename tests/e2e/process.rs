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

async fn start(db: &TestDb) -> (Process, SocketAddr) {
    let addr = free_addr().expect("free port");
    let child = spawn_binary(&server_bin(), &[], &db.url, addr).expect("spawn server");
    let process = Process(child);
    wait_serving(addr, Duration::from_secs(60))
        .await
        .expect("server ready");
    (process, addr)
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

/// The documented bound on how long a replica may serve a risk after another replica changed
/// it: the heartbeat grace of the invalidation channel.
const STALENESS_BOUND: Duration = risk_service::store::cache::HEARTBEAT_GRACE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_never_serves_a_risk_changed_elsewhere_beyond_the_bound() {
    if postgres_url().is_none() {
        eprintln!("skipped: {POSTGRES_ENV} is not set");
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let (_a, addr_a) = start(&db).await;
    let (_b, addr_b) = start(&db).await;
    let a = risk_client(addr_a).await;
    let mut b = risk_client(addr_b).await;
    let org =
        assurance_proto::risk::v1::organization_service_client::OrganizationServiceClient::new(
            connect(addr_a).await.expect("connect"),
        );
    seed_org(org).await;
    let mut a = a;
    let risk = a
        .create_risk(pb::CreateRiskRequest {
            risk: Some(new_risk("Replicated", "exchange-online")),
            request_id: String::new(),
        })
        .await
        .expect("create")
        .into_inner();

    // Let B's invalidation listener receive its first heartbeats: from then on B serves from
    // its cache, which is what this test is about.
    tokio::time::sleep(
        2 * risk_service::store::cache::HEARTBEAT_EVERY + Duration::from_millis(500),
    )
    .await;
    for round in 0..10 {
        // B reads (and caches) the current version.
        let before = b
            .get_risk(pb::GetRiskRequest {
                name: risk.name.clone(),
            })
            .await
            .expect("get")
            .into_inner();
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
        let acknowledged = Instant::now();
        // B must show the new version within the bound, and never the old one after it.
        loop {
            let seen = b
                .get_risk(pb::GetRiskRequest {
                    name: risk.name.clone(),
                })
                .await
                .expect("get")
                .into_inner();
            if seen.etag == updated.etag {
                assert_eq!(seen.title, title);
                break;
            }
            assert!(
                acknowledged.elapsed() <= STALENESS_BOUND,
                "round {round}: B still served {} {:?} after the bound",
                seen.etag,
                acknowledged.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for _ in 0..5 {
            let seen = b
                .get_risk(pb::GetRiskRequest {
                    name: risk.name.clone(),
                })
                .await
                .expect("get")
                .into_inner();
            assert_eq!(
                seen.etag, updated.etag,
                "round {round}: went back to a stale version"
            );
        }
    }
}

async fn risk_client(
    addr: SocketAddr,
) -> pb::risk_service_client::RiskServiceClient<assurance_tests::server::AuthChannel> {
    pb::risk_service_client::RiskServiceClient::new(connect(addr).await.expect("connect"))
}

async fn seed_org(
    mut org: pb::organization_service_client::OrganizationServiceClient<
        assurance_tests::server::AuthChannel,
    >,
) {
    org.create_business_unit(pb::CreateBusinessUnitRequest {
        business_unit_id: "productivity".into(),
        business_unit: Some(pb::BusinessUnit {
            display_name: "Productivity".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .expect("bu");
    org.create_service(pb::CreateServiceRequest {
        service_id: "exchange-online".into(),
        service: Some(pb::Service {
            business_unit: "businessUnits/productivity".into(),
            display_name: "Exchange".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .expect("service");
}
