//! Migration 0012: a version (the etag) on notifications, so approving, marking sent and
//! editing a draft can be made conditional on the version the client saw. Existing rows start
//! at version 1 (etags start at 1).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Version,
}

pub struct NotificationVersion;

impl MigrationName for NotificationVersion {
    fn name(&self) -> &str {
        "m0012_notification_version"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for NotificationVersion {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Notifications::Table)
                .add_column(big_integer(Notifications::Version).default(1))
                .to_owned(),
        )
        .await
    }
}
