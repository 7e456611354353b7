//! Schema migrations that are safe when several replicas start at once.
//!
//! On PostgreSQL a service's migrations run under a session advisory lock
//! (`pg_advisory_lock`) held on one dedicated connection for the whole run: the first replica
//! migrates, the others wait for the lock and then find nothing pending. The key is constant
//! per service ([`lock_key`]), so risk-service and incident-service sharing a database migrate
//! independently. SQLite has one writer per file anyway: it just migrates.

use std::time::Duration;

use sea_orm::{DatabaseConnection, DbBackend, DbErr};
use sea_orm_migration::MigratorTrait;
use sqlx::{Connection, PgConnection};

/// How often a replica waiting for the migration lock says so.
const WAIT_LOG_EVERY: Duration = Duration::from_secs(10);

/// The advisory lock key of `service`'s migrations: the 64-bit FNV-1a hash of
/// `assurance-migrations:<service>`, the same in every replica and release.
pub fn lock_key(service: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "assurance-migrations:".bytes().chain(service.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Applies `M`'s pending migrations to `db`; on PostgreSQL under `service`'s advisory lock
/// (waiting, and logging, while another replica holds it).
pub async fn run<M: MigratorTrait>(db: &DatabaseConnection, service: &str) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return M::up(db, None).await;
    }
    let key = lock_key(service);
    // A connection of its own, outside the pool: the lock lives as long as this session, and
    // the pool stays whole for the migrations themselves.
    let options = db.get_postgres_connection_pool().connect_options();
    let mut lock = PgConnection::connect_with(&options)
        .await
        .map_err(|e| DbErr::Custom(format!("migration lock connection: {e}")))?;
    acquire(&mut lock, key, service).await?;
    tracing::info!(service, "migrating the database");
    let migrated = M::up(db, None).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut lock)
        .await;
    // Closing the session releases the lock too, should the unlock itself have failed.
    let _ = lock.close().await;
    migrated?;
    if let Err(e) = unlocked {
        tracing::warn!(service, error = %e, "migration lock release failed; the session's end released it");
    }
    tracing::info!(service, "database migrated");
    Ok(())
}

/// Takes the advisory lock `key` on `conn`, logging while another session holds it.
async fn acquire(conn: &mut PgConnection, key: i64, service: &str) -> Result<(), DbErr> {
    let err = |e: sqlx::Error| DbErr::Custom(format!("migration lock: {e}"));
    let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut *conn)
        .await
        .map_err(err)?;
    if taken {
        return Ok(());
    }
    tracing::info!(
        service,
        key,
        "waiting for the migration lock: another replica is migrating the database"
    );
    let started = std::time::Instant::now();
    let wait = sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(&mut *conn);
    tokio::pin!(wait);
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + WAIT_LOG_EVERY, WAIT_LOG_EVERY);
    loop {
        tokio::select! {
            done = &mut wait => {
                done.map_err(err)?;
                tracing::info!(service, waited_ms = started.elapsed().as_millis() as u64, "migration lock taken");
                return Ok(());
            }
            _ = tick.tick() => {
                tracing::info!(service, waited_s = started.elapsed().as_secs(), "still waiting for the migration lock");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_constant_and_differ_per_service() {
        assert_eq!(lock_key("risk-service"), lock_key("risk-service"));
        assert_ne!(lock_key("risk-service"), lock_key("incident-service"));
        assert_ne!(lock_key("gateway"), lock_key("incident-service"));
    }
}
