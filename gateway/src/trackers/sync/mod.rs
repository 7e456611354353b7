//! The tracker sync (issue #15): routed work items kept in step with their tracker issues.
//!
//! - **Outbound** ([`outbound`]): a scan reads the items changed since its cursor, routes new
//!   ones, and records what Assurance owns of each issue in its link; each tracker's worker
//!   creates, updates and closes issues from those links. A create is preceded by a committed
//!   `CREATING` link, and a `CREATING` link is resumed by looking for the item's marker among
//!   the issues created since then, so a timeout or a crash never makes a duplicate.
//! - **Inbound** ([`inbound`]): webhook deliveries (verified, deduplicated, answered at once)
//!   and a reconciliation poll are hints; the worker fetches the issue again and applies its
//!   status, dropping what only echoes the sync's own last write (compared with the link's
//!   stored state).
//! - Each tracker has its own worker, request budget, pause (rate limits) and start-up check;
//!   while a tracker is unhealthy its links stay queued.

mod api;
mod inbound;
pub mod items;
mod outbound;
pub mod store;
pub mod wake;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use assurance_runtime::{observe, serve::Shutdown, time::now_micros};
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;

pub use api::TrackerSyncApi;
pub use inbound::webhook_routes;

use super::{
    Tracker, TrackerError,
    config::{TrackerConfig, TrackerKind, TrackersConfig},
    github::{GitHub, GitHubOptions},
    redmine::{Redmine, RedmineNames},
};
use crate::posture::{registry::RegistryCache, upstream::Upstreams};
use store::{LinkState, SyncStore};

/// How often a tracker's worker refreshes its lag and link gauges.
const OBSERVE_EVERY: Duration = Duration::from_secs(5);

/// How often the sync looks, and how long it waits.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Between two outbound scans of the items.
    pub scan_interval: Duration,
    /// Between two reconciliation polls of each tracker.
    pub poll_interval: Duration,
    /// The longest wait between two attempts of a failing link.
    pub max_backoff: Duration,
    /// The limit of one request to a tracker.
    pub request_timeout: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            scan_interval: Duration::from_secs(2),
            poll_interval: Duration::from_secs(60),
            max_backoff: Duration::from_secs(300),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// How one tracker stands, in memory (the links themselves are in the store).
#[derive(Debug, Clone, Default)]
struct Health {
    healthy: bool,
    problem: String,
    check_time: Option<i64>,
    paused_until: Option<i64>,
    poll_time: Option<i64>,
    next_poll: i64,
}

/// A token bucket: `per_minute` requests a minute, in bursts of at most that many.
#[derive(Debug)]
struct Budget {
    per_minute: f64,
    tokens: f64,
    at: i64,
}

impl Budget {
    fn new(per_minute: u32) -> Self {
        Budget {
            per_minute: f64::from(per_minute),
            tokens: f64::from(per_minute),
            at: now_micros(),
        }
    }

    /// Takes one request, or says how long until one is left.
    fn take(&mut self, now: i64) -> Result<(), Duration> {
        let elapsed = (now - self.at).max(0) as f64 / 60e6;
        self.tokens = (self.tokens + elapsed * self.per_minute).min(self.per_minute);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.per_minute * 60.0;
            Err(Duration::from_secs_f64(wait.max(0.001)))
        }
    }
}

/// One configured tracker at run time.
pub(crate) struct Remote {
    config: TrackerConfig,
    client: Arc<dyn Tracker>,
    health: Mutex<Health>,
    budget: Mutex<Budget>,
    wake: Notify,
    accepted: AtomicI64,
    /// When the lag and link gauges were last refreshed (micros).
    observed: AtomicI64,
    replayed: AtomicI64,
    refused: AtomicI64,
}

impl Remote {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spends one request of the budget, or answers as a rate limit would.
    fn spend(&self) -> Result<(), TrackerError> {
        let mut budget = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        budget
            .take(now_micros())
            .map_err(|retry_after| TrackerError::RateLimited { retry_after })
    }

    /// After a rate limit: no call until `until`.
    fn pause(&self, until: i64) {
        let mut health = self.health();
        health.paused_until = Some(health.paused_until.unwrap_or(0).max(until));
    }

    fn kind(&self) -> &'static str {
        self.client.kind()
    }
}

