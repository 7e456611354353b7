//! The gauges a server reads from its databases: connection pools (read on each scrape, from
//! memory) and outboxes (by a cheap periodic query, never per call).

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use sea_orm::{ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QuerySelect};

use super::{OUTBOX_EVENTS, OUTBOX_OLDEST, OUTBOX_REFRESH_ERRORS, POOL_IDLE, POOL_MAX, POOL_SIZE};
use crate::{
    outbox::{State, outbox_event},
    serve::Shutdown,
    time::now_micros,
};

/// How often the outbox gauges are refreshed.
pub const OUTBOX_REFRESH: Duration = Duration::from_secs(10);

/// What a server's `/metrics` reads beyond its calls: its databases' pools and its outboxes.
#[derive(Clone, Default)]
pub struct Sources {
    databases: Vec<(&'static str, DatabaseConnection)>,
    outboxes: Vec<(&'static str, DatabaseConnection)>,
    /// Sources set once the server has opened its databases (see [`Sources::later`]).
    later: Option<Arc<OnceLock<Sources>>>,
}

impl Sources {
    pub fn new() -> Sources {
        Sources::default()
    }

    /// Adds the pool of the database `name` (e.g. `risk-service`).
    pub fn database(mut self, name: &'static str, connection: DatabaseConnection) -> Sources {
        self.databases.push((name, connection));
        self
    }

    /// Adds the outbox of `service`, in `connection`'s database.
    pub fn outbox(mut self, service: &'static str, connection: DatabaseConnection) -> Sources {
        self.outboxes.push((service, connection));
        self
    }

    /// The sources `slot` will hold: a server's probes (and `/metrics`) answer before it has
    /// opened its databases.
    pub fn later(slot: Arc<OnceLock<Sources>>) -> Sources {
        Sources {
            later: Some(slot),
            ..Sources::default()
        }
    }

    /// Sets the pool gauges (cheap: the pools' own counters).
    pub fn refresh_pools(&self) {
        super::init();
        if let Some(later) = self.later.as_ref().and_then(|slot| slot.get()) {
            later.refresh_pools();
        }
        for (name, db) in &self.databases {
            let Some((size, idle, max)) = pool_stats(db) else {
                continue;
            };
            metrics::gauge!(POOL_SIZE, "database" => *name).set(f64::from(size));
            metrics::gauge!(POOL_IDLE, "database" => *name).set(idle as f64);
            metrics::gauge!(POOL_MAX, "database" => *name).set(f64::from(max));
        }
    }

    /// Refreshes the outbox gauges now and every [`OUTBOX_REFRESH`] until `shutdown`.
    pub fn spawn_outbox_refresh(&self, shutdown: Shutdown) {
        if self.outboxes.is_empty() {
            return;
        }
        super::init();
        let outboxes = self.outboxes.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(OUTBOX_REFRESH);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.wait() => return,
                }
                for (service, db) in &outboxes {
                    if let Err(e) = refresh_outbox(service, db).await {
                        metrics::counter!(OUTBOX_REFRESH_ERRORS, "service" => *service)
                            .increment(1);
                        tracing::debug!(service, error = %e, "metrics: cannot count the outbox");
                    }
                }
            }
        });
    }
}

/// (open, idle, max) connections of `db`'s pool.
fn pool_stats(db: &DatabaseConnection) -> Option<(u32, usize, u32)> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            Some((
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            ))
        }
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            Some((
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            ))
        }
        _ => None,
    }
}

/// Counts `service`'s pending and dead events (the `outbox_by_state` index answers both) and
/// the age of its oldest pending one.
async fn refresh_outbox(service: &'static str, db: &DatabaseConnection) -> Result<(), String> {
    use outbox_event::Column as C;
    let mut pending = 0i64;
    let mut dead = 0i64;
    let rows: Vec<(i32, i64, Option<i64>)> = outbox_event::Entity::find()
        .select_only()
        .column(C::State)
        .column_as(C::Seq.count(), "n")
        .column_as(C::CreateTime.min(), "oldest")
        .filter(C::Service.eq(service))
        .filter(C::State.is_in([State::Pending as i32, State::Dead as i32]))
        .group_by(C::State)
        .into_tuple()
        .all(db)
        .await
        .map_err(|e| e.to_string())?;
    let mut oldest = None;
    for (state, n, first) in rows {
        if state == State::Pending as i32 {
            pending = n;
            oldest = first;
        } else if state == State::Dead as i32 {
            dead = n;
        }
    }
    metrics::gauge!(OUTBOX_EVENTS, "service" => service, "state" => "pending").set(pending as f64);
    metrics::gauge!(OUTBOX_EVENTS, "service" => service, "state" => "dead").set(dead as f64);
    let age = oldest.map_or(0.0, |t| (now_micros() - t).max(0) as f64 / 1e6);
    metrics::gauge!(OUTBOX_OLDEST, "service" => service).set(age);
    Ok(())
}
