//! The posture migration (#12): counters of open risks per service, kept by database triggers,
//! so `SummarizeRisks` reads ~40 rows a service instead of grouping every risk.
//!
//! - `risks.approved_severity`: the highest severity at proposal of the risk's APPROVED
//!   responses that are not `expired` (0 when none), kept by triggers on `risk_responses`. A
//!   risk is *treated or accepted* when it is assessed and `approved_severity >= severity`.
//! - `risk_posture_counts(service_id, dimension, bucket, n)`: open risks of a service per
//!   [`dimension`](super::summary::dimension) and bucket, kept by triggers on `risks` — every
//!   write path (group commit, assessments, responses, expiry, closure, reviews, service moves,
//!   bulk seeding) keeps them right without code of its own.
//! - Indexes for the time-based figures and the per-service top risks.
//!
//! The triggers are written for each backend (SQLite trigger programs, PostgreSQL plpgsql
//! functions) around one shared statement. Existing rows are counted at the end
//! ([`super::summary::recount`]).

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{prelude::*, schema::*};

use super::migration::a;
use super::summary::{
    CLOSED, HEAT, SEVERITY, STATUS, STRATEGY, TREATED, UNASSESSED, recount, treated_severity,
};

pub(super) struct SummaryMigration;

impl MigrationName for SummaryMigration {
    fn name(&self) -> &str {
        "m0010_risk_summary"
    }
}

/// The risk columns whose change moves a risk between counters.
const COUNTED: [&str; 8] = [
    "status",
    "service_id",
    "latest_assessment_id",
    "severity",
    "strategy",
    "impact",
    "likelihood",
    "approved_severity",
];

/// The counter rows the risk row `r` (`NEW` or `OLD`) contributes, each `sign` (+1 / -1), as
/// a `SELECT … UNION ALL …` of (service_id, dimension, bucket, n).
fn contributions(r: &str, sign: i32) -> String {
    let open = format!("{r}.status <> {CLOSED}");
    let assessed = format!("{open} AND {r}.latest_assessment_id IS NOT NULL");
    [
        format!(
            "SELECT {r}.service_id AS service_id, {STATUS} AS dimension, {r}.status AS bucket, \
             {sign} AS n WHERE {open}"
        ),
        format!(
            "SELECT {r}.service_id, {UNASSESSED}, 0, {sign} \
             WHERE {open} AND {r}.latest_assessment_id IS NULL"
        ),
        format!("SELECT {r}.service_id, {SEVERITY}, {r}.severity, {sign} WHERE {assessed}"),
        format!(
            "SELECT {r}.service_id, {TREATED}, {r}.severity, {sign} \
             WHERE {assessed} AND {r}.approved_severity >= {r}.severity"
        ),
        format!("SELECT {r}.service_id, {STRATEGY}, {r}.strategy, {sign} WHERE {assessed}"),
        format!(
            "SELECT {r}.service_id, {HEAT}, {r}.impact * 10 + {r}.likelihood, {sign} \
             WHERE {assessed}"
        ),
    ]
    .join(" UNION ALL ")
}

/// Adds the net of `parts` to the counters. Rows are written in key order, so that two
/// transactions changing the same service's counters lock them in the same order
/// (PostgreSQL) and cannot deadlock; a change that nets to zero touches no row.
fn apply(parts: &[String]) -> String {
    format!(
        "INSERT INTO risk_posture_counts (service_id, dimension, bucket, n) \
         SELECT service_id, dimension, bucket, SUM(n) FROM ({}) AS d WHERE true \
         GROUP BY service_id, dimension, bucket HAVING SUM(n) <> 0 \
         ORDER BY service_id, dimension, bucket \
         ON CONFLICT (service_id, dimension, bucket) \
         DO UPDATE SET n = risk_posture_counts.n + excluded.n",
        parts.join(" UNION ALL ")
    )
}

fn on_insert() -> String {
    apply(&[contributions("NEW", 1)])
}

fn on_update() -> String {
    apply(&[contributions("OLD", -1), contributions("NEW", 1)])
}

fn on_delete() -> String {
    apply(&[contributions("OLD", -1)])
}

/// Sets `approved_severity` of the risk `risk_id` (an expression) from its responses.
fn set_treated(risk_id: &str) -> String {
    let severity = treated_severity(risk_id);
    format!(
        "UPDATE risks SET approved_severity = {severity} \
         WHERE id = {risk_id} AND approved_severity <> {severity}"
    )
}

/// `OLD.c IS NOT NEW.c OR …` over the counted columns (`distinct` is the backend's operator).
fn counted_changed(distinct: &str) -> String {
    COUNTED
        .iter()
        .map(|c| format!("OLD.{c} {distinct} NEW.{c}"))
        .collect::<Vec<_>>()
        .join(" OR ")
}

