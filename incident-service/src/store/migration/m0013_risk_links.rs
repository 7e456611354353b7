//! Migration 0013: an incident's links to risks of the register (`risks/{id}`) with their
//! relation (identified by the incident, realized by it, related). Existing incidents have
//! none.

use sea_orm_migration::{prelude::*, schema::*};

use super::Incidents;

#[derive(DeriveIden)]
enum IncidentRiskLinks {
    Table,
    IncidentId,
    RiskId,
    Relation,
    Position,
}

pub struct RiskLinks;

impl MigrationName for RiskLinks {
    fn name(&self) -> &str {
        "m0013_risk_links"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for RiskLinks {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(IncidentRiskLinks::Table)
                .col(uuid(IncidentRiskLinks::IncidentId))
                .col(string(IncidentRiskLinks::RiskId))
                .col(integer(IncidentRiskLinks::Relation))
                .col(integer(IncidentRiskLinks::Position))
                .primary_key(
                    Index::create()
                        .col(IncidentRiskLinks::IncidentId)
                        .col(IncidentRiskLinks::RiskId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(IncidentRiskLinks::Table, IncidentRiskLinks::IncidentId)
                        .to(Incidents::Table, Incidents::Id),
                )
                .to_owned(),
        )
        .await?;
        // "Which incidents touched this risk?"
        m.create_index(
            Index::create()
                .name("incident_risk_links_by_risk")
                .table(IncidentRiskLinks::Table)
                .col(IncidentRiskLinks::RiskId)
                .to_owned(),
        )
        .await
    }
}
