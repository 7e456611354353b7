//! Migration 0003: indicators of compromise.

use sea_orm_migration::{prelude::*, schema::*};

use super::Incidents;

#[derive(DeriveIden)]
pub(super) enum IndicatorsTable {
    #[sea_orm(iden = "indicators")]
    Table,
    Id,
    IncidentId,
    Kind,
    Value,
    Tlp,
    Description,
    CreateTime,
}

pub struct Indicators;

impl MigrationName for Indicators {
    fn name(&self) -> &str {
        "m0003_indicators"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Indicators {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(IndicatorsTable::Table)
                .col(uuid(IndicatorsTable::Id).primary_key())
                .col(uuid(IndicatorsTable::IncidentId))
                .col(integer(IndicatorsTable::Kind))
                .col(text(IndicatorsTable::Value))
                .col(integer(IndicatorsTable::Tlp))
                .col(text(IndicatorsTable::Description))
                .col(big_integer(IndicatorsTable::CreateTime))
                .foreign_key(
                    ForeignKey::create()
                        .from(IndicatorsTable::Table, IndicatorsTable::IncidentId)
                        .to(Incidents::Table, Incidents::Id),
                )
                .to_owned(),
        )
        .await?;
        // One indicator once per incident; sweeps look up by type and value.
        m.create_index(
            Index::create()
                .name("indicators_once_per_incident")
                .table(IndicatorsTable::Table)
                .col(IndicatorsTable::IncidentId)
                .col(IndicatorsTable::Kind)
                .col(IndicatorsTable::Value)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("indicators_sweep")
                .table(IndicatorsTable::Table)
                .col(IndicatorsTable::Kind)
                .col(IndicatorsTable::Value)
                .col(IndicatorsTable::Id)
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
