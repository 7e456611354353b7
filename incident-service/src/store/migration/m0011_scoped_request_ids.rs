//! Migration 0011: request ids are per principal (AIP-155). Records written before carry the
//! bare client id; each is given the principal its audit event names
//! (`assurance_runtime::idempotency::scope_legacy_records`).

use sea_orm_migration::prelude::*;

pub struct ScopedRequestIds;

impl MigrationName for ScopedRequestIds {
    fn name(&self) -> &str {
        "m0011_scoped_request_ids"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ScopedRequestIds {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let scoped = assurance_runtime::idempotency::scope_legacy_records(
            m.get_connection(),
            crate::store::SERVICE,
        )
        .await?;
        tracing::info!(scoped, "request records scoped to their principals");
        Ok(())
    }
}
