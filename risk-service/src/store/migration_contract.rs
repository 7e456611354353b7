//! The v1 contract migration (#11) of the risk register: an action plan gets a version and an
//! update time (UpdateActionPlan checks its etag); an assessment — and the copy of the
//! latest one on its risk — records whether its control deficiency was derived from the
//! risk's linked controls; business units and services get a delete time (DeleteBusinessUnit,
//! DeleteService: the row stays, since CLOSED risks keep naming their service as history).
//!
//! Existing rows: a plan starts at version 1 and its update time is its create time (it was
//! never updated). Whether an existing assessment's deficiency was derived cannot be told from
//! the stored data (the request is not kept, and the links and control ratings it was derived
//! from may have changed since), so existing assessments say `false`.

use sea_orm_migration::{prelude::*, schema::*};

use super::migration::a;

pub(super) struct ContractMigration;

impl MigrationName for ContractMigration {
    fn name(&self) -> &str {
        "m0009_risk_contract"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ContractMigration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        for (table, column) in [
            (
                "business_units",
                big_integer_null(a("delete_time")).to_owned(),
            ),
            ("services", big_integer_null(a("delete_time")).to_owned()),
            (
                "action_plans",
                big_integer(a("version")).default(1).to_owned(),
            ),
            (
                "action_plans",
                big_integer(a("update_time")).default(0).to_owned(),
            ),
            (
                "assessments",
                boolean(a("control_deficiency_derived"))
                    .default(false)
                    .to_owned(),
            ),
            (
                "risks",
                boolean(a("control_deficiency_derived"))
                    .default(false)
                    .to_owned(),
            ),
        ] {
            m.alter_table(Table::alter().table(a(table)).add_column(column).to_owned())
                .await?;
        }
        m.exec_stmt(
            Query::update()
                .table(a("action_plans"))
                .value(a("update_time"), Expr::col(a("create_time")))
                .to_owned(),
        )
        .await
    }
}
