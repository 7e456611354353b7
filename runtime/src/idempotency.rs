//! Idempotent creates (AIP-155): which resource a client `request_id` produced, recorded in the
//! same transaction as the write, so a retry — even one racing the first attempt — answers with
//! the same resource and never applies twice. A reused id with another payload is refused.

use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    Set,
    sea_query::{ColumnDef, Index, Table, TableCreateStatement},
};

use sha2::{Digest, Sha256};

use crate::{ApiError, ApiResult, db, error::is_unique_violation, time::now_micros};

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

/// An idempotency key of a create-like request.
#[derive(Debug, Clone)]
pub struct RequestKey {
    pub operation: &'static str,
    pub request_id: String,
    /// Digest of the request without its request id.
    pub fingerprint: String,
}

impl RequestKey {
    /// The key of a request, when the caller sent a request id.
    pub fn of(operation: &'static str, request_id: &str, fingerprint: String) -> Option<Self> {
        (!request_id.is_empty()).then(|| RequestKey {
            operation,
            request_id: request_id.to_string(),
            fingerprint,
        })
    }

    /// The key of `request`, when it carries a request id (`request_id` picks the field): its
    /// fingerprint is a digest of the request with that id cleared, to tell a retry from a
    /// reused id.
    pub fn for_request<M: prost::Message + Clone>(
        operation: &'static str,
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
            request_id: id,
            fingerprint,
        })
    }

    pub fn record(&self, resource: String) -> request_record::ActiveModel {
        request_record::ActiveModel {
            operation: Set(self.operation.to_string()),
            request_id: Set(self.request_id.clone()),
            fingerprint: Set(self.fingerprint.clone()),
            resource: Set(resource),
            create_time: Set(now_micros()),
        }
    }
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
    request_record::Entity::find_by_id((key.operation.to_string(), key.request_id.clone()))
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
        RequestKey::for_request("CreateRisk", request, |r| &mut r.request_id)
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
}
