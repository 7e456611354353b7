//! Schema migrations, run at start-up; identical on SQLite and PostgreSQL (foreign keys
//! inside CREATE TABLE, one change per statement).

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

impl MigratorTrait for Migrator {
    /// A table of its own, so services can share a database without mixing their histories.
    fn migration_table_name() -> sea_orm::DynIden {
        "risk_migrations".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Initial),
            Box::new(AuditEvents),
            Box::new(Governance),
            Box::new(super::migration_reviews::ReviewsMigration),
            Box::new(Exceptions),
            Box::new(Controls),
            Box::new(ScopedRequestIds),
            Box::new(super::migration_reviews::ReviewCycleVersions),
            Box::new(super::migration_contract::ContractMigration),
            Box::new(super::migration_summary::SummaryMigration),
            Box::new(super::migration_summary_versions::SummaryVersionsMigration),
            Box::new(SourceReferences),
            Box::new(ResponseEffectiveness),
            Box::new(super::migration_failures::FailuresInPostureMigration),
            Box::new(super::migration_outbox::OutboxMigration),
            Box::new(super::migration_work_items::WorkItemIndexes),
        ]
    }
}

#[derive(DeriveIden)]
enum BusinessUnits {
    Table,
    Id,
    DisplayName,
    Description,
    Owner,
    Version,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Services {
    Table,
    Id,
    BusinessUnitId,
    DisplayName,
    Description,
    Owner,
    Version,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Risks {
    Table,
    Id,
    Title,
    Description,
    ServiceId,
    BusinessUnitId,
    Category,
    Threat,
    IdentificationSource,
    SourceReference,
    Owner,
    Status,
    Labels,
    CloseReason,
    CloseTime,
    Version,
    CreateTime,
    UpdateTime,
    LatestAssessmentId,
    Impact,
    Likelihood,
    ControlDeficiency,
    Exposure,
    Score,
    Severity,
    Strategy,
    RiskLevel,
    Methodology,
    PolicyId,
    AssessmentRationale,
    Assessor,
    AssessTime,
}

#[derive(DeriveIden)]
enum RiskLabels {
    Table,
    RiskId,
    Key,
    Value,
}

#[derive(DeriveIden)]
enum Assessments {
    Table,
    Id,
    RiskId,
    Impact,
    Likelihood,
    ControlDeficiency,
    Exposure,
    Score,
    Severity,
    Strategy,
    RiskLevel,
    Methodology,
    PolicyId,
    Rationale,
    Assessor,
    AssessTime,
}

#[derive(DeriveIden)]
enum ScoringPolicies {
    Table,
    Id,
    Methodology,
    Definition,
    CreateTime,
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

pub(super) fn index(
    name: &str,
    table: impl IntoIden,
    cols: &[&'static str],
) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(table);
    for c in cols {
        idx.col(Alias::new(*c));
    }
    idx.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(BusinessUnits::Table)
                .col(string(BusinessUnits::Id).primary_key())
                .col(string(BusinessUnits::DisplayName))
                .col(text(BusinessUnits::Description))
                .col(string(BusinessUnits::Owner))
                .col(big_integer(BusinessUnits::Version))
                .col(big_integer(BusinessUnits::CreateTime))
                .col(big_integer(BusinessUnits::UpdateTime))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Services::Table)
                .col(string(Services::Id).primary_key())
                .col(string(Services::BusinessUnitId))
                .col(string(Services::DisplayName))
                .col(text(Services::Description))
                .col(string(Services::Owner))
                .col(big_integer(Services::Version))
                .col(big_integer(Services::CreateTime))
                .col(big_integer(Services::UpdateTime))
                .foreign_key(
                    ForeignKey::create()
                        .from(Services::Table, Services::BusinessUnitId)
                        .to(BusinessUnits::Table, BusinessUnits::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "services_by_business_unit",
            Services::Table,
            &["business_unit_id", "id"],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(Risks::Table)
                .col(uuid(Risks::Id).primary_key())
                .col(string(Risks::Title))
                .col(text(Risks::Description))
                .col(string(Risks::ServiceId))
                .col(string(Risks::BusinessUnitId))
                .col(string(Risks::Category))
                .col(integer(Risks::Threat))
                .col(integer(Risks::IdentificationSource))
                .col(string(Risks::SourceReference))
                .col(string(Risks::Owner))
                .col(integer(Risks::Status))
                .col(text(Risks::Labels))
                .col(text(Risks::CloseReason))
                .col(big_integer_null(Risks::CloseTime))
                .col(big_integer(Risks::Version))
                .col(big_integer(Risks::CreateTime))
                .col(big_integer(Risks::UpdateTime))
                .col(uuid_null(Risks::LatestAssessmentId))
                .col(integer(Risks::Impact))
                .col(integer(Risks::Likelihood))
                .col(integer(Risks::ControlDeficiency))
                .col(integer(Risks::Exposure))
                .col(integer(Risks::Score))
                .col(integer(Risks::Severity))
                .col(integer(Risks::Strategy))
                .col(integer(Risks::RiskLevel))
                .col(integer(Risks::Methodology))
                .col(string(Risks::PolicyId))
                .col(text(Risks::AssessmentRationale))
                .col(string(Risks::Assessor))
                .col(big_integer_null(Risks::AssessTime))
                .foreign_key(
                    ForeignKey::create()
                        .from(Risks::Table, Risks::ServiceId)
                        .to(Services::Table, Services::Id),
                )
                .to_owned(),
        )
        .await?;
        // Keyset pages in the default order, and per selective filter an index that yields rows
        // already in that order, so a page stops after `page_size` matches instead of sorting.
        // Status and severity trail each index so that the usual extra conditions are checked
        // in the index, touching only the rows returned. Low-selectivity fields (status,
        // severity alone) get no index of their own: every index costs each write.
        m.create_index(index(
            "risks_by_create_time",
            Risks::Table,
            &["create_time", "id", "status", "severity"],
        ))
        .await?;
        m.create_index(index(
            "risks_by_service",
            Risks::Table,
            &["service_id", "create_time", "id", "status", "severity"],
        ))
        .await?;
        m.create_index(index(
            "risks_by_business_unit",
            Risks::Table,
            &[
                "business_unit_id",
                "create_time",
                "id",
                "status",
                "severity",
            ],
        ))
        .await?;
        m.create_index(index(
            "risks_by_owner",
            Risks::Table,
            &["owner", "create_time", "id", "status", "severity"],
        ))
        .await?;
        m.create_index(index("risks_by_score", Risks::Table, &["score", "id"]))
            .await?;
        m.create_table(
            Table::create()
                .table(RiskLabels::Table)
                .col(uuid(RiskLabels::RiskId))
                .col(string(RiskLabels::Key))
                .col(string(RiskLabels::Value))
                .primary_key(Index::create().col(RiskLabels::RiskId).col(RiskLabels::Key))
                .foreign_key(
                    ForeignKey::create()
                        .from(RiskLabels::Table, RiskLabels::RiskId)
                        .to(Risks::Table, Risks::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "risk_labels_by_value",
            RiskLabels::Table,
            &["key", "value", "risk_id"],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(Assessments::Table)
                .col(uuid(Assessments::Id).primary_key())
                .col(uuid(Assessments::RiskId))
                .col(integer(Assessments::Impact))
                .col(integer(Assessments::Likelihood))
                .col(integer(Assessments::ControlDeficiency))
                .col(integer(Assessments::Exposure))
                .col(integer(Assessments::Score))
                .col(integer(Assessments::Severity))
                .col(integer(Assessments::Strategy))
                .col(integer(Assessments::RiskLevel))
                .col(integer(Assessments::Methodology))
                .col(string(Assessments::PolicyId))
                .col(text(Assessments::Rationale))
                .col(string(Assessments::Assessor))
                .col(big_integer(Assessments::AssessTime))
                .foreign_key(
                    ForeignKey::create()
                        .from(Assessments::Table, Assessments::RiskId)
                        .to(Risks::Table, Risks::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "assessments_by_risk",
            Assessments::Table,
            &["risk_id", "id"],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(ScoringPolicies::Table)
                .col(string(ScoringPolicies::Id).primary_key())
                .col(string(ScoringPolicies::Methodology))
                .col(text(ScoringPolicies::Definition))
                .col(big_integer(ScoringPolicies::CreateTime))
                .to_owned(),
        )
        .await?;
        m.create_table(assurance_runtime::idempotency::create_table())
            .await?;
        Ok(())
    }
}

/// Request ids are per principal (AIP-155): records written before carry the bare client id,
/// and each is given the principal its audit event names.
struct ScopedRequestIds;

impl MigrationName for ScopedRequestIds {
    fn name(&self) -> &str {
        "m0007_scoped_request_ids"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ScopedRequestIds {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let scoped = assurance_runtime::idempotency::scope_legacy_records(
            m.get_connection(),
            super::SERVICE,
        )
        .await?;
        tracing::info!(scoped, "request records scoped to their principals");
        Ok(())
    }
}

struct AuditEvents;

impl MigrationName for AuditEvents {
    fn name(&self) -> &str {
        "m0002_audit_events"
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

struct Governance;

impl MigrationName for Governance {
    fn name(&self) -> &str {
        "m0003_governance"
    }
}

pub(super) fn a(name: &'static str) -> Alias {
    Alias::new(name)
}

#[async_trait::async_trait]
impl MigrationTrait for Governance {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(a("risk_responses"))
                .col(uuid(a("id")).primary_key())
                .col(uuid(a("risk_id")))
                .col(integer(a("decision")))
                .col(integer(a("strategy")))
                .col(integer(a("strategy_override")))
                .col(text(a("override_justification")))
                .col(text(a("rationale")))
                .col(big_integer_null(a("acceptance_expire_time")))
                .col(integer(a("state")))
                .col(integer(a("severity")))
                .col(string(a("required_role")))
                .col(string(a("proposer")))
                .col(string(a("decided_by")))
                .col(text(a("decision_comment")))
                .col(boolean(a("expired")))
                .col(big_integer(a("create_time")))
                .col(big_integer_null(a("decide_time")))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("risk_responses"), a("risk_id"))
                        .to(Risks::Table, Risks::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "risk_responses_by_risk",
            a("risk_responses"),
            &["risk_id", "id"],
        ))
        .await?;
        // The expiry job's scan: approved, unexpired acceptances by expiry.
        m.create_index(index(
            "risk_responses_by_expiry",
            a("risk_responses"),
            &["state", "expired", "acceptance_expire_time"],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(a("decisions"))
                .col(uuid(a("id")).primary_key())
                .col(uuid(a("risk_id")))
                .col(integer(a("kind")))
                .col(string(a("actor")))
                .col(text(a("summary")))
                .col(uuid_null(a("response_id")))
                .col(big_integer(a("time")))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("decisions"), a("risk_id"))
                        .to(Risks::Table, Risks::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "decisions_by_risk",
            a("decisions"),
            &["risk_id", "id"],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(a("action_plans"))
                .col(uuid(a("risk_id")).primary_key())
                .col(string(a("title")))
                .col(string(a("owner")))
                .col(big_integer(a("create_time")))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("action_plans"), a("risk_id"))
                        .to(Risks::Table, Risks::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(a("action_items"))
                .col(uuid(a("id")).primary_key())
                .col(uuid(a("risk_id")))
                .col(string(a("service_id")))
                .col(string(a("business_unit_id")))
                .col(string(a("title")))
                .col(text(a("description")))
                .col(string(a("owner")))
                .col(big_integer(a("due_time")))
                .col(integer(a("status")))
                .col(string(a("tracker_system")))
                .col(string(a("tracker_key")))
                .col(string(a("tracker_url")))
                .col(integer(a("sync_state")))
                .col(big_integer_null(a("sync_time")))
                .col(big_integer(a("version")))
                .col(big_integer(a("create_time")))
                .col(big_integer(a("update_time")))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("action_items"), a("risk_id"))
                        .to(a("action_plans"), a("risk_id")),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "action_items_by_risk",
            a("action_items"),
            &["risk_id", "id"],
        ))
        .await?;
        m.create_index(index(
            "action_items_by_due",
            a("action_items"),
            &["status", "due_time", "id"],
        ))
        .await
    }
}

/// Security and compliance exceptions (`exceptions`) and the services each one exempts
/// (`exception_services`).
struct Exceptions;

impl MigrationName for Exceptions {
    fn name(&self) -> &str {
        "m0004_exceptions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Exceptions {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(a("exceptions"))
                .col(uuid(a("id")).primary_key())
                .col(string(a("title")))
                .col(text(a("scope")))
                .col(uuid_null(a("risk_id")))
                .col(text(a("justification")))
                .col(text(a("compensating_controls")))
                .col(string(a("requester")))
                .col(string(a("approver")))
                .col(integer(a("status")))
                .col(big_integer(a("expire_time")))
                .col(big_integer_null(a("approve_time")))
                .col(big_integer_null(a("revoke_time")))
                .col(text(a("revoke_reason")))
                .col(text(a("decision_comment")))
                .col(big_integer_null(a("expiry_time")))
                .col(big_integer(a("version")))
                .col(big_integer(a("create_time")))
                .col(big_integer(a("update_time")))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("exceptions"), a("risk_id"))
                        .to(Risks::Table, Risks::Id),
                )
                .to_owned(),
        )
        .await?;
        // The expiry job's scan and `expiring_within_days`: by status, then expiry.
        m.create_index(index(
            "exceptions_by_status_expiry",
            a("exceptions"),
            &["status", "expire_time", "id"],
        ))
        .await?;
        m.create_index(index(
            "exceptions_by_requester",
            a("exceptions"),
            &["requester", "id"],
        ))
        .await?;
        m.create_index(index(
            "exceptions_by_risk",
            a("exceptions"),
            &["risk_id", "id"],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(a("exception_services"))
                .col(uuid(a("exception_id")))
                .col(string(a("service_id")))
                .primary_key(Index::create().col(a("exception_id")).col(a("service_id")))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("exception_services"), a("exception_id"))
                        .to(a("exceptions"), a("id")),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(a("exception_services"), a("service_id"))
                        .to(Services::Table, Services::Id),
                )
                .to_owned(),
        )
        .await?;
        // `service = "services/{id}"` filters.
        m.create_index(index(
            "exception_services_by_service",
            a("exception_services"),
            &["service_id", "exception_id"],
        ))
        .await
    }
}

/// The controls framework: `controls`, their `control_requirements` (for the framework
/// filter) and the many-to-many `risk_controls` links.
struct Controls;

impl MigrationName for Controls {
    fn name(&self) -> &str {
        "m0005_controls"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Controls {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(a("controls"))
                .col(string(a("id")).primary_key())
                .col(string(a("title")))
                .col(text(a("description")))
                .col(string(a("owner")))
                .col(integer(a("design_effectiveness")))
                .col(integer(a("operating_effectiveness")))
                .col(big_integer_null(a("last_test_time")))
                .col(text(a("requirements")))
                .col(big_integer(a("version")))
                .col(big_integer(a("create_time")))
                .col(big_integer(a("update_time")))
                .to_owned(),
        )
        .await?;
        m.create_index(index("controls_by_owner", a("controls"), &["owner", "id"]))
            .await?;
        m.create_table(
            Table::create()
                .table(a("control_requirements"))
                .col(string(a("control_id")))
                .col(string(a("framework")))
                .col(string(a("section")))
                .primary_key(
                    Index::create()
                        .col(a("control_id"))
                        .col(a("framework"))
                        .col(a("section")),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(a("control_requirements"), a("control_id"))
                        .to(a("controls"), a("id")),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "control_requirements_by_framework",
            a("control_requirements"),
            &["framework", "control_id"],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(a("risk_controls"))
                .col(uuid(a("risk_id")))
                .col(string(a("control_id")))
                .col(string(a("linked_by")))
                .col(big_integer(a("create_time")))
                .primary_key(Index::create().col(a("risk_id")).col(a("control_id")))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("risk_controls"), a("risk_id"))
                        .to(Risks::Table, Risks::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(a("risk_controls"), a("control_id"))
                        .to(a("controls"), a("id")),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "risk_controls_by_control",
            a("risk_controls"),
            &["control_id", "risk_id"],
        ))
        .await
    }
}

/// Migration 0012: risks by `source_reference`, for `ListRisks` filtered on it (a scanner finds
/// the risk it filed for a finding).
struct SourceReferences;

impl MigrationName for SourceReferences {
    fn name(&self) -> &str {
        "m0012_risks_by_source_reference"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SourceReferences {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(index(
            "risks_by_source_reference",
            a("risks"),
            &["source_reference", "id"],
        ))
        .await
    }
}

/// Migration 0013: response effectiveness. `risk_realizations` holds the incidents that
/// realised a risk (one row per risk and incident); an observation names the control whose
/// failure it records (`control_id`, empty for earlier observations and other effects).
struct ResponseEffectiveness;

impl MigrationName for ResponseEffectiveness {
    fn name(&self) -> &str {
        "m0013_response_effectiveness"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ResponseEffectiveness {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(a("risk_realizations"))
                .col(uuid(a("risk_id")))
                .col(string(a("incident")))
                .col(integer(a("incident_severity")))
                .col(big_integer(a("realize_time")))
                .col(string(a("recorder")))
                .col(big_integer(a("create_time")))
                .primary_key(Index::create().col(a("risk_id")).col(a("incident")))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(a("observations"))
                .add_column(string(a("control_id")).default(""))
                .to_owned(),
        )
        .await
    }
}
