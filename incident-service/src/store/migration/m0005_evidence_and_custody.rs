//! Migration 0005: evidence and its custody log.

use sea_orm_migration::{prelude::*, schema::*};

use super::Incidents;

#[derive(DeriveIden)]
pub(super) enum Evidence {
    Table,
    Id,
    IncidentId,
    Description,
    Hash,
    Location,
    Collector,
    Custodian,
    CollectTime,
    CustodySeq,
    CreateTime,
}

#[derive(DeriveIden)]
pub(super) enum CustodyEntries {
    Table,
    EvidenceId,
    Seq,
    IncidentId,
    FromCustodian,
    ToCustodian,
    Purpose,
    Location,
    TransferTime,
}

pub struct EvidenceAndCustody;

impl MigrationName for EvidenceAndCustody {
    fn name(&self) -> &str {
        "m0005_evidence_and_custody"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for EvidenceAndCustody {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Evidence::Table)
                .col(uuid(Evidence::Id).primary_key())
                .col(uuid(Evidence::IncidentId))
                .col(text(Evidence::Description))
                .col(string(Evidence::Hash))
                .col(text(Evidence::Location))
                .col(string(Evidence::Collector))
                .col(string(Evidence::Custodian))
                .col(big_integer(Evidence::CollectTime))
                .col(big_integer(Evidence::CustodySeq))
                .col(big_integer(Evidence::CreateTime))
                .foreign_key(
                    ForeignKey::create()
                        .from(Evidence::Table, Evidence::IncidentId)
                        .to(Incidents::Table, Incidents::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("evidence_by_incident")
                .table(Evidence::Table)
                .col(Evidence::IncidentId)
                .col(Evidence::Id)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(CustodyEntries::Table)
                .col(uuid(CustodyEntries::EvidenceId))
                .col(big_integer(CustodyEntries::Seq))
                .col(uuid(CustodyEntries::IncidentId))
                .col(string(CustodyEntries::FromCustodian))
                .col(string(CustodyEntries::ToCustodian))
                .col(text(CustodyEntries::Purpose))
                .col(text(CustodyEntries::Location))
                .col(big_integer(CustodyEntries::TransferTime))
                .primary_key(
                    Index::create()
                        .col(CustodyEntries::EvidenceId)
                        .col(CustodyEntries::Seq),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(CustodyEntries::Table, CustodyEntries::EvidenceId)
                        .to(Evidence::Table, Evidence::Id),
                )
                .to_owned(),
        )
        .await
    }
}
