//! Migration 0015: the transactional outbox (`outbox`, shared with incident-service when they
//! share a database), for the events of risk-service's changes.

use sea_orm_migration::prelude::*;

pub struct OutboxMigration;

impl MigrationName for OutboxMigration {
    fn name(&self) -> &str {
        "m0015_outbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OutboxMigration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let (table, indexes) = assurance_runtime::outbox::create_table();
        m.create_table(table).await?;
        for index in indexes {
            m.create_index(index).await?;
        }
        Ok(())
    }
}
