//! `assurance-bench replicas`: CreateRisk + GetRisk throughput through a forwarding gateway in
//! front of one risk-service replica, and through a second gateway in front of two replicas,
//! in the same run on one fresh PostgreSQL database (each server in its own process). Rounds
//! alternate between the two; each figure is the median of its rounds, and the ratio is two
//! replicas over one.
//!
//! Every server shares the machine's cores with PostgreSQL and the load generator: the ratio
//! says what a second replica buys on this machine, not on one with a core per replica.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use assurance_proto::risk::v1::{self as pb, risk_service_client::RiskServiceClient};
use assurance_tests::server::{self, AuthChannel};

use crate::{
    posture::{Process, start},
    relay::cpu_secs,
};

#[derive(clap::Parser)]
pub struct ReplicasArgs {
    /// The PostgreSQL server (admin URL); a fresh database is created and dropped.
    #[arg(long, env = "ASSURANCE_TEST_POSTGRES_URL")]
    postgres_url: String,
    /// Callers in flight.
    #[arg(long, default_value_t = 32)]
    callers: usize,
    /// Seconds per round.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds per setup (alternating).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Risks seeded for GetRisk to read.
    #[arg(long, default_value_t = 2_000)]
    risks: usize,
}

pub async fn run(args: ReplicasArgs) -> Result<(), String> {
    let db = server::PgDatabase::create(&args.postgres_url).await?;
    let result = measure(&args, &db.url).await;
    db.drop_now().await;
    result
}

async fn measure(args: &ReplicasArgs, url: &str) -> Result<(), String> {
    let data = tempfile::tempdir().map_err(|e| e.to_string())?;
    let addr = || server::free_addr();
    let (a, b, incident) = (addr()?, addr()?, addr()?);
    // Both replicas start at once: one migrates, the other waits for the lock.
    let service_args = vec!["--database-url".to_string(), url.to_string()];
    let (risk_a, risk_b) = tokio::join!(
        start("serve", a, &service_args),
        start("serve", b, &service_args)
    );
    let risks: [Process; 2] = [risk_a?, risk_b?];
    let _incident = start("serve-incident", incident, &service_args).await?;
    let gateway = |risks: Vec<SocketAddr>, dir: &str| {
        let mut args = vec![
            "--data-dir".to_string(),
            data.path().join(dir).display().to_string(),
            "--database-url".into(),
            url.to_string(),
            "--incident-url".into(),
            format!("http://{incident}"),
            "--snapshot-interval".into(),
            "off".into(),
        ];
        for risk in risks {
            args.extend(["--risk-url".to_string(), format!("http://{risk}")]);
        }
        args
    };
    let (one_addr, two_addr) = (addr()?, addr()?);
    let gw_one = start("serve-gateway", one_addr, &gateway(vec![a], "one")).await?;
    let gw_two = start("serve-gateway", two_addr, &gateway(vec![a, b], "two")).await?;
    let pids = [
        risks[0].0.id(),
        risks[1].0.id(),
        gw_one.0.id(),
        gw_two.0.id(),
    ];
    let cpu = || -> Result<[f64; 4], String> {
        Ok([
            cpu_secs(pids[0])?,
            cpu_secs(pids[1])?,
            cpu_secs(pids[2])?,
            cpu_secs(pids[3])?,
        ])
    };
    let one = server::connect(one_addr).await?;
    let two = server::connect(two_addr).await?;

    server::register_org(one.clone(), "productivity", "exchange-online").await?;
    let started = Instant::now();
    let names = Arc::new(seed(&one, args.risks).await?);
    println!(
        "seeded {} risks in {:.1} s",
        names.len(),
        started.elapsed().as_secs_f64()
    );

    // Warm-up, unmeasured: connections, and both replicas' read caches.
    for (i, channel) in [&one, &two].into_iter().enumerate() {
        load(args, channel, names.clone(), &format!("warm-{i}")).await;
    }
    let mut figures: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..args.rounds {
        for (i, (label, channel)) in [("1 replica", &one), ("2 replicas", &two)]
            .into_iter()
            .enumerate()
        {
            let tag = format!("r{round}-{i}");
            let before = cpu()?;
            let (ops, errors, calls) = load(args, channel, names.clone(), &tag).await;
            let after = cpu()?;
            let ms_per_call = |k: usize| (after[k] - before[k]) * 1e3 / calls.max(1) as f64;
            println!(
                "round {round} {label}: {ops:.0} calls/s ({errors} errors); CPU ms per call: \
                 replica A {:.2}, replica B {:.2}, gateway {:.2}",
                ms_per_call(0),
                ms_per_call(1),
                ms_per_call(2 + i),
            );
            figures[i].push(ops);
        }
    }
    let (single, double) = (median(&mut figures[0]), median(&mut figures[1]));
    println!(
        "\nCreateRisk + GetRisk through the forwarding gateway, {} callers, median of {} rounds of {} s:",
        args.callers, args.rounds, args.seconds
    );
    println!("  1 replica:  {single:.0} calls/s");
    println!("  2 replicas: {double:.0} calls/s");
    println!("  ratio 2/1:  {:.2}", double / single.max(1.0));
    Ok(())
}

/// Creates `n` risks through `channel`; their names.
async fn seed(channel: &AuthChannel, n: usize) -> Result<Vec<String>, String> {
    let mut names = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(64) {
        let calls: Vec<_> = chunk
            .iter()
            .map(|i| {
                let mut risks = RiskServiceClient::new(channel.clone());
                let request = create(&format!("seed-{i}"));
                tokio::spawn(async move { risks.create_risk(request).await })
            })
            .collect();
        for call in calls {
            let risk = call
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("seed: {e}"))?;
            names.push(risk.into_inner().name);
        }
    }
    Ok(names)
}

fn create(request_id: &str) -> pb::CreateRiskRequest {
    pb::CreateRiskRequest {
        risk: Some(pb::Risk {
            title: format!("Replica bench {request_id}"),
            description: "Attackers could reuse leaked credentials.".into(),
            service: "services/exchange-online".into(),
            category: "access-control".into(),
            threat: pb::Threat::External as i32,
            identification_source: pb::IdentificationSource::VulnerabilityScan as i32,
            owner: "owner@example.com".into(),
            ..Default::default()
        }),
        request_id: request_id.into(),
    }
}

/// `args.callers` callers, each alternating CreateRisk and GetRisk of a seeded risk, for
/// `args.seconds`: (calls per second, failed calls, calls made).
async fn load(
    args: &ReplicasArgs,
    channel: &AuthChannel,
    names: Arc<Vec<String>>,
    tag: &str,
) -> (f64, u64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for caller in 0..args.callers {
        let mut risks = RiskServiceClient::new(channel.clone());
        let (stop, done, failed, names) =
            (stop.clone(), done.clone(), failed.clone(), names.clone());
        let tag = format!("{tag}-{caller}");
        tasks.push(tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let ok = if n.is_multiple_of(2) {
                    risks
                        .create_risk(create(&format!("{tag}-{n}")))
                        .await
                        .is_ok()
                } else {
                    let name = names[(n * 7919 + caller * 104_729) % names.len()].clone();
                    risks.get_risk(pb::GetRiskRequest { name }).await.is_ok()
                };
                let counter = if ok { &done } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let calls = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let made = done.load(Ordering::Relaxed);
    (calls as f64 / elapsed, failed.load(Ordering::Relaxed), made)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}
