//! Migration 0010: the shared audit trail table.

use sea_orm_migration::prelude::*;

pub struct AuditEvents;

impl MigrationName for AuditEvents {
    fn name(&self) -> &str {
        "m0010_audit_events"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AuditEvents {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let (table, index) = assurance_runtime::audit::create_table();
        m.create_table(table).await?;
        m.create_index(index).await
    }
}
