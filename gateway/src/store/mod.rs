//! The gateway's own store: risk appetite versions (later snapshots, reports and tracker sync),
//! its audit trail and request records. SQLite (`DATA_DIR/gateway.db` by default) or
//! PostgreSQL (`--database-url`), migrated at start-up like the services' stores.

mod m0004_tracker_sync;
mod migration;
pub mod report;
pub mod snapshot;

use assurance_runtime::{
    ApiError, ApiResult, audit,
    auth::Caller,
    db,
    idempotency::{self, Outcome, RequestKey},
    time::now_micros,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
};

/// The service name of the gateway's audit records.
pub const SERVICE: &str = "gateway";

pub mod appetite_version {
    use sea_orm::entity::prelude::*;

    /// One version of one scope's risk appetite. Severities are `assurance.type.v1.Severity`
    /// numbers, 0 where the scope inherits its parent's value.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "appetite_versions")]
    pub struct Model {
        /// `enterprise`, `businessUnits/{id}` or `services/{id}`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub scope: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i64,
        pub appetite: i32,
        pub tolerance: i32,
        pub effective_time: i64,
        pub reason: String,
        /// The person who set it (the user a system principal acted for).
        pub set_by: String,
        /// The authenticated principal.
        pub principal: String,
        pub create_time: i64,
    }

    assurance_runtime::entity_without_relations!();
}

use appetite_version::{Column as V, Entity as Versions, Model as Version};

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Connects and migrates.
    pub async fn open(url: &str, max_connections: u32) -> Result<Store, DbErr> {
        let db = db::connect_for(url, max_connections, db::SqliteReads::Streamed).await?;
        assurance_runtime::migrate::run::<migration::Migrator>(&db, SERVICE).await?;
        Ok(Store { db })
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Every appetite version of every scope (a small table: one row per change).
    pub async fn appetite_versions(&self) -> ApiResult<Vec<Version>> {
        Ok(Versions::find()
            .order_by_asc(V::Scope)
            .order_by_asc(V::Version)
            .all(&self.db)
            .await?)
    }

    /// A page of `scope`'s versions, newest first, below version `before` when given.
    pub async fn versions_of(
        &self,
        scope: &str,
        before: Option<i64>,
        limit: u64,
    ) -> ApiResult<Vec<Version>> {
        let mut select = Versions::find().filter(V::Scope.eq(scope));
        if let Some(before) = before {
            select = select.filter(V::Version.lt(before));
        }
        Ok(select
            .order_by_desc(V::Version)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// Appends `row` as `row.scope`'s next version (its `version` is assigned here). With
    /// `expected` (from an etag), ABORTED unless that is still the latest version. Audited, and
    /// idempotent with `key`: a replay returns the version the first attempt created.
    pub async fn append_version(
        &self,
        mut row: Version,
        expected: Option<i64>,
        key: Option<RequestKey>,
        caller: &Caller,
        name: &str,
    ) -> ApiResult<Version> {
        let request_id = key
            .as_ref()
            .map(|k| k.request_id.clone())
            .unwrap_or_default();
        let scope = row.scope.clone();
        let outcome = idempotency::run(&self.db, key, async |tx| {
            let latest: Option<i64> = Versions::find()
                .select_only()
                .column(V::Version)
                .filter(V::Scope.eq(&scope))
                .order_by_desc(V::Version)
                .limit(1)
                .into_tuple()
                .one(tx)
                .await?;
            let latest = latest.unwrap_or(0);
            assurance_runtime::etag::check_version(name, expected, latest)?;
            row.version = latest + 1;
            row.create_time = now_micros();
            // Two writers racing for one version number: the primary key refuses the second,
            // which is answered ABORTED (retry with the new etag).
            match row.clone().into_active_model().insert(tx).await {
                Ok(_) => {}
                Err(e) if assurance_runtime::error::is_unique_violation(&e) => {
                    return Err(ApiError::Conflict {
                        resource: name.to_string(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
            let versioned = format!("{name}@{}", row.version);
            audit::record(tx, SERVICE, caller, &versioned, &request_id).await?;
            Ok((versioned, row.clone()))
        })
        .await?;
        match outcome {
            Outcome::Created(row) => Ok(row),
            Outcome::Replayed(resource) => {
                let version = resource
                    .rsplit_once('@')
                    .and_then(|(_, v)| v.parse::<i64>().ok())
                    .ok_or_else(|| {
                        ApiError::Internal(format!("request record names {resource:?}"))
                    })?;
                Versions::find_by_id((scope, version))
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| ApiError::not_found(&resource))
            }
        }
    }
}
