//! The crash check: a server is killed with SIGKILL while clients create risks; after a
//! restart on the same database every acknowledged create must be there exactly once.

use std::{
    net::SocketAddr,
    process::Child,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use assurance_proto::risk::v1::{self as pb, risk_service_client::RiskServiceClient};

use crate::server::{connect, free_addr, wait_serving};

fn request(request_id: &str) -> pb::CreateRiskRequest {
    pb::CreateRiskRequest {
        risk: Some(pb::Risk {
            title: format!("Crash-test risk {request_id}"),
            service: "services/crash-svc".into(),
            threat: pb::Threat::Internal as i32,
            identification_source: pb::IdentificationSource::Other as i32,
            owner: "crash@example.com".into(),
            ..Default::default()
        }),
        request_id: request_id.to_string(),
    }
}

/// Runs the check with servers started by `spawn` (twice, on the same database) and returns a
/// one-line report, or what went wrong.
pub async fn check(
    spawn: impl Fn(SocketAddr) -> Result<Child, String>,
    load: Duration,
    workers: usize,
) -> Result<String, String> {
    let addr = free_addr()?;
    let mut child = spawn(addr)?;
    wait_serving(addr, Duration::from_secs(60)).await?;
    crate::server::register_org(connect(addr).await?, "crash-bu", "crash-svc").await?;

    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let attempted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deadline = Instant::now() + load;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let channel = connect(addr).await?;
        let acked = acked.clone();
        let attempted = attempted.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = RiskServiceClient::new(channel);
            for n in 0.. {
                let id = format!("crash-{w}-{n}");
                attempted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match client.create_risk(request(&id)).await {
                    Ok(r) => acked
                        .lock()
                        .map(|mut a| a.push((id, r.into_inner().name)))
                        .unwrap_or(()),
                    // The server is gone: stop.
                    Err(_) if Instant::now() >= deadline => return,
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }));
    }
    tokio::time::sleep(load).await;
    child.kill().map_err(|e| format!("SIGKILL: {e}"))?;
    let _ = child.wait();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    let acked = acked.lock().map(|a| a.clone()).unwrap_or_default();
    let attempted = attempted.load(std::sync::atomic::Ordering::Relaxed);
    if acked.is_empty() {
        return Err("no create was acknowledged before the kill; raise the load time".into());
    }

    let addr = free_addr()?;
    let mut child = spawn(addr)?;
    let verdict = verify(addr, &acked, attempted).await;
    let _ = child.kill();
    let _ = child.wait();
    verdict
}

async fn verify(
    addr: SocketAddr,
    acked: &[(String, String)],
    attempted: usize,
) -> Result<String, String> {
    wait_serving(addr, Duration::from_secs(60)).await?;
    let mut client = RiskServiceClient::new(connect(addr).await?);
    // A retry of every acknowledged request must answer with the same risk: it exists, and
    // the retry did not create another one.
    for (request_id, name) in acked {
        let again = client
            .create_risk(request(request_id))
            .await
            .map_err(|e| format!("retry of {request_id}: {e}"))?
            .into_inner();
        if &again.name != name {
            return Err(format!(
                "{request_id} was acknowledged as {name} but is now {}",
                again.name
            ));
        }
    }
    let mut found = 0usize;
    let mut token = String::new();
    loop {
        let page = client
            .list_risks(pb::ListRisksRequest {
                page_size: 1000,
                page_token: token,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        found += page.risks.len();
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    if found < acked.len() || found > attempted {
        return Err(format!(
            "{found} risks stored: expected between {} acknowledged and {attempted} attempted",
            acked.len()
        ));
    }
    Ok(format!(
        "crash check passed: {} creates acknowledged before SIGKILL, {} attempted, {found} stored; every acknowledged create present exactly once",
        acked.len(),
        attempted
    ))
}
