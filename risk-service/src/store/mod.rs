//! Storage of risk-service behind a small repository: one transaction per write, optimistic
//! concurrency on a version column, request-id records for idempotent creates.

mod batch;
pub mod cache;
pub mod entities;
pub mod migration;
mod org;
mod risks;

use std::{sync::Arc, time::Duration};

use assurance_runtime::{ApiError, ApiResult, db, error::is_unique_violation, time::now_micros};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, Set, Statement,
};
use sea_orm_migration::MigratorTrait;
use tokio::sync::mpsc;

pub use risks::{ListRisks, RiskFilter, RiskOrder, RiskPatch, labels_from_json};

use crate::domain::scoring::ScoringPolicy;
use entities::scoring_policy;

/// The risk-service database, its read cache and its group-commit writer.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    cache: Arc<cache::RiskCache>,
    /// Creates and assessments go through the writer, which commits them in batches; the
    /// writer's own copy has none and writes directly.
    writer: Option<mpsc::Sender<batch::Job>>,
    /// Background jobs of this store (the WAL checkpointer) run while this lives.
    _alive: Arc<()>,
}

/// Tuning of a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    /// Risks kept in the read cache (0 disables it).
    pub cache_size: usize,
    /// Longest time a cached risk is served without re-reading it.
    pub cache_ttl: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            cache_size: 100_000,
            cache_ttl: Duration::from_secs(300),
        }
    }
}

pub use assurance_runtime::idempotency::{Outcome, RequestKey};

impl Store {
    /// Connects, brings the schema up to date and starts the writer (and, on PostgreSQL, the
    /// cache invalidation listener).
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, DbErr> {
        let db = db::connect(url, options.max_connections).await?;
        migration::Migrator::up(&db, None).await?;
        let cache = Arc::new(cache::RiskCache::new(options.cache_size, options.cache_ttl));
        if db.get_database_backend() == DbBackend::Postgres && options.cache_size > 0 {
            cache::spawn_pg_invalidation(url.to_string(), db.clone(), Arc::downgrade(&cache));
        }
        let alive = Arc::new(());
        db::spawn_checkpointer(db.clone(), Arc::downgrade(&alive));
        let direct = Store {
            db,
            cache,
            writer: None,
            _alive: alive,
        };
        let writer = batch::spawn_writer(direct.clone());
        Ok(Store {
            writer: Some(writer),
            ..direct
        })
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Records the scoring policy so every assessment's `policy_id` resolves to its
    /// definition, even after the configuration changes.
    pub async fn register_policy(&self, policy: &ScoringPolicy) -> Result<(), DbErr> {
        let id = policy.id();
        if scoring_policy::Entity::find_by_id(id.clone())
            .one(&self.db)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let row = scoring_policy::ActiveModel {
            id: Set(id),
            methodology: Set(policy.methodology.to_string()),
            definition: Set(serde_json::to_string(policy).unwrap_or_default()),
            create_time: Set(now_micros()),
        };
        match row.insert(&self.db).await {
            Ok(_) => Ok(()),
            // Another replica registered it first.
            Err(e) if is_unique_violation(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs `write` in one write transaction, idempotently for a request key.
    async fn idempotent<T>(
        &self,
        key: Option<RequestKey>,
        write: impl AsyncFnOnce(&DatabaseTransaction) -> ApiResult<(String, T)>,
    ) -> ApiResult<Outcome<T>> {
        assurance_runtime::idempotency::run(&self.db, key, write).await
    }
}

/// Tells other replicas (PostgreSQL) that risks changed: `payload` is comma-separated ids or
/// [`cache::ALL`]. Sent inside the writing transaction, so it is delivered only on commit.
async fn notify_risks(conn: &impl ConnectionTrait, payload: &str) -> Result<(), DbErr> {
    if conn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let stmt = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [cache::CHANNEL.into(), payload.into()],
    );
    conn.execute_raw(stmt).await.map(|_| ())
}

/// The etag of a version: the version, quoted.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// Parses an etag sent by a client; empty means "no precondition".
pub fn parse_etag(field: &str, etag: &str) -> ApiResult<Option<i64>> {
    if etag.is_empty() {
        return Ok(None);
    }
    let inner = etag
        .strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(etag);
    inner
        .parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .map(Some)
        .ok_or_else(|| ApiError::invalid(field, "is not an etag issued by this service"))
}

/// Checks an optimistic-concurrency precondition against the stored version.
fn check_version(resource: &str, expected: Option<i64>, current: i64) -> ApiResult<()> {
    match expected {
        Some(v) if v != current => Err(ApiError::StaleEtag {
            resource: resource.to_string(),
            sent: etag(v),
            current: etag(current),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags() {
        assert_eq!(etag(3), "\"3\"");
        assert_eq!(parse_etag("etag", "\"3\""), Ok(Some(3)));
        assert_eq!(parse_etag("etag", "3"), Ok(Some(3)));
        assert_eq!(parse_etag("etag", ""), Ok(None));
        assert!(parse_etag("etag", "\"x\"").is_err());
        assert!(parse_etag("etag", "\"-1\"").is_err());
    }

    #[test]
    fn version_check() {
        assert!(check_version("risks/x", None, 4).is_ok());
        assert!(check_version("risks/x", Some(4), 4).is_ok());
        assert!(matches!(
            check_version("risks/x", Some(3), 4),
            Err(ApiError::StaleEtag { .. })
        ));
    }
}
