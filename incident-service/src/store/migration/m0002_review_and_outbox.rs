//! Migration 0002: post-incident reviews and the outbox of events for other services.

use sea_orm_migration::{prelude::*, schema::*};

use super::Incidents;

#[derive(DeriveIden)]
pub(super) enum PostIncidentReviews {
    Table,
    IncidentId,
    RootCause,
    WentWell,
    WentPoorly,
    LessonsLearned,
    Participants,
    FollowUps,
    IdentifiedRisks,
    ReviewTime,
}

#[derive(DeriveIden)]
pub(super) enum OutboxEvents {
    Table,
    Id,
    Kind,
    Aggregate,
    Payload,
    CreateTime,
    DeliveredTime,
    Attempts,
    LastError,
}

pub struct ReviewAndOutbox;

impl MigrationName for ReviewAndOutbox {
    fn name(&self) -> &str {
        "m0002_review_and_outbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ReviewAndOutbox {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(PostIncidentReviews::Table)
                .col(uuid(PostIncidentReviews::IncidentId).primary_key())
                .col(text(PostIncidentReviews::RootCause))
                .col(text(PostIncidentReviews::WentWell))
                .col(text(PostIncidentReviews::WentPoorly))
                .col(text(PostIncidentReviews::LessonsLearned))
                .col(text(PostIncidentReviews::Participants))
                .col(text(PostIncidentReviews::FollowUps))
                .col(text(PostIncidentReviews::IdentifiedRisks))
                .col(big_integer(PostIncidentReviews::ReviewTime))
                .foreign_key(
                    ForeignKey::create()
                        .from(PostIncidentReviews::Table, PostIncidentReviews::IncidentId)
                        .to(Incidents::Table, Incidents::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(OutboxEvents::Table)
                .col(uuid(OutboxEvents::Id).primary_key())
                .col(string(OutboxEvents::Kind))
                .col(string(OutboxEvents::Aggregate))
                .col(text(OutboxEvents::Payload))
                .col(big_integer(OutboxEvents::CreateTime))
                .col(big_integer_null(OutboxEvents::DeliveredTime))
                .col(integer(OutboxEvents::Attempts))
                .col(text(OutboxEvents::LastError))
                .to_owned(),
        )
        .await?;
        // The relay scans pending events oldest first.
        m.create_index(
            Index::create()
                .name("outbox_events_pending")
                .table(OutboxEvents::Table)
                .col(OutboxEvents::DeliveredTime)
                .col(OutboxEvents::Id)
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
