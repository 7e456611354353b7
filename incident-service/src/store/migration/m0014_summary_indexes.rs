//! Migration 0014: the covering indexes of the posture summary (`SummarizeIncidents`): its
//! statements read the candidate incidents of each figure family from an index alone, in the
//! range they filter on, and never touch the rows (but the titles of the listed incidents).

use sea_orm_migration::prelude::*;

use super::Incidents;

pub struct SummaryIndexes;

impl MigrationName for SummaryIndexes {
    fn name(&self) -> &str {
        "m0014_summary_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SummaryIndexes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // The KPIs: the incidents declared in a period, with the times of their durations.
        m.create_index(
            Index::create()
                .name("incidents_summary_kpis")
                .table(Incidents::Table)
                .col(Incidents::DeclareTime)
                .col(Incidents::Classification)
                .col(Incidents::Id)
                .col(Incidents::OccurTime)
                .col(Incidents::DetectTime)
                .col(Incidents::ContainTime)
                .col(Incidents::RecoverTime)
                .to_owned(),
        )
        .await?;
        // Open incidents (a phase other than CLOSED) by phase and severity, and their order
        // of precedence (most severe, then the earlier declared).
        m.create_index(
            Index::create()
                .name("incidents_summary_open")
                .table(Incidents::Table)
                .col(Incidents::Phase)
                .col(Incidents::Classification)
                .col(Incidents::Severity)
                .col(Incidents::DeclareTime)
                .col(Incidents::Id)
                .to_owned(),
        )
        .await
    }
}
