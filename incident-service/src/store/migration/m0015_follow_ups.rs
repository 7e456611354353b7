//! Migration 0015: post-incident follow-ups as tracked items (`incidents/{i}/followUps/{f}`),
//! with an owner, a due time, a work-item status, a tracker link and a version (etag).
//!
//! Existing reviews kept their follow-ups only as JSON on the review row; each becomes an OPEN
//! follow-up created at its review's time.

use sea_orm::{FromQueryResult, Statement, Value};
use sea_orm_migration::{prelude::*, schema::*};
use serde::Deserialize;
use uuid::Uuid;

use super::Incidents;

#[derive(DeriveIden, Clone, Copy)]
enum FollowUps {
    Table,
    Id,
    IncidentId,
    Title,
    Description,
    Owner,
    DueTime,
    Status,
    TrackerSystem,
    TrackerKey,
    TrackerUrl,
    SyncState,
    SyncTime,
    FromReview,
    Version,
    CreateTime,
    UpdateTime,
}

pub struct FollowUpItems;

impl MigrationName for FollowUpItems {
    fn name(&self) -> &str {
        "m0015_follow_ups"
    }
}

/// A review row's follow-ups, as the review stored them.
#[derive(FromQueryResult)]
struct StoredReview {
    incident_id: Uuid,
    follow_ups: String,
    review_time: i64,
}

#[derive(Deserialize)]
struct StoredFollowUp {
    title: String,
    description: String,
    owner: String,
    due_time: i64,
}

/// `WorkItemStatus::Open`.
const OPEN: i32 = 1;
/// `SyncState::NotLinked`.
const NOT_LINKED: i32 = 1;

#[async_trait::async_trait]
impl MigrationTrait for FollowUpItems {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use FollowUps as F;
        m.create_table(
            Table::create()
                .table(F::Table)
                .col(uuid(F::Id).primary_key())
                .col(uuid(F::IncidentId))
                .col(string(F::Title))
                .col(text(F::Description))
                .col(string(F::Owner))
                .col(big_integer(F::DueTime))
                .col(integer(F::Status))
                .col(string(F::TrackerSystem))
                .col(string(F::TrackerKey))
                .col(string(F::TrackerUrl))
                .col(integer(F::SyncState))
                .col(big_integer_null(F::SyncTime))
                .col(boolean(F::FromReview))
                .col(big_integer(F::Version))
                .col(big_integer(F::CreateTime))
                .col(big_integer(F::UpdateTime))
                .foreign_key(
                    ForeignKey::create()
                        .from(F::Table, F::IncidentId)
                        .to(Incidents::Table, Incidents::Id),
                )
                .to_owned(),
        )
        .await?;
        for (name, columns) in [
            // An incident's follow-ups, in creation order.
            ("follow_ups_by_incident", &[F::IncidentId, F::Id][..]),
            // Overdue ones: unfinished by due time.
            ("follow_ups_by_status_due", &[F::Status, F::DueTime, F::Id]),
            // A sync job's "changed since" and a person's own.
            ("follow_ups_by_update", &[F::UpdateTime, F::Id]),
            ("follow_ups_by_owner", &[F::Owner, F::Id]),
            // The tracker sync's lookup by external key.
            ("follow_ups_by_tracker", &[F::TrackerSystem, F::TrackerKey]),
        ] {
            let mut index = Index::create();
            index.name(name).table(F::Table);
            for c in columns {
                index.col(*c);
            }
            m.create_index(index.to_owned()).await?;
        }
        backfill(m).await
    }
}

