//! Migration 0004: incident roles.

use sea_orm_migration::{prelude::*, schema::*};

use super::Incidents;

#[derive(DeriveIden)]
pub(super) enum IncidentRoles {
    Table,
    IncidentId,
    Kind,
    Person,
    Team,
    AssignTime,
}

pub struct Roles;

impl MigrationName for Roles {
    fn name(&self) -> &str {
        "m0004_roles"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Roles {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(IncidentRoles::Table)
                .col(uuid(IncidentRoles::IncidentId))
                .col(integer(IncidentRoles::Kind))
                .col(string(IncidentRoles::Person))
                .col(string(IncidentRoles::Team))
                .col(big_integer(IncidentRoles::AssignTime))
                .primary_key(
                    Index::create()
                        .col(IncidentRoles::IncidentId)
                        .col(IncidentRoles::Kind),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(IncidentRoles::Table, IncidentRoles::IncidentId)
                        .to(Incidents::Table, Incidents::Id),
                )
                .to_owned(),
        )
        .await
    }
}
