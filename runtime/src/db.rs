//! Database connection: SQLite by default (WAL, `synchronous=NORMAL`, busy timeout, foreign
//! keys, IMMEDIATE write transactions), PostgreSQL when the URL says so.

use std::{path::Path, time::Duration};

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};

/// How long a SQLite writer waits for the lock before giving up with `UNAVAILABLE`.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes of the database file SQLite reads through a memory map.
const SQLITE_MMAP_SIZE: &str = "1073741824";

/// Page cache of each connection, in KiB (negative means KiB to SQLite).
const SQLITE_CACHE_KIB: &str = "-65536";
/// How often the background checkpointer copies the WAL back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// How a SQLite database is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteReads {
    /// Hot rows read again and again (the services): a 1 GiB memory map and a 64 MiB page
    /// cache per connection.
    Cached,
    /// Large blobs streamed once (the gateway's report exports and snapshots): no memory map
    /// and a 2 MiB page cache per connection, so streaming a 100 MB export does not grow the
    /// resident set by the file's size; the operating system's page cache still serves it.
    Streamed,
}

/// Opens a pool on `url` (`sqlite://path/to/file.db` or `postgres://…`) of `max_connections`.
/// A SQLite file and its folder are created when missing, readable by the owner only (`0600`
/// in a `0700` folder; SQLite gives its `-wal` and `-shm` files the database file's mode).
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    connect_for(url, max_connections, SqliteReads::Cached).await
}

/// [`connect`], with SQLite tuned for `reads`.
pub async fn connect_for(
    url: &str,
    max_connections: u32,
    reads: SqliteReads,
) -> Result<DatabaseConnection, DbErr> {
    let (mmap_size, cache_kib) = match reads {
        SqliteReads::Cached => (SQLITE_MMAP_SIZE, SQLITE_CACHE_KIB),
        SqliteReads::Streamed => ("0", "-2048"),
    };
    let mut opts = ConnectOptions::new(url.to_string());
    opts.max_connections(max_connections.max(1))
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        // Checking every connection before use costs a round trip per query; check only
        // connections that idled long enough to have been dropped by the server.
        .test_before_acquire(false)
        .sqlx_logging(false);
    if is_sqlite(url) {
        if let Some(path) = sqlite_path(url) {
            create_private_file(path).map_err(DbErr::Custom)?;
        }
        opts.map_sqlx_sqlite_opts(move |o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // NORMAL in WAL mode: durable across process crashes; never OFF.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
                // Read pages through a memory map instead of a pread and copy each.
                .pragma("mmap_size", mmap_size)
                .pragma("cache_size", cache_kib)
                // Checkpoints run in the background (`spawn_checkpointer`), not inside the
                // commit of whichever write crosses the threshold.
                .pragma("wal_autocheckpoint", "0")
        });
    }
    let relay = relay_for(url).map_err(DbErr::Custom)?;
    if let Some(relay) = &relay {
        // Only sqlx's socket changes: host, port, user, password, database, options and
        // sslmode stay as the URL says (see `pg_relay`).
        let dir = relay.dir().to_path_buf();
        opts.map_sqlx_postgres_opts(move |o| crate::pg_relay::through_relay(o, &dir));
    }
    match (Database::connect(opts).await, relay) {
        (Ok(db), Some(relay)) => {
            // The relay serves the pool until it closes (or is dropped).
            relay.run_until(db.get_postgres_connection_pool().close_event());
            Ok(db)
        }
        (Ok(db), None) => Ok(db),
        // Say why the server could not be reached, not only that the pool timed out.
        (Err(e), Some(relay)) => Err(match relay.last_error() {
            Some(reason) => DbErr::Custom(format!("{reason} ({e})")),
            None => e,
        }),
        (Err(e), None) => Err(e),
    }
}

/// The relay of a PostgreSQL URL with a TCP host, started, unless `ASSURANCE_PG_TCP_RELAY=off`.
fn relay_for(url: &str) -> Result<Option<crate::pg_relay::PgRelay>, String> {
    use crate::pg_relay::{PgRelay, RelayMode, relay_target};
    let Some(target) = relay_target(url) else {
        return Ok(None);
    };
    match RelayMode::from_env()? {
        RelayMode::Auto => PgRelay::start(target).map(Some),
        RelayMode::Off => Ok(None),
    }
}

pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// The file behind a `sqlite:` URL, if it names one.
pub fn sqlite_path(url: &str) -> Option<&Path> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| Path::new(path))
}

/// The SQLite URL of a file, creating it when missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Begins a write transaction: IMMEDIATE on SQLite, so the write lock is taken up front and
/// concurrent writers queue on the busy timeout instead of failing to upgrade. When traces are
/// exported, the transaction is a `db.transaction` span from here to its commit or drop, with
/// its caller's file and line (see [`crate::trace_context::WriteTx`]).
#[track_caller]
pub fn begin_write(
    db: &DatabaseConnection,
) -> impl Future<Output = Result<crate::trace_context::WriteTx, DbErr>> + Send + '_ {
    let backend = db.get_database_backend();
    let span = crate::trace_context::transaction_span(backend, std::panic::Location::caller());
    async move {
        let options = TransactionOptions {
            sqlite_transaction_mode: (backend == DbBackend::Sqlite)
                .then_some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        let tx = db.begin_with_options(options).await?;
        Ok(crate::trace_context::WriteTx::new(tx, span))
    }
}

