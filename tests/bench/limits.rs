//! `assurance-bench limits`: what the resource limits cost (docs/security.md#limits). Two
//! risk-service servers (this binary's `serve`) share one seeded SQLite database — one with the
//! limits as configured by default (rate limit raised so that it never refuses the load
//! generator, but still counted), one without them (the benchmark-only baseline) — and GetRisk
//! runs against each in alternation; the figure is the ratio of the medians.

use std::sync::Arc;

use assurance_tests::server;

use crate::{auth::compare_get_risk, load::Workload, seed};

#[derive(clap::Parser)]
pub struct LimitsArgs {
    #[arg(long, default_value_t = 100_000)]
    risks: usize,
    /// GetRisk picks from this many of the seeded risks (a hot set in both read caches).
    #[arg(long, default_value_t = 10_000)]
    get_working_set: usize,
    #[command(flatten)]
    shape: crate::load::LoadShape,
}

pub async fn run(args: LimitsArgs) -> Result<(), String> {
    let bin = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let url = assurance_runtime::db::sqlite_url(&dir.path().join("risk.db"));
    let seeded = seed::seed(&url, args.risks).await?;
    let work = Arc::new(Workload {
        get_working_set: args.get_working_set.min(seeded.risk_ids.len()),
        risk_ids: seeded.risk_ids,
        incident_ids: Vec::new(),
    });
    let limited_addr = server::free_addr()?;
    let mut limited = server::spawn_binary(&bin, &[], &url, limited_addr)?;
    let bare_addr = server::free_addr()?;
    let mut bare = server::spawn_binary(
        &bin,
        &[server::BASELINE_WITHOUT_LIMITS.to_string()],
        &url,
        bare_addr,
    )?;
    println!(
        "# assurance-bench limits: GetRisk over {} risks (hot set {}), {} connections x {} in flight, {:.1}s x {} rounds, without limits (baseline) vs with them",
        args.risks,
        args.get_working_set,
        args.shape.connections,
        args.shape.in_flight,
        args.shape.duration,
        args.shape.rounds
    );
    let result = compare_get_risk(
        &args.shape,
        work,
        [("without limits", bare_addr), ("with limits", limited_addr)],
    )
    .await;
    for child in [&mut limited, &mut bare] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let [bare, limited] = result?;
    let cost = 100.0 * (1.0 - limited / bare);
    println!("\nthe limits cost {cost:.1}% of GetRisk throughput (target: under 5%)");
    Ok(())
}
