//! Read cache of risks, keyed by id and holding the stored version.
//!
//! - Writes of this process put the committed row in (a newer version always wins).
//! - A row read from the database is kept only if no write or invalidation touched its shard
//!   while it was being read (per-shard generations), so a slow reader never re-inserts a
//!   version older than one that was already replaced.
//! - Other replicas (PostgreSQL): every write sends `NOTIFY assurance_risks, '<id>'` in its
//!   transaction; a listener evicts the id. A heartbeat through the same channel proves the
//!   listener is alive: when none arrived within [`HEARTBEAT_GRACE`], the cache is bypassed and
//!   emptied. Staleness across replicas is thus bounded by the heartbeat grace (3 s) and is
//!   usually the notification latency (milliseconds).
//! - Entries also expire after the configured TTL, bounding staleness from writers that do not
//!   notify (another process writing the same SQLite file).

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use assurance_runtime::time::now_micros;
use uuid::Uuid;

use super::entities::risk;

const SHARDS: usize = 32;
/// Longest silence of the invalidation channel before the cache stops trusting itself.
pub const HEARTBEAT_GRACE: Duration = Duration::from_secs(3);
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

struct Entry {
    risk: Arc<risk::Model>,
    stored: Instant,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<Uuid, Entry>,
    /// Bumped by every write or invalidation of an id in this shard.
    generation: u64,
}

pub struct RiskCache {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    per_shard: usize,
    ttl: Duration,
    /// Whether other replicas may write without this process hearing of it in time.
    needs_heartbeat: AtomicBool,
    last_heartbeat_micros: AtomicI64,
}

/// A token taken before a database read, to fill the cache with its result.
#[derive(Clone, Copy)]
pub struct FillToken {
    shard: usize,
    generation: u64,
}

