//! Schema migrations of the gateway's own store, run at start-up; identical on SQLite and
//! PostgreSQL. A migration that has landed never changes what it executes (a change is a new
//! migration). Kept in `gateway_migrations`, so the store may share a database with the
//! services.

use sea_orm_migration::prelude::*;

use super::m0004_tracker_sync::M0004TrackerSync;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migration_table_name() -> sea_orm::DynIden {
        "gateway_migrations".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Appetite),
            Box::new(M0002Snapshots),
            Box::new(M0003Reports),
            Box::new(M0004TrackerSync),
        ]
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

#[derive(DeriveIden)]
enum PostureSnapshots {
    Table,
    Id,
    TakeTime,
    Header,
}

#[derive(DeriveIden)]
enum PostureSnapshotNodes {
    Table,
    SnapshotId,
    Scope,
    Parent,
    Position,
    Kind,
    Figures,
}

#[derive(DeriveIden)]
enum PostureSnapshotSlots {
    Table,
    Slot,
    Holder,
    LeaseExpireTime,
    SnapshotId,
}

/// Migration 0002: posture snapshots, their nodes, and the claims of scheduled slots.
struct M0002Snapshots;

impl MigrationName for M0002Snapshots {
    fn name(&self) -> &str {
        "m0002_snapshots"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Snapshots {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use PostureSnapshotNodes as N;
        use PostureSnapshotSlots as L;
        use PostureSnapshots as S;
        m.create_table(
            Table::create()
                .table(S::Table)
                .col(ColumnDef::new(S::Id).string().not_null().primary_key())
                .col(ColumnDef::new(S::TakeTime).big_integer().not_null())
                .col(ColumnDef::new(S::Header).blob().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("posture_snapshots_take_time")
                .table(S::Table)
                .col(S::TakeTime)
                .col(S::Id)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(N::Table)
                .col(ColumnDef::new(N::SnapshotId).string().not_null())
                .col(ColumnDef::new(N::Scope).string().not_null())
                .col(ColumnDef::new(N::Parent).string().not_null())
                .col(ColumnDef::new(N::Position).integer().not_null())
                .col(ColumnDef::new(N::Kind).integer().not_null())
                .col(ColumnDef::new(N::Figures).blob().not_null())
                .primary_key(Index::create().col(N::SnapshotId).col(N::Scope))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("posture_snapshot_nodes_scope")
                .table(N::Table)
                .col(N::Scope)
                .col(N::SnapshotId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(L::Table)
                .col(
                    ColumnDef::new(L::Slot)
                        .big_integer()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(L::Holder).string().not_null())
                .col(ColumnDef::new(L::LeaseExpireTime).big_integer().not_null())
                .col(ColumnDef::new(L::SnapshotId).string().not_null())
                .to_owned(),
        )
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
