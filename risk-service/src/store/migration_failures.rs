//! Migration 0014: response failures in the posture (#14). `SummarizeRisks` counts, per
//! service, the realisations and failed control tests of the last 365 days and the risks whose
//! current response failed (see `summary.rs`):
//!
//! - indexes for the windowed range scans, which also give the summary cache the instant the
//!   oldest counted record leaves the window (one seek each); and
//! - triggers raising `risk_summary_versions` (migration 0011) with every change of
//!   `risk_realizations` and `observations`, so that kept figures give way to a new
//!   realisation or observation in the same transaction.

use sea_orm_migration::prelude::*;

use super::{
    migration::{a, index},
    migration_summary_versions::{ServicesOf, create_triggers, service_of_risk},
};

pub(super) struct FailuresInPostureMigration;

impl MigrationName for FailuresInPostureMigration {
    fn name(&self) -> &str {
        "m0014_failures_in_posture"
    }
}

/// The tables whose rows count as response failures, and the services of their rows.
fn watched() -> [(&'static str, ServicesOf); 2] {
    [
        ("risk_realizations", |r| {
            service_of_risk(&format!("{r}.risk_id"))
        }),
        ("observations", |r| service_of_risk(&format!("{r}.risk_id"))),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for FailuresInPostureMigration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Realisations within the window, their risks read from the index.
        m.create_index(index(
            "risk_realizations_by_time",
            a("risk_realizations"),
            &["realize_time", "risk_id"],
        ))
        .await?;
        // Failed control tests (and every failed test, for the failed responses) by time.
        m.create_index(index(
            "observations_by_effect_time",
            a("observations"),
            &["effect", "observe_time", "risk_id"],
        ))
        .await?;
        create_triggers(m, &watched()).await
    }
}