impl RiskCache {
    /// A cache of about `capacity` risks (at most 25% more; 0 disables it) kept for at most
    /// `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        RiskCache {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            // Ids do not hash evenly: a quarter of slack per shard lets `capacity` risks fit.
            per_shard: (capacity.div_ceil(SHARDS) * 5).div_ceil(4),
            ttl,
            needs_heartbeat: AtomicBool::new(false),
            last_heartbeat_micros: AtomicI64::new(0),
        }
    }

    fn enabled(&self) -> bool {
        self.per_shard > 0 && !self.ttl.is_zero()
    }

    fn shard_of(&self, id: &Uuid) -> usize {
        (self.hasher.hash_one(id) as usize) % SHARDS
    }

    fn trusted(&self) -> bool {
        !self.needs_heartbeat.load(Ordering::Relaxed)
            || now_micros() - self.last_heartbeat_micros.load(Ordering::Relaxed)
                < HEARTBEAT_GRACE.as_micros() as i64
    }

    /// The cached risk `id`, counted as a hit or a miss (a disabled cache counts neither; one
    /// bypassed for want of heartbeats counts misses).
    pub fn get(&self, id: &Uuid) -> Option<Arc<risk::Model>> {
        if !self.enabled() {
            return None;
        }
        let found = if self.trusted() {
            self.shards[self.shard_of(id)]
                .lock()
                .ok()
                .and_then(|shard| {
                    shard
                        .entries
                        .get(id)
                        .filter(|e| e.stored.elapsed() < self.ttl)
                        .map(|e| e.risk.clone())
                })
        } else {
            None
        };
        assurance_runtime::observe::risk_cache_lookup(found.is_some());
        found
    }

    /// Call before reading `id` from the database.
    pub fn fill_token(&self, id: &Uuid) -> FillToken {
        let shard = self.shard_of(id);
        let generation = self.shards[shard]
            .lock()
            .map(|s| s.generation)
            .unwrap_or(u64::MAX);
        FillToken { shard, generation }
    }

    /// Keeps a row read from the database, unless its shard changed since `token`.
    pub fn fill(&self, token: FillToken, risk: &risk::Model) {
        if !self.enabled() || !self.trusted() {
            return;
        }
        if let Ok(mut shard) = self.shards[token.shard].lock()
            && shard.generation == token.generation
        {
            self.insert(&mut shard, risk, true);
        }
    }

    /// Keeps a row this process just committed.
    pub fn store(&self, risk: &risk::Model) {
        if !self.enabled() {
            return;
        }
        if let Ok(mut shard) = self.shards[self.shard_of(&risk.id)].lock() {
            shard.generation += 1;
            let newer_cached = shard
                .entries
                .get(&risk.id)
                .is_some_and(|e| e.risk.version > risk.version);
            if !newer_cached {
                self.insert(&mut shard, risk, true);
            }
        }
    }

    /// Keeps a risk this process just created, if there is room: a burst of creates must not
    /// evict the risks being read.
    pub fn store_new(&self, risk: &risk::Model) {
        if !self.enabled() {
            return;
        }
        if let Ok(mut shard) = self.shards[self.shard_of(&risk.id)].lock() {
            shard.generation += 1;
            self.insert(&mut shard, risk, false);
        }
    }

    fn insert(&self, shard: &mut Shard, risk: &risk::Model, may_evict: bool) {
        if shard.entries.len() >= self.per_shard && !shard.entries.contains_key(&risk.id) {
            if !may_evict {
                return;
            }
            // Evict an arbitrary entry: cheap, and fair enough for a bounded cache.
            if let Some(victim) = shard.entries.keys().next().copied() {
                shard.entries.remove(&victim);
            }
        }
        shard.entries.insert(
            risk.id,
            Entry {
                risk: Arc::new(risk.clone()),
                stored: Instant::now(),
            },
        );
    }

    /// Another replica changed `id`.
    pub fn invalidate(&self, id: &Uuid) {
        if let Ok(mut shard) = self.shards[self.shard_of(id)].lock() {
            shard.generation += 1;
            shard.entries.remove(id);
        }
    }

    /// Forgets everything (bulk changes, or a lost invalidation channel).
    pub fn clear(&self) {
        for shard in &self.shards {
            if let Ok(mut shard) = shard.lock() {
                shard.generation += 1;
                shard.entries.clear();
            }
        }
    }

    /// From now on entries are trusted only while heartbeats arrive.
    pub fn require_heartbeat(&self) {
        self.needs_heartbeat.store(true, Ordering::Relaxed);
    }

    pub fn heartbeat(&self) {
        self.last_heartbeat_micros
            .store(now_micros(), Ordering::Relaxed);
    }
}

/// The PostgreSQL channel of risk changes.
pub const CHANNEL: &str = "assurance_risks";
/// Payload that evicts everything (bulk changes).
pub const ALL: &str = "*";
const HEARTBEAT_PREFIX: &str = "heartbeat:";

