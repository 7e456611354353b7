//! `assurance-bench auth`: what the identity check costs. Two risk-service processes serve one
//! seeded SQLite database — one checking bearer tokens, one started with `--insecure-dev` —
//! and GetRisk runs against each in alternation, the same client (sending the same token to
//! both) and load; the figure is the ratio of the medians.

use std::{path::PathBuf, sync::Arc, time::Duration};

use assurance_tests::server;

use crate::{
    load::{self, Op, Sample, Workload},
    median, seed,
};

#[derive(clap::Parser)]
pub struct AuthArgs {
    #[arg(long, default_value = "target/release/risk-service")]
    server_bin: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    risks: usize,
    /// GetRisk picks from this many of the seeded risks: a hot set both servers' read caches
    /// hold after the warm-up, so that the rounds compare steady states.
    #[arg(long, default_value_t = 10_000)]
    get_working_set: usize,
    #[command(flatten)]
    shape: crate::load::LoadShape,
    /// Seconds of GetRisk per server before measuring, so that each fills its read cache.
    #[arg(long, default_value_t = 15.0)]
    warmup: f64,
}

pub async fn run(args: AuthArgs) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let url = assurance_runtime::db::sqlite_url(&dir.path().join("risk.db"));
    let seeded = seed::seed(&url, args.risks).await?;
    let work = Arc::new(Workload {
        get_working_set: args.get_working_set.min(seeded.risk_ids.len()),
        risk_ids: seeded.risk_ids,
        incident_ids: Vec::new(),
    });
    let authed_addr = server::free_addr()?;
    let mut authed = server::spawn_binary(&args.server_bin, &[], &url, authed_addr)?;
    let open_addr = server::free_addr()?;
    let mut open = server::spawn_binary(
        &args.server_bin,
        &["--insecure-dev".to_string()],
        &url,
        open_addr,
    )?;
    let result = measure(&args, authed_addr, open_addr, work).await;
    for child in [&mut authed, &mut open] {
        let _ = child.kill();
        let _ = child.wait();
    }
    result
}

async fn measure(
    args: &AuthArgs,
    authed_addr: std::net::SocketAddr,
    open_addr: std::net::SocketAddr,
    work: Arc<Workload>,
) -> Result<(), String> {
    println!(
        "# assurance-bench auth: GetRisk over {} risks (hot set {}), {} connections x {} in flight, {:.1}s x {} rounds, unauthenticated (--insecure-dev) vs bearer token",
        args.risks,
        args.get_working_set,
        args.shape.connections,
        args.shape.in_flight,
        args.shape.duration,
        args.shape.rounds
    );
    let [open, authed] = compare_get_risk(
        &args.shape,
        work,
        [
            ("unauthenticated", open_addr),
            ("authenticated", authed_addr),
        ],
    )
    .await?;
    let cost = 100.0 * (1.0 - authed / open);
    println!("\nthe identity check costs {cost:.1}% of GetRisk throughput (target: under 5%)");
    Ok(())
}

/// GetRisk against two servers in alternation, the same client and load for both: prints each
/// round and a table, and returns the median rates (`[baseline, subject]`).
pub async fn compare_get_risk(
    shape: &crate::load::LoadShape,
    work: Arc<Workload>,
    sides: [(&str, std::net::SocketAddr); 2],
) -> Result<[f64; 2], String> {
    let mut channels = Vec::new();
    for (_, addr) in sides {
        server::wait_serving(addr, Duration::from_secs(60)).await?;
        let mut side = Vec::new();
        for _ in 0..shape.connections {
            side.push(server::connect(addr).await?);
        }
        // Warm-up: connections, the read cache, the token cache.
        load::run(
            Op::GetRisk,
            &side,
            shape.in_flight,
            Duration::from_secs(1),
            work.clone(),
        )
        .await;
        channels.push(side);
    }
    let duration = Duration::from_secs_f64(shape.duration);
    let mut samples: [Vec<Sample>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=shape.rounds {
        for (side, (label, _)) in sides.iter().enumerate() {
            let sample = load::run(
                Op::GetRisk,
                &channels[side],
                shape.in_flight,
                duration,
                work.clone(),
            )
            .await;
            println!(
                "round {round} GetRisk {label:<16} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  codes {:?}",
                sample.rate(),
                sample.percentile_ms(50.0),
                sample.percentile_ms(99.0),
                sample.codes
            );
            samples[side].push(sample);
        }
    }
    let rate = |s: &[Sample]| median(s.iter().map(Sample::rate).collect());
    let p = |s: &[Sample], q: f64| median(s.iter().map(|x| x.percentile_ms(q)).collect());
    println!();
    println!("| GetRisk | req/s (median) | p50 ms | p99 ms | errors |");
    println!("|---|---:|---:|---:|---:|");
    for (side, (label, _)) in sides.iter().enumerate() {
        let s = &samples[side];
        println!(
            "| {label} | {:.0} | {:.2} | {:.2} | {} |",
            rate(s),
            p(s, 50.0),
            p(s, 99.0),
            s.iter().map(Sample::errors).sum::<u64>()
        );
    }
    Ok([rate(&samples[0]), rate(&samples[1])])
}
