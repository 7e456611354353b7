//! Test harness: a fresh database per test (a temp SQLite file, or a PostgreSQL database of
//! its own when `ASSURANCE_TEST_POSTGRES_URL` is set), servers on port 0, real gRPC clients.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use assurance_runtime::auth::client::Bearer;
pub use assurance_tests::auth::TestTokens;

use assurance_proto::audit::v1 as audit_pb;
use assurance_proto::gateway::v1::posture_service_client::PostureServiceClient;
use assurance_proto::incident::v1::{self as ipb, incident_service_client::IncidentServiceClient};
use assurance_proto::risk::v1::{
    self as pb, organization_service_client::OrganizationServiceClient,
    risk_service_client::RiskServiceClient,
};
use assurance_proto::r#type::v1 as tv;
use assurance_runtime::serve::{Running, Shutdown};
use clap::Parser;
use risk_service::domain::scoring::Methodology;
use sea_orm::{ConnectionTrait, Database};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_client::HealthClient;

pub const POSTGRES_ENV: &str = "ASSURANCE_TEST_POSTGRES_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server URL for tests, if configured.
pub fn postgres_url() -> Option<String> {
    std::env::var(POSTGRES_ENV).ok().filter(|s| !s.is_empty())
}

/// A database of one test; a PostgreSQL database is dropped when the test ends.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    /// The credentials every server of this test accepts.
    pub tokens: Arc<TestTokens>,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => TestDb {
                url: assurance_runtime::db::sqlite_url(&dir.path().join("risk.db")),
                dir,
                tokens: Arc::new(TestTokens::new()),
                pg: None,
            },
            Backend::Postgres => {
                // Tests reach this only when the variable was set at build time (the
                // `assurance_postgres` cfg); unset at run time is a failure, not a skip.
                let admin = postgres_url()
                    .unwrap_or_else(|| panic!("{POSTGRES_ENV} is not set for a PostgreSQL test"));
                let name = format!("assurance_t_{}", uuid::Uuid::now_v7().simple());
                let conn = Database::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is unreachable: {e}"));
                conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                TestDb {
                    url: assurance_tests::server::with_database(&admin, &name),
                    dir,
                    tokens: Arc::new(TestTokens::new()),
                    pg: Some((admin, name)),
                }
            }
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else {
            return;
        };
        // Drop runs outside async context: use a runtime of its own on another thread.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(conn) = Database::connect(&admin).await {
                    let _ = conn
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

impl TestDb {
    /// The URL of the incident database: a file beside the risk one, or (PostgreSQL) the same
    /// test database — the services' tables do not collide.
    pub fn incident_url(&self) -> String {
        match self.pg {
            Some(_) => self.url.clone(),
            None => assurance_runtime::db::sqlite_url(&self.dir.path().join("incident.db")),
        }
    }
}

/// A channel that sends a bearer token with every call.
pub type Authed = Bearer<Channel>;

/// A running server with clients for it. The plain clients act as the `admin` test token;
/// the `_as` variants as any token of [`TestTokens`].
pub struct App {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// Without credentials.
    pub channel: Channel,
    pub tokens: Arc<TestTokens>,
    running: Option<Running>,
}

impl App {
    /// The channel with the token named `who` (a role, `scoped`, `expired`, …).
    pub fn channel_as(&self, who: &str) -> Authed {
        Bearer::new(self.channel.clone(), self.tokens.token(who)).expect("token is valid metadata")
    }

    pub fn risks(&self) -> RiskServiceClient<Authed> {
        self.risks_as("admin")
    }

    pub fn risks_as(&self, who: &str) -> RiskServiceClient<Authed> {
        RiskServiceClient::new(self.channel_as(who))
    }

    pub fn org(&self) -> OrganizationServiceClient<Authed> {
        self.org_as("admin")
    }

    pub fn org_as(&self, who: &str) -> OrganizationServiceClient<Authed> {
        OrganizationServiceClient::new(self.channel_as(who))
    }