/// The sync: its store, the services, the trackers and their workers.
pub struct TrackerSync {
    store: SyncStore,
    upstreams: Upstreams,
    config: TrackersConfig,
    remotes: Vec<Arc<Remote>>,
    registry: RegistryCache,
    settings: SyncSettings,
    /// The base of an item's page in links back, when configured.
    item_url: Option<String>,
    /// Starts a scan before its interval (a work-item event, see [`wake`]).
    scan_wake: Arc<Notify>,
    /// One lock per item whose link is being changed: the scan, the tracker's worker and
    /// `ResyncWorkItem` each read, change and write a link under it, so none overwrites
    /// another's change.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl TrackerSync {
    /// The sync of `config` over the gateway's store; nothing runs until [`TrackerSync::spawn`].
    pub fn new(
        db: DatabaseConnection,
        upstreams: Upstreams,
        config: TrackersConfig,
        settings: SyncSettings,
    ) -> Result<Arc<TrackerSync>, String> {
        let mut remotes = Vec::new();
        for t in &config.trackers {
            let client: Arc<dyn Tracker> = match t.kind {
                TrackerKind::Github => Arc::new(
                    GitHub::new(
                        t.credential.expose().to_string(),
                        GitHubOptions {
                            base_url: t.base_url.clone(),
                            timeout: settings.request_timeout,
                            creation_gap: t.create_gap,
                        },
                    )
                    .map_err(|e| format!("tracker {}: {e}", t.name))?,
                ),
                TrackerKind::Redmine => {
                    let close = t
                        .close
                        .clone()
                        .unwrap_or_else(|| super::config::CloseStatuses {
                            done: "Closed".into(),
                            wont_do: "Rejected".into(),
                        });
                    Arc::new(
                        Redmine::new(
                            &t.base_url,
                            t.credential.expose(),
                            RedmineNames {
                                tracker: t.issue_tracker.clone(),
                                completed_status: close.done,
                                not_planned_status: close.wont_do,
                            },
                        )
                        .map_err(|e| format!("tracker {}: {e}", t.name))?,
                    )
                }
            };
            remotes.push(Arc::new(Remote {
                config: t.clone(),
                client,
                health: Mutex::new(Health {
                    problem: "not checked yet".into(),
                    ..Health::default()
                }),
                budget: Mutex::new(Budget::new(t.requests_per_minute)),
                wake: Notify::new(),
                accepted: AtomicI64::new(0),
                observed: AtomicI64::new(0),
                replayed: AtomicI64::new(0),
                refused: AtomicI64::new(0),
            }));
        }
        Ok(Arc::new(TrackerSync {
            store: SyncStore::new(db),
            upstreams,
            item_url: config.item_url.clone(),
            config,
            remotes,
            registry: RegistryCache::default(),
            settings,
            scan_wake: Arc::new(Notify::new()),
            locks: Mutex::new(HashMap::new()),
        }))
    }

