//! Forwarding to several replicas of a service: one balanced tonic channel per service over
//! its `--risk-url`/`--incident-url` endpoints, and a health checker per service that ejects
//! an endpoint from the balancer after one failed gRPC health Check and re-inserts it after
//! one passed Check.
//!
//! Every [`CHECK_EVERY`] each endpoint gets a Check (limit [`CHECK_TIMEOUT`]) on a connection
//! of its own. When no endpoint passes, all of them stay in the balancer (calls then fail
//! `UNAVAILABLE` at once instead of waiting for an endpoint to come back) and the gateway is
//! not ready. Calls in flight to an endpoint that dies fail `UNAVAILABLE`; clients retry them
//! (with the same request id for creates).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use assurance_runtime::{db::redact_url, serve::ReadyCheck, serve::Shutdown, tls::ClientTlsFiles};
use tokio::sync::mpsc::Sender;
use tonic::transport::{Channel, Endpoint, channel::Change};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Time between two health Checks of an endpoint.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// The limit of one health Check (connecting included).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// One upstream endpoint and what the checker knows of it.
struct Member {
    /// The URL, redacted, for logs and readiness notes.
    shown: String,
    endpoint: Endpoint,
    /// The checker's own connection to it.
    health: Channel,
    /// `None` until its first Check.
    healthy: Option<bool>,
    /// Why its last Check failed.
    problem: Option<String>,
    in_balancer: bool,
}

/// The replicas of one service behind a balanced channel.
#[derive(Clone)]
pub struct Balanced {
    name: &'static str,
    channel: Channel,
    members: Arc<Mutex<Vec<Member>>>,
    changes: Sender<Change<usize, Endpoint>>,
    /// One round of Checks at a time (the checker's, or a readiness probe's).
    round: Arc<tokio::sync::Mutex<()>>,
}

impl Balanced {
    /// A balanced channel over `urls` (all in the balancer until the first Checks; `https://`
    /// ones with the `tls` files).
    pub fn new(name: &'static str, urls: &[String], tls: &ClientTlsFiles) -> Result<Self, String> {
        if urls.is_empty() {
            return Err(format!("{name}: no URL to forward to"));
        }
        let (channel, changes) = Channel::balance_channel(urls.len() * 2 + 8);
        let mut members = Vec::with_capacity(urls.len());
        for (key, url) in urls.iter().enumerate() {
            let shown = redact_url(url);
            if urls[..key].contains(url) {
                return Err(format!("{name} url {shown} is given twice"));
            }
            let endpoint = endpoint(name, url, tls)?;
            let health = endpoint
                .clone()
                .connect_timeout(CHECK_TIMEOUT)
                .connect_lazy();
            changes
                .try_send(Change::Insert(key, endpoint.clone()))
                .map_err(|e| format!("internal: {name} balancer: {e}"))?;
            members.push(Member {
                shown,
                endpoint,
                health,
                healthy: None,
                problem: None,
                in_balancer: true,
            });
        }
        Ok(Balanced {
            name,
            channel,
            members: Arc::new(Mutex::new(members)),
            changes,
            round: Arc::default(),
        })
    }

    /// The balanced channel.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Checks every endpoint each [`CHECK_EVERY`] until `shutdown`.
    pub fn spawn_checker(&self, shutdown: Shutdown) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECK_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        this.check_all().await;
                    }
                    _ = shutdown.wait() => return,
                }
            }
        });
    }

    /// One round: Checks every endpoint at once, then ejects the failed ones and re-inserts
    /// the recovered ones. Returns how many passed.
    pub async fn check_all(&self) -> usize {
        let _round = self.round.lock().await;
        let targets: Vec<Channel> = match self.members.lock() {
            Ok(members) => members.iter().map(|m| m.health.clone()).collect(),
            Err(_) => return 0,
        };
        let results =
            futures::future::join_all(targets.into_iter().map(|c| check(c, CHECK_TIMEOUT))).await;
        let Ok(mut members) = self.members.lock() else {
            return 0;
        };
        for (member, result) in members.iter_mut().zip(&results) {
            let healthy = result.is_ok();
            match (member.healthy, healthy) {
                (Some(true) | None, false) => {
                    tracing::warn!(upstream = self.name, endpoint = %member.shown, problem = %result.as_ref().err().map(String::as_str).unwrap_or(""), "upstream endpoint failed its health check: ejected")
                }
                (Some(false), true) => {
                    tracing::info!(upstream = self.name, endpoint = %member.shown, "upstream endpoint healthy again: back in the balancer")
                }
                _ => {}
            }
            member.healthy = Some(healthy);
            member.problem = result.as_ref().err().cloned();
        }
        let passed = members.iter().filter(|m| m.healthy == Some(true)).count();
        for (key, member) in members.iter_mut().enumerate() {
            // With none healthy every endpoint stays: calls fail fast instead of waiting.
            let wanted = passed == 0 || member.healthy == Some(true);
            let change = match (member.in_balancer, wanted) {
                (false, true) => Change::Insert(key, member.endpoint.clone()),
                (true, false) => Change::Remove(key),
                _ => continue,
            };
            match self.changes.try_send(change) {
                Ok(()) => member.in_balancer = wanted,
                // Full: the next round retries.
                Err(e) => {
                    tracing::warn!(upstream = self.name, error = %e, "balancer change deferred")
                }
            }
        }
        passed
    }

    /// Ready when at least one endpoint passes a Check now.
    pub fn ready_check(&self) -> ReadyCheck {
        let this = self.clone();
        Arc::new(move || {
            let this = this.clone();
            Box::pin(async move {
                if this.check_all().await > 0 {
                    return Ok(());
                }
                let problems = this.problems().join("; ");
                Err(format!("{} has no healthy endpoint: {problems}", this.name))
            })
        })
    }

    /// The ejected endpoints and why, for `/readyz`'s notes.
    pub fn problems(&self) -> Vec<String> {
        let Ok(members) = self.members.lock() else {
            return Vec::new();
        };
        members
            .iter()
            .filter(|m| m.healthy == Some(false))
            .map(|m| {
                format!(
                    "{} {} ejected: {}",
                    self.name,
                    m.shown,
                    m.problem.as_deref().unwrap_or("failed its health check")
                )
            })
            .collect()
    }
}

/// The endpoint of `url`, with TLS for `https://`.
fn endpoint(name: &str, url: &str, tls: &ClientTlsFiles) -> Result<Endpoint, String> {
    let shown = redact_url(url);
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| format!("{name} url {shown}: {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    if url.starts_with("https://") {
        let tls = tls.grpc("")?.ok_or_else(|| {
            format!("{name} url {shown} is https: give --upstream-tls-ca to trust its certificate")
        })?;
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| format!("{name} TLS: {e}"))?;
    }
    Ok(endpoint)
}

/// A gRPC health Check of the whole server on `channel`, within `limit`.
async fn check(channel: Channel, limit: Duration) -> Result<(), String> {
    let mut health = HealthClient::new(channel);
    let request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    match tokio::time::timeout(limit, health.check(request)).await {
        Ok(Ok(r)) if r.get_ref().status == 1 => Ok(()),
        Ok(Ok(_)) => Err("not serving".into()),
        Ok(Err(e)) => Err(format!("unreachable: {}", e.code())),
        Err(_) => Err(format!("no answer within {} ms", limit.as_millis())),
    }
}
