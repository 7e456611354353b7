//! `assurance-bench relay`: outbox relay throughput. Events are queued in an incident-service
//! outbox (SQLite, and PostgreSQL when `--postgres` is given) and drained by one relay in this
//! process, to a risk-service in its own process on loopback:
//! - `no-op`: each delivery is one gRPC health Check (an idempotent receiver doing nothing),
//!   which isolates the relay's own cost (claim, deliver, settle);
//! - `record`: each delivery is `RecordRiskRealization`, idempotent by its key, writing a row.
//!
//! The baseline, measured in the same run, is the health Check itself at the relay's
//! concurrency (a batch of 64 in flight). Reported: events/s, the ratio to the baseline, and
//! CPU per event of this process (the relay and, on SQLite, the outbox database) and of the
//! receiver's process.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use assurance_proto::{
    risk::v1::{self as pb, risk_service_client::RiskServiceClient},
    r#type::v1::Severity,
};
use assurance_runtime::{
    auth::client::Bearer,
    outbox::{
        NewEvent, outbox_event,
        relay::{Outcome, Receiver, Relay, RelaySettings},
    },
};
use assurance_tests::{auth::SHARED, server};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[derive(clap::Parser)]
pub struct RelayArgs {
    /// Events per phase.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Aggregates the events are spread over (each delivered in order).
    #[arg(long, default_value_t = 2_000)]
    aggregates: usize,
    /// Risks the realisations are spread over (each `RecordRiskRealization` answers with the
    /// risk's realisations so far, so few risks make later calls costlier).
    #[arg(long, default_value_t = 2_000)]
    risks: usize,
    /// PostgreSQL server (admin URL) to measure on as well, in fresh databases.
    #[arg(long, env = "ASSURANCE_TEST_POSTGRES_URL")]
    postgres: Option<String>,
}

const SERVICE: &str = "incident-service";
const NOOP: &str = "bench.noop";
const RECORD: &str = "bench.record";
const BATCH: u32 = 64;

/// Delivers to the risk-service at the other end of `channel`.
struct Bench {
    health: HealthClient<Channel>,
    risks: RiskServiceClient<Bearer<Channel>>,
}

impl Receiver for Bench {
    fn kinds(&self) -> &'static [&'static str] {
        &[NOOP, RECORD]
    }

    async fn deliver(&self, event: &outbox_event::Model) -> Outcome {
        let answer = if event.kind == NOOP {
            self.health
                .clone()
                .check(HealthCheckRequest::default())
                .await
                .map(drop)
        } else {
            let p: serde_json::Value = serde_json::from_str(&event.payload).unwrap_or_default();
            self.risks
                .clone()
                .record_risk_realization(pb::RecordRiskRealizationRequest {
                    risk: p["risk"].as_str().unwrap_or_default().into(),
                    incident: p["incident"].as_str().unwrap_or_default().into(),
                    incident_severity: Severity::High as i32,
                    realize_time: None,
                    request_id: event.id.to_string(),
                })
                .await
                .map(drop)
        };
        match answer {
            Ok(()) => Outcome::Delivered,
            Err(status) => Outcome::of_status(&status),
        }
    }
}

/// CPU seconds (user + system) of process `pid` so far.
pub(crate) fn cpu_secs(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(u), Some(s)) => Ok((u + s) / 100.0),
        _ => Err(format!("unreadable /proc/{pid}/stat")),
    }
}

/// One phase's figures.
struct Figures {
    per_sec: f64,
    relay_us: f64,
    receiver_us: f64,
}