    pub fn incidents(&self) -> IncidentServiceClient<Authed> {
        self.incidents_as("admin")
    }

    pub fn incidents_as(&self, who: &str) -> IncidentServiceClient<Authed> {
        IncidentServiceClient::new(self.channel_as(who))
    }

    pub fn posture_as(&self, who: &str) -> PostureServiceClient<Authed> {
        PostureServiceClient::new(self.channel_as(who)).max_decoding_message_size(64 << 20)
    }

    pub fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }

    pub fn shutdown_switch(&self) -> Shutdown {
        self.running.as_ref().expect("running").shutdown.clone()
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("clean shutdown");
        }
    }

    pub async fn connect(running: Running, tokens: Arc<TestTokens>) -> App {
        let channel = channel(running.grpc_addr).await;
        App {
            grpc_addr: running.grpc_addr,
            http_addr: running.http_addr,
            channel,
            tokens,
            running: Some(running),
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(running) = &self.running {
            running.shutdown.trigger();
        }
    }
}

pub async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect to test server")
}

fn localhost0() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// risk-service on port 0 over `db`.
pub async fn risk_service(db: &TestDb, scoring: Methodology) -> App {
    let mut config = risk_config(db);
    config.scoring = scoring;
    init_logs();
    let running = risk_service::start(&config, Shutdown::new())
        .await
        .expect("risk-service starts");
    App::connect(running, db.tokens.clone()).await
}

/// The configuration of a risk-service on port 0 over `db`, accepting `db.tokens`: the
/// binary's own defaults (as `risk-service` with no flags parses them) with the overrides of
/// [`risk_args`].
pub fn risk_config(db: &TestDb) -> risk_service::config::Config {
    risk_service::config::Config::try_parse_from(risk_args(db))
        .expect("risk-service accepts the test flags")
}

/// The command line of a test risk-service: only what a test needs differs from the
/// defaults — its own database and tokens, ephemeral ports, and a sweep for expired
/// acceptances every second (the default minute would outlast the tests that move the clock).
pub fn risk_args(db: &TestDb) -> Vec<String> {
    let mut args = vec!["risk-service".to_string()];
    args.extend(listen_args());
    args.extend(flag("--database-url", &db.url));
    args.extend(flag("--tokens-file", &db.tokens.path.display().to_string()));
    args.extend(flag("--expiry-interval-secs", "1"));
    args
}

/// `--listen` and `--http-listen` on ephemeral loopback ports.
/// Also a per-principal rate far above what a test sends (the limits' own tests set theirs).
fn listen_args() -> Vec<String> {
    let port0 = localhost0().to_string();
    [
        flag("--listen", &port0),
        flag("--http-listen", &port0),
        flag("--rate-limit", "1000000"),
        flag("--rate-burst", "1000000"),
    ]
    .concat()
}

fn flag(name: &str, value: &str) -> Vec<String> {
    vec![name.to_string(), value.to_string()]
}

/// incident-service on port 0 over `db`'s incident database.
pub async fn incident_service(db: &TestDb) -> App {
    let config = incident_config(db);
    init_logs();
    let running = incident_service::start(&config, Shutdown::new())
        .await
        .expect("incident-service starts");
    App::connect(running, db.tokens.clone()).await
}

/// The configuration of an incident-service on port 0 over `db`, accepting `db.tokens`: the
/// binary's defaults with its own database, tokens and ephemeral ports.
pub fn incident_config(db: &TestDb) -> incident_service::config::Config {
    let mut args = vec!["incident-service".to_string()];
    args.extend(listen_args());
    args.extend(flag("--database-url", &db.incident_url()));
    args.extend(flag("--tokens-file", &db.tokens.path.display().to_string()));
    incident_service::config::Config::try_parse_from(args)
        .expect("incident-service accepts the test flags")
}

