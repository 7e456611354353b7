//! Schema migrations of incident-service, run at start-up; identical on SQLite and PostgreSQL.
//! One file per migration, in order; a migration that has landed never changes what it
//! executes (a change is a new migration).

mod m0001_initial;
mod m0002_review_and_outbox;
mod m0003_indicators;
mod m0004_roles;
mod m0005_evidence_and_custody;
mod m0006_communications;
mod m0007_tasks;
mod m0008_duration_indexes;
mod m0009_metrics_index;
mod m0010_audit_events;
mod m0011_scoped_request_ids;
mod m0012_notification_version;
mod m0013_risk_links;
mod m0014_summary_indexes;
mod m0015_follow_ups;
mod m0016_outbox;
mod m0017_need_to_know_timeline;

use sea_orm_migration::prelude::*;

use m0001_initial::Initial;
use m0002_review_and_outbox::ReviewAndOutbox;
use m0003_indicators::Indicators;
use m0004_roles::Roles;
use m0005_evidence_and_custody::EvidenceAndCustody;
use m0006_communications::Communications;
use m0007_tasks::Tasks;
pub use m0008_duration_indexes::DURATIONS;
use m0008_duration_indexes::DurationIndexes;
use m0009_metrics_index::MetricsIndex;
use m0010_audit_events::AuditEvents;
use m0011_scoped_request_ids::ScopedRequestIds;
use m0012_notification_version::NotificationVersion;
use m0013_risk_links::RiskLinks;
use m0014_summary_indexes::SummaryIndexes;
use m0015_follow_ups::FollowUpItems;
use m0016_outbox::Outbox;
use m0017_need_to_know_timeline::NeedToKnowTimeline;

pub struct Migrator;

impl MigratorTrait for Migrator {
    /// A table of its own, so services can share a database without mixing their histories.
    fn migration_table_name() -> sea_orm::DynIden {
        "incident_migrations".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Initial),
            Box::new(ReviewAndOutbox),
            Box::new(Indicators),
            Box::new(Roles),
            Box::new(EvidenceAndCustody),
            Box::new(Communications),
            Box::new(Tasks),
            Box::new(DurationIndexes),
            Box::new(MetricsIndex),
            Box::new(AuditEvents),
            Box::new(ScopedRequestIds),
            Box::new(NotificationVersion),
            Box::new(RiskLinks),
            Box::new(SummaryIndexes),
            Box::new(FollowUpItems),
            Box::new(Outbox),
            Box::new(NeedToKnowTimeline),
        ]
    }
}

/// The incidents table, which most migrations refer to.
#[derive(DeriveIden)]
pub(super) enum Incidents {
    Table,
    Id,
    Title,
    Summary,
    IncidentType,
    Classification,
    Severity,
    SeverityOverridden,
    FunctionalImpact,
    InformationImpacts,
    Recoverability,
    CustomerDataAffected,
    AffectedServices,
    DetectionSource,
    Phase,
    OccurTime,
    DetectTime,
    DeclareTime,
    ContainTime,
    EradicateTime,
    RecoverTime,
    PostIncidentTime,
    CloseTime,
    Resolution,
    ReviewComplete,
    TimelineSeq,
    Version,
    CreateTime,
    UpdateTime,
}