    /// Holds `item`'s link for a read-change-write.
    async fn lock_item(&self, item: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(item.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// Forgets the locks no one holds or waits for.
    fn forget_idle_locks(&self) {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
    }

    /// What starts a scan early: notified by the services' work-item events.
    pub fn scan_wake(&self) -> Arc<Notify> {
        self.scan_wake.clone()
    }

    fn remote(&self, name: &str) -> Option<&Arc<Remote>> {
        self.remotes.iter().find(|r| r.config.name == name)
    }

    /// Starts the scan and one worker per tracker; they stop on `shutdown`.
    pub fn spawn(self: &Arc<Self>, shutdown: &Shutdown) {
        let sync = self.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                sync.forget_idle_locks();
                if let Err(e) = sync.scan().await {
                    observe::tracker_error("-", "scan");
                    tracing::warn!(error = %e, "tracker sync: the scan of the work items failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(sync.settings.scan_interval) => {}
                    _ = sync.scan_wake.notified() => {}
                    _ = stop.wait() => return,
                }
            }
        });
        for remote in &self.remotes {
            let (sync, remote, stop) = (self.clone(), remote.clone(), shutdown.clone());
            tokio::spawn(async move {
                if let Err(e) = sync
                    .store
                    .retry_failed(&remote.config.name, now_micros())
                    .await
                {
                    tracing::warn!(tracker = %remote.config.name, error = %e, "tracker sync: cannot requeue failed links");
                }
                loop {
                    let wait = sync.work(&remote).await;
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = remote.wake.notified() => {}
                        _ = stop.wait() => return,
                    }
                }
            });
        }
    }

    /// One round of `remote`'s worker: its check while unhealthy, then its deliveries, due
    /// links and poll; how long to wait before the next round.
    async fn work(&self, remote: &Remote) -> Duration {
        const IDLE: Duration = Duration::from_secs(1);
        self.observe(remote).await;
        let now = now_micros();
        if let Some(until) = remote.health().paused_until
            && until > now
        {
            return Duration::from_micros((until - now) as u64).min(IDLE * 5);
        }
        if !remote.health().healthy {
            let due = remote
                .health()
                .check_time
                .is_none_or(|at| now - at >= 5_000_000);
            if !due || !self.check(remote).await {
                return IDLE;
            }
        }
        let result = async {
            self.work_deliveries(remote).await?;
            let more = self.work_links(remote).await?;
            self.poll(remote).await?;
            Ok::<_, assurance_runtime::ApiError>(more)
        }
        .await;
        match result {
            Ok(true) => Duration::ZERO,
            Ok(false) => {
                let next = self
                    .store
                    .next_due(&remote.config.name)
                    .await
                    .ok()
                    .flatten()
                    .map(|t| Duration::from_micros((t - now_micros()).max(0) as u64));
                next.map_or(IDLE, |n| n.min(IDLE))
            }
            Err(e) => {
                observe::tracker_error(&remote.config.name, "round");
                tracing::warn!(tracker = %remote.config.name, error = %e, "tracker sync: a round failed");
                IDLE
            }
        }
    }

    /// The start-up check of `remote`: it answers, its routed projects exist, and so does every
    /// mapped status. Logs and records the outcome; true when it passed.
    async fn check(&self, remote: &Remote) -> bool {
        let statuses: Vec<String> = match remote.config.kind {
            TrackerKind::Github => Vec::new(),
            TrackerKind::Redmine => remote.config.statuses.keys().cloned().collect(),
        };
        let mut projects: Vec<&str> = self
            .config
            .routes
            .iter()
            .filter(|r| r.tracker == remote.config.name)
            .map(|r| r.project.as_str())
            .collect();
        projects.sort_unstable();
        projects.dedup();
        let mut problem = None;
        for project in projects {
            if let Err(e) = remote.client.check(project, &statuses).await {
                problem = Some(format!("{project}: {e}"));
                break;
            }
        }
        let mut health = remote.health();
        health.check_time = Some(now_micros());
        match problem {
            None => {
                if !health.healthy {
                    tracing::info!(tracker = %remote.config.name, "tracker sync: tracker checked, syncing");
                }
                health.healthy = true;
                health.problem.clear();
                true
            }
            Some(problem) => {
                observe::tracker_error(&remote.config.name, "check");
                tracing::error!(tracker = %remote.config.name, %problem, "tracker sync: the tracker failed its check; its items stay queued");
                health.healthy = false;
                health.problem = problem;
                false
            }
        }
    }

    /// Refreshes `remote`'s lag and link gauges, at most every [`OBSERVE_EVERY`] (two cheap
    /// queries on the tracker's links).
    async fn observe(&self, remote: &Remote) {
        let now = now_micros();
        let last = remote.observed.load(Ordering::Relaxed);
        if now - last < OBSERVE_EVERY.as_micros() as i64 {
            return;
        }
        remote.observed.store(now, Ordering::Relaxed);
        let name = &remote.config.name;
        match self.store.oldest_due(name, now).await {
            Ok(oldest) => {
                let lag = oldest.map_or(0, |t| (now - t).max(0));
                observe::tracker_lag(name, Duration::from_micros(lag as u64));
            }
            Err(e) => tracing::debug!(tracker = %name, error = %e, "tracker sync: no lag gauge"),
        }
        if let Ok(counts) = self.store.counts(name).await {
            for state in LinkState::ALL {
                let n = counts
                    .iter()
                    .find(|(s, _)| *s == state as i32)
                    .map_or(0, |(_, n)| *n);
                observe::tracker_links(name, state.label(), n);
            }
        }
    }

    /// The problems `/readyz` shows (the gateway serves regardless).
    pub fn problems(&self) -> Vec<String> {
        self.remotes
            .iter()
            .filter_map(|r| {
                let h = r.health();
                (!h.healthy).then(|| format!("tracker {}: {}", r.config.name, h.problem))
            })
            .collect()
    }

    /// The wait before attempt `attempts + 1` of a failing link: doubling from one second up
    /// to the configured maximum, with jitter.
    fn backoff(&self, attempts: i32) -> i64 {
        let base = 1_000_000i64.saturating_mul(1 << attempts.clamp(0, 20));
        let cap = i64::try_from(self.settings.max_backoff.as_micros()).unwrap_or(i64::MAX);
        let wait = base.min(cap);
        let jitter = (now_micros() % 1000).abs() * wait / 4000;
        wait - jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refills_by_the_minute_and_says_how_long_to_wait() {
        let mut budget = Budget::new(60);
        let start = budget.at;
        for _ in 0..60 {
            assert!(budget.take(start).is_ok());
        }
        let wait = budget.take(start).expect_err("spent");
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // One request a second comes back.
        assert!(budget.take(start + 1_000_000).is_ok());
        assert!(budget.take(start + 1_000_000).is_err());
    }
}
