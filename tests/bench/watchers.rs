//! The cost of idle `WatchIncident` streams (issue #16): incident-service as its own process,
//! `--watchers` streams open on one incident (and, with `--incidents`, spread over several),
//! nothing happening; the server's CPU over `--seconds`, as a share of one core, against the
//! same server with no watcher, measured in the same run.

use std::{net::SocketAddr, time::Duration};

use assurance_proto::incident::v1::{self as pb, incident_service_client::IncidentServiceClient};
use assurance_tests::server;

use crate::{posture, relay::cpu_secs};

#[derive(clap::Parser)]
pub struct WatchersArgs {
    /// Idle watch streams to hold open.
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Incidents the watchers are spread over.
    #[arg(long, default_value_t = 1)]
    incidents: usize,
    /// Seconds each measurement lasts.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
}

/// The server's CPU share of one core over `seconds`.
fn share(pid: u32, seconds: u64) -> Result<f64, String> {
    let before = cpu_secs(pid)?;
    std::thread::sleep(Duration::from_secs(seconds));
    Ok((cpu_secs(pid)? - before) / seconds as f64)
}

pub async fn run(args: WatchersArgs) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let url = assurance_runtime::db::sqlite_url(&dir.path().join("incident.db"));
    let addr: SocketAddr = server::free_addr()?;
    let streams = (args.watchers + 10).to_string();
    let process = posture::start(
        "serve-incident",
        addr,
        &[
            "--database-url".into(),
            url,
            "--streams-per-principal".into(),
            streams.clone(),
            "--streams-per-process".into(),
            streams,
        ],
    )
    .await?;
    let pid = process.0.id();
    let channel = server::connect(addr).await?;
    let mut client = IncidentServiceClient::new(channel.clone());
    let mut names = Vec::new();
    for i in 0..args.incidents.max(1) {
        let incident = client
            .declare_incident(pb::DeclareIncidentRequest {
                incident: Some(pb::Incident {
                    title: format!("Watched incident {i}"),
                    summary: "Held open by idle watchers.".into(),
                    classification: pb::Classification::Event as i32,
                    functional_impact: pb::FunctionalImpact::Low as i32,
                    recoverability: pb::Recoverability::Regular as i32,
                    information_impacts: vec![pb::InformationImpact::None as i32],
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .map_err(|e| format!("declare: {e}"))?
            .into_inner();
        names.push(incident.name);
    }
    let idle = share(pid, args.seconds)?;
    let mut open = Vec::with_capacity(args.watchers);
    // A connection carries at most 100 streams (the server's limit): 50 watchers each.
    let mut connections = Vec::new();
    for _ in 0..args.watchers.div_ceil(50) {
        connections.push(server::connect(addr).await?);
    }
    for i in 0..args.watchers {
        let mut stream = IncidentServiceClient::new(connections[i / 50].clone())
            .watch_incident(pb::WatchIncidentRequest {
                name: names[i % names.len()].clone(),
                after_sequence: 0,
            })
            .await
            .map_err(|e| format!("watch {i}: {e}"))?
            .into_inner();
        // Read the declaration: the stream is live, then idle.
        stream
            .message()
            .await
            .map_err(|e| format!("watch {i}: {e}"))?;
        open.push(stream);
    }
    let watched = share(pid, args.seconds)?;
    println!(
        "idle incident-service:            {:>6.2}% of one core",
        idle * 100.0
    );
    println!(
        "with {:>5} idle watchers ({} incident(s)): {:>6.2}% of one core (+{:.2} points)",
        args.watchers,
        names.len(),
        watched * 100.0,
        (watched - idle) * 100.0
    );
    drop(open);
    Ok(())
}
