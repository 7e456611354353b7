//! Idempotent creates (AIP-155): which resource a client `request_id` produced, recorded in the
//! same transaction as the write, so a retry — even one racing the first attempt — answers with
//! the same resource and never applies twice. A reused id with another payload is refused.

use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    Set,
    sea_query::{ColumnDef, Index, Table, TableCreateStatement},
};

use sha2::{Digest, Sha256};

use crate::{ApiError, ApiResult, auth::Caller, db, error::is_unique_violation, time::now_micros};

/// The `request_records` table, in every service database.
pub mod request_record {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "request_records")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub operation: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub request_id: String,
        /// Digest of the request without its request id.
        pub fingerprint: String,
        /// Name of the resource the request produced.
        pub resource: String,
        pub create_time: i64,
    }

    crate::entity_without_relations!();
}

/// The migration statement of `request_records`. Services sharing one database share the
/// table (their operation names differ), hence `IF NOT EXISTS`.
pub fn create_table() -> TableCreateStatement {
    use request_record::Column as C;
    Table::create()
        .table(request_record::Entity)
        .if_not_exists()
        .col(ColumnDef::new(C::Operation).string().not_null())
        .col(ColumnDef::new(C::RequestId).string().not_null())
        .col(ColumnDef::new(C::Fingerprint).string().not_null())
        .col(ColumnDef::new(C::Resource).string().not_null())
        .col(ColumnDef::new(C::CreateTime).big_integer().not_null())
        .primary_key(Index::create().col(C::Operation).col(C::RequestId))
        .to_owned()
}

/// Separates the principal from the client's id in a stored request id. Principals and request
/// ids never contain control characters (authentication and validation refuse them), so the
/// stored id is unambiguous.
pub const PRINCIPAL_SEPARATOR: char = '\u{1f}';

/// An idempotency key of a create-like or decision request.
///
/// Request ids are per principal (AIP-155): the key is the authenticated principal's, so a
/// request id another principal used means nothing to this one — it neither replays the other's
/// resource nor is refused as reused.
#[derive(Debug, Clone)]
pub struct RequestKey {
    pub operation: &'static str,
    /// The client's request id.
    pub request_id: String,
    /// `{principal}\u{1f}{request_id}`: what `request_records.request_id` holds.
    pub stored: String,
    /// Digest of the request without its request id.
    pub fingerprint: String,
}

impl RequestKey {
    /// The key of `request` sent by `caller`, when it carries a request id (`request_id` picks
    /// the field): its fingerprint is a digest of the request with that id cleared, to tell a
    /// retry from a reused id.
    pub fn for_request<M: prost::Message + Clone>(
        operation: &'static str,
        caller: &Caller,
        request: &M,
        request_id: impl FnOnce(&mut M) -> &mut String,
    ) -> Option<Self> {
        let mut copy = request.clone();
        let id = std::mem::take(request_id(&mut copy));
        if id.is_empty() {
            return None;
        }
        let digest = Sha256::digest(copy.encode_to_vec());
        let fingerprint = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        Some(RequestKey {
            operation,
            stored: stored_id(&caller.principal.subject, &id),
            request_id: id,
            fingerprint,
        })
    }

    pub fn record(&self, resource: String) -> request_record::ActiveModel {
        request_record::ActiveModel {
            operation: Set(self.operation.to_string()),
            request_id: Set(self.stored.clone()),
            fingerprint: Set(self.fingerprint.clone()),
            resource: Set(resource),
            create_time: Set(now_micros()),
        }
    }
}

/// The stored request id of `request_id` sent by `principal`.
pub fn stored_id(principal: &str, request_id: &str) -> String {
    format!("{principal}{PRINCIPAL_SEPARATOR}{request_id}")
}

/// How far apart a request record and the audit event of the same write may be.
const SAME_WRITE_MICROS: i64 = 60_000_000;

