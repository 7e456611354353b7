//! `assurance-bench`: the load generator of Assurance.
//!
//! `run` starts a (release) risk-service on a fresh database (or targets a running one),
//! seeds it with `insert_many`, and drives each operation over loopback with
//! connections × in-flight calls for a fixed time, alternating with the gRPC health Check
//! on the same server as the baseline. Every figure is the median of the rounds; throughput is
//! also given as a ratio to the baseline. `--load h2load` uses nghttp2's h2load for
//! throughput (a tonic client costs as much CPU as the server it measures).
//!
//! `serve` hosts risk-service exactly as its binary does (tests use it to run separate server
//! processes), and `crash` kills a server with SIGKILL under create load and checks that
//! every acknowledged create survived exactly once.

mod auth;
mod limits;
mod load;
mod observe;
mod posture;
mod relay;
mod replicas;
mod report;
mod seed;
mod watchers;

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, ExitCode, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use assurance_tests::{crash, server};
use clap::{Parser, Subcommand};
use load::{Op, Sample, Workload};
use prost::Message;

#[derive(Parser)]
#[command(
    name = "assurance-bench",
    about = "Load generator and crash checker for Assurance"
)]
struct Cli {
    #[command(subcommand)]
    command: Command_,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)]
enum Command_ {
    /// Benchmark risk-service operations against the health-check baseline.
    Run(RunArgs),
    /// Host risk-service in this process (same flags as the risk-service binary).
    Serve {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Host incident-service in this process (same flags as the incident-service binary).
    ServeIncident {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Host the gateway in this process (same flags as the gateway binary).
    ServeGateway {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// SIGKILL a server during create load; check acknowledged creates survive exactly once.
    Crash(CrashArgs),
    /// The cost of the identity check: GetRisk with bearer tokens vs `--insecure-dev`.
    Auth(auth::AuthArgs),
    /// GetPosture for the enterprise: embedded on SQLite, forwarding on PostgreSQL.
    Posture(posture::PostureArgs),
    /// ExportReport CSV of a signed and a draft report over 100k risks: rows/s and memory.
    Report(report::ReportArgs),
    /// Outbox relay throughput to an idempotent receiver on loopback, and CPU per event.
    Relay(relay::RelayArgs),
    /// CreateRisk + GetRisk through a forwarding gateway: one risk-service replica vs two.
    Replicas(replicas::ReplicasArgs),
    /// Generated-input runs of the request parsers: no panic, every refusal clean.
    Fuzz(FuzzArgs),
    /// The CPU cost of idle WatchIncident streams against an idle server.
    Watchers(watchers::WatchersArgs),
    /// The cost of the resource limits: GetRisk with the limits vs a baseline without them.
    Limits(limits::LimitsArgs),
    /// The per-call cost of the request id, metrics and access-log layer.
    Observe(observe::ObserveArgs),
}

#[derive(Parser)]
struct FuzzArgs {
    /// Inputs per target.
    #[arg(long, default_value_t = 1_000_000)]
    cases: u32,
    /// One target (default: all of them).
    #[arg(long)]
    target: Option<String>,
}

#[derive(Parser)]
struct RunArgs {
    /// The server binary to start (a release build of risk-service).
    #[arg(long, default_value = "target/release/risk-service")]
    server_bin: PathBuf,
    /// Extra flags for the server, e.g. `--server-arg=--read-cache-size=0`.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Benchmark a running server instead of starting one (it must have been seeded by a
    /// previous run or `--database-url` must name its database for seeding).
    #[arg(long)]
    target: Option<SocketAddr>,
    /// Database to seed and serve; default a fresh SQLite file. A `postgres://` URL names the
    /// server of a fresh database created (and dropped) by the run.
    #[arg(long)]
    database_url: Option<String>,
    /// Risks (or, with `--service incident`, incidents) to seed.
    #[arg(long, default_value_t = 100_000)]
    risks: usize,
    /// GetRisk picks from this many seeded risks (default: all of them).
    #[arg(long)]
    get_working_set: Option<usize>,
    #[command(flatten)]
    shape: load::LoadShape,
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "get-risk,list-risks,create-risk,assess-risk"
    )]
    ops: Vec<Op>,
    /// Which service to benchmark: risk-service (risks seeded) or incident-service (incidents
    /// seeded; use `--ops declare-incident,add-timeline-event,get-incident,get-incident-metrics`).
    #[arg(long, value_enum, default_value = "risk")]
    service: Service,
    /// Load source: tonic clients in this process, or h2load (throughput only).
    #[arg(long, value_enum, default_value = "tonic")]
    load: LoadSource,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Service {
    Risk,
    Incident,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LoadSource {
    Tonic,
    H2load,
}

#[derive(Parser)]
struct CrashArgs {
    #[arg(long, default_value = "target/release/risk-service")]
    server_bin: PathBuf,
    /// Seconds of create load before the SIGKILL.
    #[arg(long, default_value_t = 2.0)]
    load_seconds: f64,
    #[arg(long, default_value_t = 32)]
    workers: usize,
}

/// Runs the fuzz targets, one line each.
fn fuzz(args: FuzzArgs) -> Result<(), String> {
    let targets: Vec<&str> = match &args.target {
        Some(t) => vec![t.as_str()],
        None => assurance_tests::fuzz::TARGETS.to_vec(),
    };
    println!("target        inputs   refused  seconds  inputs/s  panics");
    for target in targets {
        let r = assurance_tests::fuzz::run(target, args.cases)?;
        let secs = r.elapsed.as_secs_f64();
        println!(
            "{:<12} {:>8} {:>8} {:>8.1} {:>9.0}  0",
            r.target,
            r.cases,
            r.refused,
            secs,
            r.cases as f64 / secs.max(1e-9)
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command_::Run(args) => run(args).await,
            Command_::Serve { args } => server::serve_in_process(args).await,
            Command_::ServeIncident { args } => server::serve_incident_in_process(args).await,
            Command_::ServeGateway { args } => server::serve_gateway_in_process(args).await,
            Command_::Auth(args) => auth::run(args).await,
            Command_::Posture(args) => posture::run(args).await,
            Command_::Report(args) => report::run(args).await,
            Command_::Relay(args) => relay::run(args).await,
            Command_::Replicas(args) => replicas::run(args).await,
            Command_::Fuzz(args) => fuzz(args),
            Command_::Watchers(args) => watchers::run(args).await,
            Command_::Limits(args) => limits::run(args).await,
            Command_::Observe(args) => observe::run(args).await,
            Command_::Crash(args) => {
                let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
                let url = assurance_runtime::db::sqlite_url(&dir.path().join("risk.db"));
                let report = crash::check(
                    |addr| server::spawn_binary(&args.server_bin, &[], &url, addr),
                    Duration::from_secs_f64(args.load_seconds),
                    args.workers,
                )
                .await?;
                println!("{report}");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("assurance-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: RunArgs) -> Result<(), String> {
    let mut scratch = None;
    let mut pg_database = None;
    let url = match &args.database_url {
        Some(u) if u.starts_with("postgres") => {
            let db = server::PgDatabase::create(u).await?;
            let url = db.url.clone();
            pg_database = Some(db);
            Some(url)
        }
        Some(u) => Some(u.clone()),
        None if args.target.is_none() => {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let url = assurance_runtime::db::sqlite_url(&dir.path().join("risk.db"));
            scratch = Some(dir);
            Some(url)
        }
        None => None,
    };
    let Some(seed_url) = &url else {
        return Err("--target without --database-url: nothing to seed the workload from".into());
    };
    let (risk_ids, incident_ids) = match args.service {
        Service::Risk => (seed::seed(seed_url, args.risks).await?.risk_ids, Vec::new()),
        Service::Incident => (
            Vec::new(),
            seed::seed_incidents(seed_url, args.risks).await?,
        ),
    };
    let mut child: Option<Child> = None;
    let addr = match args.target {
        Some(addr) => addr,
        None => {
            let addr = server::free_addr()?;
            let url = url.clone().unwrap_or_default();
            child = Some(server::spawn_binary(
                &args.server_bin,
                &args.server_args,
                &url,
                addr,
            )?);
            addr
        }
    };
    server::wait_serving(addr, Duration::from_secs(60)).await?;

    let channels = {
        let mut v = Vec::new();
        for _ in 0..args.shape.connections {
            v.push(server::connect(addr).await?);
        }
        v
    };
    let work = Arc::new(Workload {
        get_working_set: args.get_working_set.unwrap_or(risk_ids.len()),
        risk_ids,
        incident_ids,
    });
    let duration = Duration::from_secs_f64(args.shape.duration);
    println!(
        "# assurance-bench: {} {}, {} connections x {} in flight, {:.1}s x {} rounds, load {}, db {}{}",
        args.risks,
        if args.service == Service::Risk {
            "risks"
        } else {
            "incidents"
        },
        args.shape.connections,
        args.shape.in_flight,
        args.shape.duration,
        args.shape.rounds,
        if args.load == LoadSource::Tonic {
            "tonic"
        } else {
            "h2load"
        },
        url.as_deref()
            .map(assurance_runtime::db::redact_url)
            .unwrap_or_default(),
        pg_path(url.as_deref())
    );
    // Warm-up: connections, caches, JIT-free but page cache and allocator.
    load::run(
        Op::Health,
        &channels,
        args.shape.in_flight,
        Duration::from_millis(500),
        work.clone(),
    )
    .await;

    let mut samples: Vec<(Op, Vec<Sample>)> = Vec::new();
    let mut record = |op: Op, s: Sample| match samples.iter_mut().find(|(o, _)| *o == op) {
        Some((_, v)) => v.push(s),
        None => samples.push((op, vec![s])),
    };
    for round in 1..=args.shape.rounds {
        for op in &args.ops {
            // The baseline runs right before each subject, on the same server.
            for current in [Op::Health, *op] {
                let sample = match args.load {
                    LoadSource::Tonic => {
                        load::run(
                            current,
                            &channels,
                            args.shape.in_flight,
                            duration,
                            work.clone(),
                        )
                        .await
                    }
                    LoadSource::H2load => h2load(current, addr, &args, &work).await?,
                };
                match sample.mean_ms {
                    Some(mean) => println!(
                        "round {round} {:<13} {:>9.0} req/s  mean {mean:>7.2} ms  codes {:?}",
                        current.name(),
                        sample.rate(),
                        sample.codes
                    ),
                    None => println!(
                        "round {round} {:<13} {:>9.0} req/s  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  codes {:?}",
                        current.name(),
                        sample.rate(),
                        sample.percentile_ms(50.0),
                        sample.percentile_ms(90.0),
                        sample.percentile_ms(99.0),
                        sample.codes
                    ),
                }
                record(current, sample);
            }
        }
    }
    print_summary(&samples);
    if let Some(mut c) = child {
        let _ = c.kill();
        let _ = c.wait();
    }
    drop(scratch);
    if let Some(db) = pg_database {
        db.drop_now().await;
    }
    Ok(())
}

/// How the server reaches a PostgreSQL database: its Unix socket, TCP through the relay of
/// `assurance_runtime::pg_relay`, or TCP without it (`ASSURANCE_PG_TCP_RELAY=off`, which the
/// server inherits).
fn pg_path(url: Option<&str>) -> String {
    use assurance_runtime::pg_relay::{RelayMode, relay_target};
    let Some(url) = url.filter(|u| u.starts_with("postgres")) else {
        return String::new();
    };
    match (relay_target(url), RelayMode::from_env()) {
        (None, _) => " (Unix socket)".into(),
        (Some(_), Ok(RelayMode::Auto)) => " (TCP through the relay)".into(),
        (Some(_), Ok(RelayMode::Off)) => " (TCP, relay off)".into(),
        (Some(_), Err(e)) => format!(" ({e})"),
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.retain(|x| !x.is_nan());
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn print_summary(samples: &[(Op, Vec<Sample>)]) {
    let baseline = samples
        .iter()
        .find(|(op, _)| *op == Op::Health)
        .map(|(_, s)| median(s.iter().map(Sample::rate).collect()))
        .unwrap_or(f64::NAN);
    println!();
    if samples
        .iter()
        .any(|(_, s)| s.iter().any(|x| x.mean_ms.is_some()))
    {
        println!("| operation | req/s (median) | vs health | mean ms | errors |");
        println!("|---|---:|---:|---:|---:|");
        for (op, s) in samples {
            let rate = median(s.iter().map(Sample::rate).collect());
            println!(
                "| {} | {:.0} | {:.0}% | {:.2} | {} |",
                op.name(),
                rate,
                100.0 * rate / baseline,
                median(s.iter().filter_map(|x| x.mean_ms).collect()),
                s.iter().map(Sample::errors).sum::<u64>()
            );
        }
        return;
    }
    println!("| operation | req/s (median) | vs health | p50 ms | p90 ms | p99 ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (op, s) in samples {
        let rate = median(s.iter().map(Sample::rate).collect());
        println!(
            "| {} | {:.0} | {:.0}% | {:.2} | {:.2} | {:.2} | {} |",
            op.name(),
            rate,
            100.0 * rate / baseline,
            median(s.iter().map(|x| x.percentile_ms(50.0)).collect()),
            median(s.iter().map(|x| x.percentile_ms(90.0)).collect()),
            median(s.iter().map(|x| x.percentile_ms(99.0)).collect()),
            s.iter().map(Sample::errors).sum::<u64>()
        );
    }
}

/// One request body of `op` for h2load: gRPC's 5-byte frame header plus the message.
fn grpc_body(op: Op, work: &Workload) -> Vec<u8> {
    use assurance_proto::risk::v1 as pb;
    let id = work.risk_ids.first().copied().unwrap_or_default();
    let message = match op {
        Op::Health => tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        }
        .encode_to_vec(),
        Op::GetRisk => pb::GetRiskRequest {
            name: format!("risks/{id}"),
        }
        .encode_to_vec(),
        Op::ListRisks => pb::ListRisksRequest {
            page_size: 50,
            filter: "service = services/svc-00 AND severity >= HIGH".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        Op::CreateRisk => pb::CreateRiskRequest {
            risk: Some(pb::Risk {
                title: "Load-test risk".into(),
                service: "services/svc-01".into(),
                threat: 2,
                identification_source: 6,
                owner: "bench@example.com".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        }
        .encode_to_vec(),
        Op::AssessRisk => pb::AssessRiskRequest {
            name: format!("risks/{id}"),
            assessment: Some(pb::Assessment {
                impact: 3,
                likelihood: 3,
                control_deficiency: 3,
                assessor: "bench@example.com".into(),
                ..Default::default()
            }),
            request_id: String::new(),
            derive_control_deficiency: false,
        }
        .encode_to_vec(),
        // Incident operations are driven by the tonic load only.
        Op::DeclareIncident | Op::AddTimelineEvent | Op::GetIncident | Op::GetIncidentMetrics => {
            Vec::new()
        }
    };
    let mut body = vec![0u8];
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(&message);
    body
}

/// Runs h2load for `op`. h2load reads only HTTP status, so the same request is first sent once
/// through a gRPC client to make sure it succeeds at the gRPC level.
async fn h2load(
    op: Op,
    addr: SocketAddr,
    args: &RunArgs,
    work: &Workload,
) -> Result<Sample, String> {
    let body = grpc_body(op, work);
    let file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    std::fs::write(file.path(), &body).map_err(|e| e.to_string())?;
    check_once(op, addr, &body).await?;
    let started = Instant::now();
    let output = Command::new("h2load")
        .args([
            "-c",
            &args.shape.connections.to_string(),
            "-m",
            &args.shape.in_flight.to_string(),
        ])
        .args(["-D", &format!("{}", args.shape.duration.ceil() as u64)])
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .args([
            "-H",
            &format!(
                "authorization: Bearer {}",
                assurance_tests::auth::SHARED.admin()
            ),
        ])
        .arg("-d")
        .arg(file.path())
        .arg(format!("http://{addr}{}", op.path()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("h2load (apt-get install nghttp2-client): {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let succeeded = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .and_then(|l| l.split(',').find(|p| p.contains("succeeded")))
        .and_then(|p| p.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| format!("cannot read h2load output:\n{text}"))?;
    let mean_us = text
        .lines()
        .find(|l| l.starts_with("time for request:"))
        .and_then(|l| l.split_whitespace().nth(5).map(str::to_string))
        .map(|m| parse_h2load_time(&m))
        .unwrap_or(0);
    let mut sample = Sample {
        ok: succeeded,
        elapsed: Duration::from_secs_f64(args.shape.duration.ceil()).min(started.elapsed()),
        mean_ms: Some(f64::from(mean_us) / 1000.0),
        ..Default::default()
    };
    // h2load sees HTTP status only; gRPC status was checked once above.
    sample.codes.insert("Ok(http)".into(), succeeded);
    Ok(sample)
}

fn parse_h2load_time(s: &str) -> u32 {
    let (num, scale) = if let Some(v) = s.strip_suffix("us") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1000.0)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1_000_000.0)
    } else {
        (s, 1.0)
    };
    (num.parse::<f64>().unwrap_or(0.0) * scale) as u32
}

async fn check_once(op: Op, addr: SocketAddr, body: &[u8]) -> Result<(), String> {
    let channel = server::connect(addr).await?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| e.to_string())?;
    let path = http::uri::PathAndQuery::from_static(op.path());
    let request = tonic::Request::new(bytes::Bytes::copy_from_slice(&body[5..]));
    grpc.unary::<_, bytes::Bytes, _>(request, path, assurance_tests::raw::RawCodec)
        .await
        .map(|_| ())
        .map_err(|s| format!("{} fails at the gRPC level: {s}", op.name()))
}