/// One OPEN follow-up for each follow-up of every recorded review.
async fn backfill(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    let conn = m.get_connection();
    let backend = conn.get_database_backend();
    let reviews = StoredReview::find_by_statement(Statement::from_string(
        backend,
        "SELECT incident_id, follow_ups, review_time FROM post_incident_reviews",
    ))
    .all(conn)
    .await?;
    for review in reviews {
        let items: Vec<StoredFollowUp> =
            serde_json::from_str(&review.follow_ups).unwrap_or_default();
        for item in items {
            let insert = Query::insert()
                .into_table(FollowUps::Table)
                .columns([
                    FollowUps::Id,
                    FollowUps::IncidentId,
                    FollowUps::Title,
                    FollowUps::Description,
                    FollowUps::Owner,
                    FollowUps::DueTime,
                    FollowUps::Status,
                    FollowUps::TrackerSystem,
                    FollowUps::TrackerKey,
                    FollowUps::TrackerUrl,
                    FollowUps::SyncState,
                    FollowUps::FromReview,
                    FollowUps::Version,
                    FollowUps::CreateTime,
                    FollowUps::UpdateTime,
                ])
                .values([
                    Value::from(Uuid::now_v7()).into(),
                    Value::from(review.incident_id).into(),
                    item.title.into(),
                    item.description.into(),
                    item.owner.into(),
                    item.due_time.into(),
                    OPEN.into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    NOT_LINKED.into(),
                    true.into(),
                    1i64.into(),
                    review.review_time.into(),
                    review.review_time.into(),
                ])
                .map_err(|e| DbErr::Custom(format!("follow-up backfill: {e}")))?
                .to_owned();
            m.exec_stmt(insert).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sea_orm::{EntityTrait, IntoActiveModel};
    use sea_orm_migration::MigratorTrait;

    use super::*;
    use crate::store::{
        entities::{follow_up, incident, review},
        migration::Migrator,
    };

    /// A review recorded before this migration keeps its follow-ups: each becomes an OPEN item
    /// created at the review's time.
    #[tokio::test]
    async fn existing_reviews_follow_ups_become_items() {
        let db = assurance_runtime::db::connect("sqlite::memory:", 1)
            .await
            .expect("database");
        Migrator::up(&db, Some(14)).await.expect("up to 0014");
        let id = Uuid::now_v7();
        let row = incident::Model {
            id,
            title: "Token theft".into(),
            summary: String::new(),
            incident_type: String::new(),
            classification: 2,
            severity: 3,
            severity_overridden: false,
            functional_impact: 1,
            information_impacts: String::new(),
            recoverability: 1,
            customer_data_affected: false,
            affected_services: "exchange-online".into(),
            detection_source: String::new(),
            phase: 6,
            occur_time: None,
            detect_time: 1,
            declare_time: 1,
            contain_time: None,
            eradicate_time: None,
            recover_time: None,
            post_incident_time: None,
            close_time: None,
            resolution: String::new(),
            review_complete: true,
            timeline_seq: 1,
            version: 1,
            create_time: 1,
            update_time: 1,
        };
        incident::Entity::insert(row.into_active_model())
            .exec_without_returning(&db)
            .await
            .expect("incident");
        let review = review::Model {
            incident_id: id,
            root_cause: "MFA fatigue".into(),
            went_well: String::new(),
            went_poorly: String::new(),
            lessons_learned: "Disable legacy auth".into(),
            participants: "[]".into(),
            follow_ups: r#"[{"title":"Disable legacy auth","description":"tenant-wide","owner":"identity@example.com","due_time":1800000000000000}]"#.into(),
            identified_risks: "[]".into(),
            review_time: 42,
        };
        review::Entity::insert(review.into_active_model())
            .exec_without_returning(&db)
            .await
            .expect("review");
        Migrator::up(&db, None).await.expect("up to the latest");
        let items = follow_up::Entity::find().all(&db).await.expect("items");
        assert_eq!(items.len(), 1);
        let item = &items[0];
        assert_eq!(
            (
                item.incident_id,
                item.title.as_str(),
                item.description.as_str()
            ),
            (id, "Disable legacy auth", "tenant-wide")
        );
        assert_eq!(item.owner, "identity@example.com");
        assert_eq!(item.due_time, 1_800_000_000_000_000);
        assert_eq!((item.status, item.sync_state), (OPEN, NOT_LINKED));
        assert!(item.from_review);
        assert_eq!(
            (item.version, item.create_time, item.update_time),
            (1, 42, 42)
        );
    }
}
