//! Storage of risk-service behind a small repository: one transaction per write, optimistic
//! concurrency on a version column, request-id records for idempotent creates.

mod approval_level;
mod batch;
pub mod cache;
pub mod controls;
pub mod effectiveness;
pub mod entities;
pub mod exceptions;
mod governance;
mod labels;
pub mod listing;
pub mod migration;
mod migration_contract;
mod migration_failures;
mod migration_outbox;
mod migration_reviews;
mod migration_summary;
mod migration_summary_versions;
mod migration_work_items;
mod org;
pub mod report_rows;
pub mod reviews;
mod risk_list;
mod risks;
pub mod summary;
mod summary_cache;

use std::{sync::Arc, time::Duration};

use assurance_runtime::{ApiError, ApiResult, db, error::is_unique_violation, time::now_micros};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, IntoActiveModel, ModelTrait, PrimaryKeyTrait, QueryFilter,
    Select, Set, Statement,
};
use tokio::sync::mpsc;

pub use governance::{ITEM_FILTER, response_version};
pub use labels::labels_from_json;
pub use risk_list::{RISK_FILTER, RISK_SORTING, risk_keys};
pub use risks::{RiskPatch, identified_risk};

use crate::domain::scoring::ScoringPolicy;
use entities::scoring_policy;

/// The risk-service database, its read cache and its group-commit writer.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    cache: Arc<cache::RiskCache>,
    /// Kept `SummarizeRisks` figures, reused while exact.
    summaries: Arc<summary_cache::FiguresCache>,
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

/// This service's name in the audit trail it shares a database table with.
pub const SERVICE: &str = "risk-service";

/// The request id an idempotency key carries, for the audit trail.
fn request_id_of(key: &Option<RequestKey>) -> String {
    key.as_ref()
        .map(|k| k.request_id.clone())
        .unwrap_or_default()
}

impl Store {
    /// Connects, brings the schema up to date and starts the writer (and, on PostgreSQL, the
    /// cache invalidation listener).
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, DbErr> {
        let db = db::connect(url, options.max_connections).await?;
        assurance_runtime::migrate::run::<migration::Migrator>(&db, SERVICE).await?;
        let cache = Arc::new(cache::RiskCache::new(options.cache_size, options.cache_ttl));
        if db.get_database_backend() == DbBackend::Postgres && options.cache_size > 0 {
            cache::spawn_pg_invalidation(url.to_string(), db.clone(), Arc::downgrade(&cache));
        }
        let alive = Arc::new(());
        db::spawn_checkpointer(db.clone(), Arc::downgrade(&alive));
        let direct = Store {
            db,
            cache,
            summaries: Arc::default(),
            writer: None,
            _alive: alive,
        };
        let writer = batch::spawn_writer(direct.clone());
        Ok(Store {
            writer: Some(writer),
            ..direct
        })
    }

    /// A copy for a background job — it writes directly and does not keep the store's other
    /// background work alive — and a marker that is gone once every other copy is dropped.
    pub fn for_job(&self) -> (std::sync::Weak<()>, Store) {
        (
            Arc::downgrade(&self._alive),
            Store {
                db: self.db.clone(),
                cache: self.cache.clone(),
                summaries: self.summaries.clone(),
                writer: None,
                _alive: Arc::new(()),
            },
        )
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

/// Inserts a new row named `name`; `ALREADY_EXISTS` when its id is taken.
async fn insert_new<A>(conn: &impl ConnectionTrait, row: A, name: &str) -> ApiResult<()>
where
    A: ActiveModelTrait + Send,
{
    match <A::Entity as EntityTrait>::insert(row)
        .exec_without_returning(conn)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(ApiError::AlreadyExists {
            resource: name.to_string(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Optimistic concurrency: writes `next` over the row `id` only while it is still at
/// `version`; `ABORTED` (conflict) when a concurrent write moved it on.
async fn write_if_version<A, C>(
    conn: &impl ConnectionTrait,
    next: A,
    (id_column, id): (C, impl Into<sea_orm::Value>),
    (version_column, version): (C, i64),
    name: &str,
) -> ApiResult<()>
where
    A: ActiveModelTrait + Send,
    C: ColumnTrait,
    A::Entity: EntityTrait<Column = C>,
{
    let written = <A::Entity as EntityTrait>::update_many()
        .set(next)
        .filter(id_column.eq(id.into()))
        .filter(version_column.eq(version))
        .exec(conn)
        .await?;
    if written.rows_affected != 1 {
        return Err(ApiError::Conflict {
            resource: name.to_string(),
        });
    }
    Ok(())
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

pub use assurance_runtime::etag::{check_version, etag, parse_etag};

/// The row of `E` whose primary key is `id`, or `NOT_FOUND` of `name`.
async fn get_by_id<E>(
    conn: &impl ConnectionTrait,
    id: impl Into<<E::PrimaryKey as PrimaryKeyTrait>::ValueType>,
    name: &str,
) -> ApiResult<E::Model>
where
    E: EntityTrait,
{
    one_or_not_found(E::find_by_id(id), conn, name).await
}

/// The row `select` finds, or `NOT_FOUND` of `name`.
async fn one_or_not_found<E: EntityTrait>(
    select: Select<E>,
    conn: &impl ConnectionTrait,
    name: &str,
) -> ApiResult<E::Model> {
    select
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::not_found(name))
}

/// A row under optimistic concurrency: every write bumps its version and update time.
trait Versioned:
    ModelTrait + Clone + IntoActiveModel<<Self::Entity as EntityTrait>::ActiveModel>
{
    const ID: <Self::Entity as EntityTrait>::Column;
    const VERSION: <Self::Entity as EntityTrait>::Column;
    fn id_value(&self) -> sea_orm::Value;
    fn version(&self) -> i64;
    fn stamp(&mut self, version: i64, update_time: i64);
}

macro_rules! versioned {
    ($($entity:ident),* $(,)?) => {$(
        impl Versioned for entities::$entity::Model {
            const ID: entities::$entity::Column = entities::$entity::Column::Id;
            const VERSION: entities::$entity::Column = entities::$entity::Column::Version;
            fn id_value(&self) -> sea_orm::Value {
                self.id.clone().into()
            }
            fn version(&self) -> i64 {
                self.version
            }
            fn stamp(&mut self, version: i64, update_time: i64) {
                (self.version, self.update_time) = (version, update_time);
            }
        }
    )*};
}

versioned!(business_unit, service, control, action_item);

/// `current` changed by `patch`, as its next version, updated at `now`.
fn next_version<M: Versioned>(current: &M, now: i64, patch: impl FnOnce(&mut M)) -> M {
    let mut next = current.clone();
    patch(&mut next);
    next.stamp(current.version() + 1, now);
    next
}

/// Writes `next` (from [`next_version`]) over its row while that is still at `previous`
/// ([`write_if_version`]).
async fn write_version<M: Versioned>(
    conn: &impl ConnectionTrait,
    next: &M,
    previous: i64,
    name: &str,
) -> ApiResult<()>
where
    <M::Entity as EntityTrait>::ActiveModel: Send,
{
    write_if_version(
        conn,
        next.clone().into_active_model().reset_all(),
        (M::ID, next.id_value()),
        (M::VERSION, previous),
        name,
    )
    .await
}
