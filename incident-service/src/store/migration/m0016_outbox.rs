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