fn sqlite_triggers() -> Vec<String> {
    vec![
        format!(
            "CREATE TRIGGER risks_posture_insert AFTER INSERT ON risks BEGIN {}; END",
            on_insert()
        ),
        format!(
            "CREATE TRIGGER risks_posture_update AFTER UPDATE OF {} ON risks WHEN {} BEGIN {}; END",
            COUNTED.join(", "),
            counted_changed("IS NOT"),
            on_update()
        ),
        format!(
            "CREATE TRIGGER risks_posture_delete AFTER DELETE ON risks BEGIN {}; END",
            on_delete()
        ),
        format!(
            "CREATE TRIGGER risk_responses_treated_insert AFTER INSERT ON risk_responses \
             BEGIN {}; END",
            set_treated("NEW.risk_id")
        ),
        format!(
            "CREATE TRIGGER risk_responses_treated_update \
             AFTER UPDATE OF risk_id, state, expired, severity ON risk_responses \
             BEGIN {}; {}; END",
            set_treated("OLD.risk_id"),
            set_treated("NEW.risk_id")
        ),
        format!(
            "CREATE TRIGGER risk_responses_treated_delete AFTER DELETE ON risk_responses \
             BEGIN {}; END",
            set_treated("OLD.risk_id")
        ),
    ]
}

fn postgres_triggers() -> Vec<String> {
    vec![
        format!(
            "CREATE OR REPLACE FUNCTION risks_posture_counts() RETURNS trigger \
             LANGUAGE plpgsql AS $$ BEGIN \
             IF TG_OP = 'INSERT' THEN {}; \
             ELSIF TG_OP = 'UPDATE' THEN {}; \
             ELSE {}; END IF; \
             RETURN NULL; END $$",
            on_insert(),
            on_update(),
            on_delete()
        ),
        "CREATE TRIGGER risks_posture_insert AFTER INSERT OR DELETE ON risks \
         FOR EACH ROW EXECUTE FUNCTION risks_posture_counts()"
            .to_string(),
        format!(
            "CREATE TRIGGER risks_posture_update AFTER UPDATE ON risks FOR EACH ROW \
             WHEN ({}) EXECUTE FUNCTION risks_posture_counts()",
            counted_changed("IS DISTINCT FROM")
        ),
        format!(
            "CREATE OR REPLACE FUNCTION risk_responses_treated() RETURNS trigger \
             LANGUAGE plpgsql AS $$ BEGIN \
             IF TG_OP <> 'INSERT' THEN {}; END IF; \
             IF TG_OP <> 'DELETE' THEN {}; END IF; \
             RETURN NULL; END $$",
            set_treated("OLD.risk_id"),
            set_treated("NEW.risk_id")
        ),
        "CREATE TRIGGER risk_responses_treated AFTER INSERT OR DELETE \
         OR UPDATE OF risk_id, state, expired, severity ON risk_responses \
         FOR EACH ROW EXECUTE FUNCTION risk_responses_treated()"
            .to_string(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for SummaryMigration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(a("risks"))
                .add_column(integer(a("approved_severity")).default(0))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(a("risk_posture_counts"))
                .col(string(a("service_id")))
                .col(integer(a("dimension")))
                .col(integer(a("bucket")))
                .col(big_integer(a("n")))
                .primary_key(
                    Index::create()
                        .col(a("service_id"))
                        .col(a("dimension"))
                        .col(a("bucket")),
                )
                .to_owned(),
        )
        .await?;
        let conn = m.get_connection();
        for sql in [
            // Top risks of a service: highest score first, ties the older; status checked in
            // the index, so closed risks cost no row read.
            "CREATE INDEX risks_top_by_service ON risks \
             (service_id, score DESC, create_time, id, status)",
            // Overdue reviews, answered from the index alone; it supersedes the plain
            // `risks_by_next_review` (a prefix of it).
            "CREATE INDEX risks_by_review_due ON risks (next_review_time, status, service_id)",
            "DROP INDEX risks_by_next_review",
            // A risk's approved, unexpired responses (the treated flag's triggers). Without
            // it SQLite, lacking statistics, scans `risk_responses_by_expiry` per write.
            "CREATE INDEX risk_responses_by_risk_state ON risk_responses \
             (risk_id, state, expired, severity)",
            // Overdue action items: unfinished ones by due time, with their risk.
            "CREATE INDEX action_items_by_status_due ON action_items \
             (status, due_time, risk_id)",
        ] {
            conn.execute_unprepared(sql).await?;
        }
        let triggers = match conn.get_database_backend() {
            DbBackend::Postgres => postgres_triggers(),
            _ => sqlite_triggers(),
        };
        for sql in triggers {
            conn.execute_unprepared(&sql).await?;
        }
        let backfilled = recount(conn).await?;
        tracing::info!(
            counters = backfilled,
            "risk posture counters backfilled from the risks"
        );
        Ok(())
    }
}