/// The configuration of a forwarding gateway on port 0, accepting `db.tokens`: the binary's
/// defaults with ephemeral ports, `db`'s data directory and tokens, the expiry sweep of
/// [`risk_args`] (for `--embedded`), and no scheduled posture snapshot (a test's audit trail
/// holds its own changes only; the history tests turn the schedule on). Forwarding tests set
/// the services' URLs.
pub fn gateway_config(db: &TestDb) -> gateway::config::Config {
    let mut args = vec!["gateway".to_string()];
    args.extend(listen_args());
    args.extend(flag("--data-dir", &db.data_dir().display().to_string()));
    args.extend(flag("--tokens-file", &db.tokens.path.display().to_string()));
    args.extend(flag("--expiry-interval-secs", "1"));
    args.extend(flag("--snapshot-interval", "off"));
    gateway::config::Config::try_parse_from(args).expect("gateway accepts the test flags")
}

/// `gateway --embedded --data-dir DIR` on port 0; on PostgreSQL the risk database is `db`.
pub async fn embedded_gateway(db: &TestDb, backend: Backend) -> App {
    start_gateway(db, embedded_config(db, backend)).await
}

/// The configuration of `gateway --embedded` over `db`.
pub fn embedded_config(db: &TestDb, backend: Backend) -> gateway::config::Config {
    let mut config = gateway_config(db);
    config.embedded = true;
    if backend == Backend::Postgres {
        // Each service owns its database; on one test database their tables do not collide.
        config.risk_database_url = Some(db.url.clone());
        config.incident_database_url = Some(db.url.clone());
        config.database_url = Some(db.url.clone());
    }
    config
}

/// A gateway with `config`, accepting `db.tokens`.
pub async fn start_gateway(db: &TestDb, config: gateway::config::Config) -> App {
    init_logs();
    let running = gateway::start(&config, Shutdown::new())
        .await
        .expect("gateway starts");
    App::connect(running, db.tokens.clone()).await
}

/// A forwarding gateway in front of a risk-service and an incident-service.
pub async fn forwarding_gateway(db: &TestDb, risk: SocketAddr, incident: SocketAddr) -> App {
    let mut config = gateway_config(db);
    config.risk_url = vec![format!("http://{risk}")];
    config.incident_url = vec![format!("http://{incident}")];
    init_logs();
    let running = gateway::start(&config, Shutdown::new())
        .await
        .expect("gateway starts");
    App::connect(running, db.tokens.clone()).await
}

/// Logs in tests only when `TEST_LOG` is set.
fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        assurance_runtime::telemetry::init(assurance_runtime::telemetry::LogFormat::Pretty, None);
    }
}

/// A plain HTTP/1.1 GET: (status code, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect http");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

// ---- fixtures ------------------------------------------------------------------------

