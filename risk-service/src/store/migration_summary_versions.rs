//! The summary-version migration (#12): `risk_summary_versions(service_id, v)`, one row a
//! service, whose `v` database triggers raise in the same transaction as every change of the
//! rows `SummarizeRisks` reads — risks, their responses and action items, exceptions and the
//! services they exempt. The sum of `v` therefore moves with every committed change, on every
//! replica, and a summary computed after reading it stays exact until it moves (or until a
//! time-driven figure crosses a boundary, see [`super::summary_cache`]).
//!
//! One row a service, not one for the whole table, so that writers of different services never
//! wait on each other's row lock (PostgreSQL); rows are written in key order, like the posture
//! counters, so two transactions cannot deadlock on them.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{prelude::*, schema::*};

use super::migration::a;

pub(super) struct SummaryVersionsMigration;

impl MigrationName for SummaryVersionsMigration {
    fn name(&self) -> &str {
        "m0011_risk_summary_versions"
    }
}

/// Raises the version of each service `services` (a `SELECT` of one `service_id` column).
fn bump(services: &str) -> String {
    format!(
        "INSERT INTO risk_summary_versions (service_id, v) \
         SELECT DISTINCT service_id, 1 FROM ({services}) AS s WHERE service_id IS NOT NULL \
         ORDER BY service_id \
         ON CONFLICT (service_id) DO UPDATE SET v = risk_summary_versions.v + 1"
    )
}

/// The service of the risk `risk_id` (an expression).
pub(super) fn service_of_risk(risk_id: &str) -> String {
    format!("SELECT service_id FROM risks WHERE id = {risk_id}")
}

/// The services the exception `exception_id` (an expression) exempts.
fn services_of_exception(exception_id: &str) -> String {
    format!("SELECT service_id FROM exception_services WHERE exception_id = {exception_id}")
}

/// The services a row `r` (`NEW` or `OLD`) of a table belongs to, as a `SELECT`.
pub(super) type ServicesOf = fn(&str) -> String;

/// The tables whose changes move the summary, and the services of their rows.
fn watched() -> [(&'static str, ServicesOf); 5] {
    [
        ("risks", |r| format!("SELECT {r}.service_id AS service_id")),
        ("risk_responses", |r| {
            service_of_risk(&format!("{r}.risk_id"))
        }),
        ("action_items", |r| service_of_risk(&format!("{r}.risk_id"))),
        ("exceptions", |r| services_of_exception(&format!("{r}.id"))),
        ("exception_services", |r| {
            format!("SELECT {r}.service_id AS service_id")
        }),
    ]
}

fn sqlite_triggers(tables: &[(&str, ServicesOf)]) -> Vec<String> {
    tables
        .iter()
        .flat_map(|(table, services)| {
            [
                format!(
                    "CREATE TRIGGER {table}_summary_version_insert AFTER INSERT ON {table} \
                     BEGIN {}; END",
                    bump(&services("NEW"))
                ),
                format!(
                    "CREATE TRIGGER {table}_summary_version_update AFTER UPDATE ON {table} \
                     BEGIN {}; END",
                    bump(&format!("{} UNION {}", services("OLD"), services("NEW")))
                ),
                format!(
                    "CREATE TRIGGER {table}_summary_version_delete AFTER DELETE ON {table} \
                     BEGIN {}; END",
                    bump(&services("OLD"))
                ),
            ]
        })
        .collect()
}

fn postgres_triggers(tables: &[(&str, ServicesOf)]) -> Vec<String> {
    tables
        .iter()
        .flat_map(|(table, services)| {
            [
                format!(
                    "CREATE OR REPLACE FUNCTION {table}_summary_version() RETURNS trigger \
                     LANGUAGE plpgsql AS $$ BEGIN \
                     IF TG_OP = 'INSERT' THEN {}; \
                     ELSIF TG_OP = 'UPDATE' THEN {}; \
                     ELSE {}; END IF; \
                     RETURN NULL; END $$",
                    bump(&services("NEW")),
                    bump(&format!("{} UNION {}", services("OLD"), services("NEW"))),
                    bump(&services("OLD"))
                ),
                format!(
                    "CREATE TRIGGER {table}_summary_version \
                     AFTER INSERT OR UPDATE OR DELETE ON {table} \
                     FOR EACH ROW EXECUTE FUNCTION {table}_summary_version()"
                ),
            ]
        })
        .collect()
}

#[async_trait::async_trait]
impl MigrationTrait for SummaryVersionsMigration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(a("risk_summary_versions"))
                .col(string(a("service_id")).primary_key())
                .col(big_integer(a("v")))
                .to_owned(),
        )
        .await?;
        create_triggers(m, &watched()).await
    }
}

/// Creates the triggers that raise the summary version of the services of every inserted,
/// updated or deleted row of `tables` (each with the services of a row).
pub(super) async fn create_triggers(
    m: &SchemaManager<'_>,
    tables: &[(&str, ServicesOf)],
) -> Result<(), DbErr> {
    let conn = m.get_connection();
    let triggers = match conn.get_database_backend() {
        DbBackend::Postgres => postgres_triggers(tables),
        _ => sqlite_triggers(tables),
    };
    for sql in triggers {
        conn.execute_unprepared(&sql).await?;
    }
    Ok(())
}
