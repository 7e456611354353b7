//! The migrations of the reviews area: review and cycle tables, observations and the risk's
//! next review (m0006), and the review cycles' etag (m0008). Kept apart from the store code
//! of `reviews.rs`.

use sea_orm_migration::{prelude::*, schema::*};

use super::migration::{a, index};

/// The reviews migration: review and cycle tables, observations, and the risk's next review.
pub(super) struct ReviewsMigration;

impl MigrationName for ReviewsMigration {
    fn name(&self) -> &str {
        "m0006_reviews"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ReviewsMigration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(a("risks"))
                .add_column(big_integer_null(a("next_review_time")))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "risks_by_next_review",
            a("risks"),
            &["next_review_time"],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(a("risk_reviews"))
                .col(uuid(a("id")).primary_key())
                .col(uuid(a("risk_id")))
                .col(text(a("participants")))
                .col(integer(a("outcome")))
                .col(text(a("notes")))
                .col(uuid_null(a("assessment_id")))
                .col(string(a("reviewer")))
                .col(big_integer(a("review_time")))
                .col(big_integer(a("next_review_time")))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("risk_reviews"), a("risk_id"))
                        .to(a("risks"), a("id")),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "risk_reviews_by_risk",
            a("risk_reviews"),
            &["risk_id", "id"],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(a("review_cycles"))
                .col(uuid(a("id")).primary_key())
                .col(string(a("title")))
                .col(string(a("scope")))
                .col(big_integer(a("due_time")))
                .col(integer(a("state")))
                .col(text(a("summary")))
                .col(string(a("opened_by")))
                .col(string(a("closed_by")))
                .col(big_integer(a("open_time")))
                .col(big_integer_null(a("close_time")))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(a("review_cycle_risks"))
                .col(uuid(a("cycle_id")))
                .col(uuid(a("risk_id")))
                .col(string(a("owner")))
                .col(uuid_null(a("review_id")))
                .primary_key(Index::create().col(a("cycle_id")).col(a("risk_id")))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("review_cycle_risks"), a("cycle_id"))
                        .to(a("review_cycles"), a("id")),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "review_cycle_risks_by_risk",
            a("review_cycle_risks"),
            &["risk_id"],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(a("observations"))
                .col(uuid(a("id")).primary_key())
                .col(uuid(a("risk_id")))
                .col(integer(a("source")))
                .col(text(a("summary")))
                .col(integer(a("effect")))
                .col(string(a("reference")))
                .col(string(a("observer")))
                .col(big_integer(a("observe_time")))
                .col(boolean(a("reassessment_triggered")))
                .foreign_key(
                    ForeignKey::create()
                        .from(a("observations"), a("risk_id"))
                        .to(a("risks"), a("id")),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "observations_by_risk",
            a("observations"),
            &["risk_id", "id"],
        ))
        .await
    }
}

/// Review cycles get an etag: a version (1 for existing cycles) and an update time (their open
/// time, or their close time once closed).
pub(super) struct ReviewCycleVersions;

impl MigrationName for ReviewCycleVersions {
    fn name(&self) -> &str {
        "m0008_review_cycle_versions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ReviewCycleVersions {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(a("review_cycles"))
                .add_column(big_integer(a("version")).default(1))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(a("review_cycles"))
                .add_column(big_integer(a("update_time")).default(0))
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared(
                "UPDATE review_cycles SET update_time = COALESCE(close_time, open_time)",
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    use sea_orm_migration::MigratorTrait;

    use assurance_runtime::db;
    use sea_orm::{EntityTrait, QueryOrder};
    use uuid::Uuid;

    use super::*;
    use crate::store::migration::Migrator;
    use crate::store::reviews::review_cycle;

    /// A database made before review cycles had etags migrates: every cycle gets version 1
    /// and its last change (close, else open) as its update time.
    #[tokio::test]
    async fn cycles_opened_before_etags_migrate_to_version_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/risk.db", dir.path().display());
        let conn = db::connect(&url, 1).await.expect("connect");
        let before = Migrator::migrations()
            .iter()
            .position(|m| m.name() == "m0008_review_cycle_versions")
            .expect("the migration is registered");
        let before =
            <u32 as std::convert::TryFrom<usize>>::try_from(before).expect("few migrations");
        Migrator::up(&conn, Some(before)).await.expect("old schema");
        let (open, closed) = (Uuid::now_v7(), Uuid::now_v7());
        for (id, close_time) in [(open, None), (closed, Some(200_i64))] {
            conn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "INSERT INTO review_cycles (id, title, scope, due_time, state, summary, \
                 opened_by, closed_by, open_time, close_time) \
                 VALUES (?, 'H1', '', 500, 1, '', 'trust@example.com', '', 100, ?)",
                [id.into(), close_time.into()],
            ))
            .await
            .expect("old cycle");
        }
        Migrator::up(&conn, None).await.expect("migrate");
        let rows = review_cycle::Entity::find()
            .order_by_asc(review_cycle::Column::Id)
            .all(&conn)
            .await
            .expect("cycles");
        let got: Vec<(Uuid, i64, i64)> = rows
            .iter()
            .map(|c| (c.id, c.version, c.update_time))
            .collect();
        assert_eq!(got, vec![(open, 1, 100), (closed, 1, 200)]);
    }
}
