//! Schema migrations of the gateway's own store, run at start-up; identical on SQLite and
//! PostgreSQL. A migration that has landed never changes what it executes (a change is a new
//! migration). Kept in `gateway_migrations`, so the store may share a database with the
//! services.

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migration_table_name() -> sea_orm::DynIden {
        "gateway_migrations".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(M0001Appetite), Box::new(M0003Reports)]
    }
}

#[derive(DeriveIden)]
enum AppetiteVersions {
    Table,
    Scope,
    Version,
    Appetite,
    Tolerance,
    EffectiveTime,
    Reason,
    SetBy,
    Principal,
    CreateTime,
}

/// Migration 0001: risk appetite versions, the audit trail and request records.
struct M0001Appetite;

impl MigrationName for M0001Appetite {
    fn name(&self) -> &str {
        "m0001_appetite"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Appetite {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use AppetiteVersions as A;
        m.create_table(
            Table::create()
                .table(A::Table)
                .col(ColumnDef::new(A::Scope).string().not_null())
                .col(ColumnDef::new(A::Version).big_integer().not_null())
                .col(ColumnDef::new(A::Appetite).integer().not_null())
                .col(ColumnDef::new(A::Tolerance).integer().not_null())
                .col(ColumnDef::new(A::EffectiveTime).big_integer().not_null())
                .col(ColumnDef::new(A::Reason).string().not_null())
                .col(ColumnDef::new(A::SetBy).string().not_null())
                .col(ColumnDef::new(A::Principal).string().not_null())
                .col(ColumnDef::new(A::CreateTime).big_integer().not_null())
                .primary_key(Index::create().col(A::Scope).col(A::Version))
                .to_owned(),
        )
        .await?;
        let (table, index) = assurance_runtime::audit::create_table();
        m.create_table(table).await?;
        m.create_index(index).await?;
        m.create_table(assurance_runtime::idempotency::create_table())
            .await
    }
}

/// Migration 0003: formal reports — the report, its services in scope (with their
/// confirmations), its frozen risk rows, and a signed report's exports in 64 KiB chunks.
struct M0003Reports;

impl MigrationName for M0003Reports {
    fn name(&self) -> &str {
        "m0003_reports"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0003Reports {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let text = |name: &'static str| {
            ColumnDef::new(Alias::new(name))
                .string()
                .not_null()
                .to_owned()
        };
        let big = |name: &'static str| {
            ColumnDef::new(Alias::new(name))
                .big_integer()
                .not_null()
                .to_owned()
        };
        let int = |name: &'static str| {
            ColumnDef::new(Alias::new(name))
                .integer()
                .not_null()
                .to_owned()
        };
        let blob = |name: &'static str| {
            ColumnDef::new(Alias::new(name))
                .blob()
                .not_null()
                .to_owned()
        };
        m.create_table(
            Table::create()
                .table(Alias::new("reports"))
                .col(text("id").primary_key())
                .col(text("scope"))
                .col(text("title"))
                .col(big("period_start"))
                .col(big("period_end"))
                .col(int("state"))
                .col(text("content_hash"))
                .col(blob("posture"))
                .col(big("risk_count"))
                .col(text("scoring_policies"))
                .col(text("creator"))
                .col(text("creator_principal"))
                .col(big("version"))
                .col(big("create_time"))
                .col(big("update_time"))
                .col(text("rejected_by"))
                .col(text("reject_reason"))
                .col(
                    ColumnDef::new(Alias::new("reject_time"))
                        .big_integer()
                        .null(),
                )
                .col(text("signed_off_by"))
                .col(
                    ColumnDef::new(Alias::new("sign_off_time"))
                        .big_integer()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("reports_by_create_time")
                .table(Alias::new("reports"))
                .col(Alias::new("create_time"))
                .col(Alias::new("id"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("report_services"))
                .col(text("report_id"))
                .col(text("service"))
                .col(text("confirmed_by"))
                .col(text("principal"))
                .col(text("note"))
                .col(
                    ColumnDef::new(Alias::new("confirm_time"))
                        .big_integer()
                        .null(),
                )
                .primary_key(
                    Index::create()
                        .col(Alias::new("report_id"))
                        .col(Alias::new("service")),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("report_services_by_service")
                .table(Alias::new("report_services"))
                .col(Alias::new("service"))
                .col(Alias::new("report_id"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("report_rows"))
                .col(text("report_id"))
                .col(big("seq"))
                .col(text("service"))
                .col(blob("row"))
                .primary_key(
                    Index::create()
                        .col(Alias::new("report_id"))
                        .col(Alias::new("seq")),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("report_exports"))
                .col(text("report_id"))
                .col(int("format"))
                .col(big("size"))
                .col(text("sha256"))
                .primary_key(
                    Index::create()
                        .col(Alias::new("report_id"))
                        .col(Alias::new("format")),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("report_export_chunks"))
                .col(text("report_id"))
                .col(int("format"))
                .col(big("seq"))
                .col(blob("data"))
                .primary_key(
                    Index::create()
                        .col(Alias::new("report_id"))
                        .col(Alias::new("format"))
                        .col(Alias::new("seq")),
                )
                .to_owned(),
        )
        .await
    }
}
