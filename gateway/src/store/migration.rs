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
        vec![Box::new(M0001Appetite)]
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
