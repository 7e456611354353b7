//! `assurance-bench posture`: GetPosture for the enterprise over a seeded program — by default
//! 100k risks and 50k incidents in 20 business units and 200 services — through an embedded
//! gateway on SQLite and through a forwarding gateway in front of separate risk-service and
//! incident-service processes on PostgreSQL. One warm caller makes `--calls` calls, then
//! 4 callers in flight make as many; the gRPC health Check on the same gateway, with the same
//! callers, is the baseline of each. Then a tenth as many calls each follow a change of a risk,
//! then of an incident, so that the changed half is computed, not reused.

use std::{
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use assurance_proto::gateway::v1::{
    GetPostureRequest, posture_service_client::PostureServiceClient,
};
use assurance_proto::{
    incident::v1::{
        Incident, ListIncidentsRequest, UpdateIncidentRequest,
        incident_service_client::IncidentServiceClient,
    },
    risk::v1::{ListRisksRequest, Risk, UpdateRiskRequest, risk_service_client::RiskServiceClient},
};
use assurance_runtime::{auth::client::Bearer, time::now_micros};
use assurance_tests::{auth::SHARED, server};
use sea_orm::{EntityTrait, IntoActiveModel, TransactionTrait};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use uuid::Uuid;

#[derive(clap::Parser)]
pub struct PostureArgs {
    #[arg(long, default_value_t = 100_000)]
    risks: usize,
    #[arg(long, default_value_t = 50_000)]
    incidents: usize,
    #[arg(long, default_value_t = 20)]
    business_units: usize,
    #[arg(long, default_value_t = 200)]
    services: usize,
    /// Calls per measurement (one caller; then the same number over 4 callers in flight).
    #[arg(long, default_value_t = 500)]
    calls: usize,
    /// The PostgreSQL server of the forwarding run (a fresh database is created and dropped);
    /// without it only the embedded SQLite run is made.
    #[arg(long, env = "ASSURANCE_TEST_POSTGRES_URL")]
    postgres_url: Option<String>,
    /// Skip the embedded SQLite run.
    #[arg(long)]
    no_embedded: bool,
}

pub(crate) struct Process(pub(crate) Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// This binary hosting `command` (`serve`, `serve-incident`, `serve-gateway`) on `addr`.
pub(crate) async fn start(
    command: &str,
    addr: SocketAddr,
    args: &[String],
) -> Result<Process, String> {
    let http = server::free_addr()?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let child = Command::new(exe)
        .arg(command)
        .args([
            "--listen",
            &addr.to_string(),
            "--http-listen",
            &http.to_string(),
        ])
        .args(["--rate-limit", "1000000000", "--rate-burst", "1000000000"])
        .args(["--log-format", "json", "--tokens-file"])
        .arg(&SHARED.path)
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("SERVER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {command}: {e}"))?;
    let process = Process(child);
    server::wait_serving(addr, Duration::from_secs(120)).await?;
    Ok(process)
}

fn service_id(i: usize) -> String {
    format!("svc-{i:03}")
}

/// Seeds the org, the risks (statuses, assessments, approved responses, acceptances, action
/// items) and exceptions into the risk database at `url`.
async fn seed_risks(url: &str, args: &PostureArgs) -> Result<(), String> {
    use risk_service::store::entities::{
        action_item, action_plan, assessment, business_unit, exception, exception_service, risk,
        risk_response, service,
    };
    let started = Instant::now();
    let store = risk_service::store::Store::open(
        url,
        &risk_service::store::StoreOptions {
            max_connections: 2,
            cache_size: 0,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| format!("open {url}: {e}"))?;
    let db = store.connection();
    let now = now_micros();
    let day = 86_400_000_000i64;
    let tx = db.begin().await.map_err(|e| e.to_string())?;
    business_unit::Entity::insert_many((0..args.business_units).map(|i| {
        business_unit::Model {
            id: format!("bu-{i:02}"),
            display_name: format!("Business unit {i}"),
            description: String::new(),
            owner: "exec@example.com".into(),
            version: 1,
            create_time: now,
            update_time: now,
            delete_time: None,
        }
        .into_active_model()
    }))
    .exec_without_returning(&tx)
    .await
    .map_err(|e| format!("seed business units (is the database empty?): {e}"))?;
    let bu_of = |s: usize| format!("bu-{:02}", s % args.business_units);
    let services: Vec<_> = (0..args.services)
        .map(|i| {
            service::Model {
                id: service_id(i),
                business_unit_id: bu_of(i),
                display_name: format!("Service {i}"),
                description: String::new(),
                owner: "manager@example.com".into(),
                version: 1,
                create_time: now,
                update_time: now,
                delete_time: None,
            }
            .into_active_model()
        })
        .collect();
    crate::seed::insert_in_statements(&tx, services).await?;
    tx.commit().await.map_err(|e| e.to_string())?;

    let policy = risk_service::domain::scoring::ScoringPolicy::defaults(
        risk_service::domain::scoring::Methodology::Standard,
    );
    store
        .register_policy(&policy)
        .await
        .map_err(|e| e.to_string())?;
    let policy_id = policy.id();
    for rows in crate::seed::transactions(args.risks) {
        let tx = db.begin().await.map_err(|e| e.to_string())?;
        let (mut risks, mut assessments, mut responses, mut plans, mut items) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for n in rows {
            let id = Uuid::now_v7();
            let svc = n % args.services;
            let t = now - 400 * day + n as i64;
            // 10% identified (unassessed), 10% closed, the rest across the open statuses.
            let status = match n % 10 {
                0 => 1,
                1 => 6,
                k => 2 + (k as i32 % 4),
            };
            let assessed = status != 1;
            let (impact, likelihood, deficiency) = (
                (n % 5 + 1) as u8,
                ((n / 5) % 5 + 1) as u8,
                ((n / 25) % 5 + 1) as u8,
            );
            let d = policy.derive(impact, likelihood, deficiency);
            let aid = Uuid::now_v7();
            if assessed {
                assessments.push(
                    assessment::Model {
                        id: aid,
                        risk_id: id,
                        impact: impact.into(),
                        likelihood: likelihood.into(),
                        control_deficiency: deficiency.into(),
                        exposure: d.exposure.into(),
                        score: d.score.into(),
                        severity: d.severity as i32,
                        strategy: d.strategy as i32,
                        risk_level: 0,
                        methodology: 1,
                        policy_id: policy_id.clone(),
                        rationale: String::new(),
                        assessor: "seed@example.com".into(),
                        assess_time: t,
                        control_deficiency_derived: false,
                    }
                    .into_active_model(),
                );
            }
            risks.push(
                risk::Model {
                    id,
                    title: format!("Seeded risk {n}"),
                    description: "Seeded for benchmarks.".into(),
                    service_id: service_id(svc),
                    business_unit_id: bu_of(svc),
                    category: "access-control".into(),
                    threat: 2,
                    identification_source: 2,
                    source_reference: String::new(),
                    owner: format!("owner-{}@example.com", n % 500),
                    status,
                    labels: "{}".into(),
                    close_reason: if status == 6 {
                        "seeded".into()
                    } else {
                        String::new()
                    },
                    close_time: (status == 6).then_some(t),
                    version: 2,
                    create_time: t,
                    update_time: t,
                    latest_assessment_id: assessed.then_some(aid),
                    impact: if assessed { impact.into() } else { 0 },
                    likelihood: if assessed { likelihood.into() } else { 0 },
                    control_deficiency: if assessed { deficiency.into() } else { 0 },
                    exposure: if assessed { d.exposure.into() } else { 0 },
                    score: if assessed { d.score.into() } else { 0 },
                    severity: if assessed { d.severity as i32 } else { 0 },
                    strategy: if assessed { d.strategy as i32 } else { 0 },
                    risk_level: 0,
                    methodology: 1,
                    policy_id: policy_id.clone(),
                    assessment_rationale: String::new(),
                    assessor: "seed@example.com".into(),
                    assess_time: assessed.then_some(t),
                    // A quarter of the reviews are past due.
                    next_review_time: assessed
                        .then_some(now + if n % 4 == 0 { -day } else { 90 * day }),
                    control_deficiency_derived: false,
                }
                .into_active_model(),
            );
            if assessed && n % 3 == 0 {
                // An approved response at the risk's level; every 50th an acceptance expiring
                // within 30 days.
                let accept = n % 50 == 0;
                responses.push(
                    risk_response::Model {
                        id: Uuid::now_v7(),
                        risk_id: id,
                        decision: if accept { 4 } else { 1 },
                        strategy: d.strategy as i32,
                        strategy_override: 0,
                        override_justification: String::new(),
                        rationale: "seeded".into(),
                        acceptance_expire_time: accept.then_some(now + (n as i64 % 60) * day),
                        state: 2,
                        severity: d.severity as i32,
                        required_role: "risk_owner".into(),
                        proposer: "seed@example.com".into(),
                        decided_by: "approver@example.com".into(),
                        decision_comment: String::new(),
                        expired: false,
                        create_time: t,
                        decide_time: Some(t),
                    }
                    .into_active_model(),
                );
            }
            if n % 5 == 2 {
                plans.push(
                    action_plan::Model {
                        risk_id: id,
                        title: "Seeded plan".into(),
                        owner: "owner@example.com".into(),
                        create_time: t,
                        version: 1,
                        update_time: t,
                    }
                    .into_active_model(),
                );
                items.push(
                    action_item::Model {
                        id: Uuid::now_v7(),
                        risk_id: id,
                        service_id: service_id(svc),
                        business_unit_id: bu_of(svc),
                        title: "Seeded item".into(),
                        description: String::new(),
                        owner: "ops@example.com".into(),
                        due_time: now + if n % 10 == 2 { -day } else { 30 * day },
                        status: 1,
                        tracker_system: String::new(),
                        tracker_key: String::new(),
                        tracker_url: String::new(),
                        sync_state: 0,
                        sync_time: None,
                        version: 1,
                        create_time: t,
                        update_time: t,
                    }
                    .into_active_model(),
                );
            }
        }
        crate::seed::insert_in_statements(&tx, risks).await?;
        crate::seed::insert_in_statements(&tx, assessments).await?;
        crate::seed::insert_in_statements(&tx, responses).await?;
        crate::seed::insert_in_statements(&tx, plans).await?;
        crate::seed::insert_in_statements(&tx, items).await?;
        tx.commit().await.map_err(|e| e.to_string())?;
    }
    // Exceptions: one per 50 risks, each exempting 1–3 services, expiring over 60 days.
    let tx = db.begin().await.map_err(|e| e.to_string())?;
    let (mut exceptions, mut exempted) = (Vec::new(), Vec::new());
    for n in 0..args.risks / 50 {
        let id = Uuid::now_v7();
        exceptions.push(
            exception::Model {
                id,
                title: format!("Seeded exception {n}"),
                scope: "TLS 1.0 on legacy endpoints".into(),
                risk_id: None,
                justification: "seeded".into(),
                compensating_controls: String::new(),
                requester: "seed@example.com".into(),
                approver: "approver@example.com".into(),
                status: 2,
                expire_time: now + (n as i64 % 60 + 1) * day,
                approve_time: Some(now),
                revoke_time: None,
                revoke_reason: String::new(),
                decision_comment: String::new(),
                expiry_time: None,
                version: 1,
                create_time: now,
                update_time: now,
            }
            .into_active_model(),
        );
        for k in 0..(n % 3 + 1) {
            exempted.push(
                exception_service::Model {
                    exception_id: id,
                    service_id: service_id((n * 7 + k * 13) % args.services),
                }
                .into_active_model(),
            );
        }
    }
    crate::seed::insert_in_statements(&tx, exceptions).await?;
    crate::seed::insert_in_statements(&tx, exempted).await?;
    tx.commit().await.map_err(|e| e.to_string())?;
    store
        .refresh_summary_counters()
        .await
        .map_err(|e| format!("posture counters: {e}"))?;
    db.clone().close().await.ok();
    eprintln!(
        "seeded {} risks in {} services in {:.1}s",
        args.risks,
        args.services,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Seeds incidents over two years, most closed, each affecting 1–3 services (1% a service the
/// registry does not know), 5% not an incident.
async fn seed_incidents(url: &str, args: &PostureArgs) -> Result<(), String> {
    use incident_service::store::entities::{incident, incident_service as affected};
    let started = Instant::now();
    let store = incident_service::store::Store::open(url, 2)
        .await
        .map_err(|e| format!("open {url}: {e}"))?;
    let db = store.connection();
    let now = now_micros();
    let span = 730 * 86_400_000_000i64;
    let minute = 60_000_000i64;
    let count = args.incidents.max(1) as i64;
    for numbers in crate::seed::transactions(args.incidents) {
        let tx = db.begin().await.map_err(|e| e.to_string())?;
        let (mut rows, mut links) = (Vec::new(), Vec::new());
        for n in numbers {
            let id = Uuid::now_v7();
            let n64 = n as i64;
            let declare = now - span + span * n64 / count;
            let detect = declare - (n64 % 120) * minute;
            let phase = if n % 20 == 0 {
                (n / 20 % 5) as i32 + 1
            } else {
                6
            };
            let at_least = |p: i32, t: i64| (phase >= p).then_some(t);
            let mut services: Vec<String> = (0..(n % 3 + 1))
                .map(|k| service_id((n * 31 + k * 17) % args.services))
                .collect();
            if n % 100 == 7 {
                services = vec![format!("legacy-{}", n % 5)];
            }
            services.sort();
            services.dedup();
            for s in &services {
                links.push(
                    affected::Model {
                        incident_id: id,
                        service_id: s.clone(),
                    }
                    .into_active_model(),
                );
            }
            rows.push(
                incident::Model {
                    id,
                    title: format!("Seeded incident {n}"),
                    summary: "Seeded for benchmarks.".into(),
                    incident_type: "default".into(),
                    classification: if n % 20 == 3 { 3 } else { 2 },
                    severity: (n % 4) as i32 + 1,
                    severity_overridden: true,
                    functional_impact: 2,
                    information_impacts: "1".into(),
                    recoverability: 1,
                    customer_data_affected: n % 5 == 0,
                    affected_services: services.join(","),
                    detection_source: String::new(),
                    phase,
                    occur_time: Some(detect - (n64 % 600) * minute),
                    detect_time: detect,
                    declare_time: declare,
                    contain_time: at_least(2, declare + (n64 % 240) * minute),
                    eradicate_time: at_least(3, declare + (n64 % 480) * minute),
                    recover_time: at_least(4, declare + (n64 % 960) * minute),
                    post_incident_time: at_least(5, declare + (n64 % 1440) * minute),
                    close_time: at_least(6, declare + (n64 % 2880) * minute),
                    resolution: String::new(),
                    review_complete: phase >= 6,
                    timeline_seq: 0,
                    version: 1,
                    create_time: declare,
                    update_time: declare,
                }
                .into_active_model(),
            );
        }
        crate::seed::insert_in_statements(&tx, rows).await?;
        crate::seed::insert_in_statements(&tx, links).await?;
        tx.commit().await.map_err(|e| e.to_string())?;
    }
    db.clone().close().await.ok();
    eprintln!(
        "seeded {} incidents in {:.1}s",
        args.incidents,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Latencies (ms, sorted) of `calls` calls of `call` made by `callers` concurrent callers.
async fn measure<F, Fut>(calls: usize, callers: usize, call: F) -> Result<Vec<f64>, String>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let call = Arc::new(call);
    let mut tasks = Vec::new();
    for c in 0..callers {
        let call = call.clone();
        let mine = calls / callers + usize::from(c < calls % callers);
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(mine);
            for _ in 0..mine {
                let started = Instant::now();
                call().await?;
                out.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, String>(out)
        }));
    }
    let mut all = Vec::with_capacity(calls);
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())??);
    }
    all.sort_by(|a, b| a.total_cmp(b));
    Ok(all)
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Measures GetPosture(enterprise) and the health baseline on the gateway at `addr`.
async fn bench_gateway(label: &str, addr: SocketAddr, calls: usize) -> Result<(), String> {
    let channel: Channel = server::plain_channel(addr).await?;
    let writes = channel.clone();
    let authed = Bearer::new(channel.clone(), SHARED.token("reporter"))?;
    let posture = PostureServiceClient::new(authed).max_decoding_message_size(64 << 20);
    let health = HealthClient::new(channel);
    let get = {
        let posture = posture.clone();
        move || {
            let mut posture = posture.clone();
            async move {
                let answer = posture
                    .get_posture(GetPostureRequest {
                        scope: "enterprise".into(),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| format!("GetPosture: {e:?}"))?
                    .into_inner();
                if !answer.missing.is_empty() {
                    return Err(format!("GetPosture missing a half: {:?}", answer.missing));
                }
                Ok(())
            }
        }
    };
    let check = move || {
        let mut health = health.clone();
        async move {
            health
                .check(HealthCheckRequest::default())
                .await
                .map(|_| ())
                .map_err(|e| format!("health: {e:?}"))
        }
    };
    // Warm-up: connections, page cache, the registry.
    measure(20, 1, get.clone()).await?;
    measure(20, 1, check.clone()).await?;
    let answer = posture
        .clone()
        .get_posture(GetPostureRequest {
            scope: "enterprise".into(),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    let root = answer.root.unwrap_or_default();
    let encoded = prost::Message::encoded_len(&root);
    println!(
        "# {label}: enterprise posture: {} nodes below the root, {} open risks, {} open incidents, {} KPI incidents, {encoded} bytes",
        root.children.len()
            + root
                .children
                .iter()
                .map(|c| c.children.len())
                .sum::<usize>(),
        root.risks.as_ref().map(|r| r.open_risks).unwrap_or(0),
        root.incidents
            .as_ref()
            .map(|i| i.open_incidents)
            .unwrap_or(0),
        root.incidents
            .as_ref()
            .and_then(|i| i.kpis.as_ref())
            .map(|k| k.count)
            .unwrap_or(0),
    );
    println!(
        "| {label} | callers | calls | p50 ms | p90 ms | p99 ms | max ms | health p50 ms | health p99 ms |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for callers in [1, 4] {
        let base = measure(calls, callers, check.clone()).await?;
        let subject = measure(calls, callers, get.clone()).await?;
        println!(
            "| GetPosture(enterprise) | {callers} | {calls} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
            pct(&subject, 50.0),
            pct(&subject, 90.0),
            pct(&subject, 99.0),
            pct(&subject, 100.0),
            pct(&base, 50.0),
            pct(&base, 99.0),
        );
    }
    after_changes(writes, &get, calls / 10).await
}

/// GetPosture right after a change, so that it cannot reuse the changed half: `calls` calls
/// each after a risk's title changed, then each after an incident's title changed (the write
/// itself is not timed).
async fn after_changes<F, Fut>(channel: Channel, get: &F, calls: usize) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let admin = Bearer::new(channel, SHARED.token("admin"))?;
    let mut risks = RiskServiceClient::new(admin.clone());
    let mut incidents = IncidentServiceClient::new(admin);
    let risk = risks
        .list_risks(ListRisksRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("ListRisks: {e:?}"))?
        .into_inner()
        .risks
        .into_iter()
        .next()
        .ok_or("no risk to change")?;
    let incident = incidents
        .list_incidents(ListIncidentsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("ListIncidents: {e:?}"))?
        .into_inner()
        .incidents
        .into_iter()
        .next()
        .ok_or("no incident to change")?;
    for half in ["risk", "incident"] {
        let mut latencies = Vec::with_capacity(calls);
        for i in 0..calls {
            let title = format!("changed by the bench, {half} call {i}");
            if half == "risk" {
                risks
                    .update_risk(UpdateRiskRequest {
                        risk: Some(Risk {
                            name: risk.name.clone(),
                            title,
                            ..Default::default()
                        }),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["title".into()],
                        }),
                    })
                    .await
                    .map_err(|e| format!("UpdateRisk: {e:?}"))?;
            } else {
                incidents
                    .update_incident(UpdateIncidentRequest {
                        incident: Some(Incident {
                            name: incident.name.clone(),
                            title,
                            ..Default::default()
                        }),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["title".into()],
                        }),
                    })
                    .await
                    .map_err(|e| format!("UpdateIncident: {e:?}"))?;
            }
            let started = Instant::now();
            get().await?;
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        latencies.sort_by(f64::total_cmp);
        println!(
            "| GetPosture(enterprise) after each {half} change | 1 | {calls} | {:.1} | {:.1} | {:.1} | {:.1} | | |",
            pct(&latencies, 50.0),
            pct(&latencies, 90.0),
            pct(&latencies, 99.0),
            pct(&latencies, 100.0),
        );
    }
    Ok(())
}

pub async fn run(args: PostureArgs) -> Result<(), String> {
    println!(
        "# assurance-bench posture: {} risks, {} incidents, {} business units, {} services",
        args.risks, args.incidents, args.business_units, args.services
    );
    if !args.no_embedded {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        embedded(&args, dir.path()).await?;
    }
    match &args.postgres_url {
        Some(admin) => {
            let db = server::PgDatabase::create(admin).await?;
            let result = forwarding(&args, &db.url).await;
            db.drop_now().await;
            result?;
        }
        None => println!("# forwarding on PostgreSQL skipped: no --postgres-url"),
    }
    Ok(())
}

async fn embedded(args: &PostureArgs, dir: &Path) -> Result<(), String> {
    let url = |file: &str| assurance_runtime::db::sqlite_url(&dir.join(file));
    seed_risks(&url("risk.db"), args).await?;
    seed_incidents(&url("incident.db"), args).await?;
    let addr = server::free_addr()?;
    let _gateway = start(
        "serve-gateway",
        addr,
        &[
            "--embedded".into(),
            "--data-dir".into(),
            dir.display().to_string(),
        ],
    )
    .await?;
    bench_gateway("embedded, SQLite", addr, args.calls).await
}

async fn forwarding(args: &PostureArgs, url: &str) -> Result<(), String> {
    seed_risks(url, args).await?;
    seed_incidents(url, args).await?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let token_file = dir.path().join("system-token");
    std::fs::write(&token_file, SHARED.token("system")).map_err(|e| e.to_string())?;
    let (risk_addr, incident_addr, gateway_addr) = (
        server::free_addr()?,
        server::free_addr()?,
        server::free_addr()?,
    );
    let db_args = vec!["--database-url".to_string(), url.to_string()];
    let _risk = start("serve", risk_addr, &db_args).await?;
    let _incident = start("serve-incident", incident_addr, &db_args).await?;
    let _gateway = start(
        "serve-gateway",
        gateway_addr,
        &[
            "--risk-url".into(),
            format!("http://{risk_addr}"),
            "--incident-url".into(),
            format!("http://{incident_addr}"),
            "--service-token-file".into(),
            token_file.display().to_string(),
            "--database-url".into(),
            url.to_string(),
            "--data-dir".into(),
            dir.path().display().to_string(),
        ],
    )
    .await?;
    bench_gateway("forwarding, PostgreSQL", gateway_addr, args.calls).await
}
