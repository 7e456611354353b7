//! Migration 0007: response tasks.

use sea_orm_migration::{prelude::*, schema::*};

use super::Incidents;

#[derive(DeriveIden)]
pub(super) enum TasksTable {
    #[sea_orm(iden = "tasks")]
    Table,
    Id,
    IncidentId,
    Phase,
    OwnerTeam,
    Title,
    Description,
    Assignee,
    Status,
    FromTemplate,
    Version,
    CreateTime,
    UpdateTime,
}

pub struct Tasks;

impl MigrationName for Tasks {
    fn name(&self) -> &str {
        "m0007_tasks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Tasks {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(TasksTable::Table)
                .col(uuid(TasksTable::Id).primary_key())
                .col(uuid(TasksTable::IncidentId))
                .col(integer(TasksTable::Phase))
                .col(integer(TasksTable::OwnerTeam))
                .col(string(TasksTable::Title))
                .col(text(TasksTable::Description))
                .col(string(TasksTable::Assignee))
                .col(integer(TasksTable::Status))
                .col(boolean(TasksTable::FromTemplate))
                .col(big_integer(TasksTable::Version))
                .col(big_integer(TasksTable::CreateTime))
                .col(big_integer(TasksTable::UpdateTime))
                .foreign_key(
                    ForeignKey::create()
                        .from(TasksTable::Table, TasksTable::IncidentId)
                        .to(Incidents::Table, Incidents::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("tasks_by_incident")
                .table(TasksTable::Table)
                .col(TasksTable::IncidentId)
                .col(TasksTable::Phase)
                .col(TasksTable::Id)
                .to_owned(),
        )
        .await
    }
}
