//! Storage of risk-service behind a small repository: one transaction per write, optimistic
//! concurrency on a version column, request-id records for idempotent creates.

pub mod entities;
pub mod migration;
mod org;
mod risks;

use assurance_runtime::{ApiError, ApiResult, db, error::is_unique_violation, time::now_micros};
use sea_orm::{ActiveModelTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, Set};
use sea_orm_migration::MigratorTrait;

pub use risks::{ListRisks, RiskFilter, RiskOrder, RiskPatch, labels_from_json};

use crate::domain::scoring::ScoringPolicy;
use entities::{request_record, scoring_policy};

/// The risk-service database.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
}

/// An idempotency key of a create-like request.
pub struct RequestKey<'a> {
    pub operation: &'static str,
    pub request_id: &'a str,
    /// Digest of the request without its request id.
    pub fingerprint: String,
}

/// What a create-like write did.
pub enum Outcome<T> {
    Created(T),
    /// The request id was seen before: the resource it produced, by name.
    Replayed(String),
}

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, DbErr> {
        let db = db::connect(url, max_connections).await?;
        migration::Migrator::up(&db, None).await?;
        Ok(Store { db })
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

    /// Runs `write` in one write transaction. With a request key, a key seen before returns
    /// [`Outcome::Replayed`] instead (or `INVALID_ARGUMENT` if the payload differs), and the
    /// key is recorded in the same transaction as the write, so a retry racing the first
    /// attempt can never apply twice.
    async fn idempotent<T>(
        &self,
        key: Option<RequestKey<'_>>,
        write: impl AsyncFnOnce(&DatabaseTransaction) -> ApiResult<(String, T)>,
    ) -> ApiResult<Outcome<T>> {
        let tx = db::begin_write(&self.db).await?;
        if let Some(key) = &key
            && let Some(seen) = find_request(&tx, key).await?
        {
            return replay(key, seen);
        }
        let (resource, value) = write(&tx).await?;
        if let Some(key) = &key {
            let record = request_record::ActiveModel {
                operation: Set(key.operation.to_string()),
                request_id: Set(key.request_id.to_string()),
                fingerprint: Set(key.fingerprint.clone()),
                resource: Set(resource),
                create_time: Set(now_micros()),
            };
            if let Err(e) = record.insert(&tx).await {
                drop(tx);
                if is_unique_violation(&e) {
                    // A concurrent retry committed first: answer as it did.
                    let seen = find_request(&self.db, key).await?.ok_or_else(|| {
                        ApiError::Internal("request record vanished after conflict".into())
                    })?;
                    return replay(key, seen);
                }
                return Err(e.into());
            }
        }
        tx.commit().await?;
        Ok(Outcome::Created(value))
    }
}

async fn find_request(
    conn: &impl sea_orm::ConnectionTrait,
    key: &RequestKey<'_>,
) -> Result<Option<request_record::Model>, DbErr> {
    request_record::Entity::find_by_id((key.operation.to_string(), key.request_id.to_string()))
        .one(conn)
        .await
}

fn replay<T>(key: &RequestKey<'_>, seen: request_record::Model) -> ApiResult<Outcome<T>> {
    if seen.fingerprint != key.fingerprint {
        return Err(ApiError::RequestIdReused {
            request_id: key.request_id.to_string(),
        });
    }
    Ok(Outcome::Replayed(seen.resource))
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