/// Upgrade step (a migration of each service calls it): request records written before request
/// ids were per principal hold the bare client id. Each gets the principal of the audit event
/// recorded by the same write — same method, same request id (or, where that event has none,
/// the same resource or its parent), within a minute. A record that no audit event of
/// `service` attributes to exactly one principal keeps its bare id, which no lookup matches
/// any more: a retry of it after the upgrade is a new request. Returns how many were scoped.
pub async fn scope_legacy_records(
    conn: &impl ConnectionTrait,
    service: &str,
) -> Result<u64, DbErr> {
    use crate::audit::audit_event;
    use sea_orm::{ColumnTrait, QueryFilter};

    let legacy: Vec<request_record::Model> = request_record::Entity::find()
        .all(conn)
        .await?
        .into_iter()
        .filter(|r| !r.request_id.contains(PRINCIPAL_SEPARATOR))
        .collect();
    let mut scoped = 0;
    for record in legacy {
        let method = format!("/{}", record.operation);
        let candidates = audit_event::Entity::find()
            .filter(audit_event::Column::Service.eq(service))
            .filter(audit_event::Column::Time.gte(record.create_time - SAME_WRITE_MICROS))
            .filter(audit_event::Column::Time.lte(record.create_time + SAME_WRITE_MICROS))
            .all(conn)
            .await?;
        let principals: std::collections::BTreeSet<&str> = candidates
            .iter()
            .filter(|e| e.rpc.ends_with(&method))
            .filter(|e| {
                if e.request_id.is_empty() {
                    record.resource == e.resource
                        || record
                            .resource
                            .strip_prefix(e.resource.as_str())
                            .is_some_and(|rest| rest.starts_with('/'))
                } else {
                    e.request_id == record.request_id
                }
            })
            .map(|e| e.principal.as_str())
            .collect();
        let [principal] = principals.into_iter().collect::<Vec<_>>()[..] else {
            continue;
        };
        let principal = crate::auth::normalize_principal(principal);
        request_record::Entity::update_many()
            .col_expr(
                request_record::Column::RequestId,
                sea_orm::sea_query::Expr::value(stored_id(&principal, &record.request_id)),
            )
            .filter(request_record::Column::Operation.eq(record.operation.as_str()))
            .filter(request_record::Column::RequestId.eq(record.request_id.as_str()))
            .exec(conn)
            .await?;
        scoped += 1;
    }
    Ok(scoped)
}

/// How long request records are kept by default: a retry later than this is a new request.
pub const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// The longest time between two cleanups of expired request records.
const MAX_CLEANUP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes the request records created before `before` (Unix microseconds); returns how many.
pub async fn delete_expired(conn: &impl ConnectionTrait, before: i64) -> Result<u64, DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let deleted = request_record::Entity::delete_many()
        .filter(request_record::Column::CreateTime.lt(before))
        .exec(conn)
        .await?;
    Ok(deleted.rows_affected)
}

/// How often records kept for `retention` are cleaned up: a tenth of it, between one second and
/// an hour.
pub fn cleanup_interval(retention: std::time::Duration) -> std::time::Duration {
    (retention / 10).clamp(std::time::Duration::from_secs(1), MAX_CLEANUP_INTERVAL)
}

/// Deletes request records older than `retention` from `conn` now and every
/// [`cleanup_interval`], until `shutdown`. Several servers sharing a database may all run it.
pub fn spawn_cleanup(
    conn: DatabaseConnection,
    retention: std::time::Duration,
    shutdown: crate::serve::Shutdown,
) {
    let keep = i64::try_from(retention.as_micros()).unwrap_or(i64::MAX);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(cleanup_interval(retention));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.wait() => return,
            }
            match delete_expired(&conn, now_micros().saturating_sub(keep)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "expired request records deleted"),
                Err(e) => {
                    tracing::warn!(error = %e, "request record cleanup failed; retrying next interval")
                }
            }
        }
    });
}

/// What a create-like write did.
pub enum Outcome<T> {
    Created(T),
    /// The request id was seen before: the resource it produced, by name.
    Replayed(String),
}

/// Runs `write` in one write transaction; `write` returns the produced resource's name and a
/// value. With a key, a key seen before returns [`Outcome::Replayed`] instead.
pub async fn run<T>(
    conn: &DatabaseConnection,
    key: Option<RequestKey>,
    write: impl AsyncFnOnce(&DatabaseTransaction) -> ApiResult<(String, T)>,
) -> ApiResult<Outcome<T>> {
    let tx = db::begin_write(conn).await?;
    if let Some(key) = &key
        && let Some(seen) = find(&tx, key).await?
    {
        return replay(key, seen);
    }
    let (resource, value) = match write(&tx).await {
        Ok(written) => written,
        Err(e) => {
            drop(tx);
            // A retry that raced the first attempt blocks on the same rows and then fails
            // (the resource exists, the state moved on): if the first attempt committed in the
            // meantime, answer as it did.
            if let Some(key) = &key
                && let Some(seen) = find(conn, key).await?
            {
                return replay(key, seen);
            }
            return Err(e);
        }
    };
    if let Some(key) = &key
        && let Err(e) = key.record(resource).insert(&tx).await
    {
        drop(tx);
        if is_unique_violation(&e) {
            // A concurrent retry committed first: answer as it did.
            let seen = find(conn, key).await?.ok_or_else(|| {
                ApiError::Internal("request record vanished after conflict".into())
            })?;
            return replay(key, seen);
        }
        return Err(e.into());
    }
    tx.commit().await?;
    Ok(Outcome::Created(value))
}

