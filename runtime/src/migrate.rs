//! Schema migrations that are safe when several replicas start at once.
//!
//! On PostgreSQL migrations run under a session advisory lock (`pg_advisory_lock`) held on one
//! dedicated connection for the whole run: the first replica migrates, the others wait for the
//! lock and then find nothing pending. The key ([`LOCK_KEY`]) is one constant for every
//! Assurance service: services sharing a database also share tables (`audit_events`, `outbox`,
//! `request_records`), which their migrations create, so a risk-service and an incident-service
//! starting on one database migrate one after the other too. SQLite has one writer per file
//! anyway: it just migrates.

use std::time::Duration;

use sea_orm::{DatabaseConnection, DbBackend, DbErr};
use sea_orm_migration::MigratorTrait;
use sqlx::{Connection, PgConnection};

/// How often a replica waiting for the migration lock says so.
const WAIT_LOG_EVERY: Duration = Duration::from_secs(10);

/// The advisory lock key of Assurance's migrations: the 64-bit FNV-1a hash of
/// `assurance-migrations`, the same in every service, replica and release.
pub const LOCK_KEY: i64 = fnv1a(b"assurance-migrations");

const fn fnv1a(bytes: &[u8]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash as i64
}

/// Applies `M`'s pending migrations to `db` (`service`'s, for the logs); on PostgreSQL under
/// the advisory lock [`LOCK_KEY`] (waiting, and logging, while another server holds it).
pub async fn run<M: MigratorTrait>(db: &DatabaseConnection, service: &str) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return M::up(db, None).await;
    }
    let key = LOCK_KEY;
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
        "waiting for the migration lock: another server is migrating the database"
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
    fn the_key_is_the_fnv1a_hash_of_its_name() {
        // FNV-1a 64 of "assurance-migrations", as an i64: fixed across releases.
        assert_eq!(LOCK_KEY, fnv1a(b"assurance-migrations"));
        assert_ne!(LOCK_KEY, fnv1a(b"assurance-migration"));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325_u64 as i64);
    }
}