async fn queue(
    db: &sea_orm::DatabaseConnection,
    kind: &'static str,
    n: usize,
    aggregates: usize,
    risks: &[String],
) -> Result<(), String> {
    use sea_orm::TransactionTrait;
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let tx = db.begin().await.map_err(|e| e.to_string())?;
        let events = chunk.iter().map(|i| NewEvent {
            kind,
            aggregate: format!("incidents/bench-{}", i % aggregates),
            payload: serde_json::json!({
                "risk": risks[i % risks.len()],
                "incident": format!("incidents/{}", uuid::Uuid::now_v7()),
            }),
        });
        assurance_runtime::outbox::queue(&tx, SERVICE, events)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Drains the outbox with one relay, flat out; returns the figures.
async fn drain(relay: &Relay<Bench>, n: usize, receiver_pid: u32) -> Result<Figures, String> {
    let (me, them) = (cpu_secs(std::process::id())?, cpu_secs(receiver_pid)?);
    let start = Instant::now();
    let mut delivered = 0;
    while delivered < n {
        let claimed = relay.run_once().await.map_err(|e| e.to_string())?;
        if claimed == 0 {
            return Err(format!("stalled after {delivered} of {n} events"));
        }
        delivered += claimed;
    }
    let took = start.elapsed().as_secs_f64();
    let per_event = |before: f64, pid: u32| -> Result<f64, String> {
        Ok((cpu_secs(pid)? - before) / n as f64 * 1e6)
    };
    Ok(Figures {
        per_sec: n as f64 / took,
        relay_us: per_event(me, std::process::id())?,
        receiver_us: per_event(them, receiver_pid)?,
    })
}

/// Health checks with `BATCH` in flight: calls per second.
async fn baseline(health: &HealthClient<Channel>, n: usize) -> f64 {
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..BATCH {
            let mut h = health.clone();
            calls.spawn(async move { h.check(HealthCheckRequest::default()).await.is_ok() });
        }
        done += calls.join_all().await.len();
    }
    done as f64 / start.elapsed().as_secs_f64()
}

async fn measure(
    label: &str,
    outbox_url: &str,
    receiver_url: &str,
    args: &RelayArgs,
) -> Result<(), String> {
    let db = incident_service::store::Store::open(outbox_url, 8)
        .await
        .map_err(|e| format!("outbox database: {e}"))?
        .connection()
        .clone();
    let addr = server::free_addr()?;
    let bin = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = server::spawn_binary(&bin, &[], receiver_url, addr)?;
    server::wait_serving(addr, Duration::from_secs(60)).await?;
    let admin = server::connect(addr).await?;
    server::register_org(admin.clone(), "bench", "bench").await?;
    let mut risks = Vec::new();
    let mut client = RiskServiceClient::new(admin);
    for i in 0..args.risks {
        let risk = client
            .create_risk(pb::CreateRiskRequest {
                risk: Some(pb::Risk {
                    title: format!("Bench risk {i}"),
                    service: "services/bench".into(),
                    threat: pb::Threat::External as i32,
                    identification_source: pb::IdentificationSource::Other as i32,
                    owner: "bench@example.com".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .map_err(|e| e.to_string())?;
        risks.push(risk.into_inner().name);
    }
    let channel = server::plain_channel(addr).await?;
    let receiver = Bench {
        health: HealthClient::new(channel.clone()),
        risks: RiskServiceClient::new(Bearer::new(channel, SHARED.token("system"))?),
    };
    let base = baseline(&receiver.health, args.events).await;
    let relay = Relay::new(
        db.clone(),
        SERVICE,
        receiver,
        RelaySettings {
            batch: BATCH,
            ..RelaySettings::default()
        },
        Arc::default(),
    );
    println!(
        "{label}: {} events per phase over {} aggregates, batch {BATCH}; {} risks",
        args.events, args.aggregates, args.risks
    );
    println!(
        "| phase | events/s | × health baseline ({base:.0}/s) | relay CPU µs/event | receiver CPU µs/event |"
    );
    println!("|---|--:|--:|--:|--:|");
    for kind in [NOOP, RECORD] {
        queue(&db, kind, args.events, args.aggregates, &risks).await?;
        let f = drain(&relay, args.events, child.id()).await?;
        let phase = if kind == NOOP { "no-op" } else { "record" };
        println!(
            "| {phase} | {:.0} | {:.2} | {:.0} | {:.0} |",
            f.per_sec,
            f.per_sec / base,
            f.relay_us,
            f.receiver_us
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}

pub async fn run(args: RelayArgs) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sqlite = |name: &str| assurance_runtime::db::sqlite_url(&dir.path().join(name));
    measure("SQLite", &sqlite("incident.db"), &sqlite("risk.db"), &args).await?;
    if let Some(admin) = &args.postgres {
        let outbox = server::PgDatabase::create(admin).await?;
        let receiver = server::PgDatabase::create(admin).await?;
        let result = measure("PostgreSQL", &outbox.url, &receiver.url, &args).await;
        outbox.drop_now().await;
        receiver.drop_now().await;
        result?;
    }
    Ok(())
}