pub async fn find(
    conn: &impl ConnectionTrait,
    key: &RequestKey,
) -> Result<Option<request_record::Model>, DbErr> {
    request_record::Entity::find_by_id((key.operation.to_string(), key.stored.clone()))
        .one(conn)
        .await
}

/// The outcome of a request whose key was `seen` before.
pub fn replay<T>(key: &RequestKey, seen: request_record::Model) -> ApiResult<Outcome<T>> {
    if seen.fingerprint != key.fingerprint {
        return Err(ApiError::RequestIdReused {
            request_id: key.request_id.clone(),
        });
    }
    Ok(Outcome::Replayed(seen.resource))
}

/// The id (or sequence) that ends a recorded resource name such as `risks/…/responses/{id}`:
/// what a replayed request reads back.
pub fn last_segment<T: std::str::FromStr>(name: &str) -> ApiResult<T> {
    name.rsplit('/')
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError::Internal(format!("bad stored resource {name}")))
}

#[cfg(test)]
mod tests {
    use assurance_proto::risk::v1::{CreateRiskRequest, Risk};

    use super::RequestKey;
    use crate::auth::Caller;

    fn create(request_id: &str, title: &str) -> CreateRiskRequest {
        CreateRiskRequest {
            request_id: request_id.into(),
            risk: Some(Risk {
                title: title.into(),
                ..Risk::default()
            }),
        }
    }

    fn key(request: &CreateRiskRequest) -> Option<RequestKey> {
        key_of("alice", request)
    }

    fn key_of(principal: &str, request: &CreateRiskRequest) -> Option<RequestKey> {
        let mut caller = Caller::system("risk-service", "test");
        std::sync::Arc::make_mut(&mut caller.principal).subject = principal.into();
        RequestKey::for_request("CreateRisk", &caller, request, |r| &mut r.request_id)
    }

    #[test]
    fn the_fingerprint_ignores_the_request_id_and_sees_the_payload() {
        let a = key(&create("r-1", "Stale keys")).expect("a key");
        assert_eq!(a.request_id, "r-1");
        assert_eq!(a.operation, "CreateRisk");
        let same = key(&create("r-2", "Stale keys")).expect("a key");
        assert_eq!(a.fingerprint, same.fingerprint);
        let other = key(&create("r-1", "Fresh keys")).expect("a key");
        assert_ne!(a.fingerprint, other.fingerprint);
        assert!(key(&create("", "Stale keys")).is_none());
    }

    #[test]
    fn cleanup_runs_often_enough_but_not_too_often() {
        use std::time::Duration;
        assert_eq!(
            super::cleanup_interval(super::DEFAULT_RETENTION),
            Duration::from_secs(3600)
        );
        assert_eq!(
            super::cleanup_interval(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
        assert_eq!(
            super::cleanup_interval(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
    }

    #[tokio::test]
    async fn expired_records_are_deleted_and_recent_ones_kept() {
        use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};
        let conn = sea_orm::Database::connect("sqlite::memory:")
            .await
            .expect("sqlite");
        conn.execute(&super::create_table()).await.expect("table");
        for (id, time) in [("old", 1_000), ("edge", 2_000), ("new", 3_000)] {
            super::request_record::ActiveModel {
                operation: Set("CreateRisk".into()),
                request_id: Set(id.into()),
                fingerprint: Set("f".into()),
                resource: Set(format!("risks/{id}")),
                create_time: Set(time),
            }
            .insert(&conn)
            .await
            .expect("insert");
        }
        assert_eq!(super::delete_expired(&conn, 2_000).await, Ok(1));
        let left: Vec<String> = super::request_record::Entity::find()
            .all(&conn)
            .await
            .expect("read")
            .into_iter()
            .map(|r| r.request_id)
            .collect();
        assert_eq!(left, ["edge", "new"]);
    }

    #[test]
    fn the_stored_id_belongs_to_the_principal() {
        let alice = key_of("alice", &create("r-1", "Stale keys")).expect("a key");
        let bob = key_of("bob", &create("r-1", "Stale keys")).expect("a key");
        assert_eq!(alice.request_id, bob.request_id);
        assert_eq!(alice.fingerprint, bob.fingerprint);
        assert_ne!(alice.stored, bob.stored);
        assert_eq!(alice.stored, "alice\u{1f}r-1");
    }
}
