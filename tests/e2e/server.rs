//! Server plumbing: health, reflection, HTTP probes and graceful shutdown.

use std::time::Duration;

use risk_service::domain::scoring::Methodology;
use tokio_stream::StreamExt;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_public_services() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = risk_service(&db, Methodology::Standard).await;
    let mut client = ServerReflectionClient::new(app.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses.next().await.expect("one response").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in [
        "assurance.risk.v1.RiskService",
        "assurance.risk.v1.OrganizationService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.contains(&expected), "{names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_probes_answer() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = risk_service(&db, Methodology::Standard).await;
    assert_eq!(
        http_get(app.http_addr, "/healthz").await,
        (200, "ok\n".to_string())
    );
    assert_eq!(http_get(app.http_addr, "/readyz").await.0, 200);
    assert_eq!(http_get(app.http_addr, "/nope").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_turns_health_not_serving_then_stops() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = risk_service(&db, Methodology::Standard).await;
    let mut watch = app
        .health()
        .watch(HealthCheckRequest {
            service: "assurance.risk.v1.RiskService".into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.next().await.expect("first status").expect("ok");
    assert_eq!(first.status, ServingStatus::Serving as i32);

    let switch = app.shutdown_switch();
    switch.trigger();
    let next = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("status change before the stream closes")
        .expect("a status")
        .expect("ok");
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    drop(watch);
    tokio::time::timeout(Duration::from_secs(15), app.stop())
        .await
        .expect("server stops after draining");
}
