//! Migration 0001: the first schema — incidents, their affected services, and the timeline.

use sea_orm_migration::{prelude::*, schema::*};

use super::Incidents;

#[derive(DeriveIden)]
pub(super) enum IncidentServices {
    Table,
    IncidentId,
    ServiceId,
}

#[derive(DeriveIden)]
pub(super) enum TimelineEvents {
    Table,
    IncidentId,
    Seq,
    Kind,
    Actor,
    Summary,
    Phase,
    EventTime,
}

pub struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Incidents::Table)
                .col(uuid(Incidents::Id).primary_key())
                .col(string(Incidents::Title))
                .col(text(Incidents::Summary))
                .col(string(Incidents::IncidentType))
                .col(integer(Incidents::Classification))
                .col(integer(Incidents::Severity))
                .col(boolean(Incidents::SeverityOverridden))
                .col(integer(Incidents::FunctionalImpact))
                .col(string(Incidents::InformationImpacts))
                .col(integer(Incidents::Recoverability))
                .col(boolean(Incidents::CustomerDataAffected))
                .col(text(Incidents::AffectedServices))
                .col(string(Incidents::DetectionSource))
                .col(integer(Incidents::Phase))
                .col(big_integer_null(Incidents::OccurTime))
                .col(big_integer(Incidents::DetectTime))
                .col(big_integer(Incidents::DeclareTime))
                .col(big_integer_null(Incidents::ContainTime))
                .col(big_integer_null(Incidents::EradicateTime))
                .col(big_integer_null(Incidents::RecoverTime))
                .col(big_integer_null(Incidents::PostIncidentTime))
                .col(big_integer_null(Incidents::CloseTime))
                .col(text(Incidents::Resolution))
                .col(boolean(Incidents::ReviewComplete))
                .col(big_integer(Incidents::TimelineSeq))
                .col(big_integer(Incidents::Version))
                .col(big_integer(Incidents::CreateTime))
                .col(big_integer(Incidents::UpdateTime))
                .to_owned(),
        )
        .await?;
        for (name, cols) in [
            (
                "incidents_by_declare_time",
                &["declare_time", "id", "phase", "severity"][..],
            ),
            ("incidents_by_update_time", &["update_time", "id"][..]),
            ("incidents_by_phase", &["phase", "declare_time", "id"][..]),
        ] {
            let mut idx = Index::create();
            idx.name(name).table(Incidents::Table);
            for c in cols {
                idx.col(Alias::new(*c));
            }
            m.create_index(idx.to_owned()).await?;
        }
        m.create_table(
            Table::create()
                .table(IncidentServices::Table)
                .col(uuid(IncidentServices::IncidentId))
                .col(string(IncidentServices::ServiceId))
                .primary_key(
                    Index::create()
                        .col(IncidentServices::IncidentId)
                        .col(IncidentServices::ServiceId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(IncidentServices::Table, IncidentServices::IncidentId)
                        .to(Incidents::Table, Incidents::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("incident_services_by_service")
                .table(IncidentServices::Table)
                .col(IncidentServices::ServiceId)
                .col(IncidentServices::IncidentId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(TimelineEvents::Table)
                .col(uuid(TimelineEvents::IncidentId))
                .col(big_integer(TimelineEvents::Seq))
                .col(integer(TimelineEvents::Kind))
                .col(string(TimelineEvents::Actor))
                .col(text(TimelineEvents::Summary))
                .col(integer(TimelineEvents::Phase))
                .col(big_integer(TimelineEvents::EventTime))
                .primary_key(
                    Index::create()
                        .col(TimelineEvents::IncidentId)
                        .col(TimelineEvents::Seq),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(TimelineEvents::Table, TimelineEvents::IncidentId)
                        .to(Incidents::Table, Incidents::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(assurance_runtime::idempotency::create_table())
            .await?;
        Ok(())
    }
}