/// `who` registers the business unit `id`.
pub async fn register_business_unit(
    app: &App,
    who: &str,
    id: &str,
    unit: pb::BusinessUnit,
) -> Result<pb::BusinessUnit, tonic::Status> {
    app.org_as(who)
        .create_business_unit(pb::CreateBusinessUnitRequest {
            business_unit_id: id.into(),
            business_unit: Some(unit),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

/// `who` registers the service `id`.
pub async fn register_service(
    app: &App,
    who: &str,
    id: &str,
    service: pb::Service,
) -> Result<pb::Service, tonic::Status> {
    app.org_as(who)
        .create_service(pb::CreateServiceRequest {
            service_id: id.into(),
            service: Some(service),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn create_bu(app: &App, id: &str) -> pb::BusinessUnit {
    let unit = pb::BusinessUnit {
        display_name: format!("BU {id}"),
        owner: "cio@example.com".into(),
        ..Default::default()
    };
    register_business_unit(app, "admin", id, unit)
        .await
        .expect("create business unit")
}

pub async fn create_service(app: &App, id: &str, bu: &str) -> pb::Service {
    let service = pb::Service {
        business_unit: format!("businessUnits/{bu}"),
        display_name: format!("Service {id}"),
        owner: "manager@example.com".into(),
        ..Default::default()
    };
    register_service(app, "admin", id, service)
        .await
        .expect("create service")
}

/// The business unit `productivity` with the service `exchange-online`.
pub async fn org_fixture(app: &App) {
    create_bu(app, "productivity").await;
    create_service(app, "exchange-online", "productivity").await;
}

pub fn new_risk(title: &str, service: &str) -> pb::Risk {
    pb::Risk {
        title: title.into(),
        description: "Attackers could reuse leaked credentials.".into(),
        service: format!("services/{service}"),
        category: "access-control".into(),
        threat: pb::Threat::External as i32,
        identification_source: pb::IdentificationSource::VulnerabilityScan as i32,
        source_reference: "scan-2026-11-23".into(),
        owner: "owner@example.com".into(),
        ..Default::default()
    }
}

pub async fn create_risk(app: &App, risk: pb::Risk) -> pb::Risk {
    app.risks()
        .create_risk(pb::CreateRiskRequest {
            risk: Some(risk),
            request_id: String::new(),
        })
        .await
        .expect("create risk")
        .into_inner()
}

/// An assessment by `assessor@example.com` (a control deficiency of 0: [`assess_as`] asks the
/// service to derive it from the linked controls).
pub fn assessment(impact: i32, likelihood: i32, deficiency: i32) -> pb::Assessment {
    pb::Assessment {
        impact,
        likelihood,
        control_deficiency: deficiency,
        assessor: "assessor@example.com".into(),
        ..Default::default()
    }
}

/// `who` records `assessment` of the risk `name`; without a control deficiency, with
/// `derive_control_deficiency`.
pub async fn assess_as(
    app: &App,
    who: &str,
    name: &str,
    assessment: pb::Assessment,
) -> Result<pb::Risk, tonic::Status> {
    let derive = assessment.control_deficiency == 0;
    app.risks_as(who)
        .assess_risk(pb::AssessRiskRequest {
            name: name.into(),
            assessment: Some(assessment),
            request_id: String::new(),
            derive_control_deficiency: derive,
        })
        .await
        .map(|r| r.into_inner())
}

/// The assessments of a risk, newest first (`order_by: "assess_time desc"`).
pub async fn assessment_history(app: &App, risk: &str) -> Vec<pb::Assessment> {
    app.risks()
        .list_assessments(pb::ListAssessmentsRequest {
            parent: risk.into(),
            order_by: "assess_time desc".into(),
            ..Default::default()
        })
        .await
        .expect("history")
        .into_inner()
        .assessments
}

/// An admin's quarterly assessment of the risk `name`.
pub async fn assess(
    app: &App,
    name: &str,
    impact: i32,
    likelihood: i32,
    deficiency: i32,
) -> pb::Risk {
    let quarterly = pb::Assessment {
        rationale: "quarterly review".into(),
        ..assessment(impact, likelihood, deficiency)
    };
    assess_as(app, "admin", name, quarterly)
        .await
        .expect("assess risk")
}

/// A risk the principal `who` identifies.
pub async fn identify_risk_as(
    app: &App,
    who: &str,
    risk: pb::Risk,
) -> Result<pb::Risk, tonic::Status> {
    app.risks_as(who)
        .create_risk(pb::CreateRiskRequest {
            risk: Some(risk),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn get_risk(app: &App, name: &str) -> pb::Risk {
    app.risks()
        .get_risk(pb::GetRiskRequest { name: name.into() })
        .await
        .expect("get risk")
        .into_inner()
}

/// `who` changes the fields `paths` of `risk` (with its etag, if set).
pub async fn update_risk_as(
    app: &App,
    who: &str,
    risk: pb::Risk,
    paths: &[&str],
) -> Result<pb::Risk, tonic::Status> {
    app.risks_as(who)
        .update_risk(pb::UpdateRiskRequest {
            risk: Some(risk),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
        })
        .await
        .map(|r| r.into_inner())
}

/// A phishing wave: an event of no functional or information impact.
pub fn phishing_wave() -> ipb::Incident {
    ipb::Incident {
        title: "Phishing wave".into(),
        summary: "Credential phishing against finance.".into(),
        classification: ipb::Classification::Event as i32,
        functional_impact: ipb::FunctionalImpact::None as i32,
        information_impacts: vec![ipb::InformationImpact::None as i32],
        recoverability: ipb::Recoverability::Regular as i32,
        ..Default::default()
    }
}

/// `who` declares `incident` to the incident service.
pub async fn declare_incident_as(
    app: &App,
    who: &str,
    incident: ipb::Incident,
    request_id: &str,
) -> Result<ipb::Incident, tonic::Status> {
    app.incidents_as(who)
        .declare_incident(ipb::DeclareIncidentRequest {
            incident: Some(incident),
            request_id: request_id.into(),
        })
        .await
        .map(|r| r.into_inner())
}

/// `n` days from now on the wall clock (negative: `n` days ago).
pub fn days(n: i64) -> prost_types::Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    prost_types::Timestamp {
        seconds: now + n * 86_400,
        nanos: 0,
    }
}

/// `gateway --embedded` over a fresh database on a clock the test moves, with the org
/// fixture.
pub async fn gateway_on_a_test_clock(
    backend: Backend,
) -> (TestDb, assurance_runtime::time::Clock, App) {
    let db = TestDb::new(backend).await;
    let config = embedded_config(&db, backend);
    let clock = config.clock.clone();
    let app = start_gateway(&db, config).await;
    org_fixture(&app).await;
    (db, clock, app)
}

/// Polls `check` every 200 ms until it yields `Ok`; fails with `what` and the last `Err`
/// (the state seen) after 15 seconds.
pub async fn eventually<T, Fut>(what: &str, mut check: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let last = match check().await {
            Ok(done) => return done,
            Err(last) => last,
        };
        assert!(std::time::Instant::now() < deadline, "{what}: {last}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every name of a list read in pages of one: `page(token)` fetches the page after `token`
/// and returns its names and the next token.
pub async fn names_in_pages_of_one<Fut>(mut page: impl FnMut(String) -> Fut) -> Vec<String>
where
    Fut: std::future::Future<Output = (Vec<String>, String)>,
{
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let (more, next) = page(token).await;
        names.extend(more);
        if next.is_empty() {
            return names;
        }
        token = next;
    }
}

/// The decision log of a risk (or of every risk: `risks/-`), newest first, as a viewer.
pub async fn decisions(app: &App, risk: &str) -> Vec<pb::Decision> {
    app.risks_as("viewer")
        .list_decisions(pb::ListDecisionsRequest {
            parent: risk.into(),
            order_by: "decide_time desc".into(),
            ..Default::default()
        })
        .await
        .expect("decision log")
        .into_inner()
        .decisions
}

/// The risk-service audit trail under `filter`, newest first, as an admin reads it.
pub async fn audit_trail(app: &App, filter: &str) -> Vec<audit_pb::AuditEvent> {
    audit_trail_as(app, "admin", filter).await
}

/// The risk-service audit trail under `filter`, as `who` reads it.
pub async fn audit_trail_as(app: &App, who: &str, filter: &str) -> Vec<audit_pb::AuditEvent> {
    read_audit_trail(app, who, filter)
        .await
        .expect("audit trail")
}

/// `who` reads the risk-service audit trail under `filter`.
pub async fn read_audit_trail(
    app: &App,
    who: &str,
    filter: &str,
) -> Result<Vec<audit_pb::AuditEvent>, tonic::Status> {
    pb::audit_service_client::AuditServiceClient::new(app.channel_as(who))
        .list_audit_events(audit_pb::ListAuditEventsRequest {
            filter: filter.into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().audit_events)
}

/// `who` proposes `response` to a risk.
pub async fn propose_response(
    app: &App,
    who: &str,
    risk: &str,
    response: pb::RiskResponse,
) -> Result<pb::RiskResponse, tonic::Status> {
    app.risks_as(who)
        .create_risk_response(pb::CreateRiskResponseRequest {
            parent: risk.into(),
            response: Some(response),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

/// `who` approves the response `name`.
pub async fn approve_response(
    app: &App,
    who: &str,
    name: &str,
) -> Result<pb::RiskResponse, tonic::Status> {
    app.risks_as(who)
        .approve_risk_response(pb::ApproveRiskResponseRequest {
            name: name.into(),
            comment: "agreed in the risk forum".into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

/// A mitigation with `rationale`.
pub fn mitigation(rationale: &str) -> pb::RiskResponse {
    pb::RiskResponse {
        decision: pb::ResponseDecision::Mitigate as i32,
        rationale: rationale.into(),
        ..Default::default()
    }
}

/// `who` opens the action plan `title` of a risk.
pub async fn create_action_plan(app: &App, who: &str, risk: &str, title: &str) -> pb::ActionPlan {
    app.risks_as(who)
        .create_action_plan(pb::CreateActionPlanRequest {
            parent: risk.into(),
            action_plan: Some(pb::ActionPlan {
                title: title.into(),
                owner: "owner@example.com".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("plan")
        .into_inner()
}

/// An action item for ops, due at `due`.
pub fn action_item(title: &str, due: prost_types::Timestamp) -> pb::ActionItem {
    pb::ActionItem {
        title: title.into(),
        owner: "ops@example.com".into(),
        due_time: Some(due),
        ..Default::default()
    }
}

/// `who` adds `item` to an action plan.
pub async fn add_action_item(
    app: &App,
    who: &str,
    plan: &pb::ActionPlan,
    item: pb::ActionItem,
) -> Result<pb::ActionItem, tonic::Status> {
    app.risks_as(who)
        .create_action_item(pb::CreateActionItemRequest {
            parent: plan.name.clone(),
            action_item: Some(item),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

/// `who` sets the status of `item` (with the item's etag).
pub async fn set_item_status(
    app: &App,
    who: &str,
    item: pb::ActionItem,
    status: tv::WorkItemStatus,
) -> Result<pb::ActionItem, tonic::Status> {
    app.risks_as(who)
        .update_action_item(pb::UpdateActionItemRequest {
            action_item: Some(pb::ActionItem {
                status: status as i32,
                ..item
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["status".into()],
            }),
        })
        .await
        .map(|r| r.into_inner())
}

/// Asserts that a call was refused with `code` and a message that names `mentions`.
#[track_caller]
pub fn assert_refused(err: &tonic::Status, code: tonic::Code, mentions: &str) {
    assert_eq!(err.code(), code, "{err:?}");
    assert_mentions(err, mentions);
}

/// Asserts that an error's message names `mentions`.
#[track_caller]
pub fn assert_mentions(err: &tonic::Status, mentions: &str) {
    assert!(err.message().contains(mentions), "{}", err.message());
}

/// Asserts that a call was refused with `code` and the `ErrorInfo` reason `why`.
#[track_caller]
pub fn assert_reason(err: &tonic::Status, code: tonic::Code, why: &str) {
    assert_eq!(err.code(), code, "{err:?}");
    assert_eq!(reason(err), why);
}

/// The field paths of the `BadRequest` violations of an error.
pub fn violations(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Every `expected` field path is among the violations of `err` (INVALID_ARGUMENT).
#[track_caller]
pub fn names_required(err: tonic::Status, expected: &[&str]) {
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    let got = violations(&err);
    for field in expected {
        assert!(
            got.iter().any(|g| g == field),
            "{field} missing from {got:?}"
        );
    }
}

/// The `ErrorInfo` reason of an error, checking its domain.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    let info = status
        .get_error_details()
        .error_info()
        .cloned()
        .expect("every error carries ErrorInfo");
    assert_eq!(info.domain, "assurance");
    info.reason
}

/// Generates a SQLite and a PostgreSQL test for each `async fn name(backend)`. The
/// PostgreSQL variant is compiled as ignored when `ASSURANCE_TEST_POSTGRES_URL` was not set
/// at build time (the `assurance_postgres` cfg of `tests/build.rs`); CI sets it.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(
                    not(assurance_postgres),
                    ignore = "set ASSURANCE_TEST_POSTGRES_URL to run on PostgreSQL"
                )]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}
