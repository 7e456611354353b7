//! Migration 0016: the shared transactional outbox (`outbox`, with delivery state, leases and
//! dead letters) replaces `outbox_events`, whose events move over in their order (delivered
//! ones stay delivered).

use sea_orm_migration::prelude::*;

pub struct Outbox;

impl MigrationName for Outbox {
    fn name(&self) -> &str {
        "m0016_outbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Outbox {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let (table, indexes) = assurance_runtime::outbox::create_table();
        m.create_table(table).await?;
        for index in indexes {
            m.create_index(index).await?;
        }
        // UUIDv7 ids order the old events as they were written. State numbers: 1 pending,
        // 2 delivered.
        m.get_connection()
            .execute_unprepared(
                "INSERT INTO outbox (id, service, kind, aggregate, payload, create_time, state, \
                   attempts, next_attempt_time, lease_owner, lease_until, last_error, \
                   deliver_time, dead_time) \
                 SELECT id, 'incident-service', kind, aggregate, payload, create_time, \
                   CASE WHEN delivered_time IS NULL THEN 1 ELSE 2 END, attempts, 0, '', 0, \
                   last_error, delivered_time, NULL \
                 FROM outbox_events ORDER BY id",
            )
            .await?;
        m.drop_table(Table::drop().table("outbox_events").to_owned())
            .await
    }
}

#[cfg(test)]
mod tests {
    use assurance_runtime::outbox::{State, outbox_event};
    use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};
    use sea_orm_migration::MigratorTrait;

    use crate::store::migration::Migrator;

    /// The events of the old table move over in their order, each keeping its id (the
    /// receivers' idempotency key), payload, attempts and delivery.
    #[tokio::test]
    async fn old_outbox_events_move_over_in_order() {
        let db = assurance_runtime::db::connect("sqlite::memory:", 1)
            .await
            .expect("database");
        Migrator::up(&db, Some(15)).await.expect("up to 0015");
        let (first, second) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        for (id, delivered) in [(second, None), (first, Some(7i64))] {
            db.execute_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Sqlite,
                "INSERT INTO outbox_events (id, kind, aggregate, payload, create_time, \
                   delivered_time, attempts, last_error) \
                 VALUES (?, 'incident.identified_risk', 'incidents/x', '{}', 5, ?, 2, 'busy')",
                [id.into(), delivered.into()],
            ))
            .await
            .expect("old event");
        }
        Migrator::up(&db, None).await.expect("up");
        let rows = outbox_event::Entity::find()
            .order_by_asc(outbox_event::Column::Seq)
            .all(&db)
            .await
            .expect("events");
        let ids: Vec<_> = rows.iter().map(|r| r.id).collect();
        assert_eq!(ids, [first, second]);
        assert_eq!(rows[0].state, State::Delivered as i32);
        assert_eq!(rows[0].deliver_time, Some(7));
        assert_eq!(rows[1].state, State::Pending as i32);
        assert!(rows.iter().all(|r| r.service == "incident-service"
            && r.attempts == 2
            && r.last_error == "busy"
            && r.aggregate == "incidents/x"));
    }
}
