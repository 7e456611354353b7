//! Migration 0006: stakeholder notifications.

use sea_orm_migration::{prelude::*, schema::*};

use super::Incidents;

#[derive(DeriveIden)]
pub(super) enum Notifications {
    Table,
    Id,
    IncidentId,
    Audience,
    Subject,
    Body,
    Status,
    Author,
    Approver,
    DeadlineTime,
    ApproveTime,
    SendTime,
    CreateTime,
}

pub struct Communications;

impl MigrationName for Communications {
    fn name(&self) -> &str {
        "m0006_communications"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Communications {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Notifications::Table)
                .col(uuid(Notifications::Id).primary_key())
                .col(uuid(Notifications::IncidentId))
                .col(integer(Notifications::Audience))
                .col(string(Notifications::Subject))
                .col(text(Notifications::Body))
                .col(integer(Notifications::Status))
                .col(string(Notifications::Author))
                .col(string(Notifications::Approver))
                .col(big_integer_null(Notifications::DeadlineTime))
                .col(big_integer_null(Notifications::ApproveTime))
                .col(big_integer_null(Notifications::SendTime))
                .col(big_integer(Notifications::CreateTime))
                .foreign_key(
                    ForeignKey::create()
                        .from(Notifications::Table, Notifications::IncidentId)
                        .to(Incidents::Table, Incidents::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("notifications_by_incident")
                .table(Notifications::Table)
                .col(Notifications::IncidentId)
                .col(Notifications::Id)
                .to_owned(),
        )
        .await?;
        // The overdue list: unsent notifications by deadline.
        m.create_index(
            Index::create()
                .name("notifications_by_deadline")
                .table(Notifications::Table)
                .col(Notifications::Status)
                .col(Notifications::DeadlineTime)
                .to_owned(),
        )
        .await
    }
}
