//! Schema migrations of incident-service, run at start-up; identical on SQLite and PostgreSQL.

use sea_orm_migration::{prelude::*, schema::*};

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
        ]
    }
}

#[derive(DeriveIden)]
enum Incidents {
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

#[derive(DeriveIden)]
enum IncidentServices {
    Table,
    IncidentId,
    ServiceId,
}

#[derive(DeriveIden)]
enum TimelineEvents {
    Table,
    IncidentId,
    Seq,
    Kind,
    Actor,
    Summary,
    Phase,
    EventTime,
}

struct Initial;

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

#[derive(DeriveIden)]
enum PostIncidentReviews {
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
enum OutboxEvents {
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

struct ReviewAndOutbox;

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

#[derive(DeriveIden)]
enum IndicatorsTable {
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

struct Indicators;

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

#[derive(DeriveIden)]
enum IncidentRoles {
    Table,
    IncidentId,
    Kind,
    Person,
    Team,
    AssignTime,
}

struct Roles;

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

#[derive(DeriveIden)]
enum Evidence {
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
enum CustodyEntries {
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

struct EvidenceAndCustody;

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

#[derive(DeriveIden)]
enum Notifications {
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

struct Communications;

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

#[derive(DeriveIden)]
enum TasksTable {
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

struct Tasks;

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

/// The durations of the metrics, each `(end, start)`.
pub const DURATIONS: [(&str, &str); 5] = [
    ("detect_time", "occur_time"),
    ("declare_time", "detect_time"),
    ("contain_time", "declare_time"),
    ("recover_time", "declare_time"),
    ("close_time", "declare_time"),
];

struct DurationIndexes;

impl MigrationName for DurationIndexes {
    fn name(&self) -> &str {
        "m0008_duration_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for DurationIndexes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Expression indexes (same SQL on SQLite and PostgreSQL): a percentile walks the index
        // to its rank instead of sorting every duration.
        for (end, start) in DURATIONS {
            m.get_connection()
                .execute_unprepared(&format!(
                    "CREATE INDEX incidents_{end}_after_{start} ON incidents (({end} - {start}))"
                ))
                .await?;
        }
        Ok(())
    }
}

struct MetricsIndex;

impl MigrationName for MetricsIndex {
    fn name(&self) -> &str {
        "m0009_metrics_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for MetricsIndex {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Covers the metrics' aggregate pass, in its GROUP BY order: the pass reads this narrow
        // index instead of whole rows and needs no sort (30 ms instead of 80 ms at 50k on SQLite).
        m.create_index(
            Index::create()
                .name("incidents_metrics")
                .table(Incidents::Table)
                .col(Incidents::Phase)
                .col(Incidents::Severity)
                .col(Incidents::DeclareTime)
                .col(Incidents::OccurTime)
                .col(Incidents::DetectTime)
                .col(Incidents::ContainTime)
                .col(Incidents::RecoverTime)
                .col(Incidents::CloseTime)
                .to_owned(),
        )
        .await
    }
}

struct AuditEvents;

impl MigrationName for AuditEvents {
    fn name(&self) -> &str {
        "m0010_audit_events"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AuditEvents {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let (table, index) = assurance_runtime::audit::create_table();
        m.create_table(table).await?;
        m.create_index(index).await
    }
}