/// Keeps `cache` coherent with writes of other replicas on PostgreSQL: listens for change
/// notifications, and sends and checks heartbeats. Stops when the cache is dropped.
pub fn spawn_pg_invalidation(url: String, db: sea_orm::DatabaseConnection, cache: Weak<RiskCache>) {
    if let Some(c) = cache.upgrade() {
        c.require_heartbeat();
    }
    let me = Uuid::now_v7().to_string();
    let own_heartbeat = format!("{HEARTBEAT_PREFIX}{me}");
    // Heartbeats travel the same channel as changes, so their arrival proves changes arrive.
    {
        let cache = cache.clone();
        let payload = own_heartbeat.clone();
        tokio::spawn(async move {
            use sea_orm::ConnectionTrait;
            while cache.strong_count() > 0 {
                let stmt = sea_orm::Statement::from_sql_and_values(
                    sea_orm::DbBackend::Postgres,
                    "SELECT pg_notify($1, $2)",
                    [CHANNEL.into(), payload.clone().into()],
                );
                if let Err(e) = db.execute_raw(stmt).await {
                    tracing::debug!(error = %e, "cache heartbeat not sent");
                }
                tokio::time::sleep(HEARTBEAT_EVERY).await;
            }
        });
    }
    tokio::spawn(async move {
        while cache.strong_count() > 0 {
            let mut listener = match sqlx::postgres::PgListener::connect(&url).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cache invalidation listener cannot connect; cache bypassed");
                    tokio::time::sleep(HEARTBEAT_EVERY).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen(CHANNEL).await {
                tracing::warn!(error = %e, "cannot LISTEN for cache invalidation");
                tokio::time::sleep(HEARTBEAT_EVERY).await;
                continue;
            }
            // Changes committed while nobody listened are unknown: forget everything, which
            // also voids reads that started before this point.
            if let Some(c) = cache.upgrade() {
                c.clear();
            }
            loop {
                let received = listener.try_recv().await;
                let Some(cache) = cache.upgrade() else {
                    return;
                };
                match received {
                    Ok(Some(n)) => {
                        let payload = n.payload();
                        if payload == own_heartbeat {
                            cache.heartbeat();
                        } else if payload.starts_with(HEARTBEAT_PREFIX) {
                            // Another replica's heartbeat.
                        } else if payload == ALL {
                            cache.clear();
                        } else {
                            for id in payload.split(',').filter_map(|s| Uuid::parse_str(s).ok()) {
                                cache.invalidate(&id);
                            }
                        }
                    }
                    // The connection was lost: notifications may have been missed.
                    Ok(None) | Err(_) => {
                        cache.clear();
                        break;
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn risk(id: Uuid, version: i64) -> risk::Model {
        risk::Model {
            title: format!("v{version}"),
            version,
            ..crate::store::identified_risk(id)
        }
    }

    #[test]
    fn a_slow_reader_never_reinserts_an_old_version() {
        let cache = RiskCache::new(100, Duration::from_secs(60));
        let id = Uuid::now_v7();
        let token = cache.fill_token(&id);
        // Meanwhile a writer commits version 2.
        cache.store(&risk(id, 2));
        // The reader's version 1 arrives late and is dropped.
        cache.fill(token, &risk(id, 1));
        assert_eq!(cache.get(&id).map(|r| r.version), Some(2));
        // Even after the entry was evicted by another replica's change.
        let token = cache.fill_token(&id);
        cache.invalidate(&id);
        cache.fill(token, &risk(id, 2));
        assert!(cache.get(&id).is_none());
    }

    #[test]
    fn newer_versions_win_and_ttl_expires() {
        let cache = RiskCache::new(100, Duration::from_millis(30));
        let id = Uuid::now_v7();
        cache.store(&risk(id, 3));
        cache.store(&risk(id, 2));
        assert_eq!(cache.get(&id).map(|r| r.version), Some(3));
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get(&id).is_none());
    }

    #[test]
    fn capacity_is_bounded_and_zero_disables() {
        let cache = RiskCache::new(64, Duration::from_secs(60));
        for v in 0..1000 {
            cache.store(&risk(Uuid::now_v7(), v));
        }
        let total: usize = cache
            .shards
            .iter()
            .map(|s| s.lock().map(|s| s.entries.len()).unwrap_or(0))
            .sum();
        assert!(total <= 64 * 5 / 4 + 2 * SHARDS, "{total}");
        let off = RiskCache::new(0, Duration::from_secs(60));
        let id = Uuid::now_v7();
        off.store(&risk(id, 1));
        assert!(off.get(&id).is_none());
    }

    #[test]
    fn without_heartbeats_the_cache_is_bypassed() {
        let cache = RiskCache::new(100, Duration::from_secs(60));
        let id = Uuid::now_v7();
        cache.store(&risk(id, 1));
        cache.require_heartbeat();
        assert!(cache.get(&id).is_none(), "no heartbeat yet");
        cache.heartbeat();
        assert!(cache.get(&id).is_some());
    }
}