/// Checkpoints a SQLite database's WAL every second without blocking readers or writers
/// (`PASSIVE`), for as long as `alive` can be upgraded. No-op on other backends.
pub fn spawn_checkpointer(db: DatabaseConnection, alive: std::sync::Weak<()>) {
    if db.get_database_backend() != DbBackend::Sqlite {
        return;
    }
    tokio::spawn(async move {
        while alive.strong_count() > 0 {
            tokio::time::sleep(CHECKPOINT_EVERY).await;
            if let Err(e) = db
                .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
                .await
            {
                tracing::debug!(error = %e, "WAL checkpoint skipped");
            }
        }
        // The owner is gone: fold the WAL back in before the pool closes.
        let _ = db
            .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
            .await;
    });
}

/// The tail every Assurance entity module shares: no sea-orm relations (foreign keys live in
/// the migrations) and the default active-model behaviour. Call it inside the entity's module,
/// after `use sea_orm::entity::prelude::*`.
#[macro_export]
macro_rules! entity_without_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    };
}

/// A page of `select` in the order of its `id` column: at most `limit` rows after `after`.
pub async fn page_after<E: sea_orm::EntityTrait>(
    conn: &impl ConnectionTrait,
    select: sea_orm::Select<E>,
    id: E::Column,
    after: Option<impl Into<sea_orm::Value>>,
    limit: u64,
) -> Result<Vec<E::Model>, DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
    let mut select = select.order_by_asc(id);
    if let Some(after) = after {
        select = select.filter(id.gt(after));
    }
    select.limit(limit).all(conn).await
}

/// A cheap liveness query for readiness probes.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

/// The readiness check of a service over its database: ready when the database answers.
pub fn ready_check(db: DatabaseConnection) -> crate::serve::ReadyCheck {
    std::sync::Arc::new(move || {
        let db = db.clone();
        Box::pin(async move {
            ping(&db)
                .await
                .map_err(|_| "database unreachable".to_string())
        })
    })
}

/// Creates `dir` and its missing parents, readable by the owner only (`0700`); an existing
/// folder is left as it is.
pub fn create_private_dir(dir: &Path) -> Result<(), String> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// Creates the empty file `path` (and its folder, see [`create_private_dir`]) readable by the
/// owner only (`0600`) when it is missing; an existing file is left as it is.
pub fn create_private_file(path: &Path) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        create_private_dir(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

/// Query parameters whose values are hidden by [`redact_url`].
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "passwd", "pwd", "secret", "token", "key"]
        .iter()
        .any(|word| name.contains(word))
        || name == "pass"
}

/// A printable form of a URL (a database's, a service's, a JWKS's) with any password removed:
/// the password of its user information and the values of its `password=` (and other secret)
/// query parameters. Use it wherever a URL is logged or shown.
pub fn redact_url(url: &str) -> String {
    let (head, fragment) = url
        .split_once('#')
        .map_or((url, None), |(h, f)| (h, Some(f)));
    let (base, query) = head
        .split_once('?')
        .map_or((head, None), |(b, q)| (b, Some(q)));
    let mut out = match base.find("://") {
        Some(scheme_end) => {
            let rest = &base[scheme_end + 3..];
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rfind('@') {
                Some(at) => {
                    let userinfo = &authority[..at];
                    let user = match userinfo.split_once(':') {
                        Some((user, _)) => format!("{user}:***"),
                        None => userinfo.to_string(),
                    };
                    format!(
                        "{}{user}{}{path}",
                        &base[..scheme_end + 3],
                        &authority[at..]
                    )
                }
                None => base.to_string(),
            }
        }
        None => base.to_string(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_secret_param(name) => format!("{name}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://./data/risk.db?mode=rwc"),
            Some(Path::new("./data/risk.db"))
        );
        assert_eq!(sqlite_path("sqlite:risk.db"), Some(Path::new("risk.db")));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/risk"),
            "postgres://app:***@db:5432/risk"
        );
        assert_eq!(redact_url("sqlite://data/risk.db"), "sqlite://data/risk.db");
        for (url, shown) in [
            (
                "postgres://app@db/risk?sslmode=require&password=s3cret",
                "postgres://app@db/risk?sslmode=require&password=***",
            ),
            (
                "postgres://db/risk?user=app&PASSWORD=s3cret&sslpassword=k3y",
                "postgres://db/risk?user=app&PASSWORD=***&sslpassword=***",
            ),
            (
                "postgres://a:p%40ss@db/risk?options=x@y",
                "postgres://a:***@db/risk?options=x@y",
            ),
            (
                "https://u:tok@idp.example/keys#frag",
                "https://u:***@idp.example/keys#frag",
            ),
            (
                "sqlite://./data/risk.db?mode=rwc",
                "sqlite://./data/risk.db?mode=rwc",
            ),
            ("http://127.0.0.1:50061", "http://127.0.0.1:50061"),
        ] {
            assert_eq!(redact_url(url), shown);
            assert!(!redact_url(url).contains("s3cret"));
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn sqlite_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        let root = std::env::temp_dir().join(format!("assurance-db-mode-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("data");
        let file = dir.join("risk.db");
        let conn = connect(&sqlite_url(&file), 1).await.expect("connect");
        conn.execute_unprepared("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)")
            .await
            .expect("write");
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&file), 0o600);
        let wal = dir.join("risk.db-wal");
        if wal.exists() {
            assert_eq!(mode(&wal), 0o600);
        }
        conn.close().await.ok();
        let _ = std::fs::remove_dir_all(&root);
    }
}
